// The helper's HTTP service end to end: a libcurl client POSTs to a running
// HelperServer on an ephemeral loopback port.
#include "control/helper_server.h"

#include <curl/curl.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <unistd.h>

#include <chrono>
#include <thread>

#include "tests/control/control_fixture.h"
#include "tests/support/dns_server.h"
#include "tests/support/servers.h"

namespace rasad::testing {
namespace {

struct Reply {
  long status = 0;
  std::string body;
  std::string content_type;
  CURLcode rc = CURLE_OK;
};

size_t Collect(char* data, size_t size, size_t n, void* p) {
  static_cast<std::string*>(p)->append(data, size * n);
  return size * n;
}

Reply Call(uint16_t port, const std::string& method, const std::string& body = "",
           bool send_body = false) {
  Reply r;
  CURL* h = curl_easy_init();
  std::string url = "http://127.0.0.1:" + std::to_string(port) + "/";
  curl_easy_setopt(h, CURLOPT_URL, url.c_str());
  curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, 20000L);
  curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, &Collect);
  curl_easy_setopt(h, CURLOPT_WRITEDATA, &r.body);
  curl_easy_setopt(h, CURLOPT_PROXY, "");
  curl_slist* headers = curl_slist_append(nullptr, "Content-Type: application/json");
  curl_easy_setopt(h, CURLOPT_HTTPHEADER, headers);
  if (method == "POST" || send_body) {
    curl_easy_setopt(h, CURLOPT_POSTFIELDS, body.c_str());
    curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE, static_cast<long>(body.size()));
  }
  if (method == "HEAD") curl_easy_setopt(h, CURLOPT_NOBODY, 1L);
  if (method != "POST" && method != "GET" && method != "HEAD")
    curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, method.c_str());
  r.rc = curl_easy_perform(h);
  curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &r.status);
  char* ct = nullptr;
  curl_easy_getinfo(h, CURLINFO_CONTENT_TYPE, &ct);
  if (ct) r.content_type = ct;
  curl_slist_free_all(headers);
  curl_easy_cleanup(h);
  return r;
}

class HelperServerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    opts_.listen = "127.0.0.1:0";
    opts_.th = FastOptions();
    opts_.th.resolvers = {"127.0.0.1:" + std::to_string(dns_.port())};
    opts_.th.allow_ranges = {"127.0.0.0/8"};
    opts_.log_requests = false;
  }
  DnsServer dns_;
  HelperOptions opts_;
};

TEST_F(HelperServerTest, HealthCheckAndMethods) {
  HelperServer server(opts_);
  ASSERT_TRUE(server.Start().ok());
  ASSERT_GT(server.port(), 0);
  Reply r = Call(server.port(), "GET");
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(r.body, "{\"message\":\"Hello OONItarian!\"}");
  EXPECT_EQ(r.content_type, "application/json");
  EXPECT_EQ(Call(server.port(), "HEAD").status, 200);
  r = Call(server.port(), "PUT", "{}", true);
  EXPECT_EQ(r.status, 405);
  EXPECT_TRUE(nlohmann::json::parse(r.body).contains("error"));
  EXPECT_EQ(Call(server.port(), "DELETE").status, 405);
}

TEST_F(HelperServerTest, MeasuresAPostedRequest) {
  HttpServer site(HttpResponse{200, "OK", {}, "<title>Hello lab</title>"});
  DnsRule rule;
  rule.a = {"127.0.0.1"};
  dns_.Set("site.example.test", rule);
  HelperServer server(opts_);
  ASSERT_TRUE(server.Start().ok());
  std::string ep = "127.0.0.1:" + std::to_string(site.port());
  nlohmann::json req = {
      {"http_request", "http://site.example.test:" + std::to_string(site.port()) + "/"},
      {"http_request_headers", {{"User-Agent", {"ooniprobe-test"}}}},
      {"tcp_connect", {ep}},
      {"x_quic_enabled", false}};
  Reply r = Call(server.port(), "POST", req.dump());
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(r.content_type, "application/json");
  THResponse resp;
  ASSERT_TRUE(ParseThResponse(r.body, &resp).ok()) << r.body;
  EXPECT_TRUE(resp.tcp_connect[ep].status) << r.body;
  EXPECT_EQ(resp.http_request.status_code, 200);
  EXPECT_EQ(resp.http_request.title, "Hello lab");
  EXPECT_EQ(resp.dns.addrs, std::vector<std::string>{"127.0.0.1"});
  EXPECT_EQ(resp.ip_info["127.0.0.1"].flags, kIpFlagResolvedByProbe | kIpFlagResolvedByTh);
  // Every key OONI's clients expect is there.
  nlohmann::json j = nlohmann::json::parse(r.body);
  for (const char* k : {"tcp_connect", "tls_handshake", "quic_handshake", "http_request",
                        "http3_request", "dns", "ip_info"})
    EXPECT_TRUE(j.contains(k)) << k;
  EXPECT_EQ(server.requests(), 1u);
}

TEST_F(HelperServerTest, PrivateDestinationRefusedOverHttp) {
  HttpServer site(HttpResponse{});
  opts_.th.allow_ranges.clear();
  HelperServer server(opts_);
  ASSERT_TRUE(server.Start().ok());
  std::string ep = "127.0.0.1:" + std::to_string(site.port());
  nlohmann::json req = {{"http_request", "http://" + ep + "/"}, {"tcp_connect", {ep}}};
  Reply r = Call(server.port(), "POST", req.dump());
  ASSERT_EQ(r.status, 200);
  THResponse resp;
  ASSERT_TRUE(ParseThResponse(r.body, &resp).ok());
  EXPECT_TRUE(resp.tcp_connect.empty());
  EXPECT_EQ(resp.ip_info["127.0.0.1"].flags & kIpFlagBogon, kIpFlagBogon);
  EXPECT_EQ(site.requests(), 0);
}

TEST_F(HelperServerTest, BadRequestsAre400) {
  HelperServer server(opts_);
  ASSERT_TRUE(server.Start().ok());
  for (const char* body : {"garbage", "", "[]", "{\"http_request\":\"ftp://x/\"}",
                           "{\"http_request\":\"http://x.test/\",\"tcp_connect\":[\"x:1\"]}"}) {
    Reply r = Call(server.port(), "POST", body);
    EXPECT_EQ(r.status, 400) << body;
    nlohmann::json j = nlohmann::json::parse(r.body, nullptr, false);
    ASSERT_TRUE(j.is_object()) << r.body;
    EXPECT_TRUE(j["error"].is_string()) << r.body;
  }
}

TEST_F(HelperServerTest, OversizeBodyIsRejected) {
  opts_.limits.max_body_bytes = 1024;
  HelperServer server(opts_);
  ASSERT_TRUE(server.Start().ok());
  std::string big = "{\"http_request\":\"http://x.test/" + std::string(5000, 'a') + "\"}";
  Reply r = Call(server.port(), "POST", big);
  EXPECT_EQ(r.status, 413) << r.body;
  // The server is still fine afterwards.
  EXPECT_EQ(Call(server.port(), "GET").status, 200);
}

TEST_F(HelperServerTest, BeyondConcurrencyIs503) {
  HttpServer slow(HttpResponse{200, "OK", {}, "slow", /*delay_ms=*/1500});
  opts_.max_in_flight = 1;
  HelperServer server(opts_);
  ASSERT_TRUE(server.Start().ok());
  nlohmann::json req = {{"http_request", "http://127.0.0.1:" + std::to_string(slow.port()) + "/"}};
  Reply first;
  std::thread t([&] { first = Call(server.port(), "POST", req.dump()); });
  for (int i = 0; i < 200 && server.in_flight() == 0; ++i)
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  ASSERT_EQ(server.in_flight(), 1u);
  Reply second = Call(server.port(), "POST", req.dump());
  EXPECT_EQ(second.status, 503) << second.body;
  t.join();
  EXPECT_EQ(first.status, 200) << first.body;
  EXPECT_EQ(server.in_flight(), 0u);
}

TEST_F(HelperServerTest, StopInterruptsMeasurementsInFlight) {
  HttpServer slow(HttpResponse{200, "OK", {}, "slow", /*delay_ms=*/3000});
  opts_.th.total_timeout_ms = 10000;
  opts_.th.http_timeout_ms = 10000;
  HelperServer server(opts_);
  ASSERT_TRUE(server.Start().ok());
  nlohmann::json req = {{"http_request", "http://127.0.0.1:" + std::to_string(slow.port()) + "/"}};
  Reply first;
  std::thread t([&] { first = Call(server.port(), "POST", req.dump()); });
  for (int i = 0; i < 200 && server.in_flight() == 0; ++i)
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  auto t0 = std::chrono::steady_clock::now();
  server.Stop();
  auto took = std::chrono::steady_clock::now() - t0;
  t.join();
  EXPECT_LT(std::chrono::duration_cast<std::chrono::milliseconds>(took).count(), 2000);
  // The measurement in flight answered at once, its unfinished steps
  // reported as interrupted (the daemon waits for it before closing).
  ASSERT_EQ(first.status, 200) << first.body;
  {
    THResponse resp;
    ASSERT_TRUE(ParseThResponse(first.body, &resp).ok());
    EXPECT_EQ(resp.http_request.failure, std::optional<std::string>("interrupted"));
  }
}

TEST_F(HelperServerTest, InvalidOptionsRefuseToStart) {
  HelperOptions o = opts_;
  o.th.allow_ranges = {"not-a-cidr"};
  EXPECT_FALSE(HelperServer(o).Start().ok());
  o = opts_;
  o.listen = "localhost:80";
  EXPECT_FALSE(HelperServer(o).Start().ok());
  o = opts_;
  o.th.resolvers = {"dns.google"};
  EXPECT_FALSE(HelperServer(o).Start().ok());
}

}  // namespace
}  // namespace rasad::testing

namespace rasad::testing {
namespace {

// `rasad helper` in the foreground: SIGTERM ends it cleanly with status 0.
TEST(RunHelper, StopsOnSigterm) {
  HelperOptions o;
  o.listen = "127.0.0.1:0";
  o.th = FastOptions();
  int rc = -1;
  std::thread t([&] { rc = RunHelper(o); });
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  kill(getpid(), SIGTERM);
  t.join();
  EXPECT_EQ(rc, 0);
}

TEST(RunHelper, BadOptionsExitNonZero) {
  HelperOptions o;
  o.listen = "not an address";
  EXPECT_EQ(RunHelper(o), 1);
}

}  // namespace
}  // namespace rasad::testing
