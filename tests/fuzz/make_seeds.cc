// Writes fuzz seeds from real captures: one input per packet and one per
// capture (its first 64 packets), in packet_fuzz.cc's input layout.
// Usage: make_seeds OUT_DIR FILE.pcap...
#include <pcap/pcap.h>

#include <cstdio>
#include <fstream>
#include <string>
#include <vector>

int main(int argc, char** argv) {
  const int links[] = {0, 1, 12, 14, 101, 108, 113, 228, 229, 276};
  if (argc < 3) return 2;
  int written = 0;
  for (int i = 2; i < argc; ++i) {
    char errbuf[PCAP_ERRBUF_SIZE];
    pcap_t* h = pcap_open_offline(argv[i], errbuf);
    if (!h) {
      std::fprintf(stderr, "%s\n", errbuf);
      return 1;
    }
    int dlt = pcap_datalink(h);
    int sel = -1;
    for (int k = 0; k < 10; ++k) {
      if (links[k] == dlt) sel = k;
    }
    if (sel < 0) {
      pcap_close(h);
      continue;
    }
    std::string all = {static_cast<char>(sel), 0};
    struct pcap_pkthdr* hdr;
    const u_char* data;
    int n = 0;
    while (pcap_next_ex(h, &hdr, &data) == 1) {
      std::string rec = {static_cast<char>(hdr->caplen >> 8), static_cast<char>(hdr->caplen)};
      rec.append(reinterpret_cast<const char*>(data), hdr->caplen);
      if (n < 64) all += rec;
      if (n < 200) {  // per-packet seeds (the big captures repeat themselves)
        std::string one = {static_cast<char>(sel), 0};
        one += rec;
        std::ofstream(std::string(argv[1]) + "/seed-" + std::to_string(written++), std::ios::binary)
            << one;
      }
      ++n;
    }
    std::ofstream(std::string(argv[1]) + "/seed-" + std::to_string(written++), std::ios::binary)
        << all;
    pcap_close(h);
  }
  std::printf("%d seeds\n", written);
  return 0;
}
