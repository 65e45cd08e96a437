// `rasad evidence export`: own IPv4/IPv6/MAC addresses rewritten everywhere
// (link layer, IP, quoted packets of ICMP errors), checksums valid by an
// independent computation, nothing of the original addresses left, the rest
// byte for byte.
#include "probe/capture/export.h"

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <pcap/pcap.h>

#include <algorithm>
#include <cstring>
#include <filesystem>
#include <string>
#include <vector>

#include "probe/core/clock.h"

namespace rasad::capture {
namespace {

using Bytes = std::vector<uint8_t>;

// ---- an independent checksum (no code shared with export.cc)
uint16_t Csum(const Bytes& b) {
  uint64_t s = 0;
  for (size_t i = 0; i < b.size(); ++i) s += i % 2 ? b[i] : b[i] << 8;
  while (s >> 16) s = (s & 0xffff) + (s >> 16);
  return static_cast<uint16_t>(~s);
}
Bytes Cat(std::initializer_list<Bytes> parts) {
  Bytes out;
  for (const Bytes& p : parts) out.insert(out.end(), p.begin(), p.end());
  return out;
}
Bytes A4(const char* s) {
  Bytes b(4);
  inet_pton(AF_INET, s, b.data());
  return b;
}
Bytes A6(const char* s) {
  Bytes b(16);
  inet_pton(AF_INET6, s, b.data());
  return b;
}
Bytes Be16(size_t v) { return {static_cast<uint8_t>(v >> 8), static_cast<uint8_t>(v)}; }
Bytes Be32(size_t v) {
  return {static_cast<uint8_t>(v >> 24), static_cast<uint8_t>(v >> 16),
          static_cast<uint8_t>(v >> 8), static_cast<uint8_t>(v)};
}
void Put16(Bytes* b, size_t off, uint16_t v) {
  (*b)[off] = v >> 8;
  (*b)[off + 1] = v & 0xff;
}
uint16_t Get16(const Bytes& b, size_t off) {
  return static_cast<uint16_t>(b[off] << 8 | b[off + 1]);
}

Bytes PseudoV4(const Bytes& src, const Bytes& dst, uint8_t proto, size_t len) {
  return Cat({src, dst, {0, proto}, Be16(len)});
}
Bytes PseudoV6(const Bytes& src, const Bytes& dst, uint8_t proto, size_t len) {
  return Cat({src, dst, Be32(len), {0, 0, 0, proto}});
}

// Transport segment with a valid checksum (csum_off: 16 TCP, 6 UDP, 2 ICMP).
Bytes WithChecksum(Bytes seg, size_t csum_off, const Bytes& pseudo) {
  Put16(&seg, csum_off, 0);
  Put16(&seg, csum_off, Csum(Cat({pseudo, seg})));
  return seg;
}
Bytes Tcp(uint16_t sport, uint16_t dport, const std::string& payload) {
  Bytes t = Cat(
      {Be16(sport), Be16(dport), Be32(1000), Be32(2000), {0x50, 0x18}, Be16(502), {0, 0, 0, 0}});
  t.insert(t.end(), payload.begin(), payload.end());
  return t;
}
Bytes Udp(uint16_t sport, uint16_t dport, const std::string& payload) {
  Bytes u = Cat({Be16(sport), Be16(dport), Be16(8 + payload.size()), {0, 0}});
  u.insert(u.end(), payload.begin(), payload.end());
  return u;
}
Bytes Ip4(const Bytes& src, const Bytes& dst, uint8_t proto, const Bytes& l4, uint8_t ttl = 64) {
  Bytes h =
      Cat({{0x45, 0}, Be16(20 + l4.size()), {0x12, 0x34, 0x40, 0, ttl, proto, 0, 0}, src, dst});
  Put16(&h, 10, Csum(h));
  return Cat({h, l4});
}
Bytes Ip6(const Bytes& src, const Bytes& dst, uint8_t nh, const Bytes& l4) {
  return Cat({{0x60, 0, 0, 0}, Be16(l4.size()), {nh, 64}, src, dst, l4});
}
Bytes Eth(const Bytes& dst, const Bytes& src, uint16_t type, const Bytes& payload) {
  return Cat({dst, src, Be16(type), payload});
}

const Bytes kOwnMac = {0x52, 0x54, 0x00, 0x12, 0x34, 0x56};
const Bytes kGwMac = {0xaa, 0xbb, 0xcc, 0xdd, 0xee, 0xff};
const char* kOwn4 = "10.9.8.7";
const char* kOwn6 = "2001:470:1f0b::77";
const char* kRemote4 = "93.184.216.34";
const char* kRemote6 = "2606:2800:220:1::1";
const char* kRouter4 = "62.1.2.3";

struct Frame {
  Bytes data;
  uint32_t wire_len;
};

void WriteFile(const std::string& path, const std::vector<Frame>& frames) {
  pcap_t* dead =
      pcap_open_dead_with_tstamp_precision(DLT_EN10MB, 65535, PCAP_TSTAMP_PRECISION_NANO);
  pcap_dumper_t* d = pcap_dump_open(dead, path.c_str());
  ASSERT_NE(d, nullptr) << pcap_geterr(dead);
  int64_t t = 1700000000000000000LL;
  for (const Frame& f : frames) {
    pcap_pkthdr h{};
    h.ts.tv_sec = t / 1000000000;
    h.ts.tv_usec = t % 1000000000 + 1000;
    h.caplen = static_cast<bpf_u_int32>(f.data.size());
    h.len = f.wire_len;
    pcap_dump(reinterpret_cast<u_char*>(d), &h, f.data.data());
  }
  pcap_dump_close(d);
  pcap_close(dead);
}

std::vector<Frame> ReadFile(const std::string& path) {
  char err[PCAP_ERRBUF_SIZE];
  pcap_t* p = pcap_open_offline(path.c_str(), err);
  EXPECT_NE(p, nullptr) << err;
  std::vector<Frame> out;
  if (!p) return out;
  EXPECT_EQ(pcap_datalink(p), DLT_EN10MB);
  pcap_pkthdr* h;
  const u_char* b;
  while (pcap_next_ex(p, &h, &b) == 1) out.push_back({Bytes(b, b + h->caplen), h->len});
  pcap_close(p);
  return out;
}

bool Contains(const Bytes& hay, const Bytes& needle) {
  return std::search(hay.begin(), hay.end(), needle.begin(), needle.end()) != hay.end();
}

// Verifies every checksum of a complete Ethernet/IP frame independently.
void VerifyChecksums(const Bytes& f, const std::string& what) {
  SCOPED_TRACE(what);
  uint16_t type = Get16(f, 12);
  Bytes ip(f.begin() + 14, f.end());
  if (type == 0x0800) {
    size_t hl = (ip[0] & 15) * 4;
    EXPECT_EQ(Csum(Bytes(ip.begin(), ip.begin() + hl)), 0) << "IPv4 header";
    uint8_t proto = ip[9];
    Bytes l4(ip.begin() + hl, ip.begin() + Get16(ip, 2));
    Bytes src(ip.begin() + 12, ip.begin() + 16), dst(ip.begin() + 16, ip.begin() + 20);
    if (proto == 6 || proto == 17)
      EXPECT_EQ(Csum(Cat({PseudoV4(src, dst, proto, l4.size()), l4})), 0) << "TCP/UDP";
    if (proto == 1) {
      EXPECT_EQ(Csum(l4), 0) << "ICMP";
      Bytes quote(l4.begin() + 8, l4.end());
      EXPECT_EQ(Csum(Bytes(quote.begin(), quote.begin() + 20)), 0) << "quoted IPv4 header";
    }
  } else {
    ASSERT_EQ(type, 0x86dd);
    uint8_t nh = ip[6];
    Bytes l4(ip.begin() + 40, ip.end());
    Bytes src(ip.begin() + 8, ip.begin() + 24), dst(ip.begin() + 24, ip.begin() + 40);
    EXPECT_EQ(Csum(Cat({PseudoV6(src, dst, nh, l4.size()), l4})), 0) << "TCP/ICMPv6";
  }
}

TEST(EvidenceExport, RewritesOwnAddressesAndFixesChecksums) {
  Bytes own4 = A4(kOwn4), own6 = A6(kOwn6), rem4 = A4(kRemote4), rem6 = A6(kRemote6);
  std::vector<Frame> in;
  std::string http = "GET / HTTP/1.1\r\nHost: example.com\r\n\r\n";
  // 1. our TCP segment as captured on the way out: checksum offloaded (0).
  Bytes tcp_out = Tcp(40000, 80, http);
  in.push_back({Eth(kGwMac, kOwnMac, 0x0800, Ip4(own4, rem4, 6, tcp_out)), 0});
  // 2. a DNS answer to us.
  Bytes udp = WithChecksum(Udp(53, 33000, std::string("\x12\x34\x81\x80", 4) + "answer"), 6,
                           PseudoV4(rem4, own4, 17, 18));
  in.push_back({Eth(kOwnMac, kGwMac, 0x0800, Ip4(rem4, own4, 17, udp, 57)), 0});
  // 3. IPv6 TCP from us.
  Bytes tcp6 = WithChecksum(Tcp(40001, 443, "tls"), 16, PseudoV6(own6, rem6, 6, 23));
  in.push_back({Eth(kGwMac, kOwnMac, 0x86dd, Ip6(own6, rem6, 6, tcp6)), 0});
  // 4. a router refusing our UDP: ICMP 3/13 quoting our packet (IP + 8 bytes).
  Bytes quoted =
      Ip4(own4, rem4, 17, WithChecksum(Udp(33001, 53, "query"), 6, PseudoV4(own4, rem4, 17, 13)));
  quoted.resize(28);
  Bytes icmp = Cat({{3, 13, 0, 0, 0, 0, 0, 0}, quoted});
  Put16(&icmp, 2, Csum(icmp));
  in.push_back({Eth(kOwnMac, kGwMac, 0x0800, Ip4(A4(kRouter4), own4, 1, icmp, 250)), 0});
  // 5. ICMPv6 destination unreachable quoting our TCP SYN.
  Bytes q6 = Ip6(own6, rem6, 6, WithChecksum(Tcp(40002, 443, ""), 16, PseudoV6(own6, rem6, 6, 20)));
  Bytes icmp6 = Cat({{1, 1, 0, 0, 0, 0, 0, 0}, q6});
  icmp6 = WithChecksum(icmp6, 2, PseudoV6(rem6, own6, 58, icmp6.size()));
  in.push_back({Eth(kOwnMac, kGwMac, 0x86dd, Ip6(rem6, own6, 58, icmp6)), 0});
  // 6. a blockpage cut by the snaplen: valid checksum over the whole segment.
  std::string page(400, 'x');
  Bytes cut_tcp = WithChecksum(Tcp(80, 40000, page), 16, PseudoV4(rem4, own4, 6, 20 + page.size()));
  Bytes full6 = Eth(kOwnMac, kGwMac, 0x0800, Ip4(rem4, own4, 6, cut_tcp));
  Bytes cut6(full6.begin(), full6.begin() + 14 + 20 + 20 + 50);
  in.push_back({cut6, static_cast<uint32_t>(full6.size())});
  // 7. ARP reply from us.
  Bytes arp = Cat({{0, 1, 8, 0, 6, 4, 0, 2}, kOwnMac, own4, kGwMac, A4("10.9.8.1")});
  in.push_back({Eth(kGwMac, kOwnMac, 0x0806, arp), 0});
  for (Frame& f : in)
    if (f.wire_len == 0) f.wire_len = static_cast<uint32_t>(f.data.size());

  std::string dir = ::testing::TempDir() + "/rasad-export-" + NewUid();
  std::filesystem::create_directories(dir + "/evidence/cycle-1");
  WriteFile(dir + "/evidence/cycle-1/m1.pcap", in);

  AddressRewriter rw;
  // The volunteer's addresses as the probe knows them: observation local_addr
  // values and the interface's MAC (the host's own interfaces are added by
  // `rasad evidence export` with AddInterfaceAddresses()).
  Observation o1, o2;
  o1.local_addr = kOwn4;
  o2.local_addr = kOwn6;
  rw.AddObservationAddresses({o1, o2});
  MacAddr mac;
  std::copy(kOwnMac.begin(), kOwnMac.end(), mac.begin());
  rw.AddMac(mac);
  EXPECT_GT(rw.AddInterfaceAddresses(), 0);  // lo at least

  ExportStats stats;
  std::vector<std::string> written;
  Status st = ExportEvidenceDir(dir + "/evidence", dir + "/shared", rw, &stats, &written);
  ASSERT_TRUE(st.ok()) << st.ToString();
  ASSERT_EQ(written.size(), 1u);
  EXPECT_EQ(written[0], dir + "/shared/cycle-1/m1.pcap");
  std::vector<Frame> out = ReadFile(written[0]);
  ASSERT_EQ(out.size(), in.size());
  EXPECT_EQ(stats.frames, in.size());
  EXPECT_EQ(stats.frames_not_parsed, 0u);
  EXPECT_EQ(stats.residual_frames, 0u);

  Bytes new4 = A4("192.0.2.1"), new6 = A6("2001:db8::1");
  Bytes new_mac = {0x02, 0, 0, 0, 0, 0x01};
  for (size_t i = 0; i < out.size(); ++i) {
    SCOPED_TRACE("frame " + std::to_string(i + 1));
    const Bytes& f = out[i].data;
    ASSERT_EQ(f.size(), in[i].data.size());
    EXPECT_EQ(out[i].wire_len, in[i].wire_len);
    // Nothing of the volunteer remains.
    EXPECT_FALSE(Contains(f, own4));
    EXPECT_FALSE(Contains(f, own6));
    EXPECT_FALSE(Contains(f, kOwnMac));
    EXPECT_TRUE(Contains(f, new_mac));
    // The other side is untouched.
    EXPECT_TRUE(Contains(f, kGwMac));
    if (i != 6) EXPECT_TRUE(Contains(f, rem4) || Contains(f, rem6));
    if (i != 5 && i != 6) VerifyChecksums(f, "frame " + std::to_string(i + 1));
  }
  EXPECT_TRUE(Contains(out[0].data, new4));
  EXPECT_TRUE(Contains(out[2].data, new6));
  EXPECT_TRUE(Contains(out[3].data, A4(kRouter4)));  // the router stays: it is evidence
  EXPECT_TRUE(Contains(out[6].data, new4));          // ARP sender address
  // Payloads intact.
  std::string http_out(out[0].data.end() - http.size(), out[0].data.end());
  EXPECT_EQ(http_out, http);
  // The cut frame: its TCP checksum is what the whole rewritten segment needs.
  {
    Bytes tcp_cut(out[5].data.begin() + 34, out[5].data.end());
    Bytes whole = cut_tcp;
    std::copy(tcp_cut.begin(), tcp_cut.begin() + 20, whole.begin());  // header as exported
    Put16(&whole, 16, 0);
    uint16_t expect = Csum(Cat({PseudoV4(rem4, new4, 6, whole.size()), whole}));
    EXPECT_EQ(Get16(tcp_cut, 16), expect);
    Bytes iph(out[5].data.begin() + 14, out[5].data.begin() + 34);
    EXPECT_EQ(Csum(iph), 0);
  }
  // The quoted UDP checksum in the ICMP error was updated, not left stale:
  // recompute it over the quoted packet as it would be in full.
  {
    Bytes q(out[3].data.begin() + 14 + 20 + 8, out[3].data.end());
    Bytes full_udp = Udp(33001, 53, "query");
    Put16(&full_udp, 6, 0);
    uint16_t expect = Csum(Cat({PseudoV4(new4, rem4, 17, full_udp.size()), full_udp}));
    EXPECT_EQ(Get16(q, 20 + 6), expect);
  }
  EXPECT_GE(stats.checksums_recomputed, 5u);
  EXPECT_GE(stats.checksums_adjusted, 2u);
  std::filesystem::remove_all(dir);
}

TEST(EvidenceExport, MappingIsConsistentAcrossAddresses) {
  AddressRewriter rw;
  EXPECT_TRUE(rw.AddAddressText("10.0.0.5"));
  EXPECT_TRUE(rw.AddAddressText("[fe80::1%eth0]"));
  EXPECT_TRUE(rw.AddAddressText("100.64.1.2"));
  EXPECT_TRUE(rw.AddAddressText("10.0.0.5"));  // again: same replacement
  EXPECT_FALSE(rw.AddAddressText("example.com"));
  IpAddr a;
  ASSERT_TRUE(rw.AddAddressText("10.0.0.5"));
  IpAddr x;
  uint8_t b[4] = {10, 0, 0, 5};
  x = IpAddr::V4(b);
  EXPECT_EQ(rw.Replacement(x).ToString(), "192.0.2.1");
  uint8_t c[4] = {100, 64, 1, 2};
  EXPECT_EQ(rw.Replacement(IpAddr::V4(c)).ToString(), "192.0.2.2");
  uint8_t d[16] = {0xfe, 0x80};
  d[15] = 1;
  EXPECT_EQ(rw.Replacement(IpAddr::V6(d)).ToString(), "2001:db8::1");
  uint8_t e[4] = {8, 8, 8, 8};
  EXPECT_EQ(rw.Replacement(IpAddr::V4(e)).ToString(), "8.8.8.8");
  (void)a;
}

}  // namespace
}  // namespace rasad::capture
