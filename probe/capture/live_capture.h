// Live capture: one long-lived libpcap handle per network interface, read
// from the probe's EventLoop (no thread), keeping a bounded ring of recent
// packets per flow so a finished measurement can take the packets of its own
// steps ("slices") and run the detectors over them (docs/EVIDENCE.md).
//
// Flows are keyed so that everything the detectors need for one step lands
// in one ring:
//   * TCP: the 5-tuple (either direction);
//   * UDP to or from a DNS port (53 or a configured resolver's port): the
//     client's address and port only, so that a response from an unexpected
//     source lands next to the query; a slice then keeps the query id's
//     packets;
//   * other UDP: the 5-tuple;
//   * ICMP/ICMPv6 errors: the flow of the packet they quote (a router's
//     "administratively prohibited" belongs to the connection it refused).
// Anything else the filter lets through is counted and not kept.
#pragma once

#include <pcap/pcap.h>

#include <cstdint>
#include <deque>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <tuple>
#include <utility>
#include <vector>

#include "probe/capture/packet.h"
#include "probe/core/status.h"
#include "probe/loop/event_loop.h"
#include "probe/measure/observation.h"

namespace rasad {
namespace capture {

struct CaptureOptions {
  // Whole frames: evidence files are opened in Wireshark, and an injected
  // blockpage is in the payload. 65535 covers every non-GSO frame.
  int snaplen = 65535;
  // Kernel ring (PACKET_MMAP) per handle. 4 MiB holds ~2800 full frames,
  // seconds of a measurement burst even when the loop is busy.
  int buffer_bytes = 4 << 20;
  // BPF filter. Empty: DefaultFilter(dns_servers, tcp_ports).
  std::string filter;
  // Configured resolvers (address, port): their ports are DNS ports.
  std::vector<std::pair<std::string, int>> dns_servers;
  // Remote TCP ports rasad connects to (80, 443, ...). Empty: every TCP packet.
  std::vector<int> tcp_ports;

  // Memory bounds (docs/EVIDENCE.md "Memory bounds").
  size_t max_flows = 20000;
  // Per flow: the first keep_head packets (the handshake the detectors
  // compare against) are always kept, then a ring of the most recent ones.
  size_t keep_head = 8;
  size_t max_packets_per_flow = 256;
  size_t max_bytes_per_flow = 1 << 20;
  size_t max_total_bytes = 64 << 20;
  // A flow nobody asked for (or released) is dropped this long after its last packet.
  int64_t flow_idle_ns = 120LL * 1000000000;
  // Slice windows around an observation's [t_start, t_end]: the capture
  // timestamp of our first packet can precede t_start by scheduling noise,
  // and injected or genuine packets that race each other arrive after the
  // socket saw the first one.
  int64_t slice_before_ns = 200LL * 1000000;  // 200 ms
  int64_t slice_after_ns = 2LL * 1000000000;  // 2 s
};

struct CaptureStats {
  uint64_t received = 0;        // frames libpcap handed to rasad
  uint64_t kernel_dropped = 0;  // pcap_stats ps_drop: the kernel ring was full
  uint64_t if_dropped = 0;      // pcap_stats ps_ifdrop (driver), when supported
  uint64_t rasad_dropped = 0;   // frames rasad discarded for its memory bounds
  uint64_t decode_errors = 0;   // frames that did not decode (not kept)
  uint64_t unrelated = 0;       // decoded but not TCP/UDP/ICMP error (not kept)
  uint64_t flows_evicted = 0;   // flows dropped (released or idle)
  uint64_t flows = 0;           // flows held now
  uint64_t bytes_held = 0;      // frame bytes held now

  CaptureStats& operator+=(const CaptureStats& o);
  nlohmann::json ToJson() const;
};

// One captured frame as libpcap delivered it. The bytes are shared so that a
// slice stays valid after the ring moves on.
struct CapturedFrame {
  int64_t ts_ns = 0;
  uint32_t wire_len = 0;
  std::shared_ptr<const std::vector<uint8_t>> bytes;
};

// The packets of one observation (or one connection). packets[i] is frames[i]
// decoded; its payload points into frames[i].bytes, which this slice owns.
struct PacketSlice {
  int link_type = -1;
  std::vector<CapturedFrame> frames;
  std::vector<Packet> packets;
  bool empty() const { return packets.empty(); }
};

// "(udp and (port 53 or port 5353)) or (tcp and (port 80 or port 443 or
// port 53)) or icmp or icmp6 or (ip6 and ...)" -- see the .cc for the exact
// shape; exposed for tests and docs.
std::string DefaultFilter(const std::vector<std::pair<std::string, int>>& dns_servers,
                          const std::vector<int>& tcp_ports);

// The interface of the IPv4 default route (/proc/net/route), else of the
// IPv6 one (/proc/net/ipv6_route); "" when there is none.
std::string DefaultRouteInterface();

// Parses "192.0.2.1" / "2001:db8::1" (no brackets, no scope); false otherwise.
bool ParseIpAddr(const std::string& text, IpAddr* out);

class LiveCapture {
 public:
  LiveCapture(std::string interface, CaptureOptions options);
  ~LiveCapture();
  LiveCapture(const LiveCapture&) = delete;
  LiveCapture& operator=(const LiveCapture&) = delete;

  // pcap_create -> snaplen -> promisc 0 -> immediate -> buffer -> nano
  // tstamps -> activate -> filter -> nonblock -> selectable fd watched on
  // loop. On failure returns the reason (also in unavailable_reason()); a
  // missing CAP_NET_RAW gives "no permission to capture on <if> (needs
  // CAP_NET_RAW)". loop may be null: then call Poll() yourself.
  Status Open(EventLoop* loop);
  void Close();
  bool is_open() const { return handle_ != nullptr; }
  const std::string& unavailable_reason() const { return unavailable_; }
  const std::string& interface() const { return interface_; }
  int link_type() const { return link_type_; }
  bool nanosecond_timestamps() const { return nano_; }

  // Reads everything the kernel has ready (pcap_dispatch until it returns
  // 0). Called from the loop when the fd is readable; call it before slicing
  // so packets that arrived since the last wakeup are included. Returns the
  // frames read.
  int Poll();

  // Adds one frame as if captured (replay and tests). ts_ns is wall time.
  void AddFrame(int64_t ts_ns, const uint8_t* data, size_t cap_len, size_t wire_len);
  // For handles opened without a device (tests): sets the link type.
  void SetLinkTypeForReplay(int link_type) { link_type_ = link_type; }

  // The packets of o's flow inside [t_start - slice_before, t_end +
  // slice_after]: for dns observations the query's id only (details.query_id)
  // plus ICMP errors about it; for tcp/tls/http the connection's packets.
  PacketSlice Slice(const Observation& o) const;
  // The union over several observations of one connection (e.g. its tcp, tls
  // and http steps), in capture order, without duplicates: the detectors
  // need the handshake to judge a reset in the TLS step.
  PacketSlice SliceFlow(const std::vector<const Observation*>& steps) const;

  // Drops the ring of o's flow (the step was judged).
  void Release(const Observation& o);
  // Drops flows whose last packet is older than flow_idle_ns before now_ns.
  void EvictIdle(int64_t now_ns);

  // Counters since Open (pcap_stats read now).
  CaptureStats Stats();

 private:
  struct FlowKey {
    uint8_t proto = 0;
    IpAddr a, b;  // b unset for DNS client keys
    uint16_t pa = 0, pb = 0;
    bool operator<(const FlowKey& o) const {
      return std::tie(proto, a, pa, b, pb) < std::tie(o.proto, o.a, o.pa, o.b, o.pb);
    }
  };
  struct Flow {
    std::deque<CapturedFrame> frames;
    size_t head = 0;  // frames at the front that are never rotated out
    size_t bytes = 0;
    int64_t last_ns = 0;
  };

  static void OnPacket(u_char* user, const struct pcap_pkthdr* h, const u_char* bytes);
  bool IsDnsServerPort(uint16_t port) const;
  bool KeyFor(uint8_t proto, const IpAddr& src, uint16_t sport, const IpAddr& dst, uint16_t dport,
              FlowKey* key) const;
  bool KeyForObservation(const Observation& o, FlowKey* key) const;
  void Store(const FlowKey& key, CapturedFrame frame);
  void EraseFlow(std::map<FlowKey, Flow>::iterator it);
  void AppendSlice(const Observation& o, std::vector<CapturedFrame>* out) const;

  std::string interface_;
  CaptureOptions opt_;
  EventLoop* loop_ = nullptr;
  pcap_t* handle_ = nullptr;
  int fd_ = -1;
  EventLoop::TimerId poll_timer_ = 0;
  EventLoop::TimerId evict_timer_ = 0;
  int link_type_ = -1;
  bool nano_ = true;
  std::string unavailable_;
  std::vector<uint16_t> dns_ports_;
  std::map<FlowKey, Flow> flows_;
  size_t total_bytes_ = 0;
  CaptureStats stats_;
};

}  // namespace capture
}  // namespace rasad
