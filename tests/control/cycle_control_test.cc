// A cycle that asks a real control helper (in-process, on loopback) about
// each web endpoint: the answer is stored as the network "control" and the
// classifier uses it to tell a site that is down from one that is blocked.
#include <gtest/gtest.h>

#include "analysis/classifier.h"
#include "control/helper_server.h"
#include "control/th_source.h"
#include "tests/engine/engine_fixture.h"
#include "tests/support/dns_server.h"
#include "tests/support/servers.h"

namespace rasad::testing {
namespace {

class CycleControlTest : public EngineTest {
 protected:
  void SetUp() override {
    EngineTest::SetUp();
    HelperOptions ho;
    ho.listen = "127.0.0.1:0";
    ho.th.resolvers = {"127.0.0.1:" + std::to_string(dns_.port())};
    ho.th.allow_ranges = {"127.0.0.0/8"};
    ho.log_requests = false;
    helper_ = std::make_unique<HelperServer>(ho);
    ASSERT_TRUE(helper_->Start().ok());
    UseResolver(dns_.port());
  }

  CycleReport RunWithControl(const std::vector<Target>& targets) {
    targets_ = targets;
    std::unique_ptr<Store> store;
    EXPECT_TRUE(Store::Open(cfg_.database, &store).ok());
    std::shared_ptr<TrustStore> trust;
    EXPECT_TRUE(TrustStore::Create("", &trust).ok());
    EventLoop loop;
    EXPECT_TRUE(loop.Init().ok());
    ThControlSource control(&loop, {"http://127.0.0.1:" + std::to_string(helper_->port()) + "/"},
                            "");
    EXPECT_TRUE(control.Init().ok());
    Cycle cycle(&loop, cfg_, targets_, store.get(), trust);
    cycle.SetControlSource(&control);
    CycleReport report;
    EXPECT_TRUE(cycle.Run(nullptr, &report).ok());
    return report;
  }

  static const Measurement* On(const CycleReport& r, const std::string& network) {
    for (const Measurement& m : r.measurements)
      if (m.network == network) return &m;
    return nullptr;
  }

  DnsServer dns_;
  std::unique_ptr<HelperServer> helper_;
};

TEST_F(CycleControlTest, ControlViewIsStoredAndUsed) {
  HttpServer web(HttpResponse{});
  DnsRule r;
  r.a = {"127.0.0.1"};
  dns_.Set("site.test", r);
  Target t = OneEndpoint("site.test", web.port(), Step::kHttp, false);
  CycleReport report = RunWithControl({t});
  const Measurement* control = On(report, "control");
  ASSERT_NE(control, nullptr) << "the control helper's view is part of the cycle";
  EXPECT_FALSE(control->failure) << control->failure.value_or("") << control->probe_error;
  bool saw_http = false;
  for (const Observation& o : control->observations) {
    EXPECT_EQ(o.details.value("source", ""), "control");
    if (o.step == Step::kHttp && o.details.value("status", 0) == 200) saw_http = true;
  }
  EXPECT_TRUE(saw_http);
  // Stored like any measurement.
  std::unique_ptr<Store> store;
  ASSERT_TRUE(Store::OpenReadOnly(cfg_.database, &store).ok());
  std::vector<Measurement> stored;
  ASSERT_TRUE(store->LoadMeasurements(report.uid, &stored).ok());
  EXPECT_EQ(stored.size(), 2u);
}

TEST_F(CycleControlTest, ServerDownEverywhereIsDownNotBlocking) {
  uint16_t closed = UnusedTcpPort();
  DnsRule r;
  r.a = {"127.0.0.1"};
  dns_.Set("gone.test", r);
  CycleReport report = RunWithControl({OneEndpoint("gone.test", closed, Step::kHttp, false)});
  ASSERT_NE(On(report, "control"), nullptr);
  ClassifierOptions opt;
  ASSERT_TRUE(opt.bogons.SetPublicRanges({"127.0.0.0/8"}).ok());
  std::vector<Verdict> vs = ClassifyCycle(report.measurements, opt);
  ASSERT_EQ(vs.size(), 1u);
  EXPECT_EQ(vs[0].verdict, "down") << vs[0].rule;
}

}  // namespace
}  // namespace rasad::testing

#include "tests/support/certs.h"

namespace rasad::testing {
namespace {

// A DNS answer "site.test A 127.0.0.1" to a query with id 0 (RFC 8484).
std::string DohAnswer() {
  const unsigned char msg[] = {0, 0, 0x81, 0x80, 0,   1,    0,    1,   0,   0,   0,
                               0, 4, 's',  'i',  't', 'e',  4,    't', 'e', 's', 't',
                               0, 0, 1,    0,    1,   0xc0, 0x0c, 0,   1,   0,   1,
                               0, 0, 1,    0x2c, 0,   4,    127,  0,   0,   1};
  return std::string(reinterpret_cast<const char*>(msg), sizeof msg);
}

TEST_F(EngineTest, DohIsTheControlWhenNoHelperAnswers) {
  CertKit kit(dir_);
  Pem pem = kit.Leaf({"127.0.0.1"});
  HttpResponse r;
  r.headers = {{"Content-Type", "application/dns-message"}};
  r.body = DohAnswer();
  HttpServer doh(r, &pem);
  EventLoop loop;
  ASSERT_TRUE(loop.Init().ok());
  ThControlSource source(&loop, {"http://127.0.0.1:" + std::to_string(UnusedTcpPort()) + "/"},
                         kit.ca_file(), 5000,
                         {"https://127.0.0.1:" + std::to_string(doh.port()) + "/dns-query"});
  ASSERT_TRUE(source.Init().ok());
  bool done = false;
  std::vector<Observation> got;
  std::string error;
  source.Request("https://site.test/", [&](std::vector<Observation> obs, std::string err) {
    got = std::move(obs);
    error = err;
    done = true;
  });
  loop.RunUntil([&] { return done; });
  EXPECT_EQ(error, "");
  ASSERT_EQ(got.size(), 2u) << "an A and an AAAA query";
  const Observation* a = got[0].query_type == "A" ? &got[0] : &got[1];
  EXPECT_EQ(a->transport, "doh");
  EXPECT_FALSE(a->failure) << *a->failure;
  ASSERT_EQ(a->details["answers"].size(), 1u);
  EXPECT_EQ(a->details["answers"][0]["value"], "127.0.0.1");
  EXPECT_EQ(doh.requests(), 2);
}

}  // namespace
}  // namespace rasad::testing
