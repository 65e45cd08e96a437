// Target files: parsing, validation and serialisation. Format: docs/TARGETS.md.
//
// Every error names "file:line" so a volunteer editing a target in a text
// editor can jump to it. Unknown keys and keys that would have no effect are
// errors: a typo must never silently turn a measurement into a different one.

#include "probe/config/targets.h"

#include <arpa/inet.h>
#include <sys/stat.h>
#include <toml++/toml.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <initializer_list>
#include <map>
#include <set>
#include <sstream>

#include "probe/config/toml_util.h"

namespace rasad {

// Helpers shared with config.cc and citizenlab.cc. They are declared again in
// those files (the set of headers is fixed); the linker checks the signatures.
namespace cfgutil {

Status Fail(const std::string& file, int line, const std::string& msg) {
  return Status::Invalid(file + ":" + std::to_string(line < 1 ? 1 : line) + ": " + msg);
}

int LineOf(const toml::node& n) { return static_cast<int>(n.source().begin.line); }

std::string Quote(std::string_view s) { return "\"" + std::string(s) + "\""; }

Status ReadWholeFile(const std::string& path, std::string* out) {
  struct stat st;
  if (::stat(path.c_str(), &st) != 0) {
    return Status::IoError(path + ": cannot open: " + std::strerror(errno));
  }
  if (S_ISDIR(st.st_mode)) return Status::IoError(path + ": cannot open: " + std::strerror(EISDIR));
  std::FILE* f = std::fopen(path.c_str(), "rb");
  if (f == nullptr) return Status::IoError(path + ": cannot open: " + std::strerror(errno));
  std::string text;
  char buf[8192];
  size_t n;
  while ((n = std::fread(buf, 1, sizeof buf, f)) > 0) text.append(buf, n);
  const bool failed = std::ferror(f) != 0;
  const int err = errno;
  std::fclose(f);
  if (failed) return Status::IoError(path + ": cannot read: " + std::strerror(err));
  *out = std::move(text);
  return Status::Ok();
}

Status ParseTomlFile(const std::string& path, toml::table* out) {
  std::string text;
  Status s = ReadWholeFile(path, &text);
  if (!s.ok()) return s;
  try {
    *out = toml::parse(text, std::string_view(path));
  } catch (const toml::parse_error& e) {
    return Fail(path, static_cast<int>(e.source().begin.line), std::string(e.description()));
  } catch (const std::exception& e) {
    return Fail(path, 1, e.what());
  }
  return Status::Ok();
}

static size_t EditDistance(std::string_view a, std::string_view b) {
  std::vector<size_t> prev(b.size() + 1), cur(b.size() + 1);
  for (size_t j = 0; j <= b.size(); ++j) prev[j] = j;
  for (size_t i = 1; i <= a.size(); ++i) {
    cur[0] = i;
    for (size_t j = 1; j <= b.size(); ++j) {
      cur[j] = std::min({prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (a[i - 1] != b[j - 1])});
    }
    prev.swap(cur);
  }
  return prev[b.size()];
}

// Rejects any key not in `allowed`, suggesting the nearest allowed key.
Status CheckKeys(const std::string& file, const toml::table& t, const std::string& prefix,
                 const std::vector<std::string>& allowed) {
  for (auto&& [key, value] : t) {
    const std::string_view k = key.str();
    if (std::find(allowed.begin(), allowed.end(), k) != allowed.end()) continue;
    std::string msg = prefix + "unknown key " + Quote(k);
    size_t best = 3;
    std::string hint;
    for (const std::string& a : allowed) {
      size_t d = EditDistance(k, a);
      if (d < best) best = d, hint = a;
    }
    if (!hint.empty()) msg += " (did you mean " + Quote(hint) + "?)";
    return Fail(file, static_cast<int>(key.source().begin.line), msg);
  }
  return Status::Ok();
}

Status GetString(const std::string& file, const toml::table& t, const std::string& prefix,
                 const std::string& key, std::string* out, bool* found, int* line) {
  const toml::node* n = t.get(key);
  *found = n != nullptr;
  if (n == nullptr) return Status::Ok();
  if (line != nullptr) *line = LineOf(*n);
  if (!n->is_string()) return Fail(file, LineOf(*n), prefix + Quote(key) + " must be a string");
  *out = n->as_string()->get();
  return Status::Ok();
}

Status GetBool(const std::string& file, const toml::table& t, const std::string& prefix,
               const std::string& key, bool* out, bool* found, int* line) {
  const toml::node* n = t.get(key);
  *found = n != nullptr;
  if (n == nullptr) return Status::Ok();
  if (line != nullptr) *line = LineOf(*n);
  if (!n->is_boolean()) {
    return Fail(file, LineOf(*n), prefix + Quote(key) + " must be true or false");
  }
  *out = n->as_boolean()->get();
  return Status::Ok();
}

Status GetInt(const std::string& file, const toml::table& t, const std::string& prefix,
              const std::string& key, int64_t min, int64_t max, int64_t* out, bool* found,
              int* line) {
  const toml::node* n = t.get(key);
  *found = n != nullptr;
  if (n == nullptr) return Status::Ok();
  if (line != nullptr) *line = LineOf(*n);
  if (!n->is_integer()) return Fail(file, LineOf(*n), prefix + Quote(key) + " must be an integer");
  const int64_t v = n->as_integer()->get();
  if (v < min || v > max) {
    return Fail(file, LineOf(*n),
                prefix + Quote(key) + " = " + std::to_string(v) + " is out of range (" +
                    std::to_string(min) + ".." + std::to_string(max) + ")");
  }
  *out = v;
  return Status::Ok();
}

// An array of strings; `lines` (optional) receives each element's line.
Status GetStringArray(const std::string& file, const toml::table& t, const std::string& prefix,
                      const std::string& key, std::vector<std::string>* out,
                      std::vector<int>* lines, bool* found, int* line) {
  const toml::node* n = t.get(key);
  *found = n != nullptr;
  if (n == nullptr) return Status::Ok();
  if (line != nullptr) *line = LineOf(*n);
  const std::string msg = prefix + Quote(key) + " must be an array of strings";
  if (!n->is_array()) return Fail(file, LineOf(*n), msg);
  out->clear();
  if (lines != nullptr) lines->clear();
  for (const toml::node& e : *n->as_array()) {
    if (!e.is_string()) return Fail(file, LineOf(e), msg);
    out->push_back(e.as_string()->get());
    if (lines != nullptr) lines->push_back(LineOf(e));
  }
  return Status::Ok();
}

Status GetIntArray(const std::string& file, const toml::table& t, const std::string& prefix,
                   const std::string& key, std::vector<int64_t>* out, std::vector<int>* lines,
                   bool* found, int* line) {
  const toml::node* n = t.get(key);
  *found = n != nullptr;
  if (n == nullptr) return Status::Ok();
  if (line != nullptr) *line = LineOf(*n);
  const std::string msg = prefix + Quote(key) + " must be an array of integers";
  if (!n->is_array()) return Fail(file, LineOf(*n), msg);
  out->clear();
  if (lines != nullptr) lines->clear();
  for (const toml::node& e : *n->as_array()) {
    if (!e.is_integer()) return Fail(file, LineOf(e), msg);
    out->push_back(e.as_integer()->get());
    if (lines != nullptr) lines->push_back(LineOf(e));
  }
  return Status::Ok();
}

// [a-z0-9_-]+, at most 64 characters: target and network names.
bool IsIdentifier(std::string_view s) {
  if (s.empty() || s.size() > 64) return false;
  for (char c : s) {
    if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' || c == '-')) return false;
  }
  return true;
}

// A bare IPv4 (dotted quad) or IPv6 literal, without brackets or scope.
bool IsIpLiteral(std::string_view s) {
  if (s.empty() || s.size() > 45) return false;
  const std::string str(s);
  unsigned char buf[16];
  return inet_pton(AF_INET, str.c_str(), buf) == 1 || inet_pton(AF_INET6, str.c_str(), buf) == 1;
}

// A DNS host name: labels of 1..63 letters, digits, '-' (not at either end)
// or '_' (seen in real names), 253 characters at most, no trailing dot, and a
// last label that is not all digits (so "1.2.3" is not mistaken for a name).
bool IsHostname(std::string_view s) {
  if (s.empty() || s.size() > 253) return false;
  size_t start = 0;
  while (true) {
    size_t end = s.find('.', start);
    const bool last = end == std::string_view::npos;
    std::string_view label = s.substr(start, last ? std::string_view::npos : end - start);
    if (label.empty() || label.size() > 63) return false;
    if (label.front() == '-' || label.back() == '-') return false;
    bool all_digits = true;
    for (char c : label) {
      const bool alpha = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
      const bool digit = c >= '0' && c <= '9';
      if (!alpha && !digit && c != '-' && c != '_') return false;
      if (!digit) all_digits = false;
    }
    if (last) return !all_digits;
    start = end + 1;
  }
}

// Citizen Lab category codes: current (00-LEGEND-new_category_codes.csv) and
// legacy (00-LEGEND-category_codes.csv).
const std::set<std::string>& CategoryCodes() {
  static const std::set<std::string> codes = {
      // current
      "ALDR", "REL", "PORN", "PROV", "POLR", "HUMR", "ENV", "MILX", "HATE", "NEWS", "XED", "PUBH",
      "GMB", "ANON", "DATE", "GRP", "LGBT", "FILE", "HACK", "COMT", "MMED", "HOST", "SRCH", "GAME",
      "CULTR", "ECON", "GOVT", "COMM", "CTRL", "IGO", "MISC",
      // legacy
      "FEXP", "POLT", "FREL", "MINR", "WOMR", "DEV", "HAL", "GAYL", "MINF", "BLGSERV", "VOIP",
      "EMAIL", "TRNS", "P2P"};
  return codes;
}

bool IsCategoryCode(const std::string& code) { return CategoryCodes().count(code) != 0; }
}  // namespace cfgutil

namespace {

using cfgutil::Fail;
using cfgutil::LineOf;
using cfgutil::Quote;

// Endpoint names: [a-z0-9_.-]+ (dots allowed so host-derived names read well).
bool IsEndpointName(std::string_view s) {
  if (s.empty() || s.size() > 128) return false;
  for (char c : s) {
    if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' || c == '-' || c == '.')) {
      return false;
    }
  }
  return true;
}

// Printable ASCII without spaces: versions.
bool IsToken(std::string_view s) {
  if (s.empty() || s.size() > 64) return false;
  for (char c : s) {
    if (c <= ' ' || c > '~') return false;
  }
  return true;
}

bool IsPath(std::string_view s) {
  if (s.empty() || s.front() != '/') return false;
  for (char c : s) {
    if (c <= ' ' || c > '~' || c == '#') return false;
  }
  return true;
}

bool IsCertName(std::string_view s) {
  if (s.size() > 2 && s.substr(0, 2) == "*.") return cfgutil::IsHostname(s.substr(2));
  return cfgutil::IsHostname(s) || cfgutil::IsIpLiteral(s);
}

std::vector<uint16_t> DefaultPorts(bool tls) { return {static_cast<uint16_t>(tls ? 443 : 80)}; }

const std::vector<std::string> kTargetKeys = {"name",    "title",        "version", "category",
                                              "control", "control_kind", "endpoint"};
const std::vector<std::string> kEndpointKeys = {
    "name", "hosts",  "steps", "tls",           "ports",
    "sni",  "method", "path",  "expect_status", "expect_cert_names"};

Status ParseEndpoint(const std::string& file, const toml::table& tbl, int index, Endpoint* ep) {
  using namespace cfgutil;
  *ep = Endpoint();
  ep->line = LineOf(tbl);
  std::string prefix = "endpoint #" + std::to_string(index + 1) + ": ";
  bool found = false;
  int line = 0;

  // The name first, so that later messages can say which endpoint they are about.
  if (const toml::node* n = tbl.get("name"); n != nullptr && n->is_string()) {
    prefix = "endpoint " + Quote(n->as_string()->get()) + ": ";
  }
  Status s = CheckKeys(file, tbl, prefix, kEndpointKeys);
  if (!s.ok()) return s;
  s = GetString(file, tbl, prefix, "name", &ep->name, &found, &line);
  if (!s.ok()) return s;
  if (!found) return Fail(file, ep->line, prefix + "missing required key \"name\"");
  if (!IsEndpointName(ep->name)) {
    return Fail(file, line, prefix + "name must match [a-z0-9_.-]+");
  }

  // hosts
  std::vector<int> host_lines;
  int hosts_line = 0;
  s = GetStringArray(file, tbl, prefix, "hosts", &ep->hosts, &host_lines, &found, &hosts_line);
  if (!s.ok()) return s;
  if (!found) return Fail(file, ep->line, prefix + "missing required key \"hosts\"");
  if (ep->hosts.empty()) return Fail(file, hosts_line, prefix + "\"hosts\" is empty");
  for (size_t i = 0; i < ep->hosts.size(); ++i) {
    const std::string& h = ep->hosts[i];
    if (h.size() > 2 && h.front() == '[' && h.back() == ']' &&
        IsIpLiteral(h.substr(1, h.size() - 2))) {
      return Fail(file, host_lines[i],
                  prefix + "host " + Quote(h) + ": write IPv6 literals without brackets");
    }
    if (!IsIpLiteral(h) && !IsHostname(h)) {
      return Fail(file, host_lines[i],
                  prefix + "bad host " + Quote(h) + " (expected a DNS name or an IP literal)");
    }
    if (std::find(ep->hosts.begin(), ep->hosts.begin() + i, h) != ep->hosts.begin() + i) {
      return Fail(file, host_lines[i], prefix + "duplicate host " + Quote(h));
    }
  }

  // steps and tls
  std::string steps;
  int steps_line = 0;
  s = GetString(file, tbl, prefix, "steps", &steps, &found, &steps_line);
  if (!s.ok()) return s;
  if (found && !ParseStep(steps, &ep->last_step)) {
    return Fail(file, steps_line,
                prefix + "unknown step " + Quote(steps) + " (expected dns, tcp, tls or http)");
  }
  const Step last = ep->last_step;
  const std::string step_text = std::string("steps = \"") + StepName(last) + "\"";
  int tls_line = 0;
  bool tls_found = false;
  s = GetBool(file, tbl, prefix, "tls", &ep->tls, &tls_found, &tls_line);
  if (!s.ok()) return s;

  // Keys that have no effect at this step are errors, not silently ignored.
  struct Needs {
    const char* key;
    Step from;
  };
  for (const Needs& n :
       {Needs{"tls", Step::kTcp}, Needs{"ports", Step::kTcp}, Needs{"sni", Step::kTls},
        Needs{"expect_cert_names", Step::kTls}, Needs{"method", Step::kHttp},
        Needs{"path", Step::kHttp}, Needs{"expect_status", Step::kHttp}}) {
    const toml::node* node = tbl.get(n.key);
    if (node != nullptr && static_cast<int>(last) < static_cast<int>(n.from)) {
      return Fail(file, LineOf(*node), prefix + Quote(n.key) + " has no effect with " + step_text);
    }
  }
  if (last == Step::kDns) {
    for (size_t i = 0; i < ep->hosts.size(); ++i) {
      if (IsIpLiteral(ep->hosts[i])) {
        return Fail(file, steps_line,
                    prefix + "steps = \"dns\" but host " + Quote(ep->hosts[i]) +
                        " is an IP literal (nothing to resolve)");
      }
    }
  }
  if (last == Step::kTls && !ep->tls) {
    return Fail(file, tls_line, prefix + "steps = \"tls\" needs tls = true");
  }

  // ports
  std::vector<int64_t> ports;
  std::vector<int> port_lines;
  int ports_line = 0;
  s = GetIntArray(file, tbl, prefix, "ports", &ports, &port_lines, &found, &ports_line);
  if (!s.ok()) return s;
  if (found) {
    if (ports.empty()) {
      return Fail(file, ports_line, prefix + "\"ports\" is empty (leave it out for the default)");
    }
    for (size_t i = 0; i < ports.size(); ++i) {
      if (ports[i] < 1 || ports[i] > 65535) {
        return Fail(file, port_lines[i],
                    prefix + "port " + std::to_string(ports[i]) + " out of range (1..65535)");
      }
      const uint16_t p = static_cast<uint16_t>(ports[i]);
      if (std::find(ep->ports.begin(), ep->ports.end(), p) != ep->ports.end()) {
        return Fail(file, port_lines[i], prefix + "duplicate port " + std::to_string(p));
      }
      ep->ports.push_back(p);
    }
  } else {
    ep->ports = DefaultPorts(ep->tls);
  }

  // sni
  s = GetString(file, tbl, prefix, "sni", &ep->sni, &found, &line);
  if (!s.ok()) return s;
  if (found && !ep->sni.empty() && !IsHostname(ep->sni)) {
    return Fail(file, line, prefix + "bad sni " + Quote(ep->sni) + " (expected a DNS name)");
  }

  // method and path
  s = GetString(file, tbl, prefix, "method", &ep->method, &found, &line);
  if (!s.ok()) return s;
  if (ep->method != "GET" && ep->method != "HEAD" && ep->method != "POST") {
    return Fail(file, line,
                prefix + "unknown method " + Quote(ep->method) + " (expected GET, HEAD or POST)");
  }
  s = GetString(file, tbl, prefix, "path", &ep->path, &found, &line);
  if (!s.ok()) return s;
  if (!IsPath(ep->path)) {
    return Fail(file, line,
                prefix + "bad path " + Quote(ep->path) +
                    " (must start with \"/\"; printable ASCII, no spaces or \"#\")");
  }

  // expect_status
  std::vector<int64_t> statuses;
  std::vector<int> status_lines;
  s = GetIntArray(file, tbl, prefix, "expect_status", &statuses, &status_lines, &found, &line);
  if (!s.ok()) return s;
  for (size_t i = 0; i < statuses.size(); ++i) {
    if (statuses[i] < 100 || statuses[i] > 599) {
      return Fail(
          file, status_lines[i],
          prefix + "HTTP status " + std::to_string(statuses[i]) + " out of range (100..599)");
    }
    ep->expect_status.push_back(static_cast<int>(statuses[i]));
  }

  // expect_cert_names
  std::vector<int> name_lines;
  s = GetStringArray(file, tbl, prefix, "expect_cert_names", &ep->expect_cert_names, &name_lines,
                     &found, &line);
  if (!s.ok()) return s;
  if (found && !ep->tls) {
    return Fail(file, line, prefix + "\"expect_cert_names\" has no effect with tls = false");
  }
  for (size_t i = 0; i < ep->expect_cert_names.size(); ++i) {
    if (!IsCertName(ep->expect_cert_names[i])) {
      return Fail(file, name_lines[i],
                  prefix + "bad certificate name " + Quote(ep->expect_cert_names[i]));
    }
  }
  return Status::Ok();
}

// Parses a target; *name_line receives the line of its "name" key.
Status ParseTarget(const std::string& file, const toml::table& root, Target* out, int* name_line) {
  using namespace cfgutil;
  Target t;
  t.file = file;
  const std::string prefix;
  Status s = CheckKeys(file, root, prefix, kTargetKeys);
  if (!s.ok()) return s;
  bool found = false;
  int line = 0;

  s = GetString(file, root, prefix, "name", &t.name, &found, name_line);
  if (!s.ok()) return s;
  if (!found) return Fail(file, 1, "missing required key \"name\"");
  if (!IsIdentifier(t.name)) {
    return Fail(file, *name_line, "name " + Quote(t.name) + " must match [a-z0-9_-]+");
  }
  s = GetString(file, root, prefix, "title", &t.title, &found, &line);
  if (!s.ok()) return s;
  if (!found) return Fail(file, 1, "missing required key \"title\"");
  if (t.title.empty()) return Fail(file, line, "\"title\" is empty");
  s = GetString(file, root, prefix, "version", &t.version, &found, &line);
  if (!s.ok()) return s;
  if (!found) return Fail(file, 1, "missing required key \"version\"");
  if (!IsToken(t.version)) {
    return Fail(file, line,
                "bad version " + Quote(t.version) + " (1..64 printable characters, no spaces)");
  }
  s = GetString(file, root, prefix, "category", &t.category, &found, &line);
  if (!s.ok()) return s;
  if (found && !t.category.empty() && !cfgutil::IsCategoryCode(t.category)) {
    return Fail(file, line,
                "unknown category " + Quote(t.category) +
                    " (expected a Citizen Lab category code, e.g. COMT, GRP, NEWS)");
  }
  int control_line = 0;
  s = GetBool(file, root, prefix, "control", &t.control, &found, &control_line);
  if (!s.ok()) return s;
  s = GetString(file, root, prefix, "control_kind", &t.control_kind, &found, &line);
  if (!s.ok()) return s;
  if (t.control) {
    if (t.control_kind.empty()) {
      return Fail(file, found ? line : control_line,
                  "control = true needs control_kind (\"ip_literal\", \"cdn\" or \"domestic\")");
    }
    if (t.control_kind != "ip_literal" && t.control_kind != "cdn" && t.control_kind != "domestic") {
      return Fail(file, line,
                  "unknown control_kind " + Quote(t.control_kind) +
                      " (expected ip_literal, cdn or domestic)");
    }
  } else if (!t.control_kind.empty()) {
    return Fail(file, line, "control_kind is set but control is not true");
  }

  const toml::node* eps = root.get("endpoint");
  if (eps == nullptr) return Fail(file, 1, "no [[endpoint]] tables");
  if (!eps->is_array_of_tables()) {
    return Fail(file, LineOf(*eps), "\"endpoint\" must be an array of tables ([[endpoint]])");
  }
  std::map<std::string, int> seen;  // endpoint name -> line
  int index = 0;
  for (const toml::node& n : *eps->as_array()) {
    Endpoint ep;
    s = ParseEndpoint(file, *n.as_table(), index++, &ep);
    if (!s.ok()) return s;
    auto [it, inserted] = seen.emplace(ep.name, ep.line);
    if (!inserted) {
      return Fail(file, ep.line,
                  "endpoint " + Quote(ep.name) + ": duplicate endpoint name (first at line " +
                      std::to_string(it->second) + ")");
    }
    t.endpoints.push_back(std::move(ep));
  }
  if (t.endpoints.empty()) return Fail(file, LineOf(*eps), "no [[endpoint]] tables");
  *out = std::move(t);
  return Status::Ok();
}

Status LoadOne(const std::string& path, Target* out, int* name_line) {
  toml::table root;
  Status s = cfgutil::ParseTomlFile(path, &root);
  if (!s.ok()) return s;
  return ParseTarget(path, root, out, name_line);
}

// TOML basic string with the escapes the spec requires.
std::string TomlString(std::string_view s) {
  std::string out = "\"";
  for (unsigned char c : s) {
    switch (c) {
      case '"':
        out += "\\\"";
        break;
      case '\\':
        out += "\\\\";
        break;
      case '\b':
        out += "\\b";
        break;
      case '\t':
        out += "\\t";
        break;
      case '\n':
        out += "\\n";
        break;
      case '\f':
        out += "\\f";
        break;
      case '\r':
        out += "\\r";
        break;
      default:
        if (c < 0x20 || c == 0x7f) {
          char buf[8];
          std::snprintf(buf, sizeof buf, "\\u%04x", c);
          out += buf;
        } else {
          out += static_cast<char>(c);
        }
    }
  }
  return out + "\"";
}

template <typename T, typename F>
std::string TomlArray(const std::vector<T>& v, F format) {
  std::string out = "[";
  for (size_t i = 0; i < v.size(); ++i) {
    if (i > 0) out += ", ";
    out += format(v[i]);
  }
  return out + "]";
}

}  // namespace

const char* StepName(Step s) {
  switch (s) {
    case Step::kDns:
      return "dns";
    case Step::kTcp:
      return "tcp";
    case Step::kTls:
      return "tls";
    case Step::kHttp:
      return "http";
  }
  return "?";
}

bool ParseStep(std::string_view name, Step* out) {
  for (Step s : {Step::kDns, Step::kTcp, Step::kTls, Step::kHttp}) {
    if (name == StepName(s)) {
      *out = s;
      return true;
    }
  }
  return false;
}

Status LoadTargetFile(const std::string& path, Target* out) {
  int name_line = 0;
  return LoadOne(path, out, &name_line);
}

Status LoadTargets(const std::vector<std::string>& paths, std::vector<Target>* out) {
  namespace fs = std::filesystem;
  std::vector<Target> targets;
  std::map<std::string, std::string> names;  // target name -> file
  std::set<std::string> loaded;              // canonical paths, to skip repeats

  auto load = [&](const std::string& file) -> Status {
    std::error_code ec;
    const std::string canonical = fs::weakly_canonical(file, ec).string();
    if (!ec && !loaded.insert(canonical).second) return Status::Ok();
    Target t;
    int name_line = 0;
    Status s = LoadOne(file, &t, &name_line);
    if (!s.ok()) return s;
    auto [it, inserted] = names.emplace(t.name, file);
    if (!inserted) {
      return cfgutil::Fail(
          file, name_line,
          "duplicate target name " + Quote(t.name) + " (already defined in " + it->second + ")");
    }
    targets.push_back(std::move(t));
    return Status::Ok();
  };

  for (const std::string& path : paths) {
    struct stat st;
    if (::stat(path.c_str(), &st) != 0) {
      return Status::IoError(path + ": cannot open: " + std::strerror(errno));
    }
    if (!S_ISDIR(st.st_mode)) {
      Status s = load(path);
      if (!s.ok()) return s;
      continue;
    }
    std::vector<std::string> files;
    std::error_code ec;
    for (fs::directory_iterator it(path, ec), end; !ec && it != end; it.increment(ec)) {
      const std::string name = it->path().filename().string();
      if (name.empty() || name[0] == '.' || it->path().extension() != ".toml") continue;
      std::error_code ec2;
      if (!it->is_regular_file(ec2)) continue;
      files.push_back(name);
    }
    if (ec) return Status::IoError(path + ": cannot read directory: " + ec.message());
    std::sort(files.begin(), files.end());
    for (const std::string& name : files) {
      Status s = load((fs::path(path) / name).string());
      if (!s.ok()) return s;
    }
  }
  *out = std::move(targets);
  return Status::Ok();
}

std::string TargetToToml(const Target& t) {
  std::ostringstream o;
  o << "# rasad target file; format: docs/TARGETS.md. Bump `version` on every edit.\n";
  o << "name = " << TomlString(t.name) << "\n";
  o << "title = " << TomlString(t.title) << "\n";
  o << "version = " << TomlString(t.version) << "\n";
  if (!t.category.empty()) o << "category = " << TomlString(t.category) << "\n";
  if (t.control) o << "control = true\n";
  if (!t.control_kind.empty()) o << "control_kind = " << TomlString(t.control_kind) << "\n";
  for (const Endpoint& e : t.endpoints) {
    o << "\n[[endpoint]]\n";
    o << "name = " << TomlString(e.name) << "\n";
    o << "hosts = " << TomlArray(e.hosts, TomlString) << "\n";
    if (e.last_step != Step::kHttp) o << "steps = " << TomlString(StepName(e.last_step)) << "\n";
    if (e.last_step == Step::kDns) continue;
    if (!e.tls) o << "tls = false\n";
    if (!e.ports.empty() && e.ports != DefaultPorts(e.tls)) {
      o << "ports = " << TomlArray(e.ports, [](uint16_t p) { return std::to_string(p); }) << "\n";
    }
    if (e.last_step == Step::kTcp) continue;
    if (!e.sni.empty()) o << "sni = " << TomlString(e.sni) << "\n";
    if (e.last_step == Step::kHttp) {
      if (e.method != "GET") o << "method = " << TomlString(e.method) << "\n";
      if (e.path != "/") o << "path = " << TomlString(e.path) << "\n";
      if (!e.expect_status.empty()) {
        o << "expect_status = "
          << TomlArray(e.expect_status, [](int s) { return std::to_string(s); }) << "\n";
      }
    }
    if (!e.expect_cert_names.empty()) {
      o << "expect_cert_names = " << TomlArray(e.expect_cert_names, TomlString) << "\n";
    }
  }
  return o.str();
}

}  // namespace rasad
