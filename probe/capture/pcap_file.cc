#include "probe/capture/pcap_file.h"

#include <pcap/pcap.h>

#include <memory>
#include <vector>

namespace rasad {
namespace capture {

bool ReadPcapFile(const std::string& path, const std::function<void(const Packet&)>& on_packet,
                  PcapReadStats* stats, std::string* error) {
  *stats = PcapReadStats();
  char errbuf[PCAP_ERRBUF_SIZE] = {0};
  std::unique_ptr<pcap_t, void (*)(pcap_t*)> handle(
      pcap_open_offline_with_tstamp_precision(path.c_str(), PCAP_TSTAMP_PRECISION_NANO, errbuf),
      pcap_close);
  if (!handle) {
    *error = path + ": " + errbuf;
    return false;
  }
  // Only the precision we asked for is delivered: libpcap scales the file's
  // timestamps to nanoseconds.
  int link = pcap_datalink(handle.get());
  stats->link_type = link;
  const char* name = pcap_datalink_val_to_name(link);
  stats->link_name = name ? name : "DLT " + std::to_string(link);
  if (!IsSupportedLinkType(link)) {
    *error = path + ": unsupported link type " + stats->link_name;
    return false;
  }
  struct pcap_pkthdr* hdr = nullptr;
  const u_char* data = nullptr;
  while (true) {
    int rc = pcap_next_ex(handle.get(), &hdr, &data);
    if (rc == PCAP_ERROR_BREAK) break;  // end of file
    if (rc != 1) {
      stats->read_error = pcap_geterr(handle.get());
      break;
    }
    ++stats->frames;
    int64_t ts = static_cast<int64_t>(hdr->ts.tv_sec) * 1000000000 + hdr->ts.tv_usec;
    if (stats->first_ns < 0) stats->first_ns = ts;
    stats->last_ns = ts;
    Packet p;
    std::string why;
    if (!DecodePacket(link, data, hdr->caplen, hdr->len, ts, &p, &why)) {
      ++stats->decode_errors;
      ++stats->errors_by_reason[why];
      continue;
    }
    ++stats->decoded;
    on_packet(p);
  }
  return true;
}

int AnalyzePcapFile(const std::string& path, std::ostream& out, std::ostream& err,
                    const Thresholds& thresholds) {
  Detector detector(thresholds);
  PcapReadStats rs;
  std::string error;
  if (!ReadPcapFile(
          path, [&](const Packet& p) { detector.Add(p); }, &rs, &error)) {
    err << "rasad: cannot read capture " << error << "\n";
    return 1;
  }
  if (!rs.read_error.empty()) {
    err << "rasad: warning: " << path << ": read stopped after " << rs.frames
        << " frames: " << rs.read_error << "\n";
  }
  std::vector<Finding> findings = detector.Finish();
  const DetectorStats& ds = detector.stats();
  out << "capture: " << path << "\n";
  out << "link type " << rs.link_name << ", " << rs.frames << " frames, " << rs.decoded
      << " decoded, " << rs.decode_errors << " not decoded";
  if (rs.first_ns >= 0) {
    char span[64];
    snprintf(span, sizeof(span), ", %.6f s", static_cast<double>(rs.last_ns - rs.first_ns) / 1e9);
    out << span;
  }
  out << "\n";
  for (const auto& kv : rs.errors_by_reason) {
    out << "  not decoded: " << kv.second << " x " << kv.first << "\n";
  }
  out << "tcp: " << ds.tcp_packets << " packets in " << ds.tcp_flows
      << " flows; udp: " << ds.udp_packets << "; icmp: " << ds.icmp_packets
      << "; ip fragments: " << ds.fragments << "\n";
  out << "dns: " << ds.dns_queries << " queries, " << ds.dns_responses << " responses ("
      << ds.dns_unmatched_responses << " without a query in the capture), " << ds.dns_parse_errors
      << " port-53 payloads that are not DNS\n";
  if (ds.dropped_flows || ds.dropped_segments) {
    out << "memory bounds hit: " << ds.dropped_flows << " flows and " << ds.dropped_segments
        << " segments not analysed\n";
  }
  int proven = 0;
  for (const Finding& f : findings) proven += f.proven ? 1 : 0;
  out << "findings: " << findings.size() << " (" << proven << " proven)\n";
  int64_t t0 = rs.first_ns < 0 ? 0 : rs.first_ns;
  for (const Finding& f : findings) out << FormatFinding(f, t0);
  return 0;
}

}  // namespace capture
}  // namespace rasad
