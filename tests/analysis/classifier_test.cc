// Each classifier rule on synthetic observations: what one operator saw,
// what the others and the control saw, and the verdict that must follow.
#include "analysis/classifier.h"

#include <gtest/gtest.h>
#include <openssl/evp.h>

#include "analysis/verdict.h"

namespace rasad {
namespace {

std::string B64(const std::string& s) {
  std::string out(4 * ((s.size() + 2) / 3) + 1, '\0');
  int n =
      EVP_EncodeBlock(reinterpret_cast<unsigned char*>(out.data()),
                      reinterpret_cast<const unsigned char*>(s.data()), static_cast<int>(s.size()));
  out.resize(static_cast<size_t>(n));
  return out;
}

// Builds one endpoint's measurement step by step.
class M {
 public:
  M(const std::string& network, const std::string& target = "app",
    const std::string& endpoint = "api") {
    m_.uid = network + "/" + target + "/" + endpoint + "/" + std::to_string(counter_++);
    m_.cycle_uid = "cycle";
    m_.network = network;
    m_.target = target;
    m_.endpoint = endpoint;
    m_.t_start = 1000;
  }
  M& Control(const std::string& kind) {
    m_.control = true;
    m_.control_kind = kind;
    return *this;
  }
  M& Attempt(int a) {
    m_.attempt = a;
    m_.t_start += a * 1000000;
    return *this;
  }
  M& Dns(const std::vector<std::string>& answers, const std::string& failure = "") {
    Observation o = Obs(Step::kDns);
    o.details["answers"] = nlohmann::json::array();
    for (const auto& a : answers) o.details["answers"].push_back({{"type", "A"}, {"value", a}});
    if (!failure.empty()) Fail(&o, failure);
    m_.observations.push_back(o);
    if (!answers.empty()) m_.furthest_step = Step::kDns;
    return *this;
  }
  M& Tcp(const std::string& failure = "") { return Add(Step::kTcp, failure); }
  M& Tls(const std::string& failure = "", bool trusted = true) {
    Add(Step::kTls, failure);
    m_.observations.back().details["trusted"] = trusted;
    m_.observations.back().details["hostname_ok"] = trusted;
    return *this;
  }
  M& Http(int status, const std::string& body = "<html>hi</html>", int64_t bytes = 0,
          int64_t micros = 1000) {
    Add(Step::kHttp, "");
    Observation& o = m_.observations.back();
    o.details["status"] = status;
    o.details["headers_list"] = nlohmann::json::array({{"Content-Type", "text/html"}});
    o.details["body_prefix_b64"] = B64(body);
    o.bytes_received = bytes ? bytes : static_cast<int64_t>(body.size());
    o.t_end = o.t_start + micros;
    return *this;
  }
  M& HttpFail(const std::string& failure) { return Add(Step::kHttp, failure); }
  M& ProbeError(const std::string& e) {
    m_.probe_error = e;
    return *this;
  }
  Measurement Get() const { return m_; }

 private:
  Observation Obs(Step s) {
    Observation o;
    o.uid = m_.uid + "/" + StepName(s);
    o.flow_uid = m_.uid + "/flow";
    o.step = s;
    o.t_start = 1000;
    o.t_end = 2000;
    return o;
  }
  void Fail(Observation* o, const std::string& failure) {
    o->failure = failure;
    m_.failed_step = o->step;
    m_.failure = failure;
  }
  M& Add(Step s, const std::string& failure) {
    Observation o = Obs(s);
    if (!failure.empty()) {
      Fail(&o, failure);
    } else {
      m_.furthest_step = s;
    }
    m_.observations.push_back(o);
    return *this;
  }
  Measurement m_;
  static inline int counter_ = 0;
};

class ClassifierTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string path = std::string(RASAD_SOURCE_DIR) + "/targets/fingerprints/rasad.toml";
    ASSERT_TRUE(fp_.LoadRasad(path).ok());
    opt_.fingerprints = &fp_;
  }
  const Verdict& Of(const std::vector<Verdict>& vs, const std::string& network,
                    const std::string& target = "app") {
    for (const Verdict& v : vs)
      if (v.network == network && v.target == target) return v;
    static Verdict none;
    ADD_FAILURE() << "no verdict for " << network << "/" << target;
    return none;
  }
  // A reachable site seen from an operator (or the control).
  static Measurement Fine(const std::string& net, const std::string& target = "app") {
    return M(net, target).Dns({"93.184.216.34"}).Tcp().Tls().Http(200).Get();
  }
  Fingerprints fp_;
  ClassifierOptions opt_;
};

TEST_F(ClassifierTest, IranSinkholeIsConfirmedDnsBogon) {
  auto vs = ClassifyCycle(
      {Fine("opA"), M("opB").Dns({"10.10.34.34"}).Tcp("generic_timeout_error").Get()}, opt_);
  const Verdict& b = Of(vs, "opB");
  EXPECT_EQ(b.verdict, "dns.bogon");
  EXPECT_EQ(b.confidence, "confirmed");
  EXPECT_EQ(b.rule, "dns_fingerprint");
  EXPECT_EQ(b.ooni_blocking, "dns");
  EXPECT_EQ(Of(vs, "opA").verdict, "ok");
  EXPECT_EQ(Of(vs, "opA").ooni_blocking, false);
}

TEST_F(ClassifierTest, PrivateAnswerWithoutFingerprintIsProbable) {
  auto vs = ClassifyCycle(
      {Fine("opA"), M("opB").Dns({"192.168.7.7"}).Tcp("generic_timeout_error").Get()}, opt_);
  EXPECT_EQ(Of(vs, "opB").verdict, "dns.bogon");
  EXPECT_EQ(Of(vs, "opB").confidence, "probable");
}

TEST_F(ClassifierTest, BogonAlsoSeenByTheControlIsNotCensorship) {
  Measurement control = M("control").Dns({"192.168.7.7"}).Tcp("generic_timeout_error").Get();
  auto vs = ClassifyCycle(
      {control, M("opB").Dns({"192.168.7.7"}).Tcp("generic_timeout_error").Get()}, opt_);
  EXPECT_EQ(Of(vs, "opB").verdict, "down");
  EXPECT_EQ(vs.size(), 1u) << "the control vantage gets no verdict of its own";
}

TEST_F(ClassifierTest, SniResetIsProbableAloneAndConfirmedWithControlAndOtherOperator) {
  Measurement reset = M("opB").Dns({"93.184.216.34"}).Tcp().Tls("connection_reset").Get();
  auto alone = ClassifyCycle({Fine("opA"), reset}, opt_);
  EXPECT_EQ(Of(alone, "opB").verdict, "tls.reset");
  EXPECT_EQ(Of(alone, "opB").confidence, "probable");
  EXPECT_EQ(Of(alone, "opB").ooni_blocking, "http-failure");
  auto both = ClassifyCycle({Fine("opA"), Fine("control"), reset}, opt_);
  EXPECT_EQ(Of(both, "opB").verdict, "tls.reset");
  EXPECT_EQ(Of(both, "opB").confidence, "confirmed");
}

TEST_F(ClassifierTest, FailingForTheControlTooIsDown) {
  Measurement refused = M("opA").Dns({"93.184.216.34"}).Tcp("connection_refused").Get();
  Measurement refused_b = M("opB").Dns({"93.184.216.34"}).Tcp("connection_refused").Get();
  Measurement control = M("control").Dns({"93.184.216.34"}).Tcp("connection_refused").Get();
  auto vs = ClassifyCycle({refused, refused_b, control}, opt_);
  EXPECT_EQ(Of(vs, "opA").verdict, "down");
  EXPECT_EQ(Of(vs, "opB").verdict, "down");
  EXPECT_EQ(Of(vs, "opA").ooni_blocking, false);
  EXPECT_EQ(Of(vs, "opA").ooni_accessible, false);
}

TEST_F(ClassifierTest, EveryOperatorFailingWithoutAControlIsInconclusive) {
  auto vs = ClassifyCycle({M("opA").Dns({"93.184.216.34"}).Tcp("connection_refused").Get(),
                           M("opB").Dns({"93.184.216.34"}).Tcp("connection_refused").Get()},
                          opt_);
  EXPECT_EQ(Of(vs, "opA").verdict, "inconclusive");
  EXPECT_FALSE(IsBlocking(Of(vs, "opB").verdict));
}

TEST_F(ClassifierTest, ForeignCanariesDownButDomesticUpIsShutdown) {
  std::vector<Measurement> ms = {
      M("opB", "control-ip", "cloudflare").Control("ip_literal").Tcp("generic_timeout_error").Get(),
      M("opB", "control-cdn", "web").Control("cdn").Dns({}, "generic_timeout_error").Get(),
      M("opB", "control-domestic", "web")
          .Control("domestic")
          .Dns({"5.200.1.1"})
          .Tcp()
          .Tls()
          .Http(200)
          .Get(),
      M("opB").Dns({"93.184.216.34"}).Tcp("generic_timeout_error").Get(),
      Fine("opA"),
  };
  auto vs = ClassifyCycle(ms, opt_);
  EXPECT_EQ(Of(vs, "opB").verdict, "shutdown");
  EXPECT_EQ(Of(vs, "opB").rule, "canaries_failed");
  EXPECT_EQ(Of(vs, "opA").verdict, "ok");
}

TEST_F(ClassifierTest, AllCanariesDownIsVantageOffline) {
  std::vector<Measurement> ms = {
      M("opB", "control-ip", "cloudflare").Control("ip_literal").Tcp("network_unreachable").Get(),
      M("opB", "control-domestic", "web").Control("domestic").Dns({}, "network_unreachable").Get(),
      M("opB").Dns({}, "generic_timeout_error").Get(),
  };
  auto vs = ClassifyCycle(ms, opt_);
  EXPECT_EQ(Of(vs, "opB").verdict, "vantage.offline");
  EXPECT_EQ(Of(vs, "opB").ooni_blocking, nullptr);
}

TEST_F(ClassifierTest, SuccessOnRetryIsOk) {
  auto vs = ClassifyCycle({M("opB").Dns({"93.184.216.34"}).Tcp("generic_timeout_error").Get(),
                           M("opB").Attempt(1).Dns({"93.184.216.34"}).Tcp().Tls().Http(200).Get()},
                          opt_);
  EXPECT_EQ(Of(vs, "opB").verdict, "ok");
  EXPECT_EQ(Of(vs, "opB").rule, "ok_on_retry");
  EXPECT_EQ(Of(vs, "opB").evidence["attempts"].size(), 2u);
}

TEST_F(ClassifierTest, IranBlockpageIsConfirmed) {
  std::string page =
      "<html><head><meta http-equiv=\"Content-Type\" content=\"text/html; charset=windows-1256\">"
      "<title>M1-6</title></head><body><iframe src=\"http://10.10.34.34?type=Invalid "
      "Site&policy=MainPolicy\" "
      "style=\"width: 100%; height: 100%\" scrolling=\"no\" marginwidth=\"0\" marginheight=\"0\" "
      "frameborder=\"0\" vspace=\"0\" hspace=\"0\"></iframe></body></html>";
  auto vs = ClassifyCycle(
      {Fine("opA"), M("opB").Dns({"93.184.216.34"}).Tcp().Http(403, page).Get()}, opt_);
  EXPECT_EQ(Of(vs, "opB").verdict, "http.blockpage");
  EXPECT_EQ(Of(vs, "opB").confidence, "confirmed");
  EXPECT_EQ(Of(vs, "opB").ooni_blocking, "http-diff");
}

TEST_F(ClassifierTest, LegitimateForbiddenIsOk) {
  auto vs = ClassifyCycle(
      {M("opA").Dns({"93.184.216.34"}).Tcp().Tls().Http(403, "<h1>Forbidden</h1>").Get()}, opt_);
  EXPECT_EQ(Of(vs, "opA").verdict, "ok");
}

TEST_F(ClassifierTest, WrongPublicAnswerThatFailsTlsIsDnsInconsistent) {
  Measurement wrong =
      M("opB").Dns({"93.184.216.99"}).Tcp().Tls("ssl_invalid_hostname", false).Get();
  auto vs = ClassifyCycle({Fine("opA"), Fine("control"), wrong}, opt_);
  EXPECT_EQ(Of(vs, "opB").verdict, "dns.inconsistent");
  EXPECT_EQ(Of(vs, "opB").confidence, "confirmed");
}

TEST_F(ClassifierTest, DifferentAnswersWithValidTlsAreNotBlocking) {
  // GeoDNS or load balancing: another address, and a valid chain proves it.
  auto vs = ClassifyCycle(
      {Fine("opA"), M("opB").Dns({"93.184.216.35"}).Tcp().Tls().Http(200).Get()}, opt_);
  EXPECT_EQ(Of(vs, "opB").verdict, "ok");
}

TEST_F(ClassifierTest, UntrustedChainWhereOthersSeeAGoodOneIsMitm) {
  auto vs = ClassifyCycle(
      {Fine("opA"),
       M("opB").Dns({"93.184.216.34"}).Tcp().Tls("ssl_unknown_authority", false).Get()},
      opt_);
  EXPECT_EQ(Of(vs, "opB").verdict, "tls.mitm");
}

TEST_F(ClassifierTest, TenTimesSlowerThanTheOtherOperatorIsThrottled) {
  Measurement fast =
      M("opA").Dns({"93.184.216.34"}).Tcp().Tls().Http(200, "x", 65536, 100000).Get();
  Measurement slow =
      M("opB").Dns({"93.184.216.34"}).Tcp().Tls().Http(200, "x", 65536, 4000000).Get();
  auto vs = ClassifyCycle({fast, slow}, opt_);
  EXPECT_EQ(Of(vs, "opB").verdict, "throttled");
  EXPECT_EQ(Of(vs, "opA").verdict, "ok");
}

TEST_F(ClassifierTest, ProbeErrorIsInconclusive) {
  auto vs = ClassifyCycle({M("opB").ProbeError("cannot bind to interface wwan1").Get()}, opt_);
  EXPECT_EQ(Of(vs, "opB").verdict, "inconclusive");
  EXPECT_EQ(Of(vs, "opB").rule, "probe_error");
}

TEST_F(ClassifierTest, PublicRangesMakeLabAddressesPublic) {
  Measurement lab = M("opA").Dns({"203.0.113.10"}).Tcp().Tls().Http(200).Get();
  EXPECT_EQ(Of(ClassifyCycle({lab}, opt_), "opA").verdict, "dns.bogon");
  ASSERT_TRUE(opt_.bogons.SetPublicRanges({"203.0.113.0/24"}).ok());
  EXPECT_EQ(Of(ClassifyCycle({lab}, opt_), "opA").verdict, "ok");
}

// Canaries: a failure no rule maps (DNS network_unreachable when the uplink is
// down) is vantage.offline too, not inconclusive, even though the control
// helper (reached another way) and the other operator see the site.
TEST_F(ClassifierTest, UnmappedFailureWhereAllCanariesFailIsVantageOffline) {
  std::vector<Measurement> ms = {
      M("opB", "control-ip", "ip").Control("ip_literal").Tcp("network_unreachable").Get(),
      M("opB", "control-domestic", "web").Control("domestic").Dns({}, "network_unreachable").Get(),
      M("opB").Dns({}, "network_unreachable").Get(),
      Fine("opA"),
      Fine("control"),
  };
  auto vs = ClassifyCycle(ms, opt_);
  EXPECT_EQ(Of(vs, "opB").verdict, "vantage.offline");
  EXPECT_EQ(Of(vs, "opB").rule, "canaries_failed");
  EXPECT_EQ(Of(vs, "opB", "control-domestic").verdict, "vantage.offline");
  EXPECT_EQ(Of(vs, "opA").verdict, "ok");
}

// Plain HTTP (no chain to validate the answer) reached an address that neither
// the control nor the other operator saw, and the page is another site's.
Measurement PlainHttp(const std::string& net, const std::string& answer, const std::string& title,
                      int status = 200) {
  Measurement m = M(net).Dns({answer}).Tcp().Http(status).Get();
  m.observations.back().details["title"] = title;
  return m;
}

TEST_F(ClassifierTest, PlainHttpToAnUnseenAnswerWithAnotherPageIsDnsInconsistent) {
  auto vs = ClassifyCycle({PlainHttp("opA", "93.184.216.34", "Example Domain"),
                           PlainHttp("control", "93.184.216.34", "Example Domain"),
                           PlainHttp("opB", "93.184.216.99", "Other site")},
                          opt_);
  EXPECT_EQ(Of(vs, "opB").verdict, "dns.inconsistent");
  EXPECT_EQ(Of(vs, "opB").rule, "answers_match_no_control+other_page");
  EXPECT_EQ(Of(vs, "opB").confidence, "confirmed");
  EXPECT_EQ(Of(vs, "opA").verdict, "ok");
}

TEST_F(ClassifierTest, PlainHttpToAnUnseenAnswerWithTheSamePageIsOk) {
  // A CDN or GeoDNS answer over plain HTTP: another address, the same page.
  auto vs = ClassifyCycle({PlainHttp("opA", "93.184.216.34", "Example Domain"),
                           PlainHttp("control", "93.184.216.34", "Example Domain"),
                           PlainHttp("opB", "93.184.216.99", "Example Domain")},
                          opt_);
  EXPECT_EQ(Of(vs, "opB").verdict, "ok");
}

TEST(Rollup, PartiallyBlockedApp) {
  std::vector<Verdict> vs(3);
  vs[0].network = vs[1].network = vs[2].network = "opB";
  vs[0].target = vs[1].target = vs[2].target = "clubhouse";
  vs[0].endpoint = "api";
  vs[0].verdict = "dns.bogon";
  vs[1].endpoint = "realtime";
  vs[1].verdict = "ok";
  vs[2].endpoint = "audio";
  vs[2].verdict = "tcp.timeout";
  auto r = RollupByApp(vs);
  ASSERT_EQ(r.size(), 1u);
  EXPECT_EQ(r[0].status, "partial");
  EXPECT_EQ(r[0].endpoints.size(), 3u);
}

TEST(Vocabulary, ClosedAndStable) {
  EXPECT_EQ(AllVerdicts().size(), 26u);
  for (const std::string& v : AllVerdicts()) EXPECT_FALSE(v.empty());
  EXPECT_TRUE(IsBlocking("tls.reset"));
  EXPECT_FALSE(IsBlocking("down"));
  EXPECT_FALSE(IsBlocking("vantage.offline"));
}

}  // namespace
}  // namespace rasad

namespace rasad {
namespace {

Observation Finding(const Measurement& m, Step step, const std::string& kind, bool proven) {
  Observation f;
  f.uid = m.uid + "/finding/" + kind;
  f.step = step;
  f.details["finding"] = kind;
  f.details["signals"] = proven ? 2 : 1;
  f.details["proven"] = proven;
  f.details["evidence_pcap"] = "results/evidence/c/" + m.uid + ".pcap";
  return f;
}

TEST(PacketEvidence, ConflictingDnsAnswersOnTheWireAreDnsInjected) {
  ClassifierOptions opt;
  Measurement m;
  m.uid = "m1";
  m.cycle_uid = "c";
  m.network = "opB";
  m.target = "app";
  m.endpoint = "api";
  Observation q;
  q.uid = "q";
  q.step = Step::kDns;
  q.details["answers"] = nlohmann::json::array({{{"type", "A"}, {"value", "93.184.216.99"}}});
  m.observations.push_back(q);
  m.observations.push_back(Finding(m, Step::kDns, "dns.conflicting_responses", true));
  auto vs = ClassifyCycle({m}, opt);
  ASSERT_EQ(vs.size(), 1u);
  EXPECT_EQ(vs[0].verdict, "dns.injected");
  EXPECT_EQ(vs[0].confidence, "confirmed");
  EXPECT_EQ(vs[0].rule, "packet_evidence");
  // Identical duplicates are not injection.
  m.observations.back() = Finding(m, Step::kDns, "dns.duplicate_response", false);
  EXPECT_NE(ClassifyCycle({m}, opt)[0].verdict, "dns.injected");
}

TEST(PacketEvidence, ProvenInjectedResetConfirmsTheVerdict) {
  ClassifierOptions opt;
  Measurement m;
  m.uid = "m2";
  m.cycle_uid = "c";
  m.network = "opB";
  m.target = "app";
  m.endpoint = "api";
  m.furthest_step = Step::kTcp;
  m.failed_step = Step::kTls;
  m.failure = "connection_reset";
  Observation tls;
  tls.uid = "tls";
  tls.step = Step::kTls;
  tls.failure = "connection_reset";
  m.observations.push_back(tls);
  Measurement other = m;  // another operator reaches it: probable without proof
  other.uid = "m3";
  other.network = "opA";
  other.failure.reset();
  other.failed_step.reset();
  other.furthest_step = Step::kTls;
  other.observations[0].failure.reset();
  auto vs = ClassifyCycle({m, other}, opt);
  ASSERT_EQ(vs.size(), 2u);
  const Verdict& b = vs[0].network == "opB" ? vs[0] : vs[1];
  EXPECT_EQ(b.verdict, "tls.reset");
  EXPECT_EQ(b.confidence, "probable");
  m.observations.push_back(Finding(m, Step::kTls, "tcp.injection", true));
  vs = ClassifyCycle({m, other}, opt);
  const Verdict& p = vs[0].network == "opB" ? vs[0] : vs[1];
  EXPECT_EQ(p.verdict, "tls.reset");
  EXPECT_EQ(p.confidence, "confirmed");
  EXPECT_NE(p.rule.find("packet_proof"), std::string::npos);
}

}  // namespace
}  // namespace rasad
