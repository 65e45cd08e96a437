#include "probe/capture/live_capture.h"

#include <arpa/inet.h>
#include <sys/epoll.h>

#include <algorithm>
#include <cstring>
#include <fstream>
#include <set>
#include <sstream>

#include "probe/core/clock.h"

namespace rasad {
namespace capture {

namespace {

constexpr int64_t kEvictEveryUs = 10 * 1000000;  // idle-flow sweep period

int64_t NowNs() { return WallMicros() * 1000; }

std::string PortList(const std::set<int>& ports) {
  std::string out;
  for (int p : ports) {
    if (!out.empty()) out += " or ";
    out += "port " + std::to_string(p);
  }
  return out;
}

}  // namespace

CaptureStats& CaptureStats::operator+=(const CaptureStats& o) {
  received += o.received;
  kernel_dropped += o.kernel_dropped;
  if_dropped += o.if_dropped;
  rasad_dropped += o.rasad_dropped;
  decode_errors += o.decode_errors;
  unrelated += o.unrelated;
  flows_evicted += o.flows_evicted;
  flows += o.flows;
  bytes_held += o.bytes_held;
  return *this;
}

nlohmann::json CaptureStats::ToJson() const {
  return {{"received", received},           {"kernel_dropped", kernel_dropped},
          {"if_dropped", if_dropped},       {"rasad_dropped", rasad_dropped},
          {"decode_errors", decode_errors}, {"unrelated", unrelated},
          {"flows_evicted", flows_evicted}, {"flows", flows},
          {"bytes_held", bytes_held}};
}

std::string DefaultFilter(const std::vector<std::pair<std::string, int>>& dns_servers,
                          const std::vector<int>& tcp_ports) {
  std::set<int> dns = {53};
  for (const auto& s : dns_servers)
    if (s.second > 0 && s.second < 65536) dns.insert(s.second);
  std::string udp = "(udp and (" + PortList(dns) + "))";
  std::string tcp = "tcp";
  if (!tcp_ports.empty()) {
    std::set<int> ports(dns);  // DNS over TCP
    for (int p : tcp_ports)
      if (p > 0 && p < 65536) ports.insert(p);
    tcp = "(tcp and (" + PortList(ports) + "))";
  }
  // ICMP errors only (unreachable, time exceeded; ICMPv6 types below 128),
  // not echo or neighbour discovery. "icmp6" matches ICMPv6 right after the
  // fixed IPv6 header (errors about our flows are sent that way).
  std::string icmp =
      "(icmp and (icmp[icmptype] == icmp-unreach or icmp[icmptype] == icmp-timxceed))";
  std::string icmp6 = "(icmp6 and ip6[40] < 128)";
  return udp + " or " + tcp + " or " + icmp + " or " + icmp6;
}

std::string DefaultRouteInterface() {
  std::ifstream v4("/proc/net/route");
  std::string line;
  std::getline(v4, line);  // header
  while (std::getline(v4, line)) {
    std::istringstream in(line);
    std::string iface, dest, gw, flags, refcnt, use, metric, mask;
    if (!(in >> iface >> dest >> gw >> flags >> refcnt >> use >> metric >> mask)) continue;
    if (dest == "00000000" && mask == "00000000") return iface;
  }
  std::ifstream v6("/proc/net/ipv6_route");
  while (std::getline(v6, line)) {
    std::istringstream in(line);
    std::string dest, dlen, src, slen, next, metric, refcnt, use, flags, iface;
    if (!(in >> dest >> dlen >> src >> slen >> next >> metric >> refcnt >> use >> flags >> iface))
      continue;
    if (dest == std::string(32, '0') && dlen == "00" && iface != "lo") return iface;
  }
  return "";
}

bool ParseIpAddr(const std::string& text, IpAddr* out) {
  uint8_t buf[16];
  if (inet_pton(AF_INET, text.c_str(), buf) == 1) {
    *out = IpAddr::V4(buf);
    return true;
  }
  if (inet_pton(AF_INET6, text.c_str(), buf) == 1) {
    *out = IpAddr::V6(buf);
    return true;
  }
  return false;
}

LiveCapture::LiveCapture(std::string interface, CaptureOptions options)
    : interface_(std::move(interface)), opt_(std::move(options)) {
  std::set<uint16_t> ports = {53};
  for (const auto& s : opt_.dns_servers)
    if (s.second > 0 && s.second < 65536) ports.insert(static_cast<uint16_t>(s.second));
  dns_ports_.assign(ports.begin(), ports.end());
}

LiveCapture::~LiveCapture() { Close(); }

Status LiveCapture::Open(EventLoop* loop) {
  Close();
  loop_ = loop;
  unavailable_.clear();
  char errbuf[PCAP_ERRBUF_SIZE] = {0};
  auto fail = [&](const std::string& why) {
    unavailable_ = why;
    if (handle_) pcap_close(handle_);
    handle_ = nullptr;
    return Status::IoError(why);
  };
  handle_ = pcap_create(interface_.c_str(), errbuf);
  if (!handle_) return fail("pcap_create " + interface_ + ": " + errbuf);
  pcap_set_snaplen(handle_, opt_.snaplen);
  pcap_set_promisc(handle_, 0);
  pcap_set_immediate_mode(handle_, 1);
  pcap_set_buffer_size(handle_, opt_.buffer_bytes);
  nano_ = pcap_set_tstamp_precision(handle_, PCAP_TSTAMP_PRECISION_NANO) == 0;
  int rc = pcap_activate(handle_);
  if (rc < 0) {
    std::string detail = pcap_geterr(handle_);
    switch (rc) {
      case PCAP_ERROR_PERM_DENIED:
        return fail("no permission to capture on " + interface_ +
                    " (needs CAP_NET_RAW): " + detail);
      case PCAP_ERROR_NO_SUCH_DEVICE:
        return fail("no such interface " + interface_ + ": " + detail);
      case PCAP_ERROR_IFACE_NOT_UP:
        return fail("interface " + interface_ + " is down");
      default:
        return fail("cannot capture on " + interface_ + ": " + pcap_statustostr(rc) + " " + detail);
    }
  }
  if (nano_) nano_ = pcap_get_tstamp_precision(handle_) == PCAP_TSTAMP_PRECISION_NANO;
  link_type_ = pcap_datalink(handle_);
  if (!IsSupportedLinkType(link_type_)) {
    const char* name = pcap_datalink_val_to_name(link_type_);
    return fail("link type " + std::string(name ? name : std::to_string(link_type_)) + " of " +
                interface_ + " is not supported");
  }
  std::string filter =
      opt_.filter.empty() ? DefaultFilter(opt_.dns_servers, opt_.tcp_ports) : opt_.filter;
  bpf_program prog{};
  if (pcap_compile(handle_, &prog, filter.c_str(), 1, PCAP_NETMASK_UNKNOWN) != 0)
    return fail("bad capture filter \"" + filter + "\": " + pcap_geterr(handle_));
  rc = pcap_setfilter(handle_, &prog);
  pcap_freecode(&prog);
  if (rc != 0)
    return fail("cannot set capture filter on " + interface_ + ": " + pcap_geterr(handle_));
  if (pcap_setnonblock(handle_, 1, errbuf) != 0)
    return fail("pcap_setnonblock " + interface_ + ": " + errbuf);
  fd_ = pcap_get_selectable_fd(handle_);
  if (fd_ < 0) return fail("no selectable fd for " + interface_);
  if (loop_) {
    Status st = loop_->WatchFd(fd_, EPOLLIN, [this](uint32_t) { Poll(); });
    if (!st.ok()) {
      fd_ = -1;
      return fail("cannot watch capture fd: " + st.ToString());
    }
    // Some platforms need a periodic poll even when the fd stays quiet.
    const struct timeval* tv = pcap_get_required_select_timeout(handle_);
    if (tv) {
      int64_t us = static_cast<int64_t>(tv->tv_sec) * 1000000 + tv->tv_usec;
      if (us <= 0) us = 1000;
      struct Ticker {
        static void Arm(LiveCapture* c, int64_t us) {
          c->poll_timer_ = c->loop_->AddTimer(us, [c, us] {
            c->poll_timer_ = 0;
            c->Poll();
            Arm(c, us);
          });
        }
      };
      Ticker::Arm(this, us);
    }
    struct Sweeper {
      static void Arm(LiveCapture* c) {
        c->evict_timer_ = c->loop_->AddTimer(kEvictEveryUs, [c] {
          c->evict_timer_ = 0;
          c->EvictIdle(NowNs());
          Arm(c);
        });
      }
    };
    Sweeper::Arm(this);
  }
  return Status::Ok();
}

void LiveCapture::Close() {
  if (loop_) {
    if (fd_ >= 0) loop_->UnwatchFd(fd_);
    if (poll_timer_) loop_->CancelTimer(poll_timer_);
    if (evict_timer_) loop_->CancelTimer(evict_timer_);
  }
  poll_timer_ = evict_timer_ = 0;
  fd_ = -1;
  if (handle_) {
    // Keep the final kernel counters.
    struct pcap_stat ps {};
    if (pcap_stats(handle_, &ps) == 0) {
      stats_.kernel_dropped = ps.ps_drop;
      stats_.if_dropped = ps.ps_ifdrop;
    }
    pcap_close(handle_);
  }
  handle_ = nullptr;
}

int LiveCapture::Poll() {
  if (!handle_) return 0;
  int total = 0;
  // Bounded so a flood cannot starve the other sockets of the loop; the fd
  // stays readable and the loop comes back.
  for (int i = 0; i < 64; ++i) {
    int rc = pcap_dispatch(handle_, -1, &LiveCapture::OnPacket, reinterpret_cast<u_char*>(this));
    if (rc <= 0) break;
    total += rc;
  }
  return total;
}

void LiveCapture::OnPacket(u_char* user, const struct pcap_pkthdr* h, const u_char* bytes) {
  auto* self = reinterpret_cast<LiveCapture*>(user);
  int64_t frac = h->ts.tv_usec;
  int64_t ts = static_cast<int64_t>(h->ts.tv_sec) * 1000000000 + (self->nano_ ? frac : frac * 1000);
  self->AddFrame(ts, bytes, h->caplen, h->len);
}

bool LiveCapture::IsDnsServerPort(uint16_t port) const {
  return std::find(dns_ports_.begin(), dns_ports_.end(), port) != dns_ports_.end();
}

bool LiveCapture::KeyFor(uint8_t proto, const IpAddr& src, uint16_t sport, const IpAddr& dst,
                         uint16_t dport, FlowKey* key) const {
  *key = FlowKey();
  key->proto = proto;
  if (proto == 17) {
    if (IsDnsServerPort(dport)) {
      key->a = src;
      key->pa = sport;
      return true;
    }
    if (IsDnsServerPort(sport)) {
      key->a = dst;
      key->pa = dport;
      return true;
    }
  } else if (proto != 6) {
    return false;
  }
  if (std::tie(src, sport) < std::tie(dst, dport)) {
    key->a = src, key->pa = sport, key->b = dst, key->pb = dport;
  } else {
    key->a = dst, key->pa = dport, key->b = src, key->pb = sport;
  }
  return true;
}

bool LiveCapture::KeyForObservation(const Observation& o, FlowKey* key) const {
  IpAddr local, remote;
  if (o.local_port <= 0 || o.remote_port <= 0 || !ParseIpAddr(o.local_addr, &local) ||
      !ParseIpAddr(o.remote_addr, &remote))
    return false;
  uint8_t proto = o.transport == "udp" ? 17 : 6;
  if (o.step == Step::kDns && proto == 17) {
    *key = FlowKey();
    key->proto = 17;
    key->a = local;
    key->pa = static_cast<uint16_t>(o.local_port);
    return true;
  }
  return KeyFor(proto, local, static_cast<uint16_t>(o.local_port), remote,
                static_cast<uint16_t>(o.remote_port), key);
}

void LiveCapture::AddFrame(int64_t ts_ns, const uint8_t* data, size_t cap_len, size_t wire_len) {
  ++stats_.received;
  Packet p;
  std::string why;
  if (!DecodePacket(link_type_, data, cap_len, wire_len, ts_ns, &p, &why)) {
    ++stats_.decode_errors;
    return;
  }
  FlowKey key;
  bool ok = false;
  switch (p.transport) {
    case Transport::kTcp:
      ok = KeyFor(6, p.src, p.tcp.sport, p.dst, p.tcp.dport, &key);
      break;
    case Transport::kUdp:
      ok = KeyFor(17, p.src, p.udp.sport, p.dst, p.udp.dport, &key);
      break;
    case Transport::kIcmp:
    case Transport::kIcmp6:
      if (p.icmp.has_inner && p.icmp.inner_has_ports)
        ok = KeyFor(p.icmp.inner_proto, p.icmp.inner_src, p.icmp.inner_sport, p.icmp.inner_dst,
                    p.icmp.inner_dport, &key);
      break;
    default:
      break;
  }
  if (!ok) {
    ++stats_.unrelated;
    return;
  }
  CapturedFrame f;
  f.ts_ns = ts_ns;
  f.wire_len = static_cast<uint32_t>(wire_len);
  f.bytes = std::make_shared<const std::vector<uint8_t>>(data, data + cap_len);
  Store(key, std::move(f));
}

void LiveCapture::Store(const FlowKey& key, CapturedFrame frame) {
  size_t size = frame.bytes->size();
  auto it = flows_.find(key);
  if (it == flows_.end()) {
    if (flows_.size() >= opt_.max_flows) EvictIdle(NowNs());
    if (flows_.size() >= opt_.max_flows) {
      ++stats_.rasad_dropped;
      return;
    }
  }
  if (total_bytes_ + size > opt_.max_total_bytes) {
    EvictIdle(NowNs());
    if (total_bytes_ + size > opt_.max_total_bytes) {
      ++stats_.rasad_dropped;
      return;
    }
  }
  if (it == flows_.end()) it = flows_.emplace(key, Flow()).first;
  Flow& fl = it->second;
  fl.last_ns = std::max(fl.last_ns, frame.ts_ns);
  fl.frames.push_back(std::move(frame));
  fl.bytes += size;
  total_bytes_ += size;
  if (fl.frames.size() <= opt_.keep_head) fl.head = fl.frames.size();
  // Rotate the ring: drop the oldest frame after the kept head.
  while ((fl.frames.size() > opt_.max_packets_per_flow || fl.bytes > opt_.max_bytes_per_flow) &&
         fl.frames.size() > fl.head + 1) {
    auto victim = fl.frames.begin() + static_cast<std::ptrdiff_t>(fl.head);
    size_t n = victim->bytes->size();
    fl.bytes -= n;
    total_bytes_ -= n;
    fl.frames.erase(victim);
    ++stats_.rasad_dropped;
  }
}

void LiveCapture::EraseFlow(std::map<FlowKey, Flow>::iterator it) {
  total_bytes_ -= it->second.bytes;
  ++stats_.flows_evicted;
  flows_.erase(it);
}

void LiveCapture::EvictIdle(int64_t now_ns) {
  for (auto it = flows_.begin(); it != flows_.end();) {
    auto next = std::next(it);
    if (now_ns - it->second.last_ns > opt_.flow_idle_ns) EraseFlow(it);
    it = next;
  }
}

void LiveCapture::Release(const Observation& o) {
  FlowKey key;
  if (!KeyForObservation(o, &key)) return;
  auto it = flows_.find(key);
  if (it != flows_.end()) EraseFlow(it);
}

void LiveCapture::AppendSlice(const Observation& o, std::vector<CapturedFrame>* out) const {
  int64_t from = o.t_start * 1000 - opt_.slice_before_ns;
  int64_t to = std::max(o.t_end, o.t_start) * 1000 + opt_.slice_after_ns;
  auto in_window = [&](const CapturedFrame& f) { return f.ts_ns >= from && f.ts_ns <= to; };
  FlowKey key;
  if (!KeyForObservation(o, &key)) {
    // No local port (the socket never got one): a TCP observation still
    // matches connections to its remote address and port in its window.
    IpAddr remote;
    if (o.step == Step::kDns || o.remote_port <= 0 || !ParseIpAddr(o.remote_addr, &remote)) return;
    uint16_t rport = static_cast<uint16_t>(o.remote_port);
    for (const auto& [k, fl] : flows_) {
      if (k.proto != 6) continue;
      if (!((k.a == remote && k.pa == rport) || (k.b == remote && k.pb == rport))) continue;
      for (const CapturedFrame& f : fl.frames)
        if (in_window(f)) out->push_back(f);
    }
    return;
  }
  auto it = flows_.find(key);
  if (it == flows_.end()) return;
  bool dns_udp = o.step == Step::kDns && key.proto == 17 && o.details.contains("query_id") &&
                 o.details["query_id"].is_number_integer();
  int qid = dns_udp ? o.details["query_id"].get<int>() : -1;
  for (const CapturedFrame& f : it->second.frames) {
    if (!in_window(f)) continue;
    if (dns_udp) {
      Packet p;
      std::string why;
      if (!DecodePacket(link_type_, f.bytes->data(), f.bytes->size(), f.wire_len, f.ts_ns, &p,
                        &why))
        continue;
      if (p.transport == Transport::kUdp) {
        if (p.payload_len < 2) continue;
        int id = (p.payload[0] << 8) | p.payload[1];
        if (id != qid) continue;
      }
    }
    out->push_back(f);
  }
}

PacketSlice LiveCapture::SliceFlow(const std::vector<const Observation*>& steps) const {
  std::vector<CapturedFrame> frames;
  for (const Observation* o : steps)
    if (o) AppendSlice(*o, &frames);
  std::stable_sort(
      frames.begin(), frames.end(),
      [](const CapturedFrame& x, const CapturedFrame& y) { return x.ts_ns < y.ts_ns; });
  // The same frame can be in the window of several steps.
  std::set<const void*> seen;
  PacketSlice slice;
  slice.link_type = link_type_;
  for (CapturedFrame& f : frames) {
    if (!seen.insert(f.bytes.get()).second) continue;
    Packet p;
    std::string why;
    if (!DecodePacket(link_type_, f.bytes->data(), f.bytes->size(), f.wire_len, f.ts_ns, &p, &why))
      continue;
    slice.packets.push_back(p);
    slice.frames.push_back(std::move(f));
  }
  return slice;
}

PacketSlice LiveCapture::Slice(const Observation& o) const { return SliceFlow({&o}); }

CaptureStats LiveCapture::Stats() {
  if (handle_) {
    struct pcap_stat ps {};
    if (pcap_stats(handle_, &ps) == 0) {
      stats_.kernel_dropped = ps.ps_drop;
      stats_.if_dropped = ps.ps_ifdrop;
    }
  }
  CaptureStats s = stats_;
  s.flows = flows_.size();
  s.bytes_held = total_bytes_;
  return s;
}

}  // namespace capture
}  // namespace rasad
