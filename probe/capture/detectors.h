// Injection detectors over a sequence of decoded packets.
//
// Feed every decoded packet of a capture (or of one measurement's slice) to
// Detector::Add in capture order, then call Finish() for the findings. The
// detectors observe; they do not judge a measurement. A finding is evidence
// with a count of independent signals; `proven` is set only when at least
// Thresholds::min_signals independent signal classes agree (two by default,
// docs/EVIDENCE.md). Thresholds and their sources are documented on the
// fields below and in docs/EVIDENCE.md.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "probe/capture/packet.h"

namespace rasad {
namespace capture {

struct Finding {
  std::string kind;  // "tcp.rst_ttl_anomaly", "dns.duplicate_response", ...
  std::string flow;  // "tcp 10.0.0.2:40000 -> 93.184.216.34:443" (client first when known)
  int64_t t_ns = 0;  // capture time of the packet the finding is about
  nlohmann::json details;
  int signals = 0;  // independent signal classes seen for this flow / DNS query
  bool proven = false;
};

struct Thresholds {
  // RST/FIN/data whose IP TTL differs from the same sender's handshake packet
  // (SYN-ACK for the server, SYN for the client) by at least this much.
  // censorship-techniques.md §2.4: ">= 3 (tolerate +-2 for load balancers and
  // route flaps); literature fixes no number" [heuristic].
  int ttl_delta = 3;
  // A segment that acknowledges data the peer sent less than this fraction of
  // the handshake RTT earlier cannot come from the peer (§2.4 timing, after
  // Hold-On, Duan et al.): "dt < 0.5 x (SYN->SYN-ACK RTT)".
  double rtt_fraction = 0.5;
  // Below this handshake RTT the capture point is next to the sender and the
  // timing rule says nothing (e.g. our own stack's replies).
  int64_t min_rtt_ns = 1000000;  // 1 ms
  // DNS responses are matched to the latest query with the same client
  // address, port and id sent at most this long before them. §2.3 asks for a
  // hold-on of >= 1 s after the first answer; GFWatch saw forged answers 364 ms
  // after the query; 10 s covers resolver retries without merging unrelated
  // reuses of an id.
  int64_t dns_window_ns = 10000000000;  // 10 s
  // Two answers to one query whose IP TTLs differ by this much came from
  // different places (same reasoning as ttl_delta).
  int dns_ttl_delta = 3;
  // Independent signal classes needed before a finding is `proven` (§2.4:
  // "require >= 2 independent signals ... for confirmed").
  int min_signals = 2;
  // Window 0 / missing timestamps / different DF on a RST are recorded as
  // hints but are not signals by default: Linux's own resets
  // (tcp_v4_send_reset) carry window 0 and no options, and RFC 7323 §3.2
  // exempts RSTs from carrying timestamps.
  bool count_rst_header_hints = false;
  // Server ports treated as DNS (a query goes to one, a response comes from
  // one). 53 by default; the live capture adds the configured resolvers'
  // ports (a resolver on 5353 or a lab resolver on an ephemeral port).
  std::vector<uint16_t> dns_ports = {53};
  // Memory bounds per capture.
  size_t max_flows = 200000;
  size_t max_segments_per_flow = 20000;
  size_t max_stream_bytes = 1 << 20;  // payload kept per direction for overlap checks
};

struct DetectorStats {
  uint64_t packets = 0;
  uint64_t tcp_packets = 0;
  uint64_t udp_packets = 0;
  uint64_t icmp_packets = 0;
  uint64_t fragments = 0;
  uint64_t tcp_flows = 0;
  uint64_t dns_queries = 0;
  uint64_t dns_responses = 0;
  uint64_t dns_unmatched_responses = 0;
  uint64_t dns_parse_errors = 0;  // port-53 payloads that are not DNS
  uint64_t dropped_flows = 0;     // over max_flows
  uint64_t dropped_segments = 0;  // over max_segments_per_flow
};

class Detector {
 public:
  explicit Detector(const Thresholds& thresholds = Thresholds());
  ~Detector();
  Detector(const Detector&) = delete;
  Detector& operator=(const Detector&) = delete;

  // Packets must be added in capture order.
  void Add(const Packet& packet);
  // Runs the detectors over everything added and returns the findings sorted
  // by time. Call once.
  std::vector<Finding> Finish();

  const DetectorStats& stats() const { return stats_; }

 private:
  struct State;
  Thresholds thresholds_;
  DetectorStats stats_;
  std::unique_ptr<State> state_;
};

// True when port is one of thresholds.dns_ports.
bool IsDnsPort(const Thresholds& thresholds, uint16_t port);

// One human-readable line (plus an indented details line) per finding.
std::string FormatFinding(const Finding& finding, int64_t t0_ns);

}  // namespace capture
}  // namespace rasad
