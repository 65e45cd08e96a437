// The test-helper protocol: OONI's JSON round-trips, request validation,
// URL handling and the legacy DNS failure strings.
#include "control/th_protocol.h"

#include <gtest/gtest.h>

namespace rasad {
namespace {

using json = nlohmann::json;

// A request and the helper's answer as OONI probes and oohelperd exchange
// them (web_connectivity 0.5.28, x_control_request and control test keys).
const char kOoniRequest[] = R"({
  "http_request": "https://largefile.com/",
  "http_request_headers": {
    "Accept": ["text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"],
    "Accept-Language": ["en-US,en;q=0.9"],
    "User-Agent": ["Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/122.0.0.0 Safari/537.3"]
  },
  "tcp_connect": ["52.35.36.75:443", "52.35.36.75:80"],
  "x_quic_enabled": false
})";

const char kOoniResponse[] = R"({
  "tcp_connect": {"52.35.36.75:443": {"status": true, "failure": null}},
  "tls_handshake": {"52.35.36.75:443": {"server_name": "largefile.com", "status": true, "failure": null}},
  "quic_handshake": {},
  "http_request": {
    "body_length": 16777216, "discovered_h3_endpoint": "largefile.com:443", "failure": null,
    "title": "",
    "headers": {"Alt-Svc": "h3=\":443\"", "Content-Type": "application/octet-stream",
                "Date": "Thu, 24 Aug 2023 14:35:29 GMT"},
    "status_code": 200
  },
  "http3_request": null,
  "dns": {"failure": null, "addrs": ["52.35.36.75"]},
  "ip_info": {"52.35.36.75": {"asn": 16509, "flags": 11}}
})";

// The spec's example (ts-017): an older helper, without tls_handshake,
// quic and ip_info keys.
const char kSpecControl[] = R"({
  "tcp_connect": {
    "93.184.216.34:443": {"status": true, "failure": null},
    "[2606:2800:220:1:248:1893:25c8:1946]:443": {"status": false, "failure": "invalid_socket"}
  },
  "http_request": {
    "body_length": 1256, "failure": null, "title": "Example Domain",
    "headers": {"Accept-Ranges": "bytes", "Content-Type": "text/html; charset=UTF-8"},
    "status_code": 200
  },
  "dns": {"failure": null, "addrs": ["93.184.216.34"]}
})";

TEST(ThProtocol, OoniRequestRoundTrips) {
  THRequest req;
  Status st = ParseThRequest(kOoniRequest, ThLimits{}, &req);
  ASSERT_TRUE(st.ok()) << st.ToString();
  EXPECT_EQ(req.http_request, "https://largefile.com/");
  ASSERT_EQ(req.tcp_connect.size(), 2u);
  EXPECT_EQ(req.tcp_connect[1], "52.35.36.75:80");
  EXPECT_EQ(req.http_request_headers["Accept-Language"][0], "en-US,en;q=0.9");
  EXPECT_FALSE(req.x_quic_enabled);
  EXPECT_EQ(ThRequestToJson(req), json::parse(kOoniRequest));
}

TEST(ThProtocol, OoniResponseRoundTrips) {
  THResponse resp;
  Status st = ParseThResponse(kOoniResponse, &resp);
  ASSERT_TRUE(st.ok()) << st.ToString();
  EXPECT_TRUE(resp.tcp_connect["52.35.36.75:443"].status);
  EXPECT_EQ(resp.tls_handshake["52.35.36.75:443"].server_name, "largefile.com");
  EXPECT_EQ(resp.http_request.body_length, 16777216);
  EXPECT_EQ(resp.http_request.headers["Alt-Svc"], "h3=\":443\"");
  EXPECT_EQ(resp.ip_info["52.35.36.75"].flags,
            kIpFlagResolvedByProbe | kIpFlagResolvedByTh | kIpFlagValidForDomain);
  EXPECT_EQ(resp.ip_info["52.35.36.75"].asn, 16509);
  // Serialising gives back exactly OONI's JSON (same keys, types and nulls).
  EXPECT_EQ(ThResponseToJson(resp), json::parse(kOoniResponse));
  THResponse again;
  ASSERT_TRUE(ParseThResponse(DumpJson(ThResponseToJson(resp)), &again).ok());
  EXPECT_EQ(ThResponseToJson(again), ThResponseToJson(resp));
}

TEST(ThProtocol, SpecExampleWithMissingKeysParses) {
  THResponse resp;
  Status st = ParseThResponse(kSpecControl, &resp);
  ASSERT_TRUE(st.ok()) << st.ToString();
  EXPECT_EQ(*resp.tcp_connect["[2606:2800:220:1:248:1893:25c8:1946]:443"].failure,
            "invalid_socket");
  EXPECT_EQ(resp.http_request.title, "Example Domain");
  EXPECT_TRUE(resp.tls_handshake.empty());
  EXPECT_TRUE(resp.ip_info.empty());
  json out = ThResponseToJson(resp);
  EXPECT_EQ(out["tls_handshake"], json::object());
  EXPECT_EQ(out["http_request"]["discovered_h3_endpoint"], "");
  EXPECT_TRUE(out["http3_request"].is_null());
}

TEST(ThProtocol, NxdomainControlParses) {
  THResponse resp;
  ASSERT_TRUE(ParseThResponse(R"({"tcp_connect":{},"quic_handshake":{},"http_request":{
      "body_length":-1,"discovered_h3_endpoint":"","failure":"dns_lookup_error","title":"",
      "headers":{},"status_code":-1},"http3_request":null,
      "dns":{"failure":"dns_name_error","addrs":[]}})",
                              &resp)
                  .ok());
  EXPECT_EQ(*resp.dns.failure, "dns_name_error");
  EXPECT_EQ(resp.http_request.status_code, -1);
}

TEST(ThProtocol, ResponseWithWrongTypesIsRejected) {
  THResponse resp;
  EXPECT_FALSE(ParseThResponse("[]", &resp).ok());
  EXPECT_FALSE(ParseThResponse(R"({"tcp_connect":{"1.1.1.1:443":{"status":"yes"}}})", &resp).ok());
  EXPECT_FALSE(ParseThResponse(R"({"dns":{"addrs":[1]}})", &resp).ok());
  EXPECT_FALSE(ParseThResponse(R"({"http_request":{"status_code":"200"}})", &resp).ok());
}

Status Parse(const std::string& body, THRequest* out = nullptr, ThLimits limits = ThLimits{}) {
  THRequest r;
  return ParseThRequest(body, limits, out ? out : &r);
}

TEST(ThProtocol, RequestValidation) {
  EXPECT_TRUE(Parse(R"({"http_request":"http://example.com/"})").ok());
  EXPECT_TRUE(Parse(R"({"http_request":"http://example.com/","tcp_connect":null,
                        "http_request_headers":null,"future_key":[1,2]})")
                  .ok());
  EXPECT_FALSE(Parse("").ok());
  EXPECT_FALSE(Parse("not json").ok());
  EXPECT_FALSE(Parse("[1,2]").ok());
  EXPECT_FALSE(Parse(R"({"tcp_connect":[]})").ok());  // no URL
  EXPECT_FALSE(Parse(R"({"http_request":42})").ok());
  EXPECT_FALSE(Parse(R"({"http_request":"ftp://example.com/"})").ok());
  EXPECT_FALSE(Parse(R"({"http_request":"file:///etc/passwd"})").ok());
  EXPECT_FALSE(Parse(R"({"http_request":"gopher://127.0.0.1:6379/"})").ok());
  EXPECT_FALSE(Parse(R"({"http_request":"example.com"})").ok());
  EXPECT_FALSE(Parse(R"({"http_request":"http://"})").ok());
  EXPECT_FALSE(Parse(R"({"http_request":"http://[fe80::1%25eth0]/"})").ok());
  EXPECT_FALSE(Parse(R"({"http_request":"http://example.com/","tcp_connect":"1.2.3.4:80"})").ok());
  EXPECT_FALSE(Parse(R"({"http_request":"http://example.com/","tcp_connect":[5]})").ok());
  EXPECT_FALSE(
      Parse(R"({"http_request":"http://example.com/","tcp_connect":["example.com:80"]})").ok());
  EXPECT_FALSE(Parse(R"({"http_request":"http://example.com/","tcp_connect":["1.2.3.4"]})").ok());
  EXPECT_FALSE(
      Parse(R"({"http_request":"http://example.com/","tcp_connect":["1.2.3.4:70000"]})").ok());
  EXPECT_FALSE(
      Parse(R"({"http_request":"http://example.com/","http_request_headers":{"A":"b"}})").ok());
  EXPECT_FALSE(Parse(R"({"http_request":"http://example.com/","x_quic_enabled":"no"})").ok());
}

TEST(ThProtocol, RequestBounds) {
  ThLimits limits;
  limits.max_tcp_connect = 3;
  json j = {{"http_request", "http://example.com/"},
            {"tcp_connect", {"1.1.1.1:80", "1.1.1.2:80", "1.1.1.3:80"}}};
  EXPECT_TRUE(Parse(j.dump(), nullptr, limits).ok());
  j["tcp_connect"].push_back("1.1.1.4:80");
  Status st = Parse(j.dump(), nullptr, limits);
  EXPECT_FALSE(st.ok());
  EXPECT_NE(st.message().find("more than 3"), std::string::npos) << st.message();

  limits = ThLimits{};
  limits.max_body_bytes = 100;
  std::string big = R"({"http_request":"http://example.com/)" + std::string(200, 'a') + "\"}";
  EXPECT_FALSE(Parse(big, nullptr, limits).ok());
  // Deep nesting within the size bound is just a parse error, not a crash.
  EXPECT_FALSE(Parse(std::string(30000, '[') + std::string(30000, ']')).ok());
}

TEST(ThProtocol, IPv6EndpointsAccepted) {
  THRequest r;
  ASSERT_TRUE(Parse(R"({"http_request":"https://[2001:db8::1]:8443/x?y=1",
                        "tcp_connect":["[2606:4700::1]:443"]})",
                    &r)
                  .ok());
  EXPECT_EQ(r.tcp_connect[0], "[2606:4700::1]:443");
}

TEST(ThProtocol, UrlParsing) {
  ThUrl u;
  ASSERT_TRUE(ParseThUrl("HTTPS://WWW.Example.COM./a/b?c=d#frag", &u).ok());
  EXPECT_EQ(u.scheme, "https");
  EXPECT_EQ(u.host, "www.example.com");
  EXPECT_EQ(u.port, 0);
  EXPECT_EQ(u.path, "/a/b?c=d");
  EXPECT_FALSE(u.host_is_ip);
  EXPECT_EQ(u.MeasurePorts(), std::vector<int>({443}));
  ASSERT_TRUE(ParseThUrl("http://example.com", &u).ok());
  EXPECT_EQ(u.path, "/");
  EXPECT_EQ(u.MeasurePorts(), std::vector<int>({80, 443}));
  ASSERT_TRUE(ParseThUrl("http://[2001:DB8::0001]:8080/", &u).ok());
  EXPECT_EQ(u.host, "2001:db8::1");
  EXPECT_TRUE(u.host_is_ip);
  EXPECT_EQ(u.MeasurePorts(), std::vector<int>({8080}));
  ASSERT_TRUE(ParseThUrl("http://93.184.216.34/", &u).ok());
  EXPECT_TRUE(u.host_is_ip);
  // libcurl normalises numeric IPv4 shorthands; the result is a literal that
  // then goes through the destination policy like any other.
  ASSERT_TRUE(ParseThUrl("http://127.1/", &u).ok());
  EXPECT_EQ(u.host, "127.0.0.1");
  EXPECT_TRUE(u.host_is_ip);
  // IDNs must arrive in punycode (libcurl's IDN conversion depends on the
  // process locale, which a service cannot rely on).
  EXPECT_TRUE(ParseThUrl("http://xn--bcher-kva.example/", &u).ok());
  EXPECT_EQ(u.host, "xn--bcher-kva.example");
  EXPECT_FALSE(ParseThUrl("http://b\xc3\xbc"
                          "cher.example/",
                          &u)
                   .ok());
}

TEST(ThProtocol, RedirectResolution) {
  std::string out;
  ASSERT_TRUE(ResolveRedirect("http://a.example/x/y", "/z", &out).ok());
  EXPECT_EQ(out, "http://a.example/z");
  ASSERT_TRUE(ResolveRedirect("http://a.example/x/y", "w", &out).ok());
  EXPECT_EQ(out, "http://a.example/x/w");
  ASSERT_TRUE(ResolveRedirect("http://a.example/", "https://b.example/q#f", &out).ok());
  EXPECT_EQ(out, "https://b.example/q");
  ASSERT_TRUE(ResolveRedirect("https://a.example/", "//c.example/", &out).ok());
  EXPECT_EQ(out, "https://c.example/");
}

TEST(ThProtocol, LegacyDnsFailures) {
  using S = std::optional<std::string>;
  EXPECT_EQ(ThLegacyDnsFailure(S("dns_nxdomain_error")), S("dns_name_error"));
  EXPECT_EQ(ThLegacyDnsFailure(S("dns_no_answer")), std::nullopt);
  EXPECT_EQ(ThLegacyDnsFailure(std::nullopt), std::nullopt);
  for (const char* f : {"dns_non_recoverable_failure", "dns_refused_error",
                        "dns_server_misbehaving", "dns_temporary_failure", "dns_servfail_error"})
    EXPECT_EQ(ThLegacyDnsFailure(S(f)), S("dns_server_failure")) << f;
  EXPECT_EQ(ThLegacyDnsFailure(S("generic_timeout_error")), S("unknown_error"));
  EXPECT_EQ(ThLegacyDnsFailure(S("connection_refused")), S("unknown_error"));

  EXPECT_EQ(ThCurrentDnsFailure(S("dns_name_error"), true), S("dns_nxdomain_error"));
  EXPECT_EQ(ThCurrentDnsFailure(S("dns_server_failure"), true), S("dns_server_misbehaving"));
  EXPECT_EQ(ThCurrentDnsFailure(std::nullopt, true), S("dns_no_answer"));
  EXPECT_EQ(ThCurrentDnsFailure(std::nullopt, false), std::nullopt);
  EXPECT_EQ(ThCurrentDnsFailure(S("unknown_error"), true),
            S("unknown_failure: test helper: unknown_error"));
  EXPECT_EQ(ThCurrentDnsFailure(S("generic_timeout_error"), true), S("generic_timeout_error"));
}

TEST(ThProtocol, InvalidUtf8IsReplacedNotFatal) {
  THResponse r;
  r.http_request.title = std::string("caf\xe9", 4);  // latin-1, not UTF-8
  std::string text = DumpJson(ThResponseToJson(r));
  THResponse back;
  ASSERT_TRUE(ParseThResponse(text, &back).ok());
  EXPECT_EQ(back.http_request.title, "caf\xef\xbf\xbd");
}

}  // namespace
}  // namespace rasad
