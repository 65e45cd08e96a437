// DNS step against a scripted DNS server and the real dnsmasq: each rcode a
// resolver can answer with, silence, and a name resolved then connected to.
#include <gtest/gtest.h>

#include "tests/engine/engine_fixture.h"
#include "tests/support/dns_server.h"
#include "tests/support/dnsmasq.h"
#include "tests/support/servers.h"

namespace rasad::testing {
namespace {

class DnsTest : public EngineTest {
 protected:
  Measurement Resolve(const std::string& name) {
    UseResolver(dns_.port());
    return RunOne(OneEndpoint(name, 443, Step::kDns));
  }
  DnsServer dns_;
};

TEST_F(DnsTest, NxdomainIsDnsNxdomainError) {
  DnsRule r;
  r.kind = DnsRule::kNxdomain;
  dns_.Set("gone.test", r);
  Measurement m = Resolve("gone.test");
  ASSERT_TRUE(m.failure);
  EXPECT_EQ(*m.failure, "dns_nxdomain_error");
  EXPECT_EQ(m.failed_step, Step::kDns);
  const Observation* q = Find(m, Step::kDns);
  ASSERT_NE(q, nullptr);
  EXPECT_EQ(q->details["rcode"].get<int>(), 3);
  EXPECT_FALSE(q->raw.empty()) << "the raw response is evidence and must be kept";
  EXPECT_EQ(q->local_addr, "127.0.0.1");
  EXPECT_GT(q->local_port, 0);
}

TEST_F(DnsTest, ServfailIsDnsServfailError) {
  DnsRule r;
  r.kind = DnsRule::kServfail;
  dns_.Set("sf.test", r);
  Measurement m = Resolve("sf.test");
  ASSERT_TRUE(m.failure);
  EXPECT_EQ(*m.failure, "dns_servfail_error");
}

TEST_F(DnsTest, RefusedIsDnsRefusedError) {
  DnsRule r;
  r.kind = DnsRule::kRefused;
  dns_.Set("ref.test", r);
  Measurement m = Resolve("ref.test");
  ASSERT_TRUE(m.failure);
  EXPECT_EQ(*m.failure, "dns_refused_error");
}

TEST_F(DnsTest, SilenceIsGenericTimeout) {
  DnsRule r;
  r.kind = DnsRule::kDrop;
  dns_.Set("drop.test", r);
  cfg_.dns_tries = 2;
  Measurement m = Resolve("drop.test");
  ASSERT_TRUE(m.failure);
  EXPECT_EQ(*m.failure, "generic_timeout_error");
  const Observation* q = Find(m, Step::kDns);
  ASSERT_NE(q, nullptr);
  EXPECT_TRUE(q->raw.empty());
  EXPECT_EQ(dns_.queries(), 2) << "each try is a retransmission on the wire";
}

TEST_F(DnsTest, NoRecordIsDnsNoAnswer) {
  DnsRule r;
  r.kind = DnsRule::kNoData;
  dns_.Set("nodata.test", r);
  Measurement m = Resolve("nodata.test");
  ASSERT_TRUE(m.failure);
  EXPECT_EQ(*m.failure, "dns_no_answer");
}

TEST_F(DnsTest, SinkholeAnswerIsRecordedNotJudged) {
  DnsRule r;
  r.a = {"10.10.34.34"};
  r.ttl = 60;
  dns_.Set("www.clubhouseapi.com", r);
  Measurement m = Resolve("www.clubhouseapi.com");
  EXPECT_FALSE(m.failure) << "a bogon answer is for analysis/ to judge";
  const Observation* q = Find(m, Step::kDns);
  ASSERT_NE(q, nullptr);
  ASSERT_EQ(q->details["answers"].size(), 1u);
  EXPECT_EQ(q->details["answers"][0]["value"], "10.10.34.34");
  EXPECT_EQ(q->details["answers"][0]["ttl"], 60);
}

TEST_F(DnsTest, ResolvedNameIsConnectedWithoutCurlResolving) {
  HttpServer web(HttpResponse{});
  DnsRule r;
  r.a = {"127.0.0.1"};
  dns_.Set("app.test", r);
  UseResolver(dns_.port());
  cfg_.ipv6 = true;  // AAAA asked too; the name has none
  Target t = OneEndpoint("app.test", web.port(), Step::kHttp, false);
  Measurement m = RunOne(t);
  EXPECT_FALSE(m.failure) << *m.failure;
  EXPECT_EQ(m.furthest_step, Step::kHttp);
  ASSERT_EQ(web.hosts().size(), 1u);
  EXPECT_EQ(web.hosts()[0], "app.test:" + std::to_string(web.port()));
  // A and AAAA, each its own query with its own failure.
  int a = 0, aaaa = 0;
  for (const Observation& o : m.observations) {
    if (o.step != Step::kDns) continue;
    if (o.query_type == "A") {
      ++a;
      EXPECT_FALSE(o.failure);
    } else if (o.query_type == "AAAA") {
      ++aaaa;
      EXPECT_EQ(o.failure.value_or(""), "dns_no_answer");
    }
  }
  EXPECT_EQ(a, 1);
  EXPECT_EQ(aaaa, 1);
}

TEST_F(DnsTest, DnsOverTcpWorks) {
  DnsRule r;
  r.a = {"192.0.2.7"};
  dns_.Set("tcp.test", r);
  cfg_.dns_tcp = true;
  Measurement m = Resolve("tcp.test");
  EXPECT_FALSE(m.failure);
  const Observation* q = Find(m, Step::kDns);
  ASSERT_NE(q, nullptr);
  EXPECT_EQ(q->transport, "tcp");
  EXPECT_EQ(q->details["answers"][0]["value"], "192.0.2.7");
}

TEST_F(EngineTest, RealDnsmasqAnswersAndNxdomain) {
  if (!Dnsmasq::Available())
    GTEST_SKIP() << "dnsmasq is not installed (apt-get install dnsmasq-base)";
  Dnsmasq dnsmasq({"address=/ok.test/192.0.2.10", "address=/nx.test/"});
  ASSERT_TRUE(dnsmasq.ok()) << dnsmasq.error();
  UseResolver(dnsmasq.port());
  Target t = OneEndpoint("ok.test", 443, Step::kDns);
  Endpoint nx = t.endpoints[0];
  nx.name = "nx";
  nx.hosts = {"nx.test"};
  t.endpoints.push_back(nx);
  CycleReport r = Run({t});
  ASSERT_EQ(r.measurements.size(), 2u);
  for (const Measurement& m : r.measurements) {
    if (m.endpoint == "e") {
      EXPECT_FALSE(m.failure);
      EXPECT_EQ(Find(m, Step::kDns)->details["answers"][0]["value"], "192.0.2.10");
    } else {
      EXPECT_EQ(m.failure.value_or(""), "dns_nxdomain_error");
    }
  }
}

}  // namespace
}  // namespace rasad::testing

namespace rasad::testing {
namespace {

TEST_F(DnsTest, BothFamiliesAreConnectedWithinTheBound) {
  HttpServer web(HttpResponse{}, nullptr, /*ipv6=*/true);
  DnsRule r;
  r.a = {"127.0.0.1", "127.0.0.2", "127.0.0.3"};
  r.aaaa = {"::1"};
  dns_.Set("dual.test", r);
  UseResolver(dns_.port());
  cfg_.ipv6 = true;
  cfg_.max_addresses_per_family = 2;
  Measurement m = RunOne(OneEndpoint("dual.test", web.port(), Step::kTcp, false));
  EXPECT_FALSE(m.failure) << *m.failure;
  std::vector<std::string> connected;
  for (const Observation& o : m.observations)
    if (o.step == Step::kTcp) connected.push_back(o.remote_addr);
  // Two IPv4 addresses (the bound), then the IPv6 one.
  ASSERT_EQ(connected.size(), 3u);
  EXPECT_EQ(connected[2], "::1");
}

}  // namespace
}  // namespace rasad::testing
