#include "probe/capture/export.h"

#include <arpa/inet.h>
#include <ifaddrs.h>
#include <linux/if_packet.h>
#include <netinet/in.h>
#include <pcap/pcap.h>

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <memory>
#include <system_error>

#include "probe/capture/live_capture.h"

namespace rasad {
namespace capture {

namespace {

uint16_t Rd16(const uint8_t* p) { return static_cast<uint16_t>((p[0] << 8) | p[1]); }
void Wr16(uint8_t* p, uint16_t v) {
  p[0] = static_cast<uint8_t>(v >> 8);
  p[1] = static_cast<uint8_t>(v & 0xff);
}

// RFC 1624 eqn. 3: HC' = ~(~HC + ~m + m'), over the 16-bit words that
// changed (old and now are n bytes at the same even offset in the covered
// data).
void AdjustChecksum(uint8_t* field, const uint8_t* old, const uint8_t* now, size_t n) {
  uint32_t sum = static_cast<uint16_t>(~Rd16(field));
  for (size_t i = 0; i + 1 < n; i += 2) {
    sum += static_cast<uint16_t>(~Rd16(old + i));
    sum += Rd16(now + i);
  }
  while (sum >> 16) sum = (sum & 0xffff) + (sum >> 16);
  Wr16(field, static_cast<uint16_t>(~sum));
}

bool IsIpv6ExtHeader(uint8_t nh) {
  return nh == 0 || nh == 43 || nh == 44 || nh == 60 || nh == 51 || nh == 135 || nh == 139 ||
         nh == 140;
}

}  // namespace

uint32_t ChecksumAdd(uint32_t sum, const uint8_t* data, size_t len) {
  size_t i = 0;
  for (; i + 1 < len; i += 2) sum += Rd16(data + i);
  if (i < len) sum += static_cast<uint32_t>(data[i]) << 8;
  while (sum >> 16) sum = (sum & 0xffff) + (sum >> 16);
  return sum;
}

uint16_t ChecksumFold(uint32_t sum) {
  while (sum >> 16) sum = (sum & 0xffff) + (sum >> 16);
  return static_cast<uint16_t>(~sum);
}

void AddressRewriter::AddAddress(const IpAddr& addr) {
  if (addr.family != 4 && addr.family != 6) return;
  if (ip_.count(addr)) return;
  IpAddr r;
  r.family = addr.family;
  if (addr.family == 4) {
    int n = v4_++;
    static const uint8_t kNets[3][3] = {{192, 0, 2}, {198, 51, 100}, {203, 0, 113}};
    const uint8_t* net = kNets[(n / 254) % 3];
    uint8_t b[4] = {net[0], net[1], net[2], static_cast<uint8_t>(n % 254 + 1)};
    r = IpAddr::V4(b);
  } else {
    int n = ++v6_;
    uint8_t b[16] = {0x20, 0x01, 0x0d, 0xb8};
    b[14] = static_cast<uint8_t>(n >> 8);
    b[15] = static_cast<uint8_t>(n & 0xff);
    r = IpAddr::V6(b);
  }
  ip_[addr] = r;
}

bool AddressRewriter::AddAddressText(const std::string& text) {
  IpAddr a;
  std::string plain = text;
  if (plain.size() >= 2 && plain.front() == '[' && plain.back() == ']')
    plain = plain.substr(1, plain.size() - 2);
  plain = plain.substr(0, plain.find('%'));  // scope ("fe80::1%eth0")
  if (!ParseIpAddr(plain, &a)) return false;
  AddAddress(a);
  return true;
}

void AddressRewriter::AddMac(const MacAddr& mac) {
  if (mac == MacAddr{} || mac_.count(mac)) return;
  int n = ++macs_;
  mac_[mac] = MacAddr{0x02, 0, 0, 0, static_cast<uint8_t>(n >> 8), static_cast<uint8_t>(n & 0xff)};
}

int AddressRewriter::AddInterfaceAddresses() {
  struct ifaddrs* list = nullptr;
  if (getifaddrs(&list) != 0) return 0;
  size_t before = size();
  for (struct ifaddrs* i = list; i; i = i->ifa_next) {
    if (!i->ifa_addr) continue;
    int fam = i->ifa_addr->sa_family;
    if (fam == AF_INET) {
      auto* sin = reinterpret_cast<const sockaddr_in*>(i->ifa_addr);
      AddAddress(IpAddr::V4(reinterpret_cast<const uint8_t*>(&sin->sin_addr)));
    } else if (fam == AF_INET6) {
      auto* sin6 = reinterpret_cast<const sockaddr_in6*>(i->ifa_addr);
      AddAddress(IpAddr::V6(reinterpret_cast<const uint8_t*>(&sin6->sin6_addr)));
    } else if (fam == AF_PACKET) {
      auto* sll = reinterpret_cast<const sockaddr_ll*>(i->ifa_addr);
      if (sll->sll_halen == 6) {
        MacAddr m;
        std::memcpy(m.data(), sll->sll_addr, 6);
        AddMac(m);
      }
    }
  }
  freeifaddrs(list);
  return static_cast<int>(size() - before);
}

void AddressRewriter::AddObservationAddresses(const std::vector<Observation>& observations) {
  for (const Observation& o : observations)
    if (!o.local_addr.empty()) AddAddressText(o.local_addr);
}

IpAddr AddressRewriter::Replacement(const IpAddr& addr) const {
  auto it = ip_.find(addr);
  return it == ip_.end() ? addr : it->second;
}

MacAddr AddressRewriter::Replacement(const MacAddr& mac) const {
  auto it = mac_.find(mac);
  return it == mac_.end() ? mac : it->second;
}

bool AddressRewriter::ContainsOwn(const uint8_t* data, size_t len) const {
  auto has = [&](const uint8_t* needle, size_t n) {
    if (n == 0 || len < n) return false;
    return std::search(data, data + len, needle, needle + n) != data + len;
  };
  for (const auto& [a, r] : ip_)
    if (has(a.bytes.data(), a.family == 4 ? 4 : 16)) return true;
  for (const auto& [m, r] : mac_)
    if (has(m.data(), 6)) return true;
  return false;
}

bool AddressRewriter::RewriteMac(uint8_t* p, ExportStats* stats) const {
  MacAddr m;
  std::memcpy(m.data(), p, 6);
  auto it = mac_.find(m);
  if (it == mac_.end()) return false;
  std::memcpy(p, it->second.data(), 6);
  ++stats->mac_rewrites;
  return true;
}

// Rewrites the quoted packet of an ICMP error (the start of a datagram we
// sent or received): its addresses, its IPv4 header checksum, and its
// UDP/TCP checksum by RFC 1624 when the quote reaches that field (the quoted
// packet is incomplete, so it cannot be recomputed). Returns true when
// anything changed.
bool AddressRewriter::RewriteIcmpQuote(uint8_t* in, size_t len, ExportStats* stats) const {
  if (len < 1) return false;
  int ver = in[0] >> 4;
  size_t hl, addr_off, addr_len;
  uint8_t proto;
  if (ver == 4) {
    hl = static_cast<size_t>(in[0] & 0x0f) * 4;
    if (hl < 20 || len < 20) return false;
    addr_off = 12, addr_len = 4, proto = in[9];
  } else if (ver == 6) {
    if (len < 40) return false;
    hl = 40, addr_off = 8, addr_len = 16, proto = in[6];
  } else {
    return false;
  }
  uint8_t old[32];
  std::memcpy(old, in + addr_off, 2 * addr_len);
  bool changed = false;
  for (int k = 0; k < 2; ++k) {
    uint8_t* a = in + addr_off + k * addr_len;
    IpAddr ip = addr_len == 4 ? IpAddr::V4(a) : IpAddr::V6(a);
    auto it = ip_.find(ip);
    if (it == ip_.end()) continue;
    std::memcpy(a, it->second.bytes.data(), addr_len);
    ++stats->ip_rewrites;
    changed = true;
  }
  if (!changed) return false;
  if (ver == 4 && len >= hl) {
    Wr16(in + 10, 0);
    Wr16(in + 10, ChecksumFold(ChecksumAdd(0, in, hl)));
    ++stats->checksums_recomputed;
  }
  size_t csum_off = proto == 17 ? 6 : proto == 6 ? 16 : 0;
  if (csum_off && len >= hl + csum_off + 2) {
    uint8_t* field = in + hl + csum_off;
    if (!(proto == 17 && ver == 4 && Rd16(field) == 0)) {
      AdjustChecksum(field, old, in + addr_off, 2 * addr_len);
      ++stats->checksums_adjusted;
    }
  }
  return true;
}

// ip: cap bytes captured; cut: the frame was cut by the snaplen.
bool AddressRewriter::RewriteIp(uint8_t* ip, size_t cap, bool cut, ExportStats* stats) const {
  if (cap < 1) return false;
  int ver = ip[0] >> 4;
  size_t hl, addr_off, addr_len, total, l4;
  uint8_t proto;
  bool first_fragment = true, whole = true;
  if (ver == 4) {
    if (cap < 20) return false;
    hl = static_cast<size_t>(ip[0] & 0x0f) * 4;
    if (hl < 20 || hl > cap) return false;
    total = Rd16(ip + 2);
    if (total < hl) return false;
    addr_off = 12, addr_len = 4, proto = ip[9];
    uint16_t frag = Rd16(ip + 6);
    first_fragment = (frag & 0x1fff) == 0;
    whole = first_fragment && !(frag & 0x2000);
    l4 = hl;
  } else if (ver == 6) {
    if (cap < 40) return false;
    hl = 40, addr_off = 8, addr_len = 16;
    total = 40 + static_cast<size_t>(Rd16(ip + 4));
    uint8_t nh = ip[6];
    size_t off = 40;
    for (int n = 0; n < 16 && IsIpv6ExtHeader(nh); ++n) {
      if (off + 8 > cap) return false;
      if (nh == 44) {
        uint16_t fo = Rd16(ip + off + 2);
        first_fragment = (fo & 0xfff8) == 0;
        whole = whole && first_fragment && !(fo & 1);
      }
      size_t len = nh == 44   ? 8
                   : nh == 51 ? (static_cast<size_t>(ip[off + 1]) + 2) * 4
                              : (static_cast<size_t>(ip[off + 1]) + 1) * 8;
      nh = ip[off];
      off += len;
    }
    proto = nh;
    l4 = off;
  } else {
    return false;
  }
  size_t avail = std::min(cap, total);  // Ethernet padding excluded
  bool complete = whole && !cut && cap >= total;

  uint8_t old[32];
  std::memcpy(old, ip + addr_off, 2 * addr_len);
  bool changed = false;
  for (int k = 0; k < 2; ++k) {
    uint8_t* a = ip + addr_off + k * addr_len;
    IpAddr addr = addr_len == 4 ? IpAddr::V4(a) : IpAddr::V6(a);
    auto it = ip_.find(addr);
    if (it == ip_.end()) continue;
    std::memcpy(a, it->second.bytes.data(), addr_len);
    ++stats->ip_rewrites;
    changed = true;
  }
  if (ver == 4 && changed) {
    Wr16(ip + 10, 0);
    Wr16(ip + 10, ChecksumFold(ChecksumAdd(0, ip, hl)));
    ++stats->checksums_recomputed;
  }
  if (!first_fragment || l4 > avail) return true;  // no transport header here
  uint8_t* t = ip + l4;
  size_t tlen = avail - l4;       // captured transport bytes
  size_t tlen_wire = total - l4;  // declared transport length
  bool icmp = (ver == 4 && proto == 1) || (ver == 6 && proto == 58);
  bool quote_changed = false;
  if (icmp && tlen >= 8) {
    uint8_t type = t[0];
    bool error = ver == 4 ? (type == 3 || type == 4 || type == 5 || type == 11 || type == 12)
                          : (type >= 1 && type <= 4);
    if (error) {
      std::vector<uint8_t> before(t, t + tlen);
      quote_changed = RewriteIcmpQuote(t + 8, tlen - 8, stats);
      if (quote_changed && !complete) {
        // The ICMP checksum covers the quote: adjust for each changed word.
        AdjustChecksum(t + 2, before.data() + 8, t + 8, (tlen - 8) & ~static_cast<size_t>(1));
        ++stats->checksums_adjusted;
      }
    }
  }
  size_t csum_off = proto == 6 ? 16 : proto == 17 ? 6 : icmp ? 2 : 0;
  if (!csum_off || tlen < csum_off + 2) return true;
  bool pseudo = proto == 6 || proto == 17 || (ver == 6 && proto == 58);
  if (!changed && !quote_changed) return true;
  if (!pseudo && !quote_changed) return true;  // ICMPv4 without a changed quote
  uint8_t* field = t + csum_off;
  if (proto == 17 && ver == 4 && Rd16(field) == 0) return true;  // no checksum
  if (complete) {
    uint32_t sum = 0;
    if (pseudo) {
      sum = ChecksumAdd(sum, ip + addr_off, 2 * addr_len);
      uint8_t tail[8] = {0};
      if (ver == 4) {
        tail[1] = proto;
        Wr16(tail + 2, static_cast<uint16_t>(tlen_wire));
        sum = ChecksumAdd(sum, tail, 4);
      } else {
        tail[0] = static_cast<uint8_t>(tlen_wire >> 24);
        tail[1] = static_cast<uint8_t>(tlen_wire >> 16);
        tail[2] = static_cast<uint8_t>(tlen_wire >> 8);
        tail[3] = static_cast<uint8_t>(tlen_wire);
        tail[7] = proto;
        sum = ChecksumAdd(sum, tail, 8);
      }
    }
    Wr16(field, 0);
    sum = ChecksumAdd(sum, t, tlen_wire);
    uint16_t c = ChecksumFold(sum);
    if (proto == 17 && c == 0) c = 0xffff;
    Wr16(field, c);
    ++stats->checksums_recomputed;
  } else if (pseudo && changed) {
    AdjustChecksum(field, old, ip + addr_off, 2 * addr_len);
    if (proto == 17 && Rd16(field) == 0) Wr16(field, 0xffff);
    ++stats->checksums_adjusted;
  }
  return true;
}

bool AddressRewriter::RewriteFrame(int link_type, uint8_t* data, size_t cap_len, size_t wire_len,
                                   ExportStats* stats) const {
  bool cut = wire_len > cap_len;
  size_t off = 0;
  uint16_t proto = 0;  // ethertype; 0 = decide by the IP version nibble
  switch (link_type) {
    case kLinkEthernet: {
      if (cap_len < 14) return false;
      RewriteMac(data, stats);
      RewriteMac(data + 6, stats);
      off = 12;
      proto = Rd16(data + off);
      for (int n = 0; n < 2 && (proto == 0x8100 || proto == 0x88a8); ++n) {
        off += 4;
        if (off + 2 > cap_len) return false;
        proto = Rd16(data + off);
      }
      off += 2;
      if (proto == 0x0806 && cap_len >= off + 28 && Rd16(data + off) == 1 &&
          Rd16(data + off + 2) == 0x0800) {  // ARP, Ethernet/IPv4
        uint8_t* a = data + off;
        RewriteMac(a + 8, stats);
        RewriteMac(a + 18, stats);
        for (size_t ip_off : {size_t{14}, size_t{24}}) {
          auto it = ip_.find(IpAddr::V4(a + ip_off));
          if (it != ip_.end()) {
            std::memcpy(a + ip_off, it->second.bytes.data(), 4);
            ++stats->ip_rewrites;
          }
        }
        return true;
      }
      break;
    }
    case kLinkLinuxSll:
      if (cap_len < 16) return false;
      if (Rd16(data + 4) == 6) RewriteMac(data + 6, stats);
      proto = Rd16(data + 14);
      off = 16;
      break;
    case kLinkLinuxSll2:
      if (cap_len < 20) return false;
      if (data[11] == 6) RewriteMac(data + 12, stats);
      proto = Rd16(data);
      off = 20;
      break;
    case kLinkNull:
    case kLinkLoop:
      off = 4;
      break;
    case kLinkRaw:
    case kLinkRawBsd:
    case kLinkRawFile:
    case kLinkIpv4:
    case kLinkIpv6:
      off = 0;
      break;
    default:
      return false;
  }
  if (proto != 0 && proto != 0x0800 && proto != 0x86dd) return true;  // not IP: MACs done
  if (off >= cap_len) return false;
  return RewriteIp(data + off, cap_len - off, cut, stats);
}

Status ExportPcap(const std::string& in, const std::string& out, const AddressRewriter& rw,
                  ExportStats* stats) {
  char errbuf[PCAP_ERRBUF_SIZE] = {0};
  std::unique_ptr<pcap_t, void (*)(pcap_t*)> src(
      pcap_open_offline_with_tstamp_precision(in.c_str(), PCAP_TSTAMP_PRECISION_NANO, errbuf),
      pcap_close);
  if (!src) return Status::IoError(in + ": " + errbuf);
  int link = pcap_datalink(src.get());
  std::error_code ec;
  std::filesystem::path op(out);
  if (op.has_parent_path()) std::filesystem::create_directories(op.parent_path(), ec);
  std::unique_ptr<pcap_t, void (*)(pcap_t*)> dead(
      pcap_open_dead_with_tstamp_precision(link, std::max(pcap_snapshot(src.get()), 65535),
                                           PCAP_TSTAMP_PRECISION_NANO),
      pcap_close);
  if (!dead) return Status::Internal("pcap_open_dead failed");
  std::string tmp = out + ".tmp";
  pcap_dumper_t* d = pcap_dump_open(dead.get(), tmp.c_str());
  if (!d) return Status::IoError("cannot write " + out + ": " + pcap_geterr(dead.get()));
  ++stats->files;
  struct pcap_pkthdr* h = nullptr;
  const u_char* bytes = nullptr;
  std::vector<uint8_t> buf;
  uint64_t residual = 0;
  std::string read_error;
  while (true) {
    int rc = pcap_next_ex(src.get(), &h, &bytes);
    if (rc == PCAP_ERROR_BREAK) break;
    if (rc != 1) {
      read_error = pcap_geterr(src.get());
      break;
    }
    ++stats->frames;
    buf.assign(bytes, bytes + h->caplen);
    if (!rw.RewriteFrame(link, buf.data(), buf.size(), h->len, stats)) ++stats->frames_not_parsed;
    if (rw.ContainsOwn(buf.data(), buf.size())) ++residual;
    pcap_dump(reinterpret_cast<u_char*>(d), h, buf.data());
  }
  bool ok = pcap_dump_flush(d) == 0;
  pcap_dump_close(d);
  if (!ok || std::rename(tmp.c_str(), out.c_str()) != 0) {
    std::remove(tmp.c_str());
    return Status::IoError("cannot write " + out);
  }
  if (residual) {
    stats->residual_frames += residual;
    stats->warnings.push_back(out + ": " + std::to_string(residual) +
                              " frame(s) still contain an own address outside the rewritten "
                              "headers (payload?); check before sharing");
  }
  if (!read_error.empty()) stats->warnings.push_back(in + ": read error: " + read_error);
  return Status::Ok();
}

Status ExportEvidenceDir(const std::string& evidence_dir, const std::string& out_dir,
                         const AddressRewriter& rw, ExportStats* stats,
                         std::vector<std::string>* written) {
  namespace fs = std::filesystem;
  std::error_code ec;
  if (!fs::is_directory(evidence_dir, ec))
    return Status::NotFound("no evidence directory " + evidence_dir);
  std::vector<fs::path> files;
  for (auto it = fs::recursive_directory_iterator(evidence_dir, ec);
       !ec && it != fs::recursive_directory_iterator(); it.increment(ec)) {
    if (it->is_regular_file() && it->path().extension() == ".pcap") files.push_back(it->path());
  }
  if (ec) return Status::IoError(evidence_dir + ": " + ec.message());
  std::sort(files.begin(), files.end());
  for (const fs::path& f : files) {
    fs::path out = fs::path(out_dir) / fs::relative(f, evidence_dir);
    Status st = ExportPcap(f.string(), out.string(), rw, stats);
    if (!st.ok()) return st;
    if (written) written->push_back(out.string());
  }
  return Status::Ok();
}

}  // namespace capture
}  // namespace rasad
