// TCP, TLS and HTTP steps against scripted servers: each case a failure a
// censor (or an ordinary outage) produces, and the string rasad must record.
#include <gtest/gtest.h>

#include <chrono>
#include <thread>

#include "tests/engine/engine_fixture.h"
#include "tests/support/certs.h"
#include "tests/support/servers.h"

namespace rasad::testing {
namespace {

TEST_F(EngineTest, ClosedPortIsConnectionRefused) {
  Measurement m = RunOne(OneEndpoint("127.0.0.1", UnusedTcpPort(), Step::kTcp, false));
  ASSERT_TRUE(m.failure);
  EXPECT_EQ(*m.failure, "connection_refused");
  EXPECT_EQ(m.failed_step, Step::kTcp);
  EXPECT_FALSE(m.furthest_step);
  const Observation* tcp = Find(m, Step::kTcp);
  ASSERT_NE(tcp, nullptr);
  EXPECT_EQ(tcp->remote_addr, "127.0.0.1");
  EXPECT_EQ(tcp->details.value("os_errno", 0), 111);
}

TEST_F(EngineTest, OpenPortIsReachedAtTcp) {
  HttpServer server(HttpResponse{});
  Measurement m = RunOne(OneEndpoint("127.0.0.1", server.port(), Step::kTcp, false));
  EXPECT_FALSE(m.failure);
  EXPECT_EQ(m.furthest_step, Step::kTcp);
  const Observation* tcp = Find(m, Step::kTcp);
  ASSERT_NE(tcp, nullptr);
  EXPECT_EQ(tcp->local_addr, "127.0.0.1");
  EXPECT_GT(tcp->local_port, 0);
  EXPECT_EQ(tcp->remote_port, server.port());
}

TEST_F(EngineTest, BlackholedAddressIsGenericTimeout) {
  BlackholeEndpoint hole;
  Measurement m = RunOne(OneEndpoint("127.0.0.1", hole.port(), Step::kTcp, false));
  ASSERT_TRUE(m.failure);
  EXPECT_EQ(*m.failure, "generic_timeout_error");
  EXPECT_EQ(m.failed_step, Step::kTcp);
  const Observation* tcp = Find(m, Step::kTcp);
  ASSERT_NE(tcp, nullptr);
  EXPECT_GE(tcp->t_end - tcp->t_start, 700 * 1000) << "the tcp deadline was cut short";
}

TEST_F(EngineTest, ResetDuringTlsHandshakeIsConnectionReset) {
  ScriptedTcpServer server(TcpBehaviour::kResetOnFirstData);
  Target t = OneEndpoint("127.0.0.1", server.port(), Step::kHttp);
  t.endpoints[0].sni = "www.clubhouseapi.com";
  Measurement m = RunOne(t);
  ASSERT_TRUE(m.failure);
  EXPECT_EQ(*m.failure, "connection_reset");
  EXPECT_EQ(m.failed_step, Step::kTls);
  EXPECT_EQ(m.furthest_step, Step::kTcp);
  const Observation* tls = Find(m, Step::kTls);
  ASSERT_NE(tls, nullptr);
  // The handshake timeline shows the ClientHello went out before the reset.
  EXPECT_NE(tls->details.dump().find("Client hello"), std::string::npos) << tls->details.dump();
  EXPECT_EQ(Find(m, Step::kHttp), nullptr);
}

TEST_F(EngineTest, FinDuringTlsHandshakeIsEof) {
  ScriptedTcpServer server(TcpBehaviour::kFinOnFirstData);
  Measurement m = RunOne(OneEndpoint("127.0.0.1", server.port(), Step::kTls));
  ASSERT_TRUE(m.failure);
  EXPECT_EQ(*m.failure, "eof_error");
  EXPECT_EQ(m.failed_step, Step::kTls);
}

TEST_F(EngineTest, SilentServerIsTlsTimeout) {
  ScriptedTcpServer server(TcpBehaviour::kSilent);
  Measurement m = RunOne(OneEndpoint("127.0.0.1", server.port(), Step::kTls));
  ASSERT_TRUE(m.failure);
  EXPECT_EQ(*m.failure, "generic_timeout_error");
  EXPECT_EQ(m.failed_step, Step::kTls);
  EXPECT_EQ(m.furthest_step, Step::kTcp);
}

class TlsTest : public EngineTest {
 protected:
  void SetUp() override {
    EngineTest::SetUp();
    kit_ = std::make_unique<CertKit>(dir_);
  }
  std::unique_ptr<CertKit> kit_;
};

TEST_F(TlsTest, SelfSignedIsUnknownAuthorityWithChainStored) {
  Pem pem = kit_->SelfSigned({"www.clubhouseapi.com"});
  HttpServer server(HttpResponse{}, &pem);
  Target t = OneEndpoint("127.0.0.1", server.port(), Step::kHttp);
  t.endpoints[0].sni = "www.clubhouseapi.com";
  Measurement m = RunOne(t);
  ASSERT_TRUE(m.failure);
  EXPECT_EQ(*m.failure, "ssl_unknown_authority");
  EXPECT_EQ(m.failed_step, Step::kTls);
  const Observation* tls = Find(m, Step::kTls);
  ASSERT_NE(tls, nullptr);
  ASSERT_EQ(tls->details["chain"].size(), 1u);
  EXPECT_NE(tls->details["chain"][0]["subject"].get<std::string>().find("www.clubhouseapi.com"),
            std::string::npos);
  EXPECT_EQ(tls->details["chain"][0]["sha256"].get<std::string>().size(), 64u);
  EXPECT_FALSE(tls->details["trusted"].get<bool>());
  // No HTTP was sent over the untrusted connection.
  EXPECT_EQ(server.requests(), 0);
  EXPECT_EQ(Find(m, Step::kHttp), nullptr);
}

TEST_F(TlsTest, WrongNameIsInvalidHostname) {
  cfg_.ca_file = kit_->ca_file();
  Pem pem = kit_->Leaf({"blockpage.invalid"});
  HttpServer server(HttpResponse{}, &pem);
  Target t = OneEndpoint("127.0.0.1", server.port(), Step::kTls);
  t.endpoints[0].sni = "www.clubhouseapi.com";
  Measurement m = RunOne(t);
  ASSERT_TRUE(m.failure);
  EXPECT_EQ(*m.failure, "ssl_invalid_hostname");
  const Observation* tls = Find(m, Step::kTls);
  ASSERT_NE(tls, nullptr);
  EXPECT_TRUE(tls->details["trusted"].get<bool>());
  EXPECT_FALSE(tls->details["hostname_ok"].get<bool>());
}

TEST_F(TlsTest, ExpiredIsInvalidCertificate) {
  cfg_.ca_file = kit_->ca_file();
  Pem pem = kit_->Expired({"www.example.org"});
  HttpServer server(HttpResponse{}, &pem);
  Target t = OneEndpoint("127.0.0.1", server.port(), Step::kTls);
  t.endpoints[0].sni = "www.example.org";
  Measurement m = RunOne(t);
  ASSERT_TRUE(m.failure);
  EXPECT_EQ(*m.failure, "ssl_invalid_certificate");
}

TEST_F(TlsTest, ValidChainCompletesHttpsWithSniAndBodyFacts) {
  cfg_.ca_file = kit_->ca_file();
  Pem pem = kit_->Leaf({"www.example.org"});
  HttpResponse r;
  r.status = 403;
  r.reason = "Forbidden";
  r.body = "<html><head><title>  Access\n denied </title></head><body>x</body></html>";
  HttpServer server(r, &pem);
  Target t = OneEndpoint("127.0.0.1", server.port(), Step::kHttp);
  t.endpoints[0].sni = "www.example.org";
  t.endpoints[0].path = "/api/check";
  Measurement m = RunOne(t);
  EXPECT_FALSE(m.failure) << *m.failure;
  EXPECT_EQ(m.furthest_step, Step::kHttp);
  ASSERT_EQ(server.snis().size(), 1u);
  EXPECT_EQ(server.snis()[0], "www.example.org");
  EXPECT_EQ(server.request_lines()[0], "GET /api/check HTTP/1.1");
  const Observation* tls = Find(m, Step::kTls);
  ASSERT_NE(tls, nullptr);
  EXPECT_TRUE(tls->details["trusted"].get<bool>());
  EXPECT_FALSE(tls->details["version"].get<std::string>().empty());
  EXPECT_GT(tls->bytes_received, 0);
  const Observation* http = Find(m, Step::kHttp);
  ASSERT_NE(http, nullptr);
  EXPECT_EQ(http->details["status"].get<long>(), 403);
  EXPECT_EQ(http->details["title"].get<std::string>(), "Access denied");
  EXPECT_EQ(http->details["body_length"].get<size_t>(), r.body.size());
  EXPECT_GT(http->bytes_received, static_cast<int64_t>(r.body.size()));
  // All three steps share the connection's 4-tuple (packet capture keys on it).
  const Observation* tcp = Find(m, Step::kTcp);
  EXPECT_EQ(tcp->flow_uid, http->flow_uid);
  EXPECT_EQ(tcp->local_port, http->local_port);
}

TEST_F(EngineTest, ResetAfterHttpRequestIsHttpConnectionReset) {
  HttpResponse r;
  r.reset_instead = true;
  HttpServer server(r);
  Measurement m = RunOne(OneEndpoint("127.0.0.1", server.port(), Step::kHttp, false));
  ASSERT_TRUE(m.failure);
  EXPECT_EQ(*m.failure, "connection_reset");
  EXPECT_EQ(m.failed_step, Step::kHttp);
  EXPECT_EQ(m.furthest_step, Step::kTcp);
}

TEST_F(EngineTest, SlowHttpServerIsHttpTimeout) {
  HttpResponse r;
  r.delay_ms = 3000;
  HttpServer server(r);
  Measurement m = RunOne(OneEndpoint("127.0.0.1", server.port(), Step::kHttp, false));
  ASSERT_TRUE(m.failure);
  EXPECT_EQ(*m.failure, "generic_timeout_error");
  EXPECT_EQ(m.failed_step, Step::kHttp);
}

TEST_F(EngineTest, BodyIsCappedWithoutFailure) {
  HttpResponse r;
  r.body = std::string(300 * 1024, 'a');
  HttpServer server(r);
  cfg_.body_cap = 64 * 1024;
  cfg_.body_store = 1024;
  Measurement m = RunOne(OneEndpoint("127.0.0.1", server.port(), Step::kHttp, false));
  EXPECT_FALSE(m.failure) << *m.failure;
  const Observation* http = Find(m, Step::kHttp);
  ASSERT_NE(http, nullptr);
  EXPECT_EQ(http->details["body_length"].get<size_t>(), 64u * 1024);
  EXPECT_TRUE(http->details["body_truncated"].get<bool>());
  EXPECT_EQ(http->details["body_prefix_b64"].get<std::string>().size(), 4u * ((1024 + 2) / 3));
  // Stopping early saves data: far less than the full 300 KiB crossed the wire.
  EXPECT_LT(http->bytes_received, 200 * 1024);
}

TEST_F(EngineTest, MissingInterfaceFailsClosedAsProbeError) {
  HttpServer server(HttpResponse{});
  cfg_.networks[0].interface = "rasadnope0";
  CycleReport r = Run({OneEndpoint("127.0.0.1", server.port(), Step::kHttp, false)});
  ASSERT_EQ(r.networks.size(), 1u);
  EXPECT_NE(r.networks[0].probe_error.find("rasadnope0"), std::string::npos);
  EXPECT_TRUE(r.measurements.empty()) << "nothing may be recorded as a network result";
  EXPECT_EQ(server.requests(), 0);
}

}  // namespace
}  // namespace rasad::testing

namespace rasad::testing {
namespace {

TEST_F(EngineTest, FailedEndpointIsMeasuredAgainAfterTheSpacing) {
  HttpResponse reset;
  reset.reset_instead = true;
  HttpServer server(reset);
  // The "censor" lets go after the first request: the retry must see it.
  std::thread heal([&] {
    while (server.requests() < 1) std::this_thread::sleep_for(std::chrono::milliseconds(5));
    server.SetResponse(HttpResponse{});
  });
  cfg_.retry_count = 2;
  cfg_.retry_spacing_ms = 300;
  CycleReport r = Run({OneEndpoint("127.0.0.1", server.port(), Step::kHttp, false)});
  heal.join();
  ASSERT_EQ(r.measurements.size(), 2u) << "one retry, then success: no third attempt";
  EXPECT_EQ(r.measurements[0].attempt, 0);
  EXPECT_EQ(r.measurements[0].failure.value_or(""), "connection_reset");
  EXPECT_EQ(r.measurements[1].attempt, 1);
  EXPECT_FALSE(r.measurements[1].failure);
  EXPECT_GE(r.measurements[1].t_start - r.measurements[0].t_end, 300 * 1000);
  // Both attempts are stored.
  std::unique_ptr<Store> store;
  ASSERT_TRUE(Store::OpenReadOnly(cfg_.database, &store).ok());
  std::vector<Measurement> stored;
  ASSERT_TRUE(store->LoadMeasurements(r.uid, &stored).ok());
  ASSERT_EQ(stored.size(), 2u);
  EXPECT_EQ(stored[1].attempt, 1);
}

}  // namespace
}  // namespace rasad::testing
