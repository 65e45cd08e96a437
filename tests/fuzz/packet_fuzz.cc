// libFuzzer target for the packet decoder, the DNS parser and the detectors.
//
// Input layout (so one input can carry a whole conversation):
//   byte 0      link type selector (index into kLinks)
//   byte 1      bit 0: frames were cut by a snaplen (wire length > captured)
//   then        records: 2-byte big-endian length, that many frame bytes
// Every frame is decoded with the selected link type and fed to one
// Detector; every frame and payload also goes through the DNS parser.
// Build and run: tests/fuzz/run.
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "probe/capture/detectors.h"
#include "probe/capture/dns_message.h"
#include "probe/capture/packet.h"

namespace {

const int kLinks[] = {0, 1, 12, 14, 101, 108, 113, 228, 229, 276};

void ParseDns(const uint8_t* data, size_t len) {
  rasad::capture::DnsMessage m;
  std::string err;
  rasad::capture::ParseDnsMessage(data, len, &m, &err);
  std::vector<rasad::capture::DnsTcpChunk> chunks;
  rasad::capture::SplitDnsTcp(data, len, &chunks);
  for (const auto& c : chunks) rasad::capture::ParseDnsMessage(c.data, c.len, &m, &err);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 2) return 0;
  int link = kLinks[data[0] % (sizeof(kLinks) / sizeof(kLinks[0]))];
  bool cut = (data[1] & 1) != 0;
  rasad::capture::Thresholds th;
  th.max_stream_bytes = 4096;
  th.max_segments_per_flow = 64;
  rasad::capture::Detector detector(th);
  size_t off = 2;
  int64_t t = 1000000000;
  while (size - off >= 2) {
    size_t len = (static_cast<size_t>(data[off]) << 8) | data[off + 1];
    off += 2;
    if (len > size - off) len = size - off;
    // Copy into an exact-size buffer so ASan catches any overread.
    std::vector<uint8_t> frame(data + off, data + off + len);
    off += len;
    rasad::capture::Packet p;
    std::string err;
    t += 1000 * static_cast<int64_t>(len);
    if (rasad::capture::DecodePacket(link, frame.empty() ? nullptr : frame.data(), frame.size(),
                                     cut ? frame.size() + 100 : frame.size(), t, &p, &err)) {
      if (p.payload_len > 0) ParseDns(p.payload, p.payload_len);
      p.src.ToString();
      detector.Add(p);
    }
    ParseDns(frame.data(), frame.size());
  }
  for (const auto& f : detector.Finish()) rasad::capture::FormatFinding(f, 0);
  return 0;
}
