#include "analysis/bogons.h"

#include <arpa/inet.h>

#include <cstdlib>
#include <cstring>

namespace rasad {

namespace {
const char* const kBogons[] = {
    "0.0.0.0/8",
    "10.0.0.0/8",
    "100.64.0.0/10",
    "127.0.0.0/8",
    "169.254.0.0/16",
    "172.16.0.0/12",
    "192.0.0.0/24",
    "192.0.2.0/24",
    "192.168.0.0/16",
    "198.18.0.0/15",
    "198.51.100.0/24",
    "203.0.113.0/24",
    "224.0.0.0/4",
    "240.0.0.0/4",
    "::/128",
    "::1/128",
    "::ffff:0:0/96",
    "fc00::/7",
    "fe80::/10",
    "ff00::/8",
    // Iran's IPv6 sinkhole d0::11 sits in unallocated space: name it.
    "d0::/16",
};

bool ParseIp(const std::string& ip, bool* v6, unsigned char out[16]) {
  memset(out, 0, 16);
  if (inet_pton(AF_INET, ip.c_str(), out) == 1) {
    *v6 = false;
    return true;
  }
  if (inet_pton(AF_INET6, ip.c_str(), out) == 1) {
    *v6 = true;
    return true;
  }
  return false;
}
}  // namespace

bool ParseCidr(const std::string& text, Cidr* out) {
  size_t slash = text.find('/');
  std::string ip = text.substr(0, slash);
  if (!ParseIp(ip, &out->v6, out->addr)) return false;
  int max = out->v6 ? 128 : 32;
  if (slash == std::string::npos) {
    out->bits = max;
    return true;
  }
  char* end = nullptr;
  long bits = strtol(text.c_str() + slash + 1, &end, 10);
  if (*end != '\0' || bits < 0 || bits > max) return false;
  out->bits = static_cast<int>(bits);
  return true;
}

bool CidrContains(const Cidr& net, const std::string& ip) {
  bool v6 = false;
  unsigned char a[16];
  if (!ParseIp(ip, &v6, a) || v6 != net.v6) return false;
  int full = net.bits / 8, rest = net.bits % 8;
  if (memcmp(a, net.addr, full) != 0) return false;
  if (rest == 0) return true;
  unsigned char mask = static_cast<unsigned char>(0xff << (8 - rest));
  return (a[full] & mask) == (net.addr[full] & mask);
}

BogonList::BogonList() {
  for (const char* b : kBogons) {
    Cidr c;
    if (ParseCidr(b, &c)) bogons_.push_back(c);
  }
}

Status BogonList::SetPublicRanges(const std::vector<std::string>& cidrs) {
  public_.clear();
  for (const std::string& s : cidrs) {
    Cidr c;
    if (!ParseCidr(s, &c)) return Status::Invalid("bad CIDR in public_ranges: " + s);
    public_.push_back(c);
  }
  return Status::Ok();
}

bool BogonList::IsBogon(const std::string& ip) const {
  for (const Cidr& p : public_)
    if (CidrContains(p, ip)) return false;
  for (const Cidr& b : bogons_)
    if (CidrContains(b, ip)) return true;
  return false;
}

}  // namespace rasad
