// The helper's destination policy: bogons are never connected to, whether
// they come from the probe's endpoint list, the helper's own DNS, the URL or
// a redirect; allow_ranges re-opens chosen ranges (a lab, or loopback here).
#include "control/ssrf.h"

#include <gtest/gtest.h>

#include "control/th_measure.h"
#include "tests/control/control_fixture.h"
#include "tests/support/dns_server.h"
#include "tests/support/servers.h"

namespace rasad::testing {
namespace {

[[maybe_unused]] ::testing::Environment* const kGlobals =
    ::testing::AddGlobalTestEnvironment(new ControlGlobals);

TEST(Bogons, RefusedAddresses) {
  for (const char* ip :
       {"127.0.0.1", "127.255.0.9", "10.0.0.1", "10.10.34.34", "192.168.1.1", "172.16.0.1",
        "172.31.255.255", "169.254.169.254", "100.64.0.1", "0.0.0.0", "224.0.0.1",
        "255.255.255.255", "240.0.0.1", "192.0.2.1", "198.51.100.7", "203.0.113.9", "198.18.0.1",
        "::", "::1", "fe80::1", "fc00::1", "fd12:3456::1", "ff02::1", "::ffff:127.0.0.1",
        "::ffff:8.8.8.8", "::127.0.0.1", "2001:db8::1", "2002:7f00:1::1", "2002:a00:1::1",
        "64:ff9b::a9fe:a9fe", "64:ff9b::7f00:1", "64:ff9b:1::1", "fec0::1", "100::1",
        // Teredo with client 127.0.0.1 (stored xor 0xff: 80ff:fffe)
        "2001:0:4136:e378:8000:63bf:80ff:fffe"}) {
    EXPECT_TRUE(IsBogon(ip)) << ip;
  }
  for (const char* ip :
       {"8.8.8.8", "1.1.1.1", "93.184.216.34", "172.32.0.1", "100.128.0.1", "2606:4700:4700::1111",
        "2a00:1450:4001::200e", "2002:808:808::1", "64:ff9b::808:808"}) {
    EXPECT_FALSE(IsBogon(ip)) << ip << ": " << BogonReason(ip);
  }
  // Anything that is not a plain literal is refused, never resolved.
  for (const char* s : {"localhost", "127.1", "0x7f000001", "fe80::1%lo", "", "1.2.3.4:80"})
    EXPECT_TRUE(IsBogon(s)) << s;
  EXPECT_STREQ(BogonReason("169.254.169.254"), "link-local");
  EXPECT_STREQ(BogonReason("::1"), "loopback");
}

TEST(Bogons, Prefixes) {
  IpPrefix p, ip;
  ASSERT_TRUE(ParseIpPrefix("10.1.2.3/8", &p));
  ASSERT_TRUE(ParseIpAddress("10.200.0.1", &ip));
  EXPECT_TRUE(PrefixContains(p, ip));
  ASSERT_TRUE(ParseIpAddress("11.0.0.1", &ip));
  EXPECT_FALSE(PrefixContains(p, ip));
  ASSERT_TRUE(ParseIpPrefix("2001:db8::/33", &p));
  ASSERT_TRUE(ParseIpAddress("2001:db8:7fff::1", &ip));
  EXPECT_TRUE(PrefixContains(p, ip));
  ASSERT_TRUE(ParseIpAddress("2001:db8:8000::1", &ip));
  EXPECT_FALSE(PrefixContains(p, ip));
  EXPECT_FALSE(ParseIpPrefix("10.0.0.0/33", &p));
  EXPECT_FALSE(ParseIpPrefix("10.0.0.0/", &p));
  EXPECT_FALSE(ParseIpPrefix("example.com/8", &p));
  EXPECT_EQ(CanonicalIp("2001:DB8:0::01"), "2001:db8::1");
  EXPECT_EQ(CanonicalIp("127.1"), "");
}

TEST(Bogons, PolicyAllowRanges) {
  DestinationPolicy policy;
  ASSERT_TRUE(DestinationPolicy::Create({"127.0.0.0/8", "203.0.113.0/24"}, &policy).ok());
  EXPECT_TRUE(policy.Allowed("127.0.0.1"));
  EXPECT_TRUE(policy.Allowed("::ffff:127.0.0.1"));
  EXPECT_TRUE(policy.Allowed("203.0.113.5"));
  EXPECT_TRUE(policy.Allowed("8.8.8.8"));
  std::string why;
  EXPECT_FALSE(policy.Allowed("10.0.0.1", &why));
  EXPECT_EQ(why, "private");
  EXPECT_FALSE(policy.Allowed("::1"));
  EXPECT_FALSE(policy.Allowed("localhost"));
  EXPECT_FALSE(DestinationPolicy::Create({"127.0.0.0/8", "nonsense"}, &policy).ok());
}

THRequest Request(const std::string& url, std::vector<std::string> tcp = {}) {
  THRequest r;
  r.http_request = url;
  r.tcp_connect = std::move(tcp);
  return r;
}

// Every private destination in a request is skipped: no tcp_connect entry,
// ip_info flags it as a bogon, and the HTTP step is refused.
TEST(HelperPolicy, PrivateDestinationsAreNeverConnected) {
  HttpServer server(HttpResponse{});
  std::string lo = "127.0.0.1:" + std::to_string(server.port());
  struct Case {
    std::string url;
    std::vector<std::string> tcp;
    std::string ip;
  } cases[] = {
      {"http://" + lo + "/", {lo}, "127.0.0.1"},
      {"http://10.1.2.3/", {"10.1.2.3:80"}, "10.1.2.3"},
      {"http://192.168.0.1/", {"192.168.0.1:80"}, "192.168.0.1"},
      {"http://169.254.169.254/latest/meta-data/", {"169.254.169.254:80"}, "169.254.169.254"},
      {"http://[::1]:" + std::to_string(server.port()) + "/",
       {"[::1]:" + std::to_string(server.port())},
       "::1"},
      {"http://[fe80::1]/", {"[fe80::1]:80"}, "fe80::1"},
      {"http://[::ffff:127.0.0.1]:" + std::to_string(server.port()) + "/",
       {"[::ffff:127.0.0.1]:" + std::to_string(server.port())},
       "::ffff:127.0.0.1"},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.url);
    THResponse r = MeasureForTh(Request(c.url, c.tcp), FastOptions());
    EXPECT_TRUE(r.tcp_connect.empty()) << DumpJson(ThResponseToJson(r));
    EXPECT_TRUE(r.tls_handshake.empty());
    ASSERT_TRUE(r.ip_info.count(c.ip)) << DumpJson(ThResponseToJson(r));
    EXPECT_EQ(r.ip_info[c.ip].flags, kIpFlagResolvedByProbe | kIpFlagResolvedByTh | kIpFlagBogon);
    EXPECT_EQ(r.http_request.failure, std::optional<std::string>(kBlockedByHelperPolicy));
    EXPECT_EQ(r.http_request.status_code, -1);
    EXPECT_EQ(r.dns.addrs, std::vector<std::string>{c.ip});
  }
  EXPECT_EQ(server.requests(), 0);
}

// A public-looking URL whose probe endpoints are private: those are skipped
// while the rest of the request is still served.
TEST(HelperPolicy, PrivateProbeEndpointsAreSkipped) {
  DnsServer dns;
  dns.Set("www.example.test", KindRule(DnsRule::kNxdomain));
  ThOptions o = FastOptions();
  o.resolvers = {"127.0.0.1:" + std::to_string(dns.port())};
  THResponse r = MeasureForTh(
      Request("https://www.example.test/", {"127.0.0.1:443", "10.0.0.1:443", "[::1]:443"}), o);
  EXPECT_TRUE(r.tcp_connect.empty()) << DumpJson(ThResponseToJson(r));
  EXPECT_EQ(r.ip_info["127.0.0.1"].flags, kIpFlagResolvedByProbe | kIpFlagBogon);
  EXPECT_EQ(r.ip_info["10.0.0.1"].flags, kIpFlagResolvedByProbe | kIpFlagBogon);
  EXPECT_EQ(r.ip_info["::1"].flags, kIpFlagResolvedByProbe | kIpFlagBogon);
  EXPECT_EQ(r.dns.failure, std::optional<std::string>("dns_name_error"));
  EXPECT_EQ(r.http_request.failure, std::optional<std::string>("dns_lookup_error"));
}

// The helper's own DNS answer points at loopback (DNS rebinding style): not
// connected unless loopback is explicitly allowed.
TEST(HelperPolicy, HostnameResolvingToLoopback) {
  HttpServer server(HttpResponse{200, "OK", {}, "<title>internal</title>"});
  DnsServer dns;
  DnsRule rule;
  rule.a = {"127.0.0.1"};
  dns.Set("evil.example.test", rule);
  ThOptions o = FastOptions();
  o.resolvers = {"127.0.0.1:" + std::to_string(dns.port())};
  std::string url = "http://evil.example.test:" + std::to_string(server.port()) + "/admin";

  THResponse r = MeasureForTh(Request(url), o);
  EXPECT_EQ(r.dns.addrs, std::vector<std::string>{"127.0.0.1"});
  EXPECT_FALSE(r.dns.failure);
  EXPECT_EQ(r.ip_info["127.0.0.1"].flags, kIpFlagResolvedByTh | kIpFlagBogon);
  EXPECT_TRUE(r.tcp_connect.empty());
  EXPECT_EQ(r.http_request.failure, std::optional<std::string>(kBlockedByHelperPolicy));
  EXPECT_EQ(server.requests(), 0);

  // The same request with loopback allowed is measured.
  o.allow_ranges = {"127.0.0.0/8"};
  r = MeasureForTh(Request(url), o);
  std::string key = "127.0.0.1:" + std::to_string(server.port());
  ASSERT_TRUE(r.tcp_connect.count(key)) << DumpJson(ThResponseToJson(r));
  EXPECT_TRUE(r.tcp_connect[key].status);
  EXPECT_EQ(r.ip_info["127.0.0.1"].flags, kIpFlagResolvedByTh);  // allowed: not flagged
  EXPECT_FALSE(r.http_request.failure) << *r.http_request.failure;
  EXPECT_EQ(r.http_request.status_code, 200);
  EXPECT_EQ(r.http_request.title, "internal");
  EXPECT_EQ(server.requests(), 1);
  EXPECT_EQ(server.request_lines()[0], "GET /admin HTTP/1.1");
}

TEST(HelperPolicy, AllowedLoopbackIsMeasuredFromTheProbeList) {
  HttpServer server(HttpResponse{});
  std::string lo = "127.0.0.1:" + std::to_string(server.port());
  ThOptions o = FastOptions();
  o.allow_ranges = {"127.0.0.0/8"};
  THResponse r = MeasureForTh(Request("http://" + lo + "/", {lo, "10.0.0.1:80"}), o);
  ASSERT_TRUE(r.tcp_connect.count(lo)) << DumpJson(ThResponseToJson(r));
  EXPECT_TRUE(r.tcp_connect[lo].status);
  EXPECT_FALSE(r.tcp_connect.count("10.0.0.1:80"));  // still refused
  EXPECT_EQ(r.http_request.status_code, 200);
}

// A redirect to a private address is not followed.
TEST(HelperPolicy, RedirectToPrivateAddressIsRefused) {
  HttpServer server(HttpResponse{302, "Found", {{"Location", "http://10.0.0.1/secret"}}, ""});
  std::string lo = "127.0.0.1:" + std::to_string(server.port());
  ThOptions o = FastOptions();
  o.allow_ranges = {"127.0.0.0/8"};
  THResponse r = MeasureForTh(Request("http://" + lo + "/"), o);
  EXPECT_EQ(r.http_request.failure, std::optional<std::string>(kBlockedByHelperPolicy));
  EXPECT_EQ(server.requests(), 1);
}

}  // namespace
}  // namespace rasad::testing
