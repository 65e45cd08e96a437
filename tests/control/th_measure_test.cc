// MeasureForTh against real loopback servers: a scripted DNS server as the
// helper's resolver, an HTTPS server with a certificate from a test CA.
#include "control/th_measure.h"

#include <gtest/gtest.h>

#include "probe/core/clock.h"
#include "tests/control/control_fixture.h"
#include "tests/support/certs.h"
#include "tests/support/dns_server.h"
#include "tests/support/servers.h"

namespace rasad::testing {
namespace {

class ThMeasureTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = ControlTempDir();
    kit_ = std::make_unique<CertKit>(dir_);
    opts_ = FastOptions();
    opts_.resolvers = {"127.0.0.1:" + std::to_string(dns_.port())};
    opts_.allow_ranges = {"127.0.0.0/8"};
    opts_.ca_file = kit_->ca_file();
  }
  void TearDown() override { std::system(("rm -rf " + dir_).c_str()); }

  THRequest Request(const std::string& url, std::vector<std::string> tcp = {}) {
    THRequest r;
    r.http_request = url;
    r.tcp_connect = std::move(tcp);
    r.http_request_headers["User-Agent"] = {"rasad-test/1"};
    return r;
  }

  std::string dir_;
  std::unique_ptr<CertKit> kit_;
  DnsServer dns_;
  ThOptions opts_;
};

TEST_F(ThMeasureTest, HttpsSiteMeasuredEndToEnd) {
  Pem leaf = kit_->Leaf({"www.example.test"});
  const std::string body = "<html><head><title>\n Lab  page </title></head></html>";
  HttpServer server(HttpResponse{200,
                                 "OK",
                                 {{"Content-Type", "text/html"},
                                  {"x-lab", "one"},
                                  {"X-Lab", "two"},
                                  {"Alt-Svc", "h3=\":443\"; ma=86400"}},
                                 body},
                    &leaf);
  DnsRule rule;
  rule.a = {"127.0.0.1"};
  dns_.Set("www.example.test", rule);
  std::string port = std::to_string(server.port());
  std::string key = "127.0.0.1:" + port;

  THResponse r =
      MeasureForTh(Request("https://www.example.test:" + port + "/index.html", {key}), opts_);
  SCOPED_TRACE(DumpJson(ThResponseToJson(r)));
  EXPECT_FALSE(r.dns.failure);
  EXPECT_EQ(r.dns.addrs, std::vector<std::string>{"127.0.0.1"});
  ASSERT_TRUE(r.tcp_connect.count(key));
  EXPECT_TRUE(r.tcp_connect[key].status);
  EXPECT_FALSE(r.tcp_connect[key].failure);
  ASSERT_TRUE(r.tls_handshake.count(key));
  EXPECT_TRUE(r.tls_handshake[key].status);
  EXPECT_FALSE(r.tls_handshake[key].failure);
  EXPECT_EQ(r.tls_handshake[key].server_name, "www.example.test");
  EXPECT_EQ(r.ip_info["127.0.0.1"].flags,
            kIpFlagResolvedByProbe | kIpFlagResolvedByTh | kIpFlagValidForDomain);
  EXPECT_EQ(r.ip_info["127.0.0.1"].asn, 0);
  EXPECT_FALSE(r.http_request.failure);
  EXPECT_EQ(r.http_request.status_code, 200);
  EXPECT_EQ(r.http_request.title, "Lab page");
  EXPECT_EQ(r.http_request.body_length, static_cast<int64_t>(body.size()));
  EXPECT_EQ(r.http_request.headers["Content-Type"], "text/html");
  EXPECT_EQ(r.http_request.headers["X-Lab"], "one");  // first value, Go-canonical name
  EXPECT_EQ(r.http_request.discovered_h3_endpoint, "www.example.test:443");
  // SNI and Host were the URL's host; the User-Agent was the probe's.
  EXPECT_EQ(server.snis(), std::vector<std::string>(2, "www.example.test"));
  EXPECT_EQ(server.hosts().back(), "www.example.test:" + port);
  EXPECT_EQ(server.request_lines().back(), "GET /index.html HTTP/1.1");
}

TEST_F(ThMeasureTest, UntrustedCertificateFailsTlsAndHttp) {
  Pem leaf = kit_->SelfSigned({"www.example.test"});
  HttpServer server(HttpResponse{}, &leaf);
  DnsRule rule;
  rule.a = {"127.0.0.1"};
  dns_.Set("www.example.test", rule);
  std::string port = std::to_string(server.port());
  THResponse r = MeasureForTh(Request("https://www.example.test:" + port + "/"), opts_);
  std::string key = "127.0.0.1:" + port;
  SCOPED_TRACE(DumpJson(ThResponseToJson(r)));
  EXPECT_TRUE(r.tcp_connect[key].status);
  EXPECT_FALSE(r.tls_handshake[key].status);
  EXPECT_EQ(r.tls_handshake[key].failure, std::optional<std::string>("ssl_unknown_authority"));
  EXPECT_EQ(r.ip_info["127.0.0.1"].flags, kIpFlagResolvedByTh);  // not valid for the domain
  EXPECT_EQ(r.http_request.failure, std::optional<std::string>("ssl_unknown_authority"));
  EXPECT_EQ(r.http_request.body_length, -1);
  EXPECT_EQ(r.http_request.status_code, -1);
}

TEST_F(ThMeasureTest, RedirectsAreFollowed) {
  HttpServer final_server(HttpResponse{200, "OK", {}, "<title>Final</title>"});
  HttpServer first(HttpResponse{
      301,
      "Moved",
      {{"Location", "http://next.example.test:" + std::to_string(final_server.port()) + "/end"}},
      ""});
  DnsRule rule;
  rule.a = {"127.0.0.1"};
  dns_.Set("start.example.test", rule);
  dns_.Set("next.example.test", rule);
  THResponse r = MeasureForTh(
      Request("http://start.example.test:" + std::to_string(first.port()) + "/"), opts_);
  SCOPED_TRACE(DumpJson(ThResponseToJson(r)));
  EXPECT_EQ(r.http_request.status_code, 200);
  EXPECT_EQ(r.http_request.title, "Final");
  EXPECT_EQ(final_server.request_lines(), std::vector<std::string>{"GET /end HTTP/1.1"});
  // The endpoints measured are those of the original URL only.
  EXPECT_EQ(r.tcp_connect.size(), 1u);
}

TEST_F(ThMeasureTest, RedirectLoopStopsAfterTheLimit) {
  HttpServer server(HttpResponse{302, "Found", {{"Location", "/again"}}, ""});
  opts_.max_redirects = 3;
  THResponse r =
      MeasureForTh(Request("http://127.0.0.1:" + std::to_string(server.port()) + "/"), opts_);
  EXPECT_EQ(r.http_request.failure,
            std::optional<std::string>("unknown_failure: stopped after 3 redirects"));
  EXPECT_EQ(server.requests(), 4);
}

TEST_F(ThMeasureTest, ClosedPortAndSecondAddress) {
  // Two A records: the first refuses connections, the second serves; the
  // HTTP step moves on like a dialer, tcp_connect reports both.
  HttpServer server(HttpResponse{200, "OK", {}, "<title>up</title>"});
  uint16_t port = server.port();
  DnsRule rule;
  rule.a = {"127.0.0.2", "127.0.0.1"};
  dns_.Set("two.example.test", rule);
  THResponse r =
      MeasureForTh(Request("http://two.example.test:" + std::to_string(port) + "/"), opts_);
  SCOPED_TRACE(DumpJson(ThResponseToJson(r)));
  std::string bad = "127.0.0.2:" + std::to_string(port), good = "127.0.0.1:" + std::to_string(port);
  // 127.0.0.2 is loopback too, but nothing listens on it: connection refused.
  ASSERT_TRUE(r.tcp_connect.count(bad));
  EXPECT_FALSE(r.tcp_connect[bad].status);
  EXPECT_EQ(r.tcp_connect[bad].failure, std::optional<std::string>("connection_refused"));
  EXPECT_TRUE(r.tcp_connect[good].status);
  EXPECT_EQ(r.http_request.status_code, 200);
  EXPECT_TRUE(r.tls_handshake.empty());  // http URL with an explicit port: no TLS
}

TEST_F(ThMeasureTest, DnsFailuresUseLegacyStrings) {
  dns_.Set("nx.example.test", KindRule(DnsRule::kNxdomain));
  THResponse r = MeasureForTh(Request("https://nx.example.test/"), opts_);
  EXPECT_EQ(r.dns.failure, std::optional<std::string>("dns_name_error"));
  EXPECT_TRUE(r.dns.addrs.empty());
  EXPECT_EQ(r.http_request.failure, std::optional<std::string>("dns_lookup_error"));
  EXPECT_EQ(r.http_request.body_length, -1);

  dns_.Set("sf.example.test", KindRule(DnsRule::kServfail));
  r = MeasureForTh(Request("https://sf.example.test/"), opts_);
  EXPECT_EQ(r.dns.failure, std::optional<std::string>("dns_server_failure"));

  DnsRule nodata;
  nodata.kind = DnsRule::kNoData;
  dns_.Set("nodata.example.test", nodata);
  r = MeasureForTh(Request("https://nodata.example.test/"), opts_);
  EXPECT_FALSE(r.dns.failure);  // dns_no_answer: null failure, no addrs
  EXPECT_TRUE(r.dns.addrs.empty());

  dns_.Set("drop.example.test", KindRule(DnsRule::kDrop));
  r = MeasureForTh(Request("https://drop.example.test/"), opts_);
  EXPECT_EQ(r.dns.failure, std::optional<std::string>("unknown_error"));  // timeout
}

TEST_F(ThMeasureTest, SecondResolverUsedWhenFirstIsSilent) {
  DnsRule rule;
  rule.a = {"127.0.0.1"};
  dns_.Set("x.example.test", rule);
  opts_.resolvers = {"127.0.0.1:" + std::to_string(UnusedTcpPort()),
                     "127.0.0.1:" + std::to_string(dns_.port())};
  THResponse r = MeasureForTh(Request("https://x.example.test/"), opts_);
  EXPECT_FALSE(r.dns.failure);
  EXPECT_EQ(r.dns.addrs, std::vector<std::string>{"127.0.0.1"});
}

TEST_F(ThMeasureTest, TotalTimeoutBoundsTheRequest) {
  HttpServer slow(HttpResponse{200, "OK", {}, "late", /*delay_ms=*/3000});
  opts_.total_timeout_ms = 700;
  opts_.http_timeout_ms = 10000;
  int64_t t0 = MonotonicMicros();
  THResponse r =
      MeasureForTh(Request("http://127.0.0.1:" + std::to_string(slow.port()) + "/"), opts_);
  int64_t took_ms = (MonotonicMicros() - t0) / 1000;
  EXPECT_LT(took_ms, 2000);
  EXPECT_GE(took_ms, 650);
  EXPECT_EQ(r.http_request.failure, std::optional<std::string>("generic_timeout_error"));
  EXPECT_TRUE(r.tcp_connect.begin()->second.status);  // that part had finished
}

TEST_F(ThMeasureTest, CancelEndsEarly) {
  HttpServer slow(HttpResponse{200, "OK", {}, "late", /*delay_ms=*/3000});
  std::atomic<bool> cancel{true};
  opts_.cancel = &cancel;
  int64_t t0 = MonotonicMicros();
  THResponse r =
      MeasureForTh(Request("http://127.0.0.1:" + std::to_string(slow.port()) + "/"), opts_);
  EXPECT_LT((MonotonicMicros() - t0) / 1000, 1000);
  EXPECT_EQ(r.http_request.failure, std::optional<std::string>("interrupted"));
}

TEST_F(ThMeasureTest, BodyIsCapped) {
  HttpServer big(HttpResponse{200, "OK", {}, std::string(100000, 'x')});
  opts_.body_cap = 1000;
  THResponse r =
      MeasureForTh(Request("http://127.0.0.1:" + std::to_string(big.port()) + "/"), opts_);
  EXPECT_FALSE(r.http_request.failure);
  EXPECT_EQ(r.http_request.body_length, 1000);
}

}  // namespace
}  // namespace rasad::testing
