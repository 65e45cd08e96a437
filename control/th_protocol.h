// The OONI Web Connectivity test-helper protocol (ooni/probe-cli
// internal/model/th.go, served by internal/oohelperd): the request a probe
// POSTs to a control helper and the helper's response, with the exact JSON
// names OONI uses, so rasad can talk to OONI's helpers and OONI probes to
// rasad's. Notes: ../shared/notes/ooni-methodology.md §1.3; docs/HELPER.md.
#pragma once

#include <cstdint>
#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "probe/core/status.h"

namespace rasad {

struct THRequest {
  std::string http_request;  // the URL to measure (http or https)
  std::map<std::string, std::vector<std::string>> http_request_headers;
  std::vector<std::string> tcp_connect;  // "ip:port" endpoints the probe resolved
  bool x_quic_enabled = false;
};

struct THTcpConnectResult {
  bool status = false;
  std::optional<std::string> failure;
};

struct THTlsHandshakeResult {
  std::string server_name;
  bool status = false;
  std::optional<std::string> failure;
};

struct THHttpRequestResult {
  int64_t body_length = -1;
  std::string discovered_h3_endpoint;
  std::optional<std::string> failure;
  std::string title;
  std::map<std::string, std::string> headers;  // first value of each header
  int64_t status_code = -1;
};

struct THDnsResult {
  std::optional<std::string> failure;  // legacy strings: dns_name_error, ...
  std::vector<std::string> addrs;
};

// ip_info flags (model.THIPInfoFlag*).
inline constexpr int64_t kIpFlagResolvedByProbe = 1;
inline constexpr int64_t kIpFlagResolvedByTh = 2;
inline constexpr int64_t kIpFlagBogon = 4;
inline constexpr int64_t kIpFlagValidForDomain = 8;

struct THIpInfo {
  int64_t asn = 0;
  int64_t flags = 0;
};

struct THResponse {
  std::map<std::string, THTcpConnectResult> tcp_connect;      // "ip:port"
  std::map<std::string, THTlsHandshakeResult> tls_handshake;  // "ip:443"
  nlohmann::json quic_handshake = nlohmann::json::object();   // always {} (no QUIC)
  THHttpRequestResult http_request;
  nlohmann::json http3_request;  // always null (no HTTP/3)
  THDnsResult dns;
  std::map<std::string, THIpInfo> ip_info;
};

// Bounds on what a request may contain (an internet-facing parser).
struct ThLimits {
  size_t max_body_bytes = 64 * 1024;
  size_t max_url_length = 4096;
  size_t max_tcp_connect = 64;
  size_t max_headers = 32;       // header names
  size_t max_header_values = 8;  // values per name
  size_t max_header_length = 4096;
};

// Parses and validates a request body: size, JSON types, the URL (http or
// https with a host), at most max_tcp_connect entries each an "ip:port" with
// an IP literal. Unknown keys are ignored (forward compatibility), as Go does.
// Status::Invalid carries a message safe to return to the client.
Status ParseThRequest(std::string_view body, const ThLimits& limits, THRequest* out);
nlohmann::json ThRequestToJson(const THRequest& req);

// Parses a helper's response (client side). Missing keys keep their
// defaults (OONI's helpers omit tls_handshake and ip_info in some cases);
// wrong types are an error.
Status ParseThResponse(std::string_view body, THResponse* out);
nlohmann::json ThResponseToJson(const THResponse& resp);

// JSON text; invalid UTF-8 (from a web page's title or headers) is replaced
// with U+FFFD rather than making serialisation fail.
std::string DumpJson(const nlohmann::json& j);

// The parts of a request URL the helper needs, from libcurl's URL parser.
struct ThUrl {
  std::string scheme;  // "http" or "https"
  std::string host;    // no brackets; lowercase; IDNs must arrive in punycode
  int port = 0;        // explicit port, 0 when none
  std::string path;    // path and query, at least "/"
  bool host_is_ip = false;
  // Ports the helper measures: the explicit port, else 443 for https and
  // 80 and 443 for http (as oohelperd does).
  std::vector<int> MeasurePorts() const;
  int DefaultPort() const { return port ? port : (scheme == "https" ? 443 : 80); }
};
Status ParseThUrl(const std::string& url, ThUrl* out);
// Resolves a Location header against the URL it came from (for redirects).
Status ResolveRedirect(const std::string& base, const std::string& location, std::string* out);

// The helper's DNS result in the protocol's legacy vocabulary
// (oohelperd dns.go): dns_nxdomain_error -> dns_name_error; dns_no_answer ->
// no failure (and no addrs); dns_non_recoverable_failure, dns_refused_error,
// dns_server_misbehaving, dns_temporary_failure, dns_servfail_error ->
// dns_server_failure; nullopt stays nullopt; anything else -> unknown_error.
std::optional<std::string> ThLegacyDnsFailure(const std::optional<std::string>& failure);
// Back to current OONI strings for storage: dns_name_error ->
// dns_nxdomain_error; dns_server_failure -> dns_server_misbehaving;
// unknown_error -> "unknown_failure: test helper: unknown_error"; no failure
// with no addrs -> dns_no_answer; any other string is kept.
std::optional<std::string> ThCurrentDnsFailure(const std::optional<std::string>& legacy,
                                               bool no_addrs);

}  // namespace rasad
