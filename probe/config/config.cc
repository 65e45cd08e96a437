// rasad.toml: loading and validation. Every key: docs/CONFIG.md.

#include "probe/config/config.h"

#include <arpa/inet.h>
#include <toml++/toml.h>

#include <cctype>
#include <fstream>
#include <limits>
#include <set>
#include <sstream>

#include "probe/config/toml_util.h"

namespace rasad {

namespace {

using cfgutil::Fail;
using cfgutil::LineOf;
using cfgutil::Quote;

constexpr int64_t kSecond = 1000;
constexpr int64_t kMinute = 60 * kSecond;
constexpr int64_t kHour = 60 * kMinute;
constexpr int64_t kDay = 24 * kHour;

// An IP address, optionally with an IPv6 zone ("fe80::1%wwan0").
bool IsAddress(const std::string& s, bool* v6) {
  unsigned char buf[16];
  if (inet_pton(AF_INET, s.c_str(), buf) == 1) {
    *v6 = false;
    return true;
  }
  std::string addr = s;
  const size_t pct = s.find('%');
  if (pct != std::string::npos) {
    const std::string zone = s.substr(pct + 1);
    if (zone.empty() || zone.size() > 15) return false;
    for (char c : zone) {
      if (!std::isalnum(static_cast<unsigned char>(c)) && c != '_' && c != '-' && c != '.') {
        return false;
      }
    }
    addr = s.substr(0, pct);
  }
  *v6 = true;
  return inet_pton(AF_INET6, addr.c_str(), buf) == 1;
}

bool IsPort(const std::string& s) {
  if (s.empty() || s.size() > 5) return false;
  for (char c : s) {
    if (c < '0' || c > '9') return false;
  }
  const int p = std::stoi(s);
  return p >= 1 && p <= 65535;
}

// "ip", "ip:port", "v6", "[v6]" or "[v6]:port".
bool IsResolver(const std::string& s) {
  bool v6 = false;
  if (IsAddress(s, &v6)) return true;
  if (!s.empty() && s[0] == '[') {
    const size_t close = s.find(']');
    if (close == std::string::npos) return false;
    if (!IsAddress(s.substr(1, close - 1), &v6) || !v6) return false;
    if (close + 1 == s.size()) return true;
    return s[close + 1] == ':' && IsPort(s.substr(close + 2));
  }
  const size_t colon = s.find(':');
  if (colon == std::string::npos) return false;
  return IsAddress(s.substr(0, colon), &v6) && !v6 && IsPort(s.substr(colon + 1));
}

// "192.0.2.0/24", "2001:db8::/32"; host bits must be zero.
bool IsCidr(const std::string& s, std::string* why) {
  const size_t slash = s.find('/');
  if (slash == std::string::npos) {
    *why = "missing \"/prefix\"";
    return false;
  }
  const std::string addr = s.substr(0, slash), len = s.substr(slash + 1);
  unsigned char buf[16] = {};
  int bits = 0;
  if (inet_pton(AF_INET, addr.c_str(), buf) == 1) {
    bits = 32;
  } else if (inet_pton(AF_INET6, addr.c_str(), buf) == 1) {
    bits = 128;
  } else {
    *why = "bad address";
    return false;
  }
  if (len.empty() || len.size() > 3 || len.find_first_not_of("0123456789") != std::string::npos ||
      std::stoi(len) > bits) {
    *why = "bad prefix length (0.." + std::to_string(bits) + ")";
    return false;
  }
  const int prefix = std::stoi(len);
  for (int bit = prefix; bit < bits; ++bit) {
    if (buf[bit / 8] & (0x80 >> (bit % 8))) {
      *why = "host bits set after /" + len;
      return false;
    }
  }
  return true;
}

bool IsInterfaceName(const std::string& s) {
  if (s.empty() || s.size() > 15) return false;  // IFNAMSIZ - 1
  for (char c : s) {
    if (c <= ' ' || c > '~' || c == '/' || c == ':') return false;
  }
  return true;
}

bool HasControlChars(const std::string& s) {
  for (unsigned char c : s) {
    if (c < 0x20 || c == 0x7f) return true;
  }
  return false;
}

// A duration key in [min_ms, max_ms].
Status GetDuration(const std::string& file, const toml::table& t, const std::string& prefix,
                   const std::string& key, int64_t min_ms, int64_t max_ms, int64_t* out) {
  std::string text;
  bool found = false;
  int line = 0;
  Status s = cfgutil::GetString(file, t, prefix, key, &text, &found, &line);
  if (!s.ok() || !found) return s;
  int64_t ms = 0;
  if (!ParseDuration(text, &ms)) {
    return Fail(file, line,
                prefix + Quote(key) + ": bad duration " + Quote(text) +
                    " (e.g. \"250ms\", \"90s\", \"15m\", \"2h30m\")");
  }
  if (ms < min_ms || ms > max_ms) {
    return Fail(file, line,
                prefix + Quote(key) + " = " + Quote(text) + " is out of range (" +
                    std::to_string(min_ms) + "ms.." + std::to_string(max_ms) + "ms)");
  }
  *out = ms;
  return Status::Ok();
}

Status GetIntInto(const std::string& file, const toml::table& t, const std::string& prefix,
                  const std::string& key, int64_t min, int64_t max, int* out) {
  int64_t v = 0;
  bool found = false;
  Status s = cfgutil::GetInt(file, t, prefix, key, min, max, &v, &found, nullptr);
  if (s.ok() && found) *out = static_cast<int>(v);
  return s;
}

// A sub-table such as [dns]; *out is null when absent.
Status GetTable(const std::string& file, const toml::table& root, const std::string& key,
                const toml::table** out) {
  *out = nullptr;
  const toml::node* n = root.get(key);
  if (n == nullptr) return Status::Ok();
  if (!n->is_table())
    return Fail(file, LineOf(*n), Quote(key) + " must be a table ([" + key + "])");
  *out = n->as_table();
  return Status::Ok();
}

Status ParseNetwork(const std::string& file, const toml::table& tbl, int index,
                    NetworkConfig* net) {
  using namespace cfgutil;
  net->line = LineOf(tbl);
  std::string prefix = "network #" + std::to_string(index + 1) + ": ";
  if (const toml::node* n = tbl.get("name"); n != nullptr && n->is_string()) {
    prefix = "network " + Quote(n->as_string()->get()) + ": ";
  }
  Status s = CheckKeys(file, tbl, prefix, {"name", "operator", "asn", "interface", "resolvers"});
  if (!s.ok()) return s;
  bool found = false;
  int line = 0;
  s = GetString(file, tbl, prefix, "name", &net->name, &found, &line);
  if (!s.ok()) return s;
  if (!found) return Fail(file, net->line, prefix + "missing required key \"name\"");
  // Network names may carry capitals ("opA", "MCI"): they are labels in tables.
  std::string lowered = net->name;
  for (char& c : lowered) c = static_cast<char>(tolower(static_cast<unsigned char>(c)));
  if (!IsIdentifier(lowered)) return Fail(file, line, prefix + "name must match [A-Za-z0-9_-]+");
  s = GetString(file, tbl, prefix, "operator", &net->operator_label, &found, &line);
  if (!s.ok()) return s;
  if (HasControlChars(net->operator_label)) {
    return Fail(file, line, prefix + "\"operator\" has control characters");
  }
  s = GetIntInto(file, tbl, prefix, "asn", 0, std::numeric_limits<int>::max(), &net->asn);
  if (!s.ok()) return s;
  s = GetString(file, tbl, prefix, "interface", &net->interface, &found, &line);
  if (!s.ok()) return s;
  if (!net->interface.empty() && !IsInterfaceName(net->interface)) {
    return Fail(file, line, prefix + "bad interface name " + Quote(net->interface));
  }
  std::vector<int> lines;
  s = GetStringArray(file, tbl, prefix, "resolvers", &net->resolvers, &lines, &found, &line);
  if (!s.ok()) return s;
  for (size_t i = 0; i < net->resolvers.size(); ++i) {
    if (!IsResolver(net->resolvers[i])) {
      return Fail(file, lines[i],
                  prefix + "bad resolver " + Quote(net->resolvers[i]) +
                      " (expected IP, IP:port or [IPv6]:port)");
    }
  }
  return Status::Ok();
}

}  // namespace

bool ParseDuration(const std::string& text, int64_t* ms) {
  if (text.empty()) return false;
  constexpr int64_t kMax = 400 * kDay;  // far above any sensible setting; no overflow
  int64_t total = 0;
  size_t i = 0;
  while (i < text.size()) {
    if (text[i] < '0' || text[i] > '9') return false;
    int64_t value = 0;
    while (i < text.size() && text[i] >= '0' && text[i] <= '9') {
      value = value * 10 + (text[i] - '0');
      if (value > kMax) return false;
      ++i;
    }
    int64_t unit = 0;
    if (text.compare(i, 2, "ms") == 0) {
      unit = 1, i += 2;
    } else if (i < text.size() && text[i] == 'h') {
      unit = kHour, ++i;
    } else if (i < text.size() && text[i] == 'm') {
      unit = kMinute, ++i;
    } else if (i < text.size() && text[i] == 's') {
      unit = kSecond, ++i;
    } else {
      return false;  // no unit, or an unknown one
    }
    total += value * unit;
    if (total > kMax) return false;
  }
  *ms = total;
  return true;
}

Status LoadConfig(const std::string& path, Config* out) {
  using namespace cfgutil;
  toml::table root;
  Status s = ParseTomlFile(path, &root);
  if (!s.ok()) return s;
  const std::string& f = path;
  Config c;
  c.file = path;
  bool found = false;
  int line = 0;

  s = CheckKeys(f, root, "",
                {"database", "targets", "interval", "jitter", "concurrency",
                 "max_addresses_per_family", "ipv6", "ca_file", "user_agent", "dns", "timeouts",
                 "http", "retries", "capture", "analysis", "network"});
  if (!s.ok()) return s;

  s = GetString(f, root, "", "database", &c.database, &found, &line);
  if (!s.ok()) return s;
  if (c.database.empty()) return Fail(f, line, "\"database\" is empty");
  std::vector<int> lines;
  s = GetStringArray(f, root, "", "targets", &c.targets, &lines, &found, &line);
  if (!s.ok()) return s;
  if (c.targets.empty()) return Fail(f, line, "\"targets\" is empty (nothing to measure)");
  for (size_t i = 0; i < c.targets.size(); ++i) {
    if (c.targets[i].empty()) return Fail(f, lines[i], "\"targets\" has an empty path");
  }
  s = GetDuration(f, root, "", "interval", kSecond, kDay, &c.interval_ms);
  if (!s.ok()) return s;
  s = GetDuration(f, root, "", "jitter", 0, kDay, &c.jitter_ms);
  if (!s.ok()) return s;
  if (c.jitter_ms > c.interval_ms) {
    const toml::node* n = root.get("jitter");
    return Fail(f, n ? LineOf(*n) : 1, "\"jitter\" must not exceed \"interval\"");
  }
  s = GetIntInto(f, root, "", "concurrency", 1, 1024, &c.concurrency);
  if (!s.ok()) return s;
  s = GetIntInto(f, root, "", "max_addresses_per_family", 1, 16, &c.max_addresses_per_family);
  if (!s.ok()) return s;
  s = GetBool(f, root, "", "ipv6", &c.ipv6, &found, nullptr);
  if (!s.ok()) return s;
  s = GetString(f, root, "", "ca_file", &c.ca_file, &found, &line);
  if (!s.ok()) return s;
  if (!c.ca_file.empty() && !std::ifstream(c.ca_file).good()) {
    return Fail(f, line, "ca_file " + Quote(c.ca_file) + ": cannot open");
  }
  s = GetString(f, root, "", "user_agent", &c.user_agent, &found, &line);
  if (!s.ok()) return s;
  if (c.user_agent.empty() || HasControlChars(c.user_agent)) {
    return Fail(f, line, "\"user_agent\" must be non-empty, without control characters");
  }

  const toml::table* t = nullptr;
  s = GetTable(f, root, "dns", &t);
  if (!s.ok()) return s;
  if (t != nullptr) {
    const std::string p = "[dns] ";
    s = CheckKeys(f, *t, p, {"timeout", "tries", "transport"});
    if (!s.ok()) return s;
    s = GetDuration(f, *t, p, "timeout", 1, 5 * kMinute, &c.dns_timeout_ms);
    if (!s.ok()) return s;
    s = GetIntInto(f, *t, p, "tries", 1, 10, &c.dns_tries);
    if (!s.ok()) return s;
    std::string transport;
    s = GetString(f, *t, p, "transport", &transport, &found, &line);
    if (!s.ok()) return s;
    if (found) {
      if (transport != "udp" && transport != "tcp") {
        return Fail(f, line,
                    p + "unknown transport " + Quote(transport) + " (expected udp or tcp)");
      }
      c.dns_tcp = transport == "tcp";
    }
  }

  s = GetTable(f, root, "timeouts", &t);
  if (!s.ok()) return s;
  if (t != nullptr) {
    const std::string p = "[timeouts] ";
    s = CheckKeys(f, *t, p, {"tcp", "tls", "http"});
    if (!s.ok()) return s;
    s = GetDuration(f, *t, p, "tcp", 1, 10 * kMinute, &c.tcp_timeout_ms);
    if (!s.ok()) return s;
    s = GetDuration(f, *t, p, "tls", 1, 10 * kMinute, &c.tls_timeout_ms);
    if (!s.ok()) return s;
    s = GetDuration(f, *t, p, "http", 1, 10 * kMinute, &c.http_timeout_ms);
    if (!s.ok()) return s;
  }

  s = GetTable(f, root, "http", &t);
  if (!s.ok()) return s;
  if (t != nullptr) {
    const std::string p = "[http] ";
    s = CheckKeys(f, *t, p, {"body_cap", "body_store"});
    if (!s.ok()) return s;
    int64_t v = 0;
    s = GetInt(f, *t, p, "body_cap", 1, 16 * 1024 * 1024, &v, &found, nullptr);
    if (!s.ok()) return s;
    if (found) c.body_cap = static_cast<size_t>(v);
    s = GetInt(f, *t, p, "body_store", 0, 16 * 1024 * 1024, &v, &found, &line);
    if (!s.ok()) return s;
    if (found) c.body_store = static_cast<size_t>(v);
    if (c.body_store > c.body_cap) {
      const toml::node* n = t->get("body_store");
      if (n == nullptr) n = t->get("body_cap");
      return Fail(f, LineOf(*n), p + "\"body_store\" must not exceed \"body_cap\"");
    }
  }

  s = GetTable(f, root, "retries", &t);
  if (!s.ok()) return s;
  if (t != nullptr) {
    const std::string p = "[retries] ";
    s = CheckKeys(f, *t, p, {"count", "spacing"});
    if (!s.ok()) return s;
    int64_t v = 0;
    s = GetInt(f, *t, p, "count", 0, 10, &v, &found, nullptr);
    if (!s.ok()) return s;
    if (found) c.retry_count = static_cast<int>(v);
    s = GetDuration(f, *t, p, "spacing", 0, 60 * kMinute, &c.retry_spacing_ms);
    if (!s.ok()) return s;
  }

  s = GetTable(f, root, "capture", &t);
  if (!s.ok()) return s;
  if (t != nullptr) {
    const std::string p = "[capture] ";
    s = CheckKeys(f, *t, p, {"enabled", "hold_on"});
    if (!s.ok()) return s;
    s = GetBool(f, *t, p, "enabled", &c.capture, &found, &line);
    if (!s.ok()) return s;
    s = GetDuration(f, *t, p, "hold_on", 0, 30 * 1000, &c.capture_hold_on_ms);
    if (!s.ok()) return s;
  }

  s = GetTable(f, root, "analysis", &t);
  if (!s.ok()) return s;
  if (t != nullptr) {
    const std::string p = "[analysis] ";
    s = CheckKeys(f, *t, p,
                  {"public_ranges", "fingerprints", "ooni_dns_fingerprints",
                   "ooni_http_fingerprints", "censoredplanet_blockpages",
                   "censoredplanet_false_positives", "control_helpers", "doh_resolvers"});
    if (!s.ok()) return s;
    for (auto [key, dest] : std::initializer_list<std::pair<const char*, std::string*>>{
             {"fingerprints", &c.fingerprints},
             {"ooni_dns_fingerprints", &c.ooni_dns_fingerprints},
             {"ooni_http_fingerprints", &c.ooni_http_fingerprints},
             {"censoredplanet_blockpages", &c.censoredplanet_blockpages},
             {"censoredplanet_false_positives", &c.censoredplanet_false_positives}}) {
      s = cfgutil::GetString(f, *t, p, key, dest, &found, &line);
      if (!s.ok()) return s;
    }
    std::vector<int> helper_lines;
    s = GetStringArray(f, *t, p, "control_helpers", &c.control_helpers, &helper_lines, &found,
                       &line);
    if (!s.ok()) return s;
    for (size_t i = 0; i < c.control_helpers.size(); ++i) {
      const std::string& u = c.control_helpers[i];
      if (u.rfind("http://", 0) != 0 && u.rfind("https://", 0) != 0)
        return Fail(f, helper_lines[i],
                    p + "control helper " + Quote(u) + " must be an http(s) URL");
    }
    std::vector<int> doh_lines;
    s = GetStringArray(f, *t, p, "doh_resolvers", &c.doh_resolvers, &doh_lines, &found, &line);
    if (!s.ok()) return s;
    for (size_t i = 0; i < c.doh_resolvers.size(); ++i)
      if (c.doh_resolvers[i].rfind("https://", 0) != 0)
        return Fail(f, doh_lines[i],
                    p + "DoH resolver " + Quote(c.doh_resolvers[i]) + " must be an https URL");
    s = GetStringArray(f, *t, p, "public_ranges", &c.public_ranges, &lines, &found, &line);
    if (!s.ok()) return s;
    for (size_t i = 0; i < c.public_ranges.size(); ++i) {
      std::string why;
      if (!IsCidr(c.public_ranges[i], &why)) {
        return Fail(f, lines[i], p + "bad CIDR " + Quote(c.public_ranges[i]) + ": " + why);
      }
    }
  }

  if (const toml::node* n = root.get("network"); n != nullptr) {
    if (!n->is_array_of_tables()) {
      return Fail(f, LineOf(*n), "\"network\" must be an array of tables ([[network]])");
    }
    std::set<std::string> names;
    int index = 0;
    for (const toml::node& e : *n->as_array()) {
      NetworkConfig net;
      s = ParseNetwork(f, *e.as_table(), index++, &net);
      if (!s.ok()) return s;
      if (!names.insert(net.name).second) {
        return Fail(f, net.line, "network " + Quote(net.name) + ": duplicate network name");
      }
      c.networks.push_back(std::move(net));
    }
  }

  *out = std::move(c);
  return Status::Ok();
}

std::vector<std::string> SystemResolvers(const std::string& resolv_conf) {
  std::vector<std::string> out;
  std::ifstream in(resolv_conf);
  std::string line;
  while (std::getline(in, line)) {
    const size_t comment = line.find_first_of("#;");
    if (comment != std::string::npos) line.resize(comment);
    std::istringstream words(line);
    std::string keyword, address;
    if (!(words >> keyword >> address) || keyword != "nameserver") continue;
    bool v6 = false;
    if (IsAddress(address, &v6)) out.push_back(address);
  }
  return out;
}

}  // namespace rasad
