// Packet decoder, DNS parser and injection detectors (probe/capture/).
#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <sys/stat.h>

#include <cstdio>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "probe/capture/detectors.h"
#include "probe/capture/dns_message.h"
#include "probe/capture/packet.h"
#include "probe/capture/pcap_file.h"

namespace rasad {
namespace capture {
namespace {

using Bytes = std::vector<uint8_t>;

void Put16(Bytes* b, uint16_t v) {
  b->push_back(static_cast<uint8_t>(v >> 8));
  b->push_back(static_cast<uint8_t>(v));
}
void Put32(Bytes* b, uint32_t v) {
  Put16(b, static_cast<uint16_t>(v >> 16));
  Put16(b, static_cast<uint16_t>(v));
}
void Append(Bytes* b, const Bytes& more) { b->insert(b->end(), more.begin(), more.end()); }

Bytes V4(const char* text) {
  Bytes b(4);
  inet_pton(AF_INET, text, b.data());
  return b;
}
Bytes V6(const char* text) {
  Bytes b(16);
  inet_pton(AF_INET6, text, b.data());
  return b;
}

struct Ip4 {
  const char* src = "10.0.0.2";
  const char* dst = "93.184.216.34";
  uint8_t proto = 6;
  uint8_t ttl = 64;
  uint16_t id = 1234;
  uint16_t frag = 0x4000;  // DF
  Bytes options;
};

Bytes BuildIpv4(const Ip4& h, const Bytes& payload) {
  Bytes b;
  size_t ihl = 20 + h.options.size();
  b.push_back(static_cast<uint8_t>(0x40 | (ihl / 4)));
  b.push_back(0);
  Put16(&b, static_cast<uint16_t>(ihl + payload.size()));
  Put16(&b, h.id);
  Put16(&b, h.frag);
  b.push_back(h.ttl);
  b.push_back(h.proto);
  Put16(&b, 0);  // checksum (not verified)
  Append(&b, V4(h.src));
  Append(&b, V4(h.dst));
  Append(&b, h.options);
  Append(&b, payload);
  return b;
}

Bytes BuildIpv6(const char* src, const char* dst, uint8_t nh, uint8_t hop, const Bytes& payload) {
  Bytes b = {0x60, 0, 0, 0};
  Put16(&b, static_cast<uint16_t>(payload.size()));
  b.push_back(nh);
  b.push_back(hop);
  Append(&b, V6(src));
  Append(&b, V6(dst));
  Append(&b, payload);
  return b;
}

struct Tcp {
  uint16_t sport = 40000;
  uint16_t dport = 443;
  uint32_t seq = 1000;
  uint32_t ack = 0;
  uint8_t flags = kSyn;
  uint16_t window = 64240;
  Bytes options;
};

Bytes BuildTcp(const Tcp& t, const Bytes& payload = {}) {
  Bytes b;
  Put16(&b, t.sport);
  Put16(&b, t.dport);
  Put32(&b, t.seq);
  Put32(&b, t.ack);
  Bytes opts = t.options;
  while (opts.size() % 4) opts.push_back(0);
  b.push_back(static_cast<uint8_t>(((20 + opts.size()) / 4) << 4));
  b.push_back(t.flags);
  Put16(&b, t.window);
  Put16(&b, 0);
  Put16(&b, 0);
  Append(&b, opts);
  Append(&b, payload);
  return b;
}

Bytes SynOptions(bool timestamps = true) {
  Bytes o = {2, 4, 0x05, 0xb4, 1, 3, 3, 7, 4, 2};  // MSS 1460, NOP, WS 7, SACK-permitted
  if (timestamps) {
    Bytes ts = {1, 1, 8, 10, 0, 0, 0, 1, 0, 0, 0, 0};
    Append(&o, ts);
  }
  return o;
}

Bytes TsOption(uint32_t val, uint32_t ecr) {
  Bytes o = {1, 1, 8, 10};
  Put32(&o, val);
  Put32(&o, ecr);
  return o;
}

Bytes BuildUdp(uint16_t sport, uint16_t dport, const Bytes& payload) {
  Bytes b;
  Put16(&b, sport);
  Put16(&b, dport);
  Put16(&b, static_cast<uint16_t>(8 + payload.size()));
  Put16(&b, 0);
  Append(&b, payload);
  return b;
}

Bytes Ether(const Bytes& ip, uint16_t ethertype = 0x0800, int vlan = -1) {
  Bytes b = {0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11};
  if (vlan >= 0) {
    Put16(&b, 0x8100);
    Put16(&b, static_cast<uint16_t>(vlan));
  }
  Put16(&b, ethertype);
  Append(&b, ip);
  return b;
}

Bytes Sll(const Bytes& ip, uint16_t proto) {
  Bytes b = {0, 0, 0, 1, 0, 6, 0, 1, 2, 3, 4, 5, 0, 0};
  Put16(&b, proto);
  Append(&b, ip);
  return b;
}

Bytes Sll2(const Bytes& ip, uint16_t proto) {
  Bytes b;
  Put16(&b, proto);
  Put16(&b, 0);
  Put32(&b, 3);                                 // ifindex
  Put16(&b, 1);                                 // ARPHRD_ETHER
  Bytes rest = {0, 6, 0, 1, 2, 3, 4, 5, 0, 0};  // pkttype, addrlen, addr
  Append(&b, rest);
  Append(&b, ip);
  return b;
}

// Decodes from an exact-size heap copy so a sanitizer sees any overread.
bool Decode(int link, const Bytes& frame, size_t cap, size_t wire, Packet* p,
            std::string* err = nullptr) {
  std::vector<uint8_t> copy(frame.begin(), frame.begin() + cap);
  std::string e;
  bool ok = DecodePacket(link, copy.empty() ? nullptr : copy.data(), cap, wire, 7, p, &e);
  if (err) *err = e;
  return ok;
}

Bytes SampleTcpV4() {
  Tcp t;
  t.options = SynOptions();
  return BuildIpv4(Ip4(), BuildTcp(t));
}

TEST(PacketDecode, EthernetIpv4TcpWithOptions) {
  Bytes frame = Ether(SampleTcpV4());
  Packet p;
  std::string err;
  ASSERT_TRUE(Decode(kLinkEthernet, frame, frame.size(), frame.size(), &p, &err)) << err;
  EXPECT_EQ(p.ts_ns, 7);
  EXPECT_EQ(p.ip_version, 4);
  EXPECT_EQ(p.src.ToString(), "10.0.0.2");
  EXPECT_EQ(p.dst.ToString(), "93.184.216.34");
  EXPECT_EQ(p.ttl, 64);
  EXPECT_EQ(p.ip_id, 1234);
  EXPECT_TRUE(p.df);
  EXPECT_FALSE(p.fragment);
  ASSERT_EQ(p.transport, Transport::kTcp);
  EXPECT_EQ(p.tcp.sport, 40000);
  EXPECT_EQ(p.tcp.dport, 443);
  EXPECT_EQ(p.tcp.seq, 1000u);
  EXPECT_TRUE(p.tcp.Has(kSyn));
  EXPECT_FALSE(p.tcp.Has(kAck));
  EXPECT_EQ(p.tcp.window, 64240);
  EXPECT_TRUE(p.tcp.options.has_mss);
  EXPECT_EQ(p.tcp.options.mss, 1460);
  EXPECT_TRUE(p.tcp.options.has_wscale);
  EXPECT_EQ(p.tcp.options.wscale, 7);
  EXPECT_TRUE(p.tcp.options.sack_permitted);
  EXPECT_TRUE(p.tcp.options.has_timestamps);
  EXPECT_EQ(p.tcp.options.ts_val, 1u);
  EXPECT_FALSE(p.tcp.options.malformed);
  EXPECT_EQ(p.payload_len, 0u);
  EXPECT_EQ(AddrPort(p.src, p.SrcPort()), "10.0.0.2:40000");
}

TEST(PacketDecode, VlanTagAndEthernetPadding) {
  Tcp t;
  t.flags = kRst | kAck;
  Bytes frame = Ether(BuildIpv4(Ip4(), BuildTcp(t)), 0x0800, 42);
  frame.resize(frame.size() + 6, 0);  // minimum-frame padding after the IP packet
  Packet p;
  ASSERT_TRUE(Decode(kLinkEthernet, frame, frame.size(), frame.size(), &p));
  EXPECT_TRUE(p.has_vlan);
  EXPECT_EQ(p.vlan_id, 42);
  EXPECT_TRUE(p.tcp.Has(kRst));
  EXPECT_EQ(p.payload_len, 0u);  // padding is not payload
}

TEST(PacketDecode, EveryLinkTypeGivesTheSamePacket) {
  Bytes ip = SampleTcpV4();
  Bytes null_le = {2, 0, 0, 0};
  Append(&null_le, ip);
  Bytes null_be = {0, 0, 0, 2};
  Append(&null_be, ip);
  std::vector<std::pair<int, Bytes>> frames = {{kLinkEthernet, Ether(ip)},
                                               {kLinkRaw, ip},
                                               {kLinkRawFile, ip},
                                               {kLinkRawBsd, ip},
                                               {kLinkIpv4, ip},
                                               {kLinkLinuxSll, Sll(ip, 0x0800)},
                                               {kLinkLinuxSll2, Sll2(ip, 0x0800)},
                                               {kLinkNull, null_le},
                                               {kLinkNull, null_be},
                                               {kLinkLoop, null_be}};
  for (const auto& f : frames) {
    Packet p;
    std::string err;
    ASSERT_TRUE(Decode(f.first, f.second, f.second.size(), f.second.size(), &p, &err))
        << "link " << f.first << ": " << err;
    EXPECT_EQ(p.tcp.dport, 443) << f.first;
    EXPECT_EQ(p.src.ToString(), "10.0.0.2") << f.first;
  }
  Packet p;
  EXPECT_FALSE(Decode(kLinkIpv6, ip, ip.size(), ip.size(), &p));  // wrong version for DLT_IPV6
  EXPECT_FALSE(Decode(147, ip, ip.size(), ip.size(), &p));        // unsupported link type
  Bytes arp = Ether(ip, 0x0806);
  EXPECT_FALSE(Decode(kLinkEthernet, arp, arp.size(), arp.size(), &p));
  Bytes mismatch = Ether(ip, 0x86DD);
  EXPECT_FALSE(Decode(kLinkEthernet, mismatch, mismatch.size(), mismatch.size(), &p));
}

TEST(PacketDecode, Ipv6ExtensionHeadersAndUdp) {
  Bytes udp = BuildUdp(5353, 53, Bytes{1, 2, 3, 4});
  // Hop-by-hop (8 bytes, next = destination options), destination options
  // (16 bytes, next = UDP).
  Bytes ext = {60, 0, 1, 4, 0, 0, 0, 0, 17, 1, 1, 12, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0};
  Append(&ext, udp);
  Bytes ip = BuildIpv6("2001:db8::1", "2001:db8::53", 0, 57, ext);
  Packet p;
  std::string err;
  ASSERT_TRUE(Decode(kLinkIpv6, ip, ip.size(), ip.size(), &p, &err)) << err;
  EXPECT_EQ(p.ip_version, 6);
  EXPECT_EQ(p.ttl, 57);
  EXPECT_EQ(p.ext_headers, 2);
  EXPECT_EQ(p.protocol, 17);
  ASSERT_EQ(p.transport, Transport::kUdp);
  EXPECT_EQ(p.udp.dport, 53);
  EXPECT_EQ(p.payload_len, 4u);
  EXPECT_EQ(AddrPort(p.dst, 53), "[2001:db8::53]:53");

  // A later fragment has no transport header.
  Bytes frag = {17, 0, 0x00, 0x08, 0, 0, 0, 9, 1, 2, 3, 4, 5, 6, 7, 8};
  Bytes ip2 = BuildIpv6("2001:db8::1", "2001:db8::53", 44, 64, frag);
  ASSERT_TRUE(Decode(kLinkRaw, ip2, ip2.size(), ip2.size(), &p, &err)) << err;
  EXPECT_TRUE(p.fragment);
  EXPECT_EQ(p.frag_offset, 8);
  EXPECT_EQ(p.frag_id, 9u);
  EXPECT_EQ(p.transport, Transport::kNone);

  // An extension header claiming more bytes than there are.
  Bytes bad = {17, 200, 0, 0, 0, 0, 0, 0};
  Bytes ip3 = BuildIpv6("2001:db8::1", "2001:db8::53", 0, 64, bad);
  EXPECT_FALSE(Decode(kLinkRaw, ip3, ip3.size(), ip3.size(), &p));
  // A chain of 40 hop-by-hop headers is rejected, not followed.
  Bytes chain;
  for (int i = 0; i < 40; ++i) Append(&chain, Bytes{0, 0, 0, 0, 0, 0, 0, 0});
  Bytes ip4 = BuildIpv6("2001:db8::1", "2001:db8::53", 0, 64, chain);
  EXPECT_FALSE(Decode(kLinkRaw, ip4, ip4.size(), ip4.size(), &p));
}

TEST(PacketDecode, Ipv4OptionsAndFragments) {
  Ip4 h;
  h.options = {1, 1, 1, 0};  // NOP NOP NOP EOL
  h.proto = 17;
  Bytes ip = BuildIpv4(h, BuildUdp(1000, 53, Bytes(10, 'x')));
  Packet p;
  ASSERT_TRUE(Decode(kLinkRaw, ip, ip.size(), ip.size(), &p));
  EXPECT_EQ(p.ip_options_len, 4);
  EXPECT_EQ(p.payload_len, 10u);

  h.frag = 0x2000;  // MF: first fragment, UDP length covers more than this fragment
  Bytes udp = BuildUdp(1000, 53, Bytes(100, 'y'));
  udp.resize(40);
  Bytes first = BuildIpv4(h, udp);
  ASSERT_TRUE(Decode(kLinkRaw, first, first.size(), first.size(), &p));
  EXPECT_TRUE(p.fragment);
  EXPECT_EQ(p.transport, Transport::kUdp);
  EXPECT_EQ(p.payload_len, 32u);

  h.frag = 0x0003;  // offset 24 bytes, last fragment
  Bytes later = BuildIpv4(h, Bytes(16, 'z'));
  ASSERT_TRUE(Decode(kLinkRaw, later, later.size(), later.size(), &p));
  EXPECT_TRUE(p.fragment);
  EXPECT_EQ(p.frag_offset, 24);
  EXPECT_EQ(p.transport, Transport::kNone);
}

TEST(PacketDecode, IcmpUnreachableQuotesTheOriginalHeader) {
  Tcp t;
  Bytes original = BuildIpv4(Ip4(), BuildTcp(t));
  Bytes icmp = {3, 13, 0, 0, 0, 0, 0, 0};
  icmp.insert(icmp.end(), original.begin(), original.begin() + 28);  // IP header + 8 bytes
  Ip4 h;
  h.src = "192.0.2.1";
  h.dst = "10.0.0.2";
  h.proto = 1;
  h.ttl = 250;
  Bytes ip = BuildIpv4(h, icmp);
  Packet p;
  ASSERT_TRUE(Decode(kLinkRaw, ip, ip.size(), ip.size(), &p));
  ASSERT_EQ(p.transport, Transport::kIcmp);
  EXPECT_EQ(p.icmp.type, 3);
  EXPECT_EQ(p.icmp.code, 13);
  ASSERT_TRUE(p.icmp.has_inner);
  EXPECT_EQ(p.icmp.inner_src.ToString(), "10.0.0.2");
  EXPECT_EQ(p.icmp.inner_dst.ToString(), "93.184.216.34");
  EXPECT_EQ(p.icmp.inner_proto, 6);
  EXPECT_TRUE(p.icmp.inner_has_ports);
  EXPECT_EQ(p.icmp.inner_dport, 443);

  Bytes orig6 = BuildIpv6("2001:db8::2", "2001:db8::80", 17, 64, BuildUdp(777, 53, {}));
  Bytes icmp6 = {1, 1, 0, 0, 0, 0, 0, 0};
  Append(&icmp6, orig6);
  Bytes ip6 = BuildIpv6("2001:db8:ffff::1", "2001:db8::2", 58, 60, icmp6);
  ASSERT_TRUE(Decode(kLinkRaw, ip6, ip6.size(), ip6.size(), &p));
  ASSERT_EQ(p.transport, Transport::kIcmp6);
  ASSERT_TRUE(p.icmp.has_inner);
  EXPECT_EQ(p.icmp.inner_dst.ToString(), "2001:db8::80");
  EXPECT_EQ(p.icmp.inner_sport, 777);
}

TEST(PacketDecode, MalformedHeadersAreErrors) {
  Packet p;
  Tcp t;
  Bytes tcp = BuildTcp(t);
  tcp[12] = 0x40;  // data offset 4 words < 5
  Bytes ip = BuildIpv4(Ip4(), tcp);
  EXPECT_FALSE(Decode(kLinkRaw, ip, ip.size(), ip.size(), &p));
  tcp[12] = 0xF0;  // data offset 60 bytes > segment
  ip = BuildIpv4(Ip4(), tcp);
  EXPECT_FALSE(Decode(kLinkRaw, ip, ip.size(), ip.size(), &p));
  ip = SampleTcpV4();
  ip[0] = 0x44;  // IHL 16 bytes
  EXPECT_FALSE(Decode(kLinkRaw, ip, ip.size(), ip.size(), &p));
  ip = SampleTcpV4();
  ip[2] = 0;
  ip[3] = 10;  // total length shorter than the header
  EXPECT_FALSE(Decode(kLinkRaw, ip, ip.size(), ip.size(), &p));
  Ip4 h;
  h.proto = 17;
  Bytes udp = BuildUdp(1, 53, {});
  udp[5] = 4;  // UDP length 4 < 8
  ip = BuildIpv4(h, udp);
  EXPECT_FALSE(Decode(kLinkRaw, ip, ip.size(), ip.size(), &p));
  Bytes garbage = {0x15, 0, 0, 0};
  EXPECT_FALSE(Decode(kLinkRaw, garbage, garbage.size(), garbage.size(), &p));
  EXPECT_FALSE(Decode(kLinkRaw, garbage, 0, 0, &p));

  // A TCP option running past the header is flagged, not fatal.
  t.options = {2, 4, 5, 180, 8, 30};
  ip = BuildIpv4(Ip4(), BuildTcp(t));
  ASSERT_TRUE(Decode(kLinkRaw, ip, ip.size(), ip.size(), &p));
  EXPECT_TRUE(p.tcp.options.has_mss);
  EXPECT_TRUE(p.tcp.options.malformed);
}

TEST(PacketDecode, TruncatedAtEveryLengthIsAnErrorNeverACrash) {
  Tcp t;
  t.flags = kPsh | kAck;
  t.options = TsOption(5, 6);
  Bytes tcp4 = BuildIpv4(Ip4(), BuildTcp(t, Bytes(30, 'a')));
  Bytes udp6 = BuildIpv6("2001:db8::1", "2001:db8::2", 17, 64, BuildUdp(1, 53, Bytes(12, 'q')));
  Bytes icmp = {3, 3, 0, 0, 0, 0, 0, 0};
  Append(&icmp, tcp4);
  Ip4 h;
  h.proto = 1;
  Bytes icmp4 = BuildIpv4(h, icmp);
  Bytes null_le = {2, 0, 0, 0};
  Append(&null_le, tcp4);
  std::vector<std::pair<int, Bytes>> frames = {{kLinkEthernet, Ether(tcp4, 0x0800, 7)},
                                               {kLinkEthernet, Ether(udp6, 0x86DD)},
                                               {kLinkRaw, icmp4},
                                               {kLinkLinuxSll, Sll(tcp4, 0x0800)},
                                               {kLinkLinuxSll2, Sll2(udp6, 0x86DD)},
                                               {kLinkNull, null_le},
                                               {kLinkIpv6, udp6}};
  for (const auto& f : frames) {
    Packet p;
    std::string err;
    ASSERT_TRUE(Decode(f.first, f.second, f.second.size(), f.second.size(), &p, &err)) << err;
    for (size_t n = 0; n < f.second.size(); ++n) {
      // Cut with nothing saying so: the declared lengths no longer fit.
      EXPECT_FALSE(Decode(f.first, f.second, n, n, &p, &err))
          << "link " << f.first << " cut at " << n;
      // Cut by a snaplen (wire length known): never reads past n; succeeds
      // only when all headers are there, with the payload marked truncated.
      if (Decode(f.first, f.second, n, f.second.size(), &p, &err)) {
        EXPECT_LE(p.payload_len, n);
        EXPECT_TRUE(p.truncated);
      }
    }
  }
}

// --- DNS -------------------------------------------------------------------

Bytes DnsName(const std::string& name) {
  Bytes b;
  size_t start = 0;
  while (start < name.size()) {
    size_t dot = name.find('.', start);
    if (dot == std::string::npos) dot = name.size();
    b.push_back(static_cast<uint8_t>(dot - start));
    for (size_t i = start; i < dot; ++i) b.push_back(static_cast<uint8_t>(name[i]));
    start = dot + 1;
  }
  b.push_back(0);
  return b;
}

struct Answer {
  uint16_t type;
  uint32_t ttl;
  Bytes rdata;
};

// Response for qname with answers owned by the question name (pointer 0xC00C).
Bytes DnsResponse(uint16_t id, const std::string& qname, const std::vector<Answer>& answers,
                  bool response = true) {
  Bytes b;
  Put16(&b, id);
  Put16(&b, response ? 0x8180 : 0x0100);
  Put16(&b, 1);
  Put16(&b, static_cast<uint16_t>(answers.size()));
  Put16(&b, 0);
  Put16(&b, 0);
  Append(&b, DnsName(qname));
  Put16(&b, 1);
  Put16(&b, 1);
  for (const Answer& a : answers) {
    Put16(&b, 0xC00C);
    Put16(&b, a.type);
    Put16(&b, 1);
    Put32(&b, a.ttl);
    Put16(&b, static_cast<uint16_t>(a.rdata.size()));
    Append(&b, a.rdata);
  }
  return b;
}

TEST(DnsParse, AnswersWithCompression) {
  Bytes cname = {3, 'w', 'w', 'w', 0xC0, 0x10};  // "www." + pointer to "example.com"
  Bytes msg = DnsResponse(0xBEEF, "Www.Example.com",
                          {{kDnsCname, 300, cname},
                           {kDnsA, 60, V4("93.184.216.34")},
                           {kDnsAaaa, 60, V6("2606:2800:220:1::")}});
  DnsMessage m;
  std::string err;
  ASSERT_TRUE(ParseDnsMessage(msg.data(), msg.size(), &m, &err)) << err;
  EXPECT_EQ(m.id, 0xBEEF);
  EXPECT_TRUE(m.qr);
  EXPECT_TRUE(m.rd);
  EXPECT_TRUE(m.ra);
  EXPECT_EQ(m.rcode, 0);
  ASSERT_EQ(m.questions.size(), 1u);
  EXPECT_EQ(m.questions[0].name, "www.example.com");
  ASSERT_EQ(m.answers.size(), 3u);
  EXPECT_EQ(m.answers[0].name, "www.example.com");
  EXPECT_EQ(m.answers[0].data, "www.example.com");
  EXPECT_EQ(m.answers[0].ttl, 300u);
  EXPECT_EQ(m.answers[1].data, "93.184.216.34");
  EXPECT_EQ(m.answers[2].data, "2606:2800:220:1::");
  EXPECT_EQ(DnsTypeName(m.answers[2].type), "AAAA");

  for (size_t n = 0; n < msg.size(); ++n) {
    Bytes cut(msg.begin(), msg.begin() + n);
    EXPECT_FALSE(ParseDnsMessage(cut.data(), cut.size(), &m, &err)) << "cut at " << n;
  }
}

TEST(DnsParse, PointerLoopsAndHopLimit) {
  DnsMessage m;
  std::string err;
  Bytes self = DnsResponse(1, "a.b", {});
  self.resize(12);
  Append(&self, Bytes{0xC0, 12, 0, 1, 0, 1});  // question name points at itself
  EXPECT_FALSE(ParseDnsMessage(self.data(), self.size(), &m, &err));
  Bytes forward = DnsResponse(1, "a.b", {});
  forward.resize(12);
  Append(&forward, Bytes{0xC0, 20, 0, 1, 0, 1, 1, 'x', 0});
  EXPECT_FALSE(ParseDnsMessage(forward.data(), forward.size(), &m, &err));
  // 100 pointers, each to the one before: backwards, but too many hops.
  Bytes chain = {0, 1, 0x81, 0x80, 0, 1, 0, 0, 0, 0, 0, 0};
  size_t root = chain.size();
  chain.push_back(0);
  size_t prev = root;
  for (int i = 0; i < 100; ++i) {
    size_t here = chain.size();
    chain.push_back(static_cast<uint8_t>(0xC0 | (prev >> 8)));
    chain.push_back(static_cast<uint8_t>(prev));
    prev = here;
  }
  size_t off = chain.size() - 2;
  std::string name;
  EXPECT_FALSE(ReadDnsName(chain.data(), chain.size(), &off, &name, &err));
  EXPECT_NE(err.find("too many"), std::string::npos) << err;
  off = root + 2 * 10 + 1;  // 10 hops is fine
  EXPECT_TRUE(ReadDnsName(chain.data(), chain.size(), &off, &name, &err)) << err;
  EXPECT_EQ(name, "");
  // Counts larger than the message are rejected before any allocation.
  Bytes huge = {0, 1, 0x81, 0x80, 0xFF, 0xFF, 0xFF, 0xFF, 0, 0, 0, 0};
  EXPECT_FALSE(ParseDnsMessage(huge.data(), huge.size(), &m, &err));
}

TEST(DnsParse, TcpFraming) {
  Bytes a = DnsResponse(1, "a.example", {{kDnsA, 1, V4("1.2.3.4")}});
  Bytes b = DnsResponse(2, "b.example", {});
  Bytes stream;
  Put16(&stream, static_cast<uint16_t>(a.size()));
  Append(&stream, a);
  Put16(&stream, static_cast<uint16_t>(b.size()));
  Append(&stream, b);
  Put16(&stream, 500);  // start of a third, incomplete message
  stream.push_back(0);
  std::vector<DnsTcpChunk> msgs;
  size_t used = SplitDnsTcp(stream.data(), stream.size(), &msgs);
  ASSERT_EQ(msgs.size(), 2u);
  EXPECT_EQ(used, 4 + a.size() + b.size());
  DnsMessage m;
  ASSERT_TRUE(ParseDnsMessage(msgs[1].data, msgs[1].len, &m, nullptr));
  EXPECT_EQ(m.id, 2);
}

// --- Detectors ---------------------------------------------------------------

class Feed {
 public:
  explicit Feed(const Thresholds& th = Thresholds()) : detector_(th) {}
  void Raw(int64_t t_ms, const Bytes& ip) {
    Packet p;
    std::string err;
    ASSERT_TRUE(DecodePacket(kLinkRaw, ip.data(), ip.size(), ip.size(), t_ms * 1000000, &p, &err))
        << err;
    detector_.Add(p);
  }
  std::vector<Finding> Finish() { return detector_.Finish(); }

 private:
  Detector detector_;
};

std::vector<const Finding*> OfKind(const std::vector<Finding>& f, const std::string& kind) {
  std::vector<const Finding*> out;
  for (const Finding& x : f) {
    if (x.kind == kind) out.push_back(&x);
  }
  return out;
}

std::string Kinds(const std::vector<Finding>& f) {
  std::string s;
  for (const Finding& x : f) s += x.kind + " ";
  return s;
}

Bytes Udp4(const char* src, uint16_t sport, const char* dst, uint16_t dport, uint8_t ttl,
           uint16_t id, const Bytes& payload) {
  Ip4 h;
  h.src = src;
  h.dst = dst;
  h.proto = 17;
  h.ttl = ttl;
  h.id = id;
  return BuildIpv4(h, BuildUdp(sport, dport, payload));
}

TEST(Detectors, DnsIdenticalResponsesAreDuplicates) {
  Feed feed;
  Bytes query = DnsResponse(77, "example.org", {}, false);
  Bytes answer = DnsResponse(77, "example.org", {{kDnsA, 300, V4("93.184.216.34")}});
  Bytes answer_other_ttl = DnsResponse(77, "example.org", {{kDnsA, 299, V4("93.184.216.34")}});
  feed.Raw(0, Udp4("10.0.0.2", 5000, "9.9.9.9", 53, 64, 10, query));
  feed.Raw(20, Udp4("9.9.9.9", 53, "10.0.0.2", 5000, 55, 300, answer));
  feed.Raw(21, Udp4("9.9.9.9", 53, "10.0.0.2", 5000, 55, 301, answer_other_ttl));
  auto f = feed.Finish();
  ASSERT_EQ(f.size(), 1u) << Kinds(f);
  EXPECT_EQ(f[0].kind, "dns.duplicate_response");
  EXPECT_FALSE(f[0].proven);
  EXPECT_EQ(f[0].flow, "udp 10.0.0.2:5000 -> 9.9.9.9:53");
  EXPECT_EQ(f[0].details["responses"].size(), 2u);
  EXPECT_EQ(f[0].details["responses"][1]["ip_id"], 301);
}

TEST(Detectors, DnsConflictingResponsesWithTtlDifferenceAreProvenInjection) {
  Feed feed;
  Bytes query = DnsResponse(9, "blocked.example", {}, false);
  Bytes forged = DnsResponse(9, "blocked.example", {{kDnsA, 60, V4("10.10.34.35")}});
  Bytes real = DnsResponse(9, "blocked.example", {{kDnsA, 60, V4("203.0.113.7")}});
  feed.Raw(0, Udp4("10.0.0.2", 5001, "8.8.8.8", 53, 64, 10, query));
  feed.Raw(5, Udp4("8.8.8.8", 53, "10.0.0.2", 5001, 60, 10, forged));  // copies the IP-ID
  feed.Raw(80, Udp4("8.8.8.8", 53, "10.0.0.2", 5001, 52, 4711, real));
  auto f = feed.Finish();
  auto c = OfKind(f, "dns.conflicting_responses");
  ASSERT_EQ(c.size(), 1u) << Kinds(f);
  EXPECT_TRUE(c[0]->proven);
  EXPECT_EQ(c[0]->signals, 4);  // conflict, ttl, ipid, timing
  EXPECT_EQ(c[0]->details["responses"][0]["answers"][0]["data"], "10.10.34.35");
  EXPECT_EQ(c[0]->details["responses"][0]["ip_ttl"], 60);
  EXPECT_EQ(c[0]->details["responses"][1]["ip_ttl"], 52);
}

TEST(Detectors, DnsConflictAloneIsNotProven) {
  Feed feed;
  Bytes query = DnsResponse(9, "x.example", {}, false);
  feed.Raw(0, Udp4("10.0.0.2", 5002, "8.8.8.8", 53, 64, 10, query));
  feed.Raw(30, Udp4("8.8.8.8", 53, "10.0.0.2", 5002, 55, 20,
                    DnsResponse(9, "x.example", {{kDnsA, 60, V4("192.0.2.1")}})));
  feed.Raw(40, Udp4("8.8.8.8", 53, "10.0.0.2", 5002, 55, 21,
                    DnsResponse(9, "x.example", {{kDnsA, 60, V4("192.0.2.2")}})));
  auto f = feed.Finish();
  auto c = OfKind(f, "dns.conflicting_responses");
  ASSERT_EQ(c.size(), 1u) << Kinds(f);
  EXPECT_EQ(c[0]->signals, 1);
  EXPECT_FALSE(c[0]->proven);
}

TEST(Detectors, DnsResponseFromUnexpectedSource) {
  Feed feed;
  feed.Raw(0,
           Udp4("10.0.0.2", 5003, "8.8.8.8", 53, 64, 10, DnsResponse(3, "y.example", {}, false)));
  feed.Raw(10, Udp4("1.1.1.1", 53, "10.0.0.2", 5003, 50, 99,
                    DnsResponse(3, "y.example", {{kDnsA, 5, V4("192.0.2.9")}})));
  auto f = feed.Finish();
  auto u = OfKind(f, "dns.unexpected_source");
  ASSERT_EQ(u.size(), 1u) << Kinds(f);
  EXPECT_EQ(u[0]->details["got"], "1.1.1.1");
  EXPECT_EQ(u[0]->details["expected"], "8.8.8.8");
  EXPECT_FALSE(u[0]->proven);
}

// A client at 10.0.0.2 talking to 198.51.100.5:80 with a 40 ms RTT.
struct TcpScript {
  Feed feed;
  uint32_t cseq = 5000;
  uint32_t sseq = 90000;
  Bytes Pkt(bool from_client, uint8_t flags, uint32_t seq, uint32_t ack, const Bytes& data,
            uint8_t ttl, uint16_t id, uint16_t window = 500, bool ts = true) {
    Ip4 h;
    h.src = from_client ? "10.0.0.2" : "198.51.100.5";
    h.dst = from_client ? "198.51.100.5" : "10.0.0.2";
    h.ttl = ttl;
    h.id = id;
    Tcp t;
    t.sport = from_client ? 41000 : 80;
    t.dport = from_client ? 80 : 41000;
    t.seq = seq;
    t.ack = ack;
    t.flags = flags;
    t.window = window;
    if (flags & kSyn) {
      t.options = SynOptions(ts);
    } else if (ts) {
      t.options = TsOption(1, 1);
    }
    return BuildIpv4(h, BuildTcp(t, data));
  }
  void Handshake() {
    feed.Raw(0, Pkt(true, kSyn, cseq, 0, {}, 64, 100));
    feed.Raw(40, Pkt(false, kSyn | kAck, sseq, cseq + 1, {}, 50, 7000, 65535));
    feed.Raw(40, Pkt(true, kAck, cseq + 1, sseq + 1, {}, 64, 101));
  }
};

TEST(Detectors, CleanTcpFlowWithGenuineResetHasNoFinding) {
  TcpScript s;
  s.Handshake();
  Bytes req(100, 'G');
  s.feed.Raw(41, s.Pkt(true, kPsh | kAck, s.cseq + 1, s.sseq + 1, req, 64, 102));
  s.feed.Raw(82, s.Pkt(false, kPsh | kAck, s.sseq + 1, s.cseq + 101, Bytes(50, 'R'), 50, 7001));
  s.feed.Raw(83, s.Pkt(true, kAck, s.cseq + 101, s.sseq + 51, {}, 64, 103));
  // The server's own reset: same TTL, its IP-ID sequence, window 0, no options.
  s.feed.Raw(200, s.Pkt(false, kRst | kAck, s.sseq + 51, s.cseq + 101, {}, 51, 7002, 0, false));
  auto f = s.feed.Finish();
  EXPECT_TRUE(f.empty()) << Kinds(f);
}

TEST(Detectors, InjectedResetRacingTheServer) {
  TcpScript s;
  s.Handshake();
  Bytes req(100, 'G');
  s.feed.Raw(41, s.Pkt(true, kPsh | kAck, s.cseq + 1, s.sseq + 1, req, 64, 102));
  // 3 ms after the request (RTT 40 ms), TTL 61 instead of 50, copies the
  // request's IP-ID, window 0, no timestamps.
  s.feed.Raw(44, s.Pkt(false, kRst | kAck, s.sseq + 1, s.cseq + 101, {}, 61, 102, 0, false));
  s.feed.Raw(45, s.Pkt(false, kRst, s.sseq + 1461, 0, {}, 61, 102, 0, false));
  // The genuine answer still arrives.
  s.feed.Raw(81, s.Pkt(false, kPsh | kAck, s.sseq + 1, s.cseq + 101, Bytes(50, 'R'), 50, 7001));
  auto f = s.feed.Finish();
  auto ttl = OfKind(f, "tcp.rst_ttl_anomaly");
  ASSERT_EQ(ttl.size(), 2u) << Kinds(f);
  EXPECT_EQ(ttl[0]->details["ttl_delta"], 11);
  EXPECT_EQ(ttl[0]->details["reference_ttl"], 50);
  EXPECT_EQ(ttl[0]->flow, "tcp 10.0.0.2:41000 -> 198.51.100.5:80");
  EXPECT_EQ(OfKind(f, "tcp.rst_too_early").size(), 1u) << Kinds(f);  // the bare RST has no trigger
  EXPECT_EQ(OfKind(f, "tcp.ipid_copied").size(), 2u) << Kinds(f);
  EXPECT_EQ(OfKind(f, "tcp.rst_seq_change").size(), 1u);
  EXPECT_EQ(OfKind(f, "tcp.data_after_rst").size(), 1u);
  auto sum = OfKind(f, "tcp.injection");
  ASSERT_EQ(sum.size(), 1u);
  EXPECT_TRUE(sum[0]->proven);
  EXPECT_EQ(sum[0]->signals, 4);  // ttl, timing, ipid, race
  for (const Finding& x : f) EXPECT_TRUE(x.proven) << x.kind;
  EXPECT_EQ(ttl[0]->details["header_hints"].size(), 2u);  // window 0, no timestamps
}

TEST(Detectors, TtlAloneIsNotProven) {
  TcpScript s;
  s.Handshake();
  s.feed.Raw(41, s.Pkt(true, kPsh | kAck, s.cseq + 1, s.sseq + 1, Bytes(10, 'G'), 64, 102));
  s.feed.Raw(300, s.Pkt(false, kRst | kAck, s.sseq + 1, s.cseq + 11, {}, 45, 9999, 0, false));
  auto f = s.feed.Finish();
  ASSERT_EQ(f.size(), 1u) << Kinds(f);
  EXPECT_EQ(f[0].kind, "tcp.rst_ttl_anomaly");
  EXPECT_EQ(f[0].signals, 1);
  EXPECT_FALSE(f[0].proven);
}

TEST(Detectors, ThresholdsAreConfigurable) {
  Thresholds th;
  th.ttl_delta = 6;
  TcpScript s{Feed(th)};
  s.Handshake();
  s.feed.Raw(41, s.Pkt(true, kPsh | kAck, s.cseq + 1, s.sseq + 1, Bytes(10, 'G'), 64, 102));
  s.feed.Raw(300, s.Pkt(false, kRst | kAck, s.sseq + 1, s.cseq + 11, {}, 45, 9999, 0, false));
  EXPECT_TRUE(s.feed.Finish().empty());  // delta 50 - 45 = 5 is below 6
}

TEST(Detectors, OverlappingSegmentsWithDifferentPayload) {
  TcpScript s;
  s.Handshake();
  s.feed.Raw(41, s.Pkt(true, kPsh | kAck, s.cseq + 1, s.sseq + 1, Bytes(20, 'G'), 64, 102));
  Bytes blockpage(60, 'B');
  Bytes genuine(80, 'H');
  s.feed.Raw(43, s.Pkt(false, kPsh | kAck | kFin, s.sseq + 1, s.cseq + 21, blockpage, 50, 7001));
  s.feed.Raw(81, s.Pkt(false, kPsh | kAck, s.sseq + 1, s.cseq + 21, genuine, 50, 7002));
  auto f = s.feed.Finish();
  auto o = OfKind(f, "tcp.overlap_mismatch");
  ASSERT_EQ(o.size(), 1u) << Kinds(f);
  EXPECT_EQ(o[0]->details["overlap_len"], 60);
  EXPECT_EQ(o[0]->details["earlier"]["bytes_hex"], "42424242424242424242424242424242");
  // The blockpage also came too early (2 ms after the request, RTT 40 ms).
  EXPECT_EQ(OfKind(f, "tcp.fin_too_early").size(), 1u) << Kinds(f);
  EXPECT_TRUE(o[0]->proven);
  // Retransmitting identical bytes is not a finding.
  TcpScript r;
  r.Handshake();
  r.feed.Raw(41, r.Pkt(true, kPsh | kAck, r.cseq + 1, r.sseq + 1, Bytes(20, 'G'), 64, 102));
  r.feed.Raw(300, r.Pkt(true, kPsh | kAck, r.cseq + 1, r.sseq + 1, Bytes(20, 'G'), 64, 103));
  EXPECT_TRUE(r.feed.Finish().empty());
}

TEST(Detectors, MissingTimestampsOnData) {
  TcpScript s;
  s.Handshake();
  s.feed.Raw(41, s.Pkt(true, kPsh | kAck, s.cseq + 1, s.sseq + 1, Bytes(20, 'G'), 64, 102));
  s.feed.Raw(81, s.Pkt(false, kAck, s.sseq + 1, s.cseq + 21, {}, 50, 7001));
  s.feed.Raw(
      82, s.Pkt(false, kPsh | kAck, s.sseq + 1, s.cseq + 21, Bytes(9, 'X'), 50, 7002, 500, false));
  auto f = s.feed.Finish();
  auto m = OfKind(f, "tcp.missing_timestamps");
  ASSERT_EQ(m.size(), 1u) << Kinds(f);
  EXPECT_EQ(m[0]->details["count"], 1);
}

TEST(Detectors, IcmpUnreachableFromRouter) {
  Feed feed;
  Tcp t;
  Bytes original = BuildIpv4(Ip4(), BuildTcp(t));
  Bytes icmp = {3, 13, 0, 0, 0, 0, 0, 0};
  icmp.insert(icmp.end(), original.begin(), original.begin() + 28);
  Ip4 h;
  h.src = "192.0.2.1";
  h.dst = "10.0.0.2";
  h.proto = 1;
  feed.Raw(0, BuildIpv4(h, icmp));
  feed.Raw(1, BuildIpv4(h, icmp));
  // Port unreachable from the destination itself is an ordinary answer.
  Ip4 d = h;
  d.src = "93.184.216.34";
  feed.Raw(2, BuildIpv4(d, icmp));
  auto f = feed.Finish();
  ASSERT_EQ(f.size(), 1u) << Kinds(f);
  EXPECT_EQ(f[0].kind, "icmp.unreachable_from_router");
  EXPECT_EQ(f[0].flow, "tcp 10.0.0.2:40000 -> 93.184.216.34:443");
  EXPECT_EQ(f[0].details["router"], "192.0.2.1");
  EXPECT_EQ(f[0].details["count"], 2);
  EXPECT_EQ(f[0].details["meaning"], "communication administratively prohibited");
}

// --- Real captures (../shared/data/pcaps, see SOURCES.md) -------------------

std::string SharedPcap(const std::string& rel) {
#ifdef RASAD_SHARED_DIR
  std::string path = std::string(RASAD_SHARED_DIR) + "/data/pcaps/" + rel;
  struct stat st;
  if (stat(path.c_str(), &st) == 0) return path;
#endif
  return "";
}

#define REQUIRE_PCAP(var, rel)                                    \
  std::string var = SharedPcap(rel);                              \
  if (var.empty())                                                \
    GTEST_SKIP() << "shared capture " << rel << " not available " \
                 << "(RASAD_SHARED_DIR/data/pcaps)";

struct Analysis {
  PcapReadStats read;
  DetectorStats stats;
  std::vector<Finding> findings;
};

Analysis Analyze(const std::string& path) {
  Analysis a;
  Detector d;
  std::string err;
  EXPECT_TRUE(ReadPcapFile(
      path, [&](const Packet& p) { d.Add(p); }, &a.read, &err))
      << err;
  a.findings = d.Finish();
  a.stats = d.stats();
  return a;
}

TEST(RealCaptures, ZeekRstInjectShowsTheInjectedResetWithItsTtlDifference) {
  REQUIRE_PCAP(path, "zeek/rst-inject-rae.pcap");
  Analysis a = Analyze(path);
  EXPECT_EQ(a.read.frames, 9u);
  EXPECT_EQ(a.read.decode_errors, 0u);
  auto ttl = OfKind(a.findings, "tcp.rst_ttl_anomaly");
  ASSERT_EQ(ttl.size(), 1u) << Kinds(a.findings);
  EXPECT_EQ(ttl[0]->flow, "tcp 1.2.0.2:2527 -> 1.2.0.3:6649");
  EXPECT_EQ(ttl[0]->details["packet"]["ip_ttl"], 46);
  EXPECT_EQ(ttl[0]->details["reference_ttl"], 49);
  EXPECT_EQ(ttl[0]->details["ttl_delta"], -3);
  EXPECT_TRUE(ttl[0]->proven);
  // The same reset arrived 233.7 ms after the SYN although the SYN-ACK took
  // 1266 ms, and carries the SYN's own IP-ID 5461.
  auto early = OfKind(a.findings, "tcp.rst_too_early");
  ASSERT_EQ(early.size(), 1u);
  EXPECT_NEAR(early[0]->details["dt_ms"].get<double>(), 233.736, 0.001);
  EXPECT_NEAR(early[0]->details["handshake_rtt_ms"].get<double>(), 1266.240, 0.001);
  auto ipid = OfKind(a.findings, "tcp.ipid_copied");
  ASSERT_EQ(ipid.size(), 1u);
  EXPECT_EQ(ipid[0]->details["packet"]["ip_id"], 5461);
  EXPECT_EQ(OfKind(a.findings, "tcp.data_after_rst").size(), 1u);
  auto sum = OfKind(a.findings, "tcp.injection");
  ASSERT_EQ(sum.size(), 1u);
  EXPECT_EQ(sum[0]->signals, 4);
  // The later resets carry the server's TTL 49: no TTL finding for them.
  for (const Finding* x : ttl) EXPECT_NE(x->details["packet"]["ip_ttl"], 49);
}

TEST(RealCaptures, ZeekDnsTwoResponsesAreDuplicatesNotInjection) {
  REQUIRE_PCAP(path, "zeek/dns-two-responses.pcap");
  Analysis a = Analyze(path);
  EXPECT_EQ(a.read.decode_errors, 0u);
  EXPECT_EQ(a.stats.dns_queries, 1u);
  EXPECT_EQ(a.stats.dns_responses, 2u);
  ASSERT_EQ(a.findings.size(), 1u) << Kinds(a.findings);
  const Finding& f = a.findings[0];
  EXPECT_EQ(f.kind, "dns.duplicate_response");
  EXPECT_FALSE(f.proven);
  EXPECT_EQ(f.signals, 0);
  EXPECT_EQ(f.details["query"]["qname"], "www.cmu.edu");
  EXPECT_EQ(f.details["query"]["id"], 21140);
  ASSERT_EQ(f.details["responses"].size(), 2u);
  for (const auto& r : f.details["responses"]) {
    EXPECT_EQ(r["ip_ttl"], 64);
    EXPECT_EQ(r["ip_id"], 5667);
  }
  EXPECT_TRUE(f.details["same_ip_id"].get<bool>());
  EXPECT_TRUE(OfKind(a.findings, "dns.conflicting_responses").empty());
}

TEST(RealCaptures, CleanCapturesParseWithoutErrorAndGiveNoFinding) {
  const char* files[] = {"zeek/syn-then-rst.pcap",
                         "zeek/chrome-34-google.pcap",
                         "gfw-quic-sni/flow-tracking-time.pcap",
                         "gfw-quic-sni/beijing-ttl_anon.pcap",
                         "gfw-quic-sni/dns_attacker_client_anon.pcap",
                         "gfw-quic-sni/dns_server_anon.pcap",
                         "gfw-quic-sni/dns_victim_client_anon.pcap",
                         "gfw-quic-sni/quic_attacker_client_anon.pcap",
                         "gfw-quic-sni/quic_server_anon.pcap",
                         "gfw-quic-sni/quic_victim_client_anon.pcap"};
  int seen = 0;
  for (const char* rel : files) {
    std::string path = SharedPcap(rel);
    if (path.empty()) continue;
    ++seen;
    Analysis a = Analyze(path);
    EXPECT_GT(a.read.frames, 0u) << rel;
    EXPECT_EQ(a.read.decode_errors, 0u) << rel;
    EXPECT_EQ(a.read.decoded, a.read.frames) << rel;
    EXPECT_TRUE(a.read.read_error.empty()) << rel << ": " << a.read.read_error;
    EXPECT_TRUE(a.findings.empty()) << rel << ": " << Kinds(a.findings);
  }
  if (seen == 0) GTEST_SKIP() << "shared captures not available (RASAD_SHARED_DIR/data/pcaps)";
}

TEST(RealCaptures, LinuxCookedV2) {
  REQUIRE_PCAP(path, "gfw-quic-sni/flow-tracking-time.pcap");
  Analysis a = Analyze(path);
  EXPECT_EQ(a.read.link_type, kLinkLinuxSll2);
  EXPECT_EQ(a.read.frames, 11u);
  EXPECT_EQ(a.stats.udp_packets, 11u);
}

TEST(PcapFile, AnalyzePrintsTheInjectedReset) {
  REQUIRE_PCAP(path, "zeek/rst-inject-rae.pcap");
  std::ostringstream out;
  std::ostringstream err;
  EXPECT_EQ(AnalyzePcapFile(path, out, err), 0);
  std::string text = out.str();
  EXPECT_NE(text.find("link type EN10MB, 9 frames, 9 decoded"), std::string::npos) << text;
  EXPECT_NE(text.find("tcp.rst_ttl_anomaly  tcp 1.2.0.2:2527 -> 1.2.0.3:6649"), std::string::npos)
      << text;
  EXPECT_NE(text.find("IP TTL 46, SYN-ACK had 49 (delta -3)"), std::string::npos) << text;
  EXPECT_NE(text.find("PROVEN"), std::string::npos);
  EXPECT_TRUE(err.str().empty()) << err.str();
}

TEST(PcapFile, UnreadableFilesAreErrorsNamingTheFile) {
  std::ostringstream out;
  std::ostringstream err;
  EXPECT_NE(AnalyzePcapFile("/nonexistent/capture.pcap", out, err), 0);
  EXPECT_NE(err.str().find("/nonexistent/capture.pcap"), std::string::npos) << err.str();

  std::string junk = testing::TempDir() + "/capture_test_junk.pcap";
  std::ofstream(junk) << "this is not a capture file\n";
  err.str("");
  EXPECT_NE(AnalyzePcapFile(junk, out, err), 0);
  EXPECT_NE(err.str().find(junk), std::string::npos) << err.str();
  std::remove(junk.c_str());
}

void Le16(Bytes* b, uint16_t v) {
  b->push_back(static_cast<uint8_t>(v));
  b->push_back(static_cast<uint8_t>(v >> 8));
}
void Le32(Bytes* b, uint32_t v) {
  Le16(b, static_cast<uint16_t>(v));
  Le16(b, static_cast<uint16_t>(v >> 16));
}

TEST(PcapFile, ReadsPcapngWithNanosecondTimestamps) {
  // Section header, one raw-IP interface with if_tsresol = 9 (ns), one
  // enhanced packet block.
  Bytes f;
  Le32(&f, 0x0A0D0D0A);
  Le32(&f, 28);
  Le32(&f, 0x1A2B3C4D);
  Le16(&f, 1);
  Le16(&f, 0);
  Le32(&f, 0xFFFFFFFF);
  Le32(&f, 0xFFFFFFFF);
  Le32(&f, 28);
  Le32(&f, 1);
  Le32(&f, 32);
  Le16(&f, kLinkRawFile);
  Le16(&f, 0);
  Le32(&f, 65535);
  Le16(&f, 9);  // if_tsresol
  Le16(&f, 1);
  Append(&f, Bytes{9, 0, 0, 0});
  Le32(&f, 0);  // opt_endofopt
  Le32(&f, 32);
  Bytes pkt = SampleTcpV4();
  Bytes padded = pkt;
  while (padded.size() % 4) padded.push_back(0);
  uint64_t ts = 1700000000123456789ULL;
  uint32_t block = static_cast<uint32_t>(32 + padded.size());
  Le32(&f, 6);
  Le32(&f, block);
  Le32(&f, 0);
  Le32(&f, static_cast<uint32_t>(ts >> 32));
  Le32(&f, static_cast<uint32_t>(ts));
  Le32(&f, static_cast<uint32_t>(pkt.size()));
  Le32(&f, static_cast<uint32_t>(pkt.size()));
  Append(&f, padded);
  Le32(&f, block);
  std::string path = testing::TempDir() + "/capture_test.pcapng";
  {
    std::ofstream o(path, std::ios::binary);
    o.write(reinterpret_cast<const char*>(f.data()), static_cast<std::streamsize>(f.size()));
  }
  PcapReadStats rs;
  std::string err;
  std::vector<int64_t> times;
  ASSERT_TRUE(ReadPcapFile(
      path, [&](const Packet& p) { times.push_back(p.ts_ns); }, &rs, &err))
      << err;
  std::remove(path.c_str());
  EXPECT_EQ(rs.decode_errors, 0u);
  ASSERT_EQ(times.size(), 1u);
  EXPECT_EQ(times[0], 1700000000123456789LL);
}

}  // namespace
}  // namespace capture
}  // namespace rasad
