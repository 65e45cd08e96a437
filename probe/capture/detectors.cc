#include "probe/capture/detectors.h"

#include <algorithm>
#include <cinttypes>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <set>
#include <tuple>

#include "probe/capture/dns_message.h"

namespace rasad {
namespace capture {
namespace {

using json = nlohmann::json;

int32_t SeqDiff(uint32_t a, uint32_t b) { return static_cast<int32_t>(a - b); }

std::string Hex(const uint8_t* p, size_t n) {
  static const char kHex[] = "0123456789abcdef";
  std::string s;
  for (size_t i = 0; i < n; ++i) {
    s.push_back(kHex[p[i] >> 4]);
    s.push_back(kHex[p[i] & 0x0F]);
  }
  return s;
}

std::string FlagString(uint8_t f) {
  std::string s;
  if (f & kSyn) s += 'S';
  if (f & kFin) s += 'F';
  if (f & kRst) s += 'R';
  if (f & kPsh) s += 'P';
  if (f & kAck) s += '.';
  if (f & kUrg) s += 'U';
  return s.empty() ? "none" : s;
}

double Ms(int64_t ns) { return static_cast<double>(ns) / 1e6; }

struct Endpoint {
  IpAddr addr;
  uint16_t port = 0;
  bool operator<(const Endpoint& o) const {
    return std::tie(addr, port) < std::tie(o.addr, o.port);
  }
  bool operator==(const Endpoint& o) const { return addr == o.addr && port == o.port; }
};

struct FlowKey {
  uint8_t proto = 0;
  Endpoint a;  // a < b
  Endpoint b;
  bool operator<(const FlowKey& o) const {
    return std::tie(proto, a, b) < std::tie(o.proto, o.a, o.b);
  }
};

// Direction 0 is a -> b, 1 is b -> a.
FlowKey MakeKey(const Packet& p, int* dir) {
  Endpoint s{p.src, p.SrcPort()};
  Endpoint d{p.dst, p.DstPort()};
  FlowKey k;
  k.proto = p.protocol;
  if (s < d || s == d) {
    k.a = s;
    k.b = d;
    *dir = 0;
  } else {
    k.a = d;
    k.b = s;
    *dir = 1;
  }
  return k;
}

std::string FlowText(const char* proto, const Endpoint& from, const Endpoint& to) {
  return std::string(proto) + " " + AddrPort(from.addr, from.port) + " -> " +
         AddrPort(to.addr, to.port);
}

// One TCP segment as the detectors need it (no payload).
struct Seg {
  int64_t t = 0;
  uint8_t dir = 0;
  uint8_t flags = 0;
  uint32_t seq = 0;
  uint32_t ack = 0;
  uint16_t win = 0;
  uint8_t ttl = 0;
  uint16_t ip_id = 0;
  bool v4 = false;
  bool df = false;
  bool has_ts = false;
  uint8_t option_count = 0;
  uint32_t len = 0;  // payload length on the wire

  bool Has(uint8_t f) const { return (flags & f) != 0; }
  uint32_t SeqEnd() const { return seq + len + (Has(kSyn) ? 1 : 0) + (Has(kFin) ? 1 : 0); }
};

json SegJson(const Seg& s, int64_t t0) {
  json j = {{"t_ms", Ms(s.t - t0)}, {"flags", FlagString(s.flags)},
            {"seq", s.seq},         {"ack", s.ack},
            {"window", s.win},      {"ip_ttl", s.ttl},
            {"len", s.len}};
  if (s.v4) j["ip_id"] = s.ip_id;
  return j;
}

struct StoredData {
  int64_t t = 0;
  uint8_t ttl = 0;
  std::string bytes;
};

// Payload kept per direction to compare retransmitted/overlapping ranges.
struct Stream {
  bool has_base = false;
  uint32_t base = 0;
  std::map<uint32_t, StoredData> data;  // relative seq -> bytes
  size_t bytes = 0;
};

struct TcpFlow {
  FlowKey key;
  bool has_syn = false;
  uint32_t syn_seq = 0;
  std::vector<Seg> segs;
  Stream stream[2];
  struct Overlap {
    int64_t t;
    int dir;
    json details;
  };
  std::vector<Overlap> overlaps;
};

struct DnsResponse {
  int64_t t = 0;
  IpAddr src;
  uint16_t sport = 0;
  uint8_t ttl = 0;
  uint16_t ip_id = 0;
  bool v4 = false;
  bool df = false;
  DnsMessage msg;
  std::string signature;  // rcode + sorted answers, TTLs excluded
};

struct DnsQuery {
  int64_t t = 0;
  const char* proto = "udp";
  Endpoint client;
  Endpoint server;
  uint8_t ttl = 0;
  uint16_t ip_id = 0;
  bool v4 = false;
  uint16_t id = 0;
  std::string qname;
  uint16_t qtype = 0;
  std::vector<DnsResponse> responses;
};

struct DnsKey {
  uint8_t proto;
  Endpoint client;
  uint16_t id;
  bool operator<(const DnsKey& o) const {
    return std::tie(proto, client, id) < std::tie(o.proto, o.client, o.id);
  }
};

struct IcmpKey {
  std::string flow;
  IpAddr router;
  uint8_t type;
  uint8_t code;
  bool operator<(const IcmpKey& o) const {
    return std::tie(flow, router, type, code) < std::tie(o.flow, o.router, o.type, o.code);
  }
};

struct IcmpRecord {
  int64_t t = 0;
  int count = 0;
  uint8_t ttl = 0;
  bool v6 = false;
  uint8_t quoted_ttl = 0;
};

std::string ResponseSignature(const DnsMessage& m) {
  std::vector<std::string> parts;
  for (const DnsRecord& r : m.answers) {
    parts.push_back(r.name + " " + DnsTypeName(r.type) + " " + r.data);
  }
  std::sort(parts.begin(), parts.end());
  std::string s = "rcode=" + std::to_string(m.rcode);
  for (const std::string& p : parts) s += "|" + p;
  return s;
}

json AnswersJson(const DnsMessage& m) {
  json a = json::array();
  for (const DnsRecord& r : m.answers) {
    a.push_back(
        {{"name", r.name}, {"type", DnsTypeName(r.type)}, {"ttl", r.ttl}, {"data", r.data}});
  }
  return a;
}

const char* IcmpUnreachName(bool v6, uint8_t code) {
  if (!v6) {
    static const char* const kV4[] = {"net unreachable",
                                      "host unreachable",
                                      "protocol unreachable",
                                      "port unreachable",
                                      "fragmentation needed",
                                      "source route failed",
                                      "destination network unknown",
                                      "destination host unknown",
                                      "source host isolated",
                                      "network administratively prohibited",
                                      "host administratively prohibited",
                                      "network unreachable for TOS",
                                      "host unreachable for TOS",
                                      "communication administratively prohibited",
                                      "host precedence violation",
                                      "precedence cutoff in effect"};
    return code < 16 ? kV4[code] : "unknown code";
  }
  static const char* const kV6[] = {"no route to destination",
                                    "communication administratively prohibited",
                                    "beyond scope of source address",
                                    "address unreachable",
                                    "port unreachable",
                                    "source address failed ingress/egress policy",
                                    "reject route to destination",
                                    "error in source routing header"};
  return code < 8 ? kV6[code] : "unknown code";
}

}  // namespace

struct Detector::State {
  int64_t t0 = -1;
  // Flows in order of creation; `open` maps a 5-tuple to its current flow
  // (a new SYN with another ISN on the same tuple starts a new one).
  std::vector<std::unique_ptr<TcpFlow>> flows;
  std::map<FlowKey, TcpFlow*> open;
  std::map<DnsKey, std::vector<std::unique_ptr<DnsQuery>>> queries;
  std::vector<DnsQuery*> query_order;
  std::map<IcmpKey, IcmpRecord> icmp;

  void AddTcp(const Packet& p, const Thresholds& th, DetectorStats* stats);
  void AddDns(const Packet& p, const Thresholds& th, DetectorStats* stats);
  void AddIcmp(const Packet& p);
  void CheckOverlap(TcpFlow* f, int dir, const Packet& p, const Thresholds& th);
};

Detector::Detector(const Thresholds& thresholds) : thresholds_(thresholds), state_(new State()) {}

Detector::~Detector() = default;

void Detector::Add(const Packet& p) {
  ++stats_.packets;
  if (state_->t0 < 0) state_->t0 = p.ts_ns;
  if (p.fragment) ++stats_.fragments;
  switch (p.transport) {
    case Transport::kTcp:
      ++stats_.tcp_packets;
      state_->AddTcp(p, thresholds_, &stats_);
      if (p.payload_len > 0 &&
          (IsDnsPort(thresholds_, p.tcp.sport) || IsDnsPort(thresholds_, p.tcp.dport))) {
        state_->AddDns(p, thresholds_, &stats_);
      }
      break;
    case Transport::kUdp:
      ++stats_.udp_packets;
      if (IsDnsPort(thresholds_, p.udp.sport) || IsDnsPort(thresholds_, p.udp.dport))
        state_->AddDns(p, thresholds_, &stats_);
      break;
    case Transport::kIcmp:
    case Transport::kIcmp6:
      ++stats_.icmp_packets;
      state_->AddIcmp(p);
      break;
    default:
      break;
  }
}

void Detector::State::AddTcp(const Packet& p, const Thresholds& th, DetectorStats* stats) {
  int dir = 0;
  FlowKey key = MakeKey(p, &dir);
  bool pure_syn = p.tcp.Has(kSyn) && !p.tcp.Has(kAck);
  TcpFlow* f = nullptr;
  auto it = open.find(key);
  if (it != open.end()) {
    f = it->second;
    // Port reuse: a SYN with a new ISN is a new connection.
    if (pure_syn && f->has_syn && f->syn_seq != p.tcp.seq) f = nullptr;
  }
  if (f == nullptr) {
    if (flows.size() >= th.max_flows) {
      ++stats->dropped_flows;
      return;
    }
    flows.emplace_back(new TcpFlow());
    f = flows.back().get();
    f->key = key;
    open[key] = f;
    ++stats->tcp_flows;
  }
  if (pure_syn && !f->has_syn) {
    f->has_syn = true;
    f->syn_seq = p.tcp.seq;
  }
  if (f->segs.size() >= th.max_segments_per_flow) {
    ++stats->dropped_segments;
    return;
  }
  Seg s;
  s.t = p.ts_ns;
  s.dir = static_cast<uint8_t>(dir);
  s.flags = p.tcp.flags;
  s.seq = p.tcp.seq;
  s.ack = p.tcp.ack;
  s.win = p.tcp.window;
  s.ttl = p.ttl;
  s.ip_id = p.ip_id;
  s.v4 = p.ip_version == 4;
  s.df = p.df;
  s.has_ts = p.tcp.options.has_timestamps;
  s.option_count = p.tcp.options.count;
  s.len = p.payload_wire_len;
  f->segs.push_back(s);
  CheckOverlap(f, dir, p, th);
}

void Detector::State::CheckOverlap(TcpFlow* f, int dir, const Packet& p, const Thresholds& th) {
  Stream& s = f->stream[dir];
  if (p.tcp.Has(kSyn)) {
    s.has_base = true;
    s.base = p.tcp.seq + 1;
  }
  if (p.payload_len == 0 || p.tcp.Has(kRst) || p.fragment) return;
  uint32_t start = p.tcp.seq + (p.tcp.Has(kSyn) ? 1 : 0);
  if (!s.has_base) {
    s.has_base = true;
    s.base = start;
  }
  uint32_t rel = start - s.base;
  if (rel > 0x7FFFFFFFu) return;  // before the first byte we know of
  uint64_t r0 = rel;
  uint64_t r1 = r0 + p.payload_len;
  auto it = s.data.lower_bound(rel >= 65536 ? rel - 65536 : 0);
  for (; it != s.data.end() && it->first < r1; ++it) {
    uint64_t a0 = it->first;
    uint64_t a1 = a0 + it->second.bytes.size();
    uint64_t o0 = std::max(r0, a0);
    uint64_t o1 = std::min(r1, a1);
    if (o0 >= o1) continue;
    const uint8_t* mine = p.payload + (o0 - r0);
    const uint8_t* theirs = reinterpret_cast<const uint8_t*>(it->second.bytes.data()) + (o0 - a0);
    size_t n = static_cast<size_t>(o1 - o0);
    if (std::memcmp(mine, theirs, n) == 0) continue;
    size_t first_diff = 0;
    while (first_diff < n && mine[first_diff] == theirs[first_diff]) ++first_diff;
    size_t show = std::min<size_t>(16, n - first_diff);
    json d = {{"relative_seq", o0},
              {"overlap_len", n},
              {"first_difference_at", o0 + first_diff},
              {"earlier",
               {{"t_ns", it->second.t},
                {"ip_ttl", it->second.ttl},
                {"len", it->second.bytes.size()},
                {"bytes_hex", Hex(theirs + first_diff, show)}}},
              {"later",
               {{"t_ns", p.ts_ns},
                {"ip_ttl", p.ttl},
                {"len", p.payload_len},
                {"bytes_hex", Hex(mine + first_diff, show)}}}};
    f->overlaps.push_back({p.ts_ns, dir, d});
    break;
  }
  if (s.bytes + p.payload_len > th.max_stream_bytes) return;
  auto found = s.data.find(rel);
  if (found != s.data.end()) {
    if (found->second.bytes.size() >= p.payload_len) return;
    s.bytes -= found->second.bytes.size();
  }
  StoredData& sd = s.data[rel];
  sd.t = p.ts_ns;
  sd.ttl = p.ttl;
  sd.bytes.assign(reinterpret_cast<const char*>(p.payload), p.payload_len);
  s.bytes += p.payload_len;
}

void Detector::State::AddDns(const Packet& p, const Thresholds& th, DetectorStats* stats) {
  bool tcp = p.transport == Transport::kTcp;
  std::vector<DnsTcpChunk> chunks;
  if (tcp) {
    SplitDnsTcp(p.payload, p.payload_len, &chunks);
  } else {
    chunks.push_back({p.payload, p.payload_len});
  }
  for (const DnsTcpChunk& c : chunks) {
    DnsMessage m;
    std::string err;
    if (!ParseDnsMessage(c.data, c.len, &m, &err)) {
      ++stats->dns_parse_errors;
      continue;
    }
    uint8_t proto = tcp ? 6 : 17;
    if (!m.qr && IsDnsPort(th, p.DstPort())) {
      ++stats->dns_queries;
      auto q = std::make_unique<DnsQuery>();
      q->t = p.ts_ns;
      q->proto = tcp ? "tcp" : "udp";
      q->client = {p.src, p.SrcPort()};
      q->server = {p.dst, p.DstPort()};
      q->ttl = p.ttl;
      q->ip_id = p.ip_id;
      q->v4 = p.ip_version == 4;
      q->id = m.id;
      if (!m.questions.empty()) {
        q->qname = m.questions[0].name;
        q->qtype = m.questions[0].type;
      }
      if (query_order.size() >= th.max_flows) {
        ++stats->dropped_flows;
        continue;
      }
      query_order.push_back(q.get());
      queries[{proto, q->client, m.id}].push_back(std::move(q));
    } else if (m.qr && IsDnsPort(th, p.SrcPort())) {
      ++stats->dns_responses;
      auto it = queries.find({proto, {p.dst, p.DstPort()}, m.id});
      DnsQuery* match = nullptr;
      if (it != queries.end()) {
        for (auto q = it->second.rbegin(); q != it->second.rend(); ++q) {
          if ((*q)->t <= p.ts_ns && p.ts_ns - (*q)->t <= th.dns_window_ns) {
            match = q->get();
            break;
          }
        }
      }
      if (match == nullptr) {
        ++stats->dns_unmatched_responses;
        continue;
      }
      if (match->responses.size() >= 64) continue;
      DnsResponse r;
      r.t = p.ts_ns;
      r.src = p.src;
      r.sport = p.SrcPort();
      r.ttl = p.ttl;
      r.ip_id = p.ip_id;
      r.v4 = p.ip_version == 4;
      r.df = p.df;
      r.signature = ResponseSignature(m);
      r.msg = std::move(m);
      match->responses.push_back(std::move(r));
    }
  }
}

void Detector::State::AddIcmp(const Packet& p) {
  const IcmpHeader& ic = p.icmp;
  bool v6 = p.transport == Transport::kIcmp6;
  bool unreachable = v6 ? ic.type == 1 : ic.type == 3;
  if (!unreachable || !ic.has_inner) return;
  if (p.src == ic.inner_dst) return;  // from the destination itself: an ordinary answer
  const char* proto = ic.inner_proto == 6 ? "tcp" : ic.inner_proto == 17 ? "udp" : "ip";
  std::string flow;
  if (ic.inner_has_ports) {
    flow = FlowText(proto, {ic.inner_src, ic.inner_sport}, {ic.inner_dst, ic.inner_dport});
  } else {
    flow = std::string(proto) + " " + ic.inner_src.ToString() + " -> " + ic.inner_dst.ToString();
  }
  IcmpRecord& r = icmp[{flow, p.src, ic.type, ic.code}];
  if (r.count++ == 0) {
    r.t = p.ts_ns;
    r.ttl = p.ttl;
    r.v6 = v6;
    r.quoted_ttl = ic.inner_ttl;
  }
}

namespace {

// Per-flow evaluation of the TCP detectors.
void EvaluateTcpFlow(const TcpFlow& f, const Thresholds& th, int64_t t0,
                     std::vector<Finding>* out) {
  const std::vector<Seg>& segs = f.segs;
  if (segs.empty()) return;
  int client_dir = -1;
  for (const Seg& s : segs) {
    if (s.Has(kSyn) && !s.Has(kAck)) {
      client_dir = s.dir;
      break;
    }
  }
  if (client_dir < 0) {
    for (const Seg& s : segs) {
      if (s.Has(kSyn) && s.Has(kAck)) {
        client_dir = 1 - s.dir;
        break;
      }
    }
  }
  Endpoint ep[2] = {f.key.a, f.key.b};  // sender of direction 0, of direction 1
  std::string flow =
      client_dir == 1 ? FlowText("tcp", ep[1], ep[0]) : FlowText("tcp", ep[0], ep[1]);

  // Handshake references per sending direction.
  int synack_i = -1;
  int syn_i = -1;
  int ack3_i = -1;
  if (client_dir >= 0) {
    int server_dir = 1 - client_dir;
    for (size_t i = 0; i < segs.size(); ++i) {
      if (segs[i].dir == server_dir && segs[i].Has(kSyn) && segs[i].Has(kAck)) {
        synack_i = static_cast<int>(i);
        break;
      }
    }
    size_t end = synack_i >= 0 ? static_cast<size_t>(synack_i) : segs.size();
    for (size_t i = 0; i < end; ++i) {
      if (segs[i].dir == client_dir && segs[i].Has(kSyn) && !segs[i].Has(kAck)) {
        syn_i = static_cast<int>(i);  // last SYN before the SYN-ACK
      }
    }
    if (syn_i < 0) {
      for (size_t i = 0; i < segs.size(); ++i) {
        if (segs[i].dir == client_dir && segs[i].Has(kSyn) && !segs[i].Has(kAck)) {
          syn_i = static_cast<int>(i);
          break;
        }
      }
    }
    if (synack_i >= 0) {
      for (size_t i = synack_i + 1; i < segs.size(); ++i) {
        if (segs[i].dir == client_dir && !segs[i].Has(kSyn)) {
          ack3_i = static_cast<int>(i);
          break;
        }
      }
    }
  }
  const Seg* ref[2] = {nullptr, nullptr};
  int64_t rtt[2] = {-1, -1};
  if (client_dir >= 0) {
    int server_dir = 1 - client_dir;
    if (syn_i >= 0) ref[client_dir] = &segs[syn_i];
    if (synack_i >= 0) ref[server_dir] = &segs[synack_i];
    if (syn_i >= 0 && synack_i > syn_i) rtt[server_dir] = segs[synack_i].t - segs[syn_i].t;
    if (ack3_i >= 0) rtt[client_dir] = segs[ack3_i].t - segs[synack_i].t;
  }
  bool ts_negotiated = syn_i >= 0 && synack_i >= 0 && segs[syn_i].has_ts && segs[synack_i].has_ts;

  std::vector<Finding> found;
  std::set<std::string> classes;
  auto add = [&](const std::string& kind, const Seg& s, const std::string& cls, json d) {
    Finding x;
    x.kind = kind;
    x.flow = flow;
    x.t_ns = s.t;
    x.details = std::move(d);
    x.details["signal_class"] = cls;
    found.push_back(std::move(x));
    if (!cls.empty()) classes.insert(cls);
  };
  auto sender = [&](int dir) {
    if (client_dir < 0) return std::string("sender");
    return std::string(dir == client_dir ? "client" : "server");
  };

  // Data-segment anomalies are summarised once per direction and kind.
  struct Summary {
    int count = 0;
    int first = -1;
    json details;
  };
  std::map<std::string, Summary> summaries;

  // Per direction, in capture order: segment index, end of its sequence
  // range relative to the direction's first sequence number, and the running
  // maximum of that end, to find "the first segment that reached seq X" by
  // binary search.
  std::vector<int> peer_idx[2];
  std::vector<int64_t> peer_end[2];
  std::vector<int64_t> peer_max[2];
  uint32_t first_seq[2] = {0, 0};
  std::map<uint32_t, int> first_with_ack[2];  // ACK value -> first segment carrying it
  for (size_t j = 0; j < segs.size(); ++j) {
    int d = segs[j].dir;
    if (peer_idx[d].empty()) first_seq[d] = segs[j].seq;
    int64_t end = SeqDiff(segs[j].SeqEnd(), first_seq[d]);
    peer_idx[d].push_back(static_cast<int>(j));
    peer_end[d].push_back(end);
    peer_max[d].push_back(peer_max[d].empty() ? end : std::max(peer_max[d].back(), end));
    if (segs[j].Has(kAck)) first_with_ack[d].emplace(segs[j].ack, static_cast<int>(j));
  }

  for (size_t i = 0; i < segs.size(); ++i) {
    const Seg& s = segs[i];
    bool rst = s.Has(kRst);
    bool fin = s.Has(kFin) && !rst;
    bool data = s.len > 0 && !rst && !s.Has(kSyn);
    if (!rst && !fin && !data) continue;
    const char* what = rst ? "rst" : fin ? "fin" : "data";
    const Seg* r = ref[s.dir];
    int other = 1 - s.dir;

    // Which packet of the peer could this segment answer? With ACK: the
    // first peer segment that reaches the acknowledged sequence number.
    // Without (a bare RST): the first peer segment whose ACK equals our seq.
    int trigger = -1;
    if (s.Has(kAck)) {
      if (!peer_idx[other].empty()) {
        int64_t rel_ack = SeqDiff(s.ack, first_seq[other]);
        const std::vector<int64_t>& mx = peer_max[other];
        size_t k = std::lower_bound(mx.begin(), mx.end(), rel_ack) - mx.begin();
        if (k < mx.size() && static_cast<size_t>(peer_idx[other][k]) < i &&
            peer_end[other][k] - rel_ack < (int64_t{1} << 30)) {
          trigger = peer_idx[other][k];
        }
      }
    } else {
      auto it = first_with_ack[other].find(s.seq);
      if (it != first_with_ack[other].end() && static_cast<size_t>(it->second) < i) {
        trigger = it->second;
      }
    }
    int last_other = -1;
    for (size_t j = i; j-- > 0;) {
      if (segs[j].dir == other) {
        last_other = static_cast<int>(j);
        break;
      }
    }

    json pkt = SegJson(s, t0);
    std::vector<std::pair<std::string, json>> hits;  // kind suffix, details

    // 1. TTL against the sender's own handshake packet.
    if (r != nullptr && std::abs(int{s.ttl} - int{r->ttl}) >= th.ttl_delta) {
      json d = {{"packet", pkt},
                {"reference", r->Has(kAck) ? "SYN-ACK" : "SYN"},
                {"reference_ttl", r->ttl},
                {"ttl_delta", int{s.ttl} - int{r->ttl}},
                {"threshold", th.ttl_delta}};
      d["summary"] = std::string(what) + " from " + sender(s.dir) + " with IP TTL " +
                     std::to_string(s.ttl) + ", " + (r->Has(kAck) ? "SYN-ACK" : "SYN") + " had " +
                     std::to_string(r->ttl) + " (delta " +
                     std::to_string(int{s.ttl} - int{r->ttl}) + ")";
      hits.push_back({"ttl_anomaly", d});
    }
    // 2. Timing: sooner after its trigger than the path allows.
    if (trigger >= 0 && rtt[s.dir] >= th.min_rtt_ns) {
      int64_t dt = s.t - segs[trigger].t;
      if (static_cast<double>(dt) < th.rtt_fraction * static_cast<double>(rtt[s.dir])) {
        json d = {{"packet", pkt},
                  {"trigger", SegJson(segs[trigger], t0)},
                  {"dt_ms", Ms(dt)},
                  {"handshake_rtt_ms", Ms(rtt[s.dir])},
                  {"rtt_fraction", th.rtt_fraction}};
        char buf[200];
        std::snprintf(buf, sizeof(buf),
                      "%s from %s %.3f ms after its trigger; handshake RTT %.3f ms", what,
                      sender(s.dir).c_str(), Ms(dt), Ms(rtt[s.dir]));
        d["summary"] = buf;
        hits.push_back({"too_early", d});
      }
    }
    // 3. IP-ID copied from the peer's packet (IPv4, non-zero).
    if (s.v4 && s.ip_id != 0) {
      int src = -1;
      if (trigger >= 0 && segs[trigger].v4 && segs[trigger].ip_id == s.ip_id) src = trigger;
      if (src < 0 && last_other >= 0 && segs[last_other].ip_id == s.ip_id) src = last_other;
      if (src >= 0) {
        json d = {{"packet", pkt}, {"copied_from", SegJson(segs[src], t0)}};
        d["summary"] = std::string(what) + " from " + sender(s.dir) + " carries IP-ID " +
                       std::to_string(s.ip_id) + ", the IP-ID of the " + sender(other) +
                       "'s own packet";
        hits.push_back({"ipid_copied", d});
      }
    }
    // Header hints on RSTs (weak, see Thresholds::count_rst_header_hints).
    json hints = json::array();
    if (rst && r != nullptr) {
      if (s.win == 0 && r->win != 0) {
        hints.push_back("window 0 (handshake had " + std::to_string(r->win) + ")");
      }
      if (ts_negotiated && !s.has_ts) hints.push_back("no timestamps although negotiated");
      if (s.v4 && r->v4 && s.df != r->df) hints.push_back("DF bit differs from handshake");
    }

    for (auto& h : hits) {
      if (!hints.empty()) h.second["header_hints"] = hints;
      std::string cls = h.first == "ttl_anomaly" ? "ttl"
                        : h.first == "too_early" ? "timing"
                                                 : "ipid";
      std::string kind = h.first == "ipid_copied" ? std::string("tcp.ipid_copied")
                                                  : std::string("tcp.") + what + "_" + h.first;
      if (h.first == "ipid_copied") h.second["segment"] = what;
      if (data) {
        Summary& sm = summaries[kind + "/" + std::to_string(s.dir)];
        if (sm.count++ == 0) {
          sm.first = static_cast<int>(i);
          sm.details = h.second;
          sm.details["signal_class"] = cls;
        }
        classes.insert(cls);
      } else {
        add(kind, s, cls, h.second);
      }
    }
    if (rst && hits.empty() && !hints.empty() && th.count_rst_header_hints) {
      json d = {{"packet", pkt}, {"header_hints", hints}};
      d["summary"] = "rst from " + sender(s.dir) + " differs from the handshake: " + hints.dump();
      add("tcp.rst_header_mismatch", s, "header", d);
    }
  }
  for (auto& kv : summaries) {
    std::string kind = kv.first.substr(0, kv.first.find('/'));
    kv.second.details["count"] = kv.second.count;
    std::string cls = kv.second.details["signal_class"];
    add(kind, segs[kv.second.first], cls, kv.second.details);
  }

  // 4. Missing negotiated timestamps on a non-RST segment, when the same
  // sender's other segments carry them (RFC 7323 §3.2: TSopt MUST be sent in
  // every non-RST segment once negotiated).
  if (ts_negotiated) {
    for (int dir = 0; dir < 2; ++dir) {
      int with = 0;
      int without = 0;
      int first = -1;
      for (size_t i = 0; i < segs.size(); ++i) {
        const Seg& s = segs[i];
        if (s.dir != dir || s.Has(kSyn) || s.Has(kRst)) continue;
        if (s.has_ts) {
          ++with;
        } else {
          if (without++ == 0) first = static_cast<int>(i);
        }
      }
      if (without > 0 && with > 0) {
        json d = {
            {"packet", SegJson(segs[first], t0)}, {"count", without}, {"with_timestamps", with}};
        d["summary"] = std::to_string(without) + " segment(s) from " + sender(dir) +
                       " without the negotiated TCP timestamps (" + std::to_string(with) +
                       " others carry them)";
        add("tcp.missing_timestamps", segs[first], "options", d);
      }
    }
  }

  // 5. Several RSTs with different sequence numbers (GFW-style bursts).
  for (int dir = 0; dir < 2; ++dir) {
    json rsts = json::array();
    std::set<uint32_t> seqs;
    int first_change = -1;
    for (size_t i = 0; i < segs.size(); ++i) {
      const Seg& s = segs[i];
      if (s.dir != dir || !s.Has(kRst)) continue;
      if (rsts.size() < 16) rsts.push_back(SegJson(s, t0));
      if (!seqs.empty() && !seqs.count(s.seq) && first_change < 0)
        first_change = static_cast<int>(i);
      seqs.insert(s.seq);
    }
    if (seqs.size() >= 2) {
      json d = {{"rsts", rsts}, {"distinct_seq", seqs.size()}};
      d["summary"] = std::to_string(rsts.size()) + " RSTs from " + sender(dir) + " with " +
                     std::to_string(seqs.size()) + " different sequence numbers";
      add("tcp.rst_seq_change", segs[first_change], "race", d);
    }
  }

  // 6. Packets from the same sender after its RST: the RST was not its own.
  for (int dir = 0; dir < 2; ++dir) {
    int rst_i = -1;
    int later = 0;
    int first_later = -1;
    for (size_t i = 0; i < segs.size(); ++i) {
      const Seg& s = segs[i];
      if (s.dir != dir) continue;
      if (rst_i < 0) {
        if (s.Has(kRst)) rst_i = static_cast<int>(i);
        continue;
      }
      if (s.Has(kRst)) continue;
      if (later++ == 0) first_later = static_cast<int>(i);
    }
    if (later > 0) {
      json d = {{"rst", SegJson(segs[rst_i], t0)},
                {"first_later", SegJson(segs[first_later], t0)},
                {"later_packets", later}};
      d["summary"] = std::to_string(later) + " packet(s) from " + sender(dir) +
                     " after its RST (first: " + FlagString(segs[first_later].flags) + ", " +
                     std::to_string(segs[first_later].len) + " bytes)";
      add("tcp.data_after_rst", segs[rst_i], "race", d);
    }
  }

  // 7. Overlapping segments with different payload.
  for (const TcpFlow::Overlap& o : f.overlaps) {
    json d = o.details;
    for (const char* k : {"earlier", "later"}) {
      d[k]["t_ms"] = Ms(d[k]["t_ns"].get<int64_t>() - t0);
      d[k].erase("t_ns");
    }
    d["summary"] = "two segments from " + sender(o.dir) + " cover the same sequence range with " +
                   "different payload (" + std::to_string(d["overlap_len"].get<size_t>()) +
                   " bytes overlap)";
    Seg s;
    s.t = o.t;
    add("tcp.overlap_mismatch", s, "race", d);
  }

  if (found.empty()) return;
  int signals = static_cast<int>(classes.size());
  bool proven = signals >= th.min_signals;
  for (Finding& x : found) {
    x.signals = signals;
    x.proven = proven;
  }
  if (proven) {
    Finding sum;
    sum.kind = "tcp.injection";
    sum.flow = flow;
    sum.t_ns = found.front().t_ns;
    for (const Finding& x : found) sum.t_ns = std::min(sum.t_ns, x.t_ns);
    sum.signals = signals;
    sum.proven = true;
    json cl = json::array();
    for (const std::string& c : classes) cl.push_back(c);
    sum.details = {{"signal_classes", cl}};
    sum.details["summary"] = "packet injection proven by " + std::to_string(signals) +
                             " independent signals: " + cl.dump();
    found.push_back(std::move(sum));
  }
  for (Finding& x : found) out->push_back(std::move(x));
}

void EvaluateDnsQuery(const DnsQuery& q, const Thresholds& th, int64_t t0,
                      std::vector<Finding>* out) {
  if (q.responses.empty()) return;
  std::string flow = FlowText(q.proto, q.client, q.server);
  std::set<std::string> classes;
  std::vector<Finding> found;
  json responses = json::array();
  std::set<std::string> signatures;
  int min_ttl = 256;
  int max_ttl = -1;
  int64_t min_delay = INT64_MAX;
  int64_t max_delay = -1;
  bool ipid_copied = false;
  for (const DnsResponse& r : q.responses) {
    json j = {
        {"t_ms", Ms(r.t - t0)}, {"delay_ms", Ms(r.t - q.t)},    {"src", AddrPort(r.src, r.sport)},
        {"ip_ttl", r.ttl},      {"rcode", r.msg.rcode},         {"aa", r.msg.aa},
        {"ra", r.msg.ra},       {"answers", AnswersJson(r.msg)}};
    if (r.v4) {
      j["ip_id"] = r.ip_id;
      j["df"] = r.df;
    }
    responses.push_back(j);
    signatures.insert(r.signature);
    min_ttl = std::min<int>(min_ttl, r.ttl);
    max_ttl = std::max<int>(max_ttl, r.ttl);
    min_delay = std::min(min_delay, r.t - q.t);
    max_delay = std::max(max_delay, r.t - q.t);
    if (r.v4 && q.v4 && r.ip_id != 0 && r.ip_id == q.ip_id) ipid_copied = true;
  }
  json query = {{"t_ms", Ms(q.t - t0)},
                {"id", q.id},
                {"qname", q.qname},
                {"qtype", DnsTypeName(q.qtype)},
                {"ip_ttl", q.ttl}};
  if (q.v4) query["ip_id"] = q.ip_id;

  for (const DnsResponse& r : q.responses) {
    if (r.src == q.server.addr) continue;
    Finding x;
    x.kind = "dns.unexpected_source";
    x.flow = flow;
    x.t_ns = r.t;
    x.details = {{"query", query},
                 {"expected", q.server.addr.ToString()},
                 {"got", r.src.ToString()},
                 {"response_ip_ttl", r.ttl},
                 {"answers", AnswersJson(r.msg)},
                 {"signal_class", "source"}};
    x.details["summary"] = "answer to " + q.qname + " (id " + std::to_string(q.id) + ") from " +
                           r.src.ToString() + ", the query went to " + q.server.addr.ToString();
    found.push_back(std::move(x));
    classes.insert("source");
  }
  if (q.responses.size() >= 2) {
    Finding x;
    x.flow = flow;
    x.t_ns = q.responses[1].t;
    x.details = {
        {"query", query}, {"responses", responses}, {"distinct_answers", signatures.size()}};
    bool all_same_ipid = true;
    for (const DnsResponse& r : q.responses) {
      if (!r.v4 || r.ip_id != q.responses[0].ip_id) all_same_ipid = false;
    }
    if (signatures.size() == 1) {
      // Identical answers are a duplicate (network or capture duplication,
      // resolver retransmission), not injection.
      x.kind = "dns.duplicate_response";
      x.details["same_ip_id"] = all_same_ipid;
      x.details["ip_ttl_range"] = {min_ttl, max_ttl};
      x.details["signal_class"] = "";
      x.details["summary"] = std::to_string(q.responses.size()) + " identical responses to " +
                             q.qname + " (id " + std::to_string(q.id) + ")" +
                             (all_same_ipid ? ", same IP-ID: a duplicated packet" : "") +
                             "; not injection";
    } else {
      x.kind = "dns.conflicting_responses";
      classes.insert("conflict");
      json extra = json::array();
      if (max_ttl - min_ttl >= th.dns_ttl_delta) {
        classes.insert("ttl");
        extra.push_back("IP TTLs differ by " + std::to_string(max_ttl - min_ttl));
      }
      if (ipid_copied) {
        classes.insert("ipid");
        extra.push_back("a response copies the query's IP-ID");
      }
      if (max_delay > 0 && static_cast<double>(min_delay) < th.rtt_fraction * max_delay) {
        classes.insert("timing");
        char buf[120];
        std::snprintf(buf, sizeof(buf), "first answer after %.3f ms, another after %.3f ms",
                      Ms(min_delay), Ms(max_delay));
        extra.push_back(buf);
      }
      x.details["signal_class"] = "conflict";
      x.details["supporting"] = extra;
      x.details["summary"] = std::to_string(q.responses.size()) + " responses with " +
                             std::to_string(signatures.size()) + " different answers to " +
                             q.qname + " (id " + std::to_string(q.id) + ")";
    }
    found.push_back(std::move(x));
  }
  int signals = static_cast<int>(classes.size());
  for (Finding& x : found) {
    x.signals = x.kind == "dns.duplicate_response" ? 0 : signals;
    x.proven = x.kind != "dns.duplicate_response" && signals >= th.min_signals;
    out->push_back(std::move(x));
  }
}

}  // namespace

std::vector<Finding> Detector::Finish() {
  std::vector<Finding> out;
  int64_t t0 = state_->t0 < 0 ? 0 : state_->t0;
  for (const auto& f : state_->flows) EvaluateTcpFlow(*f, thresholds_, t0, &out);
  for (const DnsQuery* q : state_->query_order) EvaluateDnsQuery(*q, thresholds_, t0, &out);
  for (const auto& kv : state_->icmp) {
    const IcmpRecord& r = kv.second;
    Finding x;
    x.kind = "icmp.unreachable_from_router";
    x.flow = kv.first.flow;
    x.t_ns = r.t;
    x.signals = 1;
    x.proven = 1 >= thresholds_.min_signals;
    x.details = {{"router", kv.first.router.ToString()},
                 {"icmp_type", kv.first.type},
                 {"icmp_code", kv.first.code},
                 {"meaning", IcmpUnreachName(r.v6, kv.first.code)},
                 {"ip_ttl", r.ttl},
                 {"quoted_ip_ttl", r.quoted_ttl},
                 {"count", r.count},
                 {"signal_class", "icmp"}};
    x.details["summary"] = std::string(IcmpUnreachName(r.v6, kv.first.code)) + " from " +
                           kv.first.router.ToString() + ", not the destination" +
                           (r.count > 1 ? " (" + std::to_string(r.count) + " times)" : "");
    out.push_back(std::move(x));
  }
  std::stable_sort(out.begin(), out.end(),
                   [](const Finding& a, const Finding& b) { return a.t_ns < b.t_ns; });
  return out;
}

bool IsDnsPort(const Thresholds& thresholds, uint16_t port) {
  for (uint16_t p : thresholds.dns_ports)
    if (p == port) return true;
  return false;
}

std::string FormatFinding(const Finding& f, int64_t t0_ns) {
  char when[64];
  time_t secs = static_cast<time_t>(f.t_ns / 1000000000);
  struct tm tm;
  gmtime_r(&secs, &tm);
  char date[32];
  std::strftime(date, sizeof(date), "%Y-%m-%dT%H:%M:%S", &tm);
  std::snprintf(when, sizeof(when), "%s.%09" PRId64 "Z (+%.6fs)", date, f.t_ns % 1000000000,
                static_cast<double>(f.t_ns - t0_ns) / 1e9);
  std::string line = std::string(when) + "  " + f.kind + "  " + f.flow + "\n";
  std::string summary;
  json rest = f.details;
  if (rest.is_object() && rest.contains("summary")) {
    summary = rest["summary"].get<std::string>();
    rest.erase("summary");
  }
  line += "    " + summary + "  [" + std::to_string(f.signals) + " signal" +
          (f.signals == 1 ? "" : "s") + (f.proven ? ", PROVEN" : ", not proven") + "]\n";
  line += "    " + rest.dump() + "\n";
  return line;
}

}  // namespace capture
}  // namespace rasad
