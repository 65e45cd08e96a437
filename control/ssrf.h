// Destination policy of the control helper. The helper is internet-facing and
// connects wherever a request tells it to: without this policy anyone could
// use it to reach the helper's own loopback services, its cloud metadata
// endpoint (169.254.169.254) or its private network (SSRF). Every address the
// helper would connect to (from the request's tcp_connect list, from its own
// DNS answers, from an HTTP redirect) goes through DestinationPolicy first.
//
// Refused: OONI's bogon list (netxlite/bogon.go: private, loopback,
// link-local, CGNAT, multicast, reserved, documentation, benchmarking) plus
// IPv6 forms that embed an IPv4 address (v4-mapped, v4-compatible, 6to4,
// Teredo, NAT64) when the embedded address is refused, and a few IPv6
// reserved blocks (discard, site-local, ORCHID). Strings that are not
// plain IP literals (hostnames, zone ids, "127.1") are refused too.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "probe/core/status.h"

namespace rasad {

// An IPv4 or IPv6 prefix. IPv4 addresses use the first 4 bytes of addr.
struct IpPrefix {
  bool v6 = false;
  uint8_t addr[16] = {};
  int bits = 0;  // prefix length
};

// "10.0.0.0/8", "2001:db8::/32", or a bare address (a /32 or /128).
bool ParseIpPrefix(const std::string& text, IpPrefix* out);
// A plain IP literal (inet_pton: no zone id, no shorthand like "127.1").
bool ParseIpAddress(const std::string& text, IpPrefix* out);
// The canonical text of an IP literal ("2001:DB8::01" -> "2001:db8::1");
// empty when text is not one.
std::string CanonicalIp(const std::string& text);
// Whether ip (a /32 or /128) lies in prefix. Never matches across families.
bool PrefixContains(const IpPrefix& prefix, const IpPrefix& ip);

// Why ip is a bogon ("loopback", "private", "link-local", ...), or nullptr
// when it is a public unicast address. Non-literals give "not an IP literal".
const char* BogonReason(const std::string& ip);
inline bool IsBogon(const std::string& ip) { return BogonReason(ip) != nullptr; }

class DestinationPolicy {
 public:
  DestinationPolicy() = default;
  // allow_ranges: CIDRs allowed even though they are bogons (e.g. a lab's
  // TEST-NET ranges, or 127.0.0.0/8 in tests). Invalid entries are an error.
  static Status Create(const std::vector<std::string>& allow_ranges, DestinationPolicy* out);

  // True when the helper may connect to ip. On refusal *why says why.
  bool Allowed(const std::string& ip, std::string* why = nullptr) const;
  // True when ip is in one of the allow ranges.
  bool ExplicitlyAllowed(const std::string& ip) const;

 private:
  std::vector<IpPrefix> allow_;
};

// The failure string for a destination the policy refused.
inline constexpr const char* kBlockedByHelperPolicy = "blocked_by_helper_policy";

}  // namespace rasad
