#include "control/th_protocol.h"

#include <curl/curl.h>

#include <algorithm>
#include <cctype>
#include <memory>

#include "control/ssrf.h"
#include "probe/net/bind.h"

namespace rasad {

namespace {

using json = nlohmann::json;

json Nullable(const std::optional<std::string>& s) { return s ? json(*s) : json(nullptr); }

// Reads an optional string-or-null member into *out; false on a wrong type.
bool GetOptString(const json& obj, const char* key, std::optional<std::string>* out) {
  auto it = obj.find(key);
  if (it == obj.end() || it->is_null()) {
    *out = std::nullopt;
    return true;
  }
  if (!it->is_string()) return false;
  *out = it->get<std::string>();
  return true;
}

bool GetString(const json& obj, const char* key, std::string* out) {
  auto it = obj.find(key);
  if (it == obj.end() || it->is_null()) return true;
  if (!it->is_string()) return false;
  *out = it->get<std::string>();
  return true;
}

bool GetBool(const json& obj, const char* key, bool* out) {
  auto it = obj.find(key);
  if (it == obj.end() || it->is_null()) return true;
  if (!it->is_boolean()) return false;
  *out = it->get<bool>();
  return true;
}

bool GetInt(const json& obj, const char* key, int64_t* out) {
  auto it = obj.find(key);
  if (it == obj.end() || it->is_null()) return true;
  if (!it->is_number_integer()) return false;
  *out = it->get<int64_t>();
  return true;
}

struct CurlUrlDeleter {
  void operator()(CURLU* u) const { curl_url_cleanup(u); }
};
using CurlUrl = std::unique_ptr<CURLU, CurlUrlDeleter>;

std::string GetPart(CURLU* u, CURLUPart part, unsigned flags = 0) {
  char* s = nullptr;
  if (curl_url_get(u, part, &s, flags) != CURLUE_OK || !s) return "";
  std::string out(s);
  curl_free(s);
  return out;
}

bool ValidHostname(const std::string& h) {
  if (h.empty() || h.size() > 253) return false;
  for (char c : h)
    if (!(isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '.' || c == '_')) return false;
  return h.front() != '.' && h.find("..") == std::string::npos;
}

}  // namespace

std::string DumpJson(const json& j) {
  return j.dump(-1, ' ', false, json::error_handler_t::replace);
}

std::vector<int> ThUrl::MeasurePorts() const {
  if (port) return {port};
  if (scheme == "https") return {443};
  return {80, 443};
}

Status ParseThUrl(const std::string& url, ThUrl* out) {
  CurlUrl u(curl_url());
  if (!u) return Status::Internal("out of memory");
  // No scheme guessing: the URL must say http or https.
  if (curl_url_set(u.get(), CURLUPART_URL, url.c_str(), CURLU_NON_SUPPORT_SCHEME) != CURLUE_OK)
    return Status::Invalid("http_request is not a valid URL");
  ThUrl r;
  r.scheme = GetPart(u.get(), CURLUPART_SCHEME);
  std::transform(r.scheme.begin(), r.scheme.end(), r.scheme.begin(),
                 [](unsigned char c) { return static_cast<char>(tolower(c)); });
  if (r.scheme != "http" && r.scheme != "https")
    return Status::Invalid("http_request must be an http or https URL");
  std::string host = GetPart(u.get(), CURLUPART_HOST);
  if (host.size() >= 2 && host.front() == '[' && host.back() == ']') {
    host = host.substr(1, host.size() - 2);
    if (host.find('%') != std::string::npos || GetPart(u.get(), CURLUPART_ZONEID) != "")
      return Status::Invalid("http_request: IPv6 zone ids are not accepted");
    std::string canon = CanonicalIp(host);
    if (canon.empty()) return Status::Invalid("http_request: bad IPv6 literal");
    r.host = canon;
    r.host_is_ip = true;
  } else {
    std::transform(host.begin(), host.end(), host.begin(),
                   [](unsigned char c) { return static_cast<char>(tolower(c)); });
    if (!CanonicalIp(host).empty()) {
      r.host = CanonicalIp(host);
      r.host_is_ip = true;
    } else {
      if (!host.empty() && host.back() == '.') host.pop_back();  // FQDN form
      if (!ValidHostname(host))
        return Status::Invalid("http_request: invalid host name (IDNs must be in punycode)");
      // curl accepts "127.1" and "0x7f000001" as hosts: all-numeric names
      // are refused rather than resolved by anyone.
      if (host.find_first_not_of("0123456789.x") == std::string::npos)
        return Status::Invalid("http_request: invalid host name");
      r.host = host;
    }
  }
  std::string port = GetPart(u.get(), CURLUPART_PORT);
  if (!port.empty()) {
    r.port = atoi(port.c_str());
    if (r.port <= 0 || r.port > 65535) return Status::Invalid("http_request: invalid port");
  }
  r.path = GetPart(u.get(), CURLUPART_PATH);
  if (r.path.empty()) r.path = "/";
  std::string query = GetPart(u.get(), CURLUPART_QUERY);
  if (!query.empty()) r.path += "?" + query;
  *out = std::move(r);
  return Status::Ok();
}

Status ResolveRedirect(const std::string& base, const std::string& location, std::string* out) {
  CurlUrl u(curl_url());
  if (!u) return Status::Internal("out of memory");
  if (curl_url_set(u.get(), CURLUPART_URL, base.c_str(), CURLU_NON_SUPPORT_SCHEME) != CURLUE_OK)
    return Status::Invalid("bad base URL");
  if (curl_url_set(u.get(), CURLUPART_URL, location.c_str(),
                   CURLU_NON_SUPPORT_SCHEME | CURLU_URLENCODE) != CURLUE_OK)
    return Status::Invalid("bad Location");
  // The fragment never goes on the wire.
  curl_url_set(u.get(), CURLUPART_FRAGMENT, nullptr, 0);
  *out = GetPart(u.get(), CURLUPART_URL);
  if (out->empty()) return Status::Invalid("bad Location");
  return Status::Ok();
}

Status ParseThRequest(std::string_view body, const ThLimits& limits, THRequest* out) {
  if (body.size() > limits.max_body_bytes) return Status::Invalid("request body too large");
  json j = json::parse(body.begin(), body.end(), nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded()) return Status::Invalid("request body is not valid JSON");
  if (!j.is_object()) return Status::Invalid("request body must be a JSON object");
  THRequest r;
  auto url = j.find("http_request");
  if (url == j.end() || !url->is_string()) return Status::Invalid("http_request must be a string");
  r.http_request = url->get<std::string>();
  if (r.http_request.size() > limits.max_url_length)
    return Status::Invalid("http_request is too long");
  ThUrl parsed;
  Status st = ParseThUrl(r.http_request, &parsed);
  if (!st.ok()) return st;

  auto headers = j.find("http_request_headers");
  if (headers != j.end() && !headers->is_null()) {
    if (!headers->is_object()) return Status::Invalid("http_request_headers must be an object");
    if (headers->size() > limits.max_headers)
      return Status::Invalid("too many http_request_headers");
    for (auto& [name, values] : headers->items()) {
      if (name.size() > limits.max_header_length)
        return Status::Invalid("http_request_headers: name too long");
      if (values.is_null()) continue;
      if (!values.is_array() || values.size() > limits.max_header_values)
        return Status::Invalid("http_request_headers values must be arrays of strings");
      std::vector<std::string>& dst = r.http_request_headers[name];
      for (const json& v : values) {
        if (!v.is_string() || v.get_ref<const std::string&>().size() > limits.max_header_length)
          return Status::Invalid("http_request_headers values must be arrays of strings");
        dst.push_back(v.get<std::string>());
      }
    }
  }

  auto tcp = j.find("tcp_connect");
  if (tcp != j.end() && !tcp->is_null()) {
    if (!tcp->is_array()) return Status::Invalid("tcp_connect must be an array of strings");
    if (tcp->size() > limits.max_tcp_connect)
      return Status::Invalid("tcp_connect has more than " + std::to_string(limits.max_tcp_connect) +
                             " entries");
    for (const json& e : *tcp) {
      if (!e.is_string()) return Status::Invalid("tcp_connect must be an array of strings");
      const std::string& s = e.get_ref<const std::string&>();
      std::string addr;
      int port = 0;
      if (s.size() > 64 || !SplitHostPort(s, -1, &addr, &port) || port <= 0 || port > 65535 ||
          CanonicalIp(addr).empty())
        return Status::Invalid("tcp_connect entries must be \"ip:port\"");
      r.tcp_connect.push_back(s);
    }
  }
  if (!GetBool(j, "x_quic_enabled", &r.x_quic_enabled))
    return Status::Invalid("x_quic_enabled must be a boolean");
  *out = std::move(r);
  return Status::Ok();
}

json ThRequestToJson(const THRequest& req) {
  json headers = json::object();
  for (const auto& [k, v] : req.http_request_headers) headers[k] = v;
  return json{{"http_request", req.http_request},
              {"http_request_headers", headers},
              {"tcp_connect", req.tcp_connect},
              {"x_quic_enabled", req.x_quic_enabled}};
}

json ThResponseToJson(const THResponse& resp) {
  json tcp = json::object();
  for (const auto& [k, v] : resp.tcp_connect)
    tcp[k] = {{"status", v.status}, {"failure", Nullable(v.failure)}};
  json tls = json::object();
  for (const auto& [k, v] : resp.tls_handshake)
    tls[k] = {
        {"server_name", v.server_name}, {"status", v.status}, {"failure", Nullable(v.failure)}};
  const THHttpRequestResult& h = resp.http_request;
  json headers = json::object();
  for (const auto& [k, v] : h.headers) headers[k] = v;
  json http = {{"body_length", h.body_length},
               {"discovered_h3_endpoint", h.discovered_h3_endpoint},
               {"failure", Nullable(h.failure)},
               {"title", h.title},
               {"headers", headers},
               {"status_code", h.status_code}};
  json ipinfo = json::object();
  for (const auto& [k, v] : resp.ip_info) ipinfo[k] = {{"asn", v.asn}, {"flags", v.flags}};
  return json{
      {"tcp_connect", tcp},
      {"tls_handshake", tls},
      {"quic_handshake", resp.quic_handshake.is_object() ? resp.quic_handshake : json::object()},
      {"http_request", http},
      {"http3_request", resp.http3_request},
      {"dns", {{"failure", Nullable(resp.dns.failure)}, {"addrs", resp.dns.addrs}}},
      {"ip_info", ipinfo}};
}

Status ParseThResponse(std::string_view body, THResponse* out) {
  json j = json::parse(body.begin(), body.end(), nullptr, false);
  if (j.is_discarded()) return Status::Invalid("helper response is not valid JSON");
  if (!j.is_object()) return Status::Invalid("helper response must be a JSON object");
  THResponse r;
  auto bad = [](const std::string& what) {
    return Status::Invalid("helper response: bad " + what);
  };
  if (auto it = j.find("tcp_connect"); it != j.end() && !it->is_null()) {
    if (!it->is_object()) return bad("tcp_connect");
    for (auto& [k, v] : it->items()) {
      THTcpConnectResult t;
      if (!v.is_object() || !GetBool(v, "status", &t.status) ||
          !GetOptString(v, "failure", &t.failure))
        return bad("tcp_connect entry");
      r.tcp_connect[k] = t;
    }
  }
  if (auto it = j.find("tls_handshake"); it != j.end() && !it->is_null()) {
    if (!it->is_object()) return bad("tls_handshake");
    for (auto& [k, v] : it->items()) {
      THTlsHandshakeResult t;
      if (!v.is_object() || !GetString(v, "server_name", &t.server_name) ||
          !GetBool(v, "status", &t.status) || !GetOptString(v, "failure", &t.failure))
        return bad("tls_handshake entry");
      r.tls_handshake[k] = t;
    }
  }
  if (auto it = j.find("quic_handshake"); it != j.end() && it->is_object()) r.quic_handshake = *it;
  if (auto it = j.find("http3_request"); it != j.end()) r.http3_request = *it;
  if (auto it = j.find("http_request"); it != j.end() && !it->is_null()) {
    const json& v = *it;
    THHttpRequestResult& h = r.http_request;
    if (!v.is_object() || !GetInt(v, "body_length", &h.body_length) ||
        !GetString(v, "discovered_h3_endpoint", &h.discovered_h3_endpoint) ||
        !GetOptString(v, "failure", &h.failure) || !GetString(v, "title", &h.title) ||
        !GetInt(v, "status_code", &h.status_code))
      return bad("http_request");
    if (auto hd = v.find("headers"); hd != v.end() && !hd->is_null()) {
      if (!hd->is_object()) return bad("http_request.headers");
      for (auto& [k, hv] : hd->items()) {
        if (!hv.is_string()) return bad("http_request.headers");
        h.headers[k] = hv.get<std::string>();
      }
    }
  }
  if (auto it = j.find("dns"); it != j.end() && !it->is_null()) {
    const json& v = *it;
    if (!v.is_object() || !GetOptString(v, "failure", &r.dns.failure)) return bad("dns");
    if (auto a = v.find("addrs"); a != v.end() && !a->is_null()) {
      if (!a->is_array()) return bad("dns.addrs");
      for (const json& s : *a) {
        if (!s.is_string()) return bad("dns.addrs");
        r.dns.addrs.push_back(s.get<std::string>());
      }
    }
  }
  if (auto it = j.find("ip_info"); it != j.end() && !it->is_null()) {
    if (!it->is_object()) return bad("ip_info");
    for (auto& [k, v] : it->items()) {
      THIpInfo info;
      if (!v.is_object() || !GetInt(v, "asn", &info.asn) || !GetInt(v, "flags", &info.flags))
        return bad("ip_info entry");
      r.ip_info[k] = info;
    }
  }
  *out = std::move(r);
  return Status::Ok();
}

std::optional<std::string> ThLegacyDnsFailure(const std::optional<std::string>& failure) {
  if (!failure) return std::nullopt;
  const std::string& f = *failure;
  if (f == "dns_nxdomain_error") return std::string("dns_name_error");
  if (f == "dns_no_answer") return std::nullopt;
  if (f == "dns_non_recoverable_failure" || f == "dns_refused_error" ||
      f == "dns_server_misbehaving" || f == "dns_temporary_failure" || f == "dns_servfail_error")
    return std::string("dns_server_failure");
  return std::string("unknown_error");
}

std::optional<std::string> ThCurrentDnsFailure(const std::optional<std::string>& legacy,
                                               bool no_addrs) {
  if (!legacy) {
    if (no_addrs) return std::string("dns_no_answer");
    return std::nullopt;
  }
  if (*legacy == "dns_name_error") return std::string("dns_nxdomain_error");
  if (*legacy == "dns_server_failure") return std::string("dns_server_misbehaving");
  if (*legacy == "unknown_error") return std::string("unknown_failure: test helper: unknown_error");
  return legacy;
}

}  // namespace rasad
