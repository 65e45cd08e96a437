#include "control/ssrf.h"

#include <arpa/inet.h>

#include <cstdlib>
#include <cstring>

namespace rasad {

namespace {

struct Bogon {
  const char* prefix;
  const char* reason;
};

// IPv4: OONI's list (netxlite/bogon.go) with reasons.
const Bogon kV4[] = {
    {"0.0.0.0/8", "this-network"},
    {"10.0.0.0/8", "private"},
    {"100.64.0.0/10", "shared address space (CGNAT)"},
    {"127.0.0.0/8", "loopback"},
    {"169.254.0.0/16", "link-local"},
    {"172.16.0.0/12", "private"},
    {"192.0.0.0/24", "IETF protocol assignments"},
    {"192.0.2.0/24", "documentation (TEST-NET-1)"},
    {"192.168.0.0/16", "private"},
    {"198.18.0.0/15", "benchmarking"},
    {"198.51.100.0/24", "documentation (TEST-NET-2)"},
    {"203.0.113.0/24", "documentation (TEST-NET-3)"},
    {"224.0.0.0/4", "multicast"},
    {"240.0.0.0/4", "reserved"},
    {"255.255.255.255/32", "broadcast"},
};

// IPv6 blocks refused outright (the embedding forms are handled in code).
const Bogon kV6[] = {
    {"::/128", "unspecified"},
    {"::1/128", "loopback"},
    {"::ffff:0:0/96", "IPv4-mapped"},
    {"::/96", "IPv4-compatible (deprecated)"},
    {"64:ff9b:1::/48", "local-use NAT64"},
    {"100::/64", "discard-only"},
    {"2001:2::/48", "benchmarking"},
    {"2001:10::/28", "ORCHID"},
    {"2001:20::/28", "ORCHIDv2"},
    {"2001:db8::/32", "documentation"},
    {"fc00::/7", "unique local"},
    {"fe80::/10", "link-local"},
    {"fec0::/10", "site-local (deprecated)"},
    {"ff00::/8", "multicast"},
};

const std::vector<std::pair<IpPrefix, const char*>>& Table(bool v6) {
  static const auto* tables = [] {
    auto* t = new std::vector<std::pair<IpPrefix, const char*>>[2];
    for (const Bogon& b : kV4) {
      IpPrefix p;
      if (ParseIpPrefix(b.prefix, &p)) t[0].emplace_back(p, b.reason);
    }
    for (const Bogon& b : kV6) {
      IpPrefix p;
      if (ParseIpPrefix(b.prefix, &p)) t[1].emplace_back(p, b.reason);
    }
    return t;
  }();
  return tables[v6 ? 1 : 0];
}

const char* V4Reason(const uint8_t* a) {
  IpPrefix ip;
  memcpy(ip.addr, a, 4);
  ip.bits = 32;
  for (const auto& [p, why] : Table(false))
    if (PrefixContains(p, ip)) return why;
  return nullptr;
}

}  // namespace

bool ParseIpAddress(const std::string& text, IpPrefix* out) {
  IpPrefix p;
  if (text.find(':') != std::string::npos) {
    if (inet_pton(AF_INET6, text.c_str(), p.addr) != 1) return false;
    p.v6 = true;
    p.bits = 128;
  } else {
    if (inet_pton(AF_INET, text.c_str(), p.addr) != 1) return false;
    p.bits = 32;
  }
  *out = p;
  return true;
}

bool ParseIpPrefix(const std::string& text, IpPrefix* out) {
  size_t slash = text.find('/');
  IpPrefix p;
  if (!ParseIpAddress(text.substr(0, slash), &p)) return false;
  if (slash != std::string::npos) {
    std::string len = text.substr(slash + 1);
    if (len.empty() || len.size() > 3 || len.find_first_not_of("0123456789") != std::string::npos)
      return false;
    int bits = atoi(len.c_str());
    if (bits > (p.v6 ? 128 : 32)) return false;
    p.bits = bits;
    // Clear host bits so "10.1.2.3/8" means 10.0.0.0/8.
    for (int i = 0; i < 16; ++i) {
      int keep = bits - 8 * i;
      if (keep >= 8) continue;
      p.addr[i] &= keep <= 0 ? 0 : static_cast<uint8_t>(0xff << (8 - keep));
    }
  }
  *out = p;
  return true;
}

std::string CanonicalIp(const std::string& text) {
  IpPrefix p;
  if (!ParseIpAddress(text, &p)) return "";
  char buf[INET6_ADDRSTRLEN];
  inet_ntop(p.v6 ? AF_INET6 : AF_INET, p.addr, buf, sizeof buf);
  return buf;
}

bool PrefixContains(const IpPrefix& prefix, const IpPrefix& ip) {
  if (prefix.v6 != ip.v6) return false;
  int bits = prefix.bits;
  int full = bits / 8;
  if (memcmp(prefix.addr, ip.addr, full) != 0) return false;
  int rest = bits % 8;
  if (rest == 0) return true;
  uint8_t mask = static_cast<uint8_t>(0xff << (8 - rest));
  return (prefix.addr[full] & mask) == (ip.addr[full] & mask);
}

const char* BogonReason(const std::string& text) {
  IpPrefix ip;
  if (!ParseIpAddress(text, &ip)) return "not an IP literal";
  if (!ip.v6) return V4Reason(ip.addr);
  for (const auto& [p, why] : Table(true))
    if (PrefixContains(p, ip)) return why;
  const uint8_t* a = ip.addr;
  // 6to4 (2002::/16): the IPv4 address is in bytes 2..5.
  if (a[0] == 0x20 && a[1] == 0x02) {
    if (V4Reason(a + 2)) return "6to4 encoding of a bogon";
  }
  // Teredo (2001:0::/32): server in bytes 4..7, client in 12..15 xor 0xff.
  if (a[0] == 0x20 && a[1] == 0x01 && a[2] == 0 && a[3] == 0) {
    uint8_t client[4];
    for (int i = 0; i < 4; ++i) client[i] = a[12 + i] ^ 0xff;
    if (V4Reason(a + 4) || V4Reason(client)) return "Teredo encoding of a bogon";
  }
  // NAT64 well-known prefix 64:ff9b::/96: a translator would reach the IPv4.
  static const uint8_t kNat64[12] = {0, 0x64, 0xff, 0x9b, 0, 0, 0, 0, 0, 0, 0, 0};
  if (memcmp(a, kNat64, 12) == 0 && V4Reason(a + 12)) return "NAT64 encoding of a bogon";
  return nullptr;
}

Status DestinationPolicy::Create(const std::vector<std::string>& allow_ranges,
                                 DestinationPolicy* out) {
  DestinationPolicy p;
  for (const std::string& r : allow_ranges) {
    IpPrefix prefix;
    if (!ParseIpPrefix(r, &prefix)) return Status::Invalid("invalid allow range: " + r);
    p.allow_.push_back(prefix);
  }
  *out = std::move(p);
  return Status::Ok();
}

bool DestinationPolicy::ExplicitlyAllowed(const std::string& text) const {
  IpPrefix ip;
  if (!ParseIpAddress(text, &ip)) return false;
  for (const IpPrefix& p : allow_)
    if (PrefixContains(p, ip)) return true;
  // An IPv4-mapped address is allowed when its IPv4 address is.
  static const uint8_t kMapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
  if (ip.v6 && memcmp(ip.addr, kMapped, 12) == 0) {
    IpPrefix v4;
    memcpy(v4.addr, ip.addr + 12, 4);
    v4.bits = 32;
    for (const IpPrefix& p : allow_)
      if (PrefixContains(p, v4)) return true;
  }
  return false;
}

bool DestinationPolicy::Allowed(const std::string& ip, std::string* why) const {
  const char* reason = BogonReason(ip);
  if (!reason) return true;
  IpPrefix parsed;
  if (ParseIpAddress(ip, &parsed) && ExplicitlyAllowed(ip)) return true;
  if (why) *why = reason;
  return false;
}

}  // namespace rasad
