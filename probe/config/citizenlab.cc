// Citizen Lab test-list importer. See citizenlab.h and docs/TARGETS.md.

#include "probe/config/citizenlab.h"

#include <arpa/inet.h>

#include <cstdio>
#include <ctime>
#include <set>
#include <vector>

#include "probe/config/toml_util.h"

namespace rasad {

namespace {

using cfgutil::Fail;
using cfgutil::Quote;

constexpr const char* kHeader = "url,category_code,category_description,date_added,source,notes";
constexpr size_t kColumns = 6;

struct Record {
  int line = 0;  // where the record starts
  std::vector<std::string> fields;
};

// RFC 4180 CSV: quoted fields may hold commas, newlines and "" escapes; CRLF
// or LF line ends; a UTF-8 byte order mark is skipped; blank lines are skipped.
Status ParseCsv(const std::string& file, const std::string& text, std::vector<Record>* out) {
  size_t i = text.compare(0, 3, "\xEF\xBB\xBF") == 0 ? 3 : 0;
  int line = 1;
  const size_t n = text.size();
  while (i < n) {
    Record rec;
    rec.line = line;
    bool end_of_record = false;
    while (!end_of_record) {
      std::string field;
      if (i < n && text[i] == '"') {
        ++i;
        while (true) {
          if (i >= n) return Fail(file, rec.line, "unterminated quoted field");
          const char c = text[i++];
          if (c == '"') {
            if (i < n && text[i] == '"') {
              field += '"';
              ++i;
              continue;
            }
            break;
          }
          if (c == '\n') ++line;
          field += c;
        }
        if (i < n && text[i] != ',' && text[i] != '\n' && text[i] != '\r') {
          return Fail(file, line, "unexpected character after a closing quote");
        }
      } else {
        while (i < n && text[i] != ',' && text[i] != '\n') field += text[i++];
        if (!field.empty() && field.back() == '\r') field.pop_back();
      }
      rec.fields.push_back(std::move(field));
      if (i < n && text[i] == '\r' && i + 1 < n && text[i + 1] == '\n') ++i;
      if (i >= n) {
        end_of_record = true;
      } else if (text[i] == ',') {
        ++i;
      } else {  // '\n' (or a stray '\r' after a quoted field)
        if (text[i] == '\n') ++line;
        ++i;
        end_of_record = true;
      }
    }
    if (rec.fields.size() == 1 && rec.fields[0].empty()) continue;  // blank line
    out->push_back(std::move(rec));
  }
  return Status::Ok();
}

std::string Trim(const std::string& s) {
  const size_t b = s.find_first_not_of(" \t\r\n");
  if (b == std::string::npos) return "";
  const size_t e = s.find_last_not_of(" \t\r\n");
  return s.substr(b, e - b + 1);
}

std::string Lower(std::string s) {
  for (char& c : s) {
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
  }
  return s;
}

struct Url {
  bool tls = true;
  std::string host;  // lower case; IPv6 without brackets
  uint16_t port = 443;
  std::string path;  // starts with "/", may carry a query
};

bool ParseUrl(const std::string& text, Url* u, std::string* why) {
  const size_t sep = text.find("://");
  if (sep == std::string::npos) return *why = "no scheme", false;
  const std::string scheme = Lower(text.substr(0, sep));
  if (scheme != "http" && scheme != "https") return *why = "scheme must be http or https", false;
  u->tls = scheme == "https";
  u->port = u->tls ? 443 : 80;
  const std::string rest = text.substr(sep + 3);
  const size_t end = rest.find_first_of("/?#");
  const std::string authority = rest.substr(0, end);
  if (authority.find('@') != std::string::npos) return *why = "user info is not supported", false;
  for (unsigned char c : authority) {
    if (c >= 0x80) return *why = "non-ASCII host (use the punycode form)", false;
  }

  std::string host, port;
  if (!authority.empty() && authority[0] == '[') {
    const size_t close = authority.find(']');
    if (close == std::string::npos) return *why = "unterminated IPv6 literal", false;
    host = authority.substr(1, close - 1);
    unsigned char buf[16];
    if (inet_pton(AF_INET6, host.c_str(), buf) != 1) return *why = "bad IPv6 literal", false;
    const std::string after = authority.substr(close + 1);
    if (!after.empty()) {
      if (after[0] != ':') return *why = "bad port", false;
      port = after.substr(1);
      if (port.empty()) return *why = "empty port", false;
    }
  } else {
    const size_t colon = authority.find(':');
    host = authority.substr(0, colon);
    if (colon != std::string::npos) {
      port = authority.substr(colon + 1);
      if (port.empty()) return *why = "empty port", false;
    }
    if (host.size() > 1 && host.back() == '.') host.pop_back();  // fully qualified form
    host = Lower(host);
    if (host.empty()) return *why = "no host", false;
    if (!cfgutil::IsIpLiteral(host) && !cfgutil::IsHostname(host)) {
      return *why = "bad host " + Quote(host), false;
    }
  }
  u->host = Lower(host);
  if (!port.empty()) {
    if (port.size() > 5 || port.find_first_not_of("0123456789") != std::string::npos) {
      return *why = "bad port " + Quote(port), false;
    }
    const int p = std::stoi(port);
    if (p < 1 || p > 65535) return *why = "port " + port + " out of range (1..65535)", false;
    u->port = static_cast<uint16_t>(p);
  }

  std::string raw = end == std::string::npos ? "" : rest.substr(end);
  raw = raw.substr(0, raw.find('#'));
  if (raw.empty() || raw[0] != '/') raw = "/" + raw;
  // Percent-encode what may not appear raw in a request line.
  u->path.clear();
  for (unsigned char c : raw) {
    if (c <= 0x20 || c >= 0x7f) {
      char buf[4];
      std::snprintf(buf, sizeof buf, "%%%02X", c);
      u->path += buf;
    } else {
      u->path += static_cast<char>(c);
    }
  }
  return true;
}

std::string EndpointNameFor(const std::string& host) {
  std::string name;
  for (char c : host) {
    const bool ok =
        (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' || c == '-' || c == '.';
    name += ok ? c : '-';
  }
  if (name.size() > 100) name.resize(100);
  return name;
}

std::string TodayUtc() {
  const std::time_t now = std::time(nullptr);
  std::tm tm{};
  gmtime_r(&now, &tm);
  char buf[16];
  std::strftime(buf, sizeof buf, "%Y-%m-%d", &tm);
  return buf;
}

std::string Basename(const std::string& path) {
  const size_t slash = path.find_last_of('/');
  return slash == std::string::npos ? path : path.substr(slash + 1);
}

}  // namespace

Status ImportCitizenLab(const std::string& csv_path, const std::string& name, Target* out) {
  if (!cfgutil::IsIdentifier(name)) {
    return Status::Invalid("target name " + Quote(name) + " must match [a-z0-9_-]+");
  }
  std::string text;
  Status s = cfgutil::ReadWholeFile(csv_path, &text);
  if (!s.ok()) return s;
  std::vector<Record> records;
  s = ParseCsv(csv_path, text, &records);
  if (!s.ok()) return s;
  if (records.empty())
    return Fail(csv_path, 1, "empty file (expected the header " + std::string(kHeader) + ")");

  const Record& header = records[0];
  std::string joined;
  for (size_t i = 0; i < header.fields.size(); ++i) {
    joined += (i ? "," : "") + Lower(Trim(header.fields[i]));
  }
  if (joined != kHeader) {
    return Fail(csv_path, header.line, "bad header: expected " + std::string(kHeader));
  }

  Target t;
  t.name = name;
  t.title = "Citizen Lab list " + Basename(csv_path);
  t.version = TodayUtc();
  t.file = csv_path;
  std::set<std::string> seen_urls;   // scheme|host|port|path
  std::set<std::string> used_names;  // endpoint names handed out
  std::set<std::string> categories;
  for (size_t r = 1; r < records.size(); ++r) {
    const Record& rec = records[r];
    if (rec.fields.size() != kColumns) {
      return Fail(csv_path, rec.line,
                  "expected " + std::to_string(kColumns) + " columns, got " +
                      std::to_string(rec.fields.size()));
    }
    const std::string url_text = Trim(rec.fields[0]);
    Url url;
    std::string why;
    if (!ParseUrl(url_text, &url, &why)) {
      return Fail(csv_path, rec.line, "bad URL " + Quote(url_text) + ": " + why);
    }
    categories.insert(Trim(rec.fields[1]));
    const std::string key = std::string(url.tls ? "https" : "http") + "|" + url.host + "|" +
                            std::to_string(url.port) + "|" + url.path;
    if (!seen_urls.insert(key).second) continue;

    // Endpoint names: the host, then host-2, host-3, ... for more URLs on it.
    Endpoint ep;
    const std::string base = EndpointNameFor(url.host);
    ep.name = base;
    for (int n = 2; used_names.count(ep.name) != 0; ++n) ep.name = base + "-" + std::to_string(n);
    used_names.insert(ep.name);
    ep.hosts = {url.host};
    ep.last_step = Step::kHttp;
    ep.tls = url.tls;
    ep.ports = {url.port};
    ep.path = url.path;
    ep.line = rec.line;
    t.endpoints.push_back(std::move(ep));
  }
  if (t.endpoints.empty()) return Fail(csv_path, header.line, "no URLs after the header");
  if (categories.size() == 1) {
    if (cfgutil::IsCategoryCode(*categories.begin())) t.category = *categories.begin();
  }
  *out = std::move(t);
  return Status::Ok();
}

}  // namespace rasad
