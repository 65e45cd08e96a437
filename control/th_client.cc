#include "control/th_client.h"

#include <set>

#include "control/ssrf.h"
#include "probe/core/clock.h"
#include "probe/net/bind.h"

namespace rasad {

namespace {

const char kAccept[] = "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8";
const char kAcceptLanguage[] = "en-US,en;q=0.9";
const char kUserAgent[] =
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/122.0.0.0 Safari/537.3";

void SetFailure(Observation* o, const std::optional<std::string>& current,
                const std::optional<std::string>& original) {
  o->failure = current;
  if (original && original != current) o->details["th_failure"] = *original;
}

}  // namespace

THRequest BuildThRequest(const std::string& url, const std::vector<std::string>& endpoints,
                         const std::string& user_agent) {
  THRequest r;
  r.http_request = url;
  r.http_request_headers["Accept"] = {kAccept};
  r.http_request_headers["Accept-Language"] = {kAcceptLanguage};
  r.http_request_headers["User-Agent"] = {user_agent.empty() ? kUserAgent : user_agent};
  std::set<std::string> seen;
  for (const std::string& e : endpoints) {
    std::string addr;
    int port = 0;
    if (!SplitHostPort(e, -1, &addr, &port) || port <= 0 || port > 65535) continue;
    std::string ip = CanonicalIp(addr);
    if (ip.empty()) continue;
    std::string key = JoinHostPort(ip, port);
    if (seen.insert(key).second) r.tcp_connect.push_back(key);
  }
  return r;
}

std::vector<Observation> ThResponseToObservations(const THResponse& resp, const std::string& url) {
  std::vector<Observation> out;
  int64_t now = WallMicros();
  ThUrl u;
  bool url_ok = ParseThUrl(url, &u).ok();
  std::string host = url_ok ? u.host : "";
  auto make = [&](Step step) {
    Observation o;
    o.uid = NewUid();
    o.flow_uid = o.uid;
    o.step = step;
    o.hostname = host;
    o.transport = "tcp";
    o.t_start = now;
    o.t_end = now;
    o.details["source"] = "control";
    return o;
  };
  auto ip_flags = [&](const std::string& ip) -> int64_t {
    auto it = resp.ip_info.find(ip);
    return it == resp.ip_info.end() ? 0 : it->second.flags;
  };

  // dns
  std::optional<std::string> dns_current =
      ThCurrentDnsFailure(resp.dns.failure, resp.dns.addrs.empty());
  if (!(url_ok && u.host_is_ip)) {
    Observation d = make(Step::kDns);
    d.query_type = "ANY";
    d.transport = "";
    nlohmann::json answers = nlohmann::json::array();
    for (const std::string& a : resp.dns.addrs) {
      bool v6 = false;
      IsIpLiteral(a, &v6);
      answers.push_back({{"type", v6 ? "AAAA" : "A"}, {"value", a}});
    }
    d.details["answers"] = answers;
    nlohmann::json info = nlohmann::json::object();
    for (const auto& [ip, i] : resp.ip_info) info[ip] = {{"asn", i.asn}, {"flags", i.flags}};
    d.details["ip_info"] = info;
    SetFailure(&d, dns_current, resp.dns.failure);
    out.push_back(std::move(d));
  }

  // tcp and tls, one flow per endpoint
  std::set<std::string> keys;
  for (const auto& [k, v] : resp.tcp_connect) keys.insert(k);
  for (const auto& [k, v] : resp.tls_handshake) keys.insert(k);
  for (const std::string& key : keys) {
    std::string addr;
    int port = 0;
    if (!SplitHostPort(key, -1, &addr, &port)) continue;
    std::string flow_uid = NewUid();
    auto tcp = resp.tcp_connect.find(key);
    if (tcp != resp.tcp_connect.end()) {
      Observation o = make(Step::kTcp);
      o.flow_uid = flow_uid;
      o.remote_addr = addr;
      o.remote_port = port;
      o.details["ip_flags"] = ip_flags(addr);
      std::optional<std::string> f = tcp->second.failure;
      if (!f && !tcp->second.status) f = "unknown_failure: test helper: status false";
      SetFailure(&o, f, tcp->second.failure);
      out.push_back(std::move(o));
    }
    auto tls = resp.tls_handshake.find(key);
    if (tls != resp.tls_handshake.end()) {
      Observation o = make(Step::kTls);
      o.flow_uid = flow_uid;
      o.hostname = tls->second.server_name.empty() ? host : tls->second.server_name;
      o.remote_addr = addr;
      o.remote_port = port;
      o.details["ip_flags"] = ip_flags(addr);
      std::optional<std::string> f = tls->second.failure;
      if (!f && !tls->second.status) f = "unknown_failure: test helper: status false";
      SetFailure(&o, f, tls->second.failure);
      out.push_back(std::move(o));
    }
  }

  // http
  const THHttpRequestResult& h = resp.http_request;
  Observation o = make(Step::kHttp);
  o.details["url"] = url;
  o.details["method"] = "GET";
  std::optional<std::string> f = h.failure;
  if (f && *f == "dns_lookup_error" && dns_current) f = dns_current;
  if (!f && h.status_code <= 0) f = "unknown_failure: test helper: no status code";
  SetFailure(&o, f, h.failure);
  if (!f) {
    o.details["status"] = h.status_code;
    o.details["body_length"] = h.body_length;
    o.details["title"] = h.title;
    nlohmann::json hl = nlohmann::json::array();
    for (const auto& [k, v] : h.headers) hl.push_back({k, v});
    o.details["headers_list"] = hl;
    if (!h.discovered_h3_endpoint.empty())
      o.details["discovered_h3_endpoint"] = h.discovered_h3_endpoint;
  }
  out.push_back(std::move(o));
  return out;
}

}  // namespace rasad
