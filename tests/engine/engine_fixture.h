// Runs real measurement cycles against real servers on loopback.
#pragma once

#include <gtest/gtest.h>
#include <stdlib.h>

#include <memory>
#include <string>

#include "probe/config/config.h"
#include "probe/config/targets.h"
#include "probe/loop/event_loop.h"
#include "probe/measure/cycle.h"
#include "probe/net/tls_inspect.h"
#include "probe/store/store.h"

namespace rasad::testing {

inline std::string MakeTempDir() {
  char tmpl[] = "/tmp/rasad-test-XXXXXX";
  const char* d = mkdtemp(tmpl);
  return d ? d : "/tmp";
}

// One target with one endpoint; tests tweak the pieces.
inline Target OneEndpoint(const std::string& host, uint16_t port, Step last, bool tls = true) {
  Target t;
  t.name = "t";
  t.title = "Test";
  t.version = "test-1";
  Endpoint e;
  e.name = "e";
  e.hosts = {host};
  e.ports = {port};
  e.last_step = last;
  e.tls = tls;
  t.endpoints.push_back(e);
  return t;
}

class EngineTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = MakeTempDir();
    cfg_.database = dir_ + "/rasad.db";
    cfg_.dns_timeout_ms = 400;
    cfg_.dns_tries = 1;
    cfg_.tcp_timeout_ms = 800;
    cfg_.tls_timeout_ms = 800;
    cfg_.http_timeout_ms = 1500;
    cfg_.ipv6 = false;
    cfg_.retry_count = 0;  // retries have their own test
    cfg_.capture = false;  // packet evidence has its own tests (tests/capture)
    NetworkConfig lo;
    lo.name = "lo";
    lo.interface = "lo";             // real SO_BINDTODEVICE on every socket
    lo.resolvers = {"127.0.0.1:1"};  // replaced by tests that resolve
    cfg_.networks = {lo};
  }
  void TearDown() override { std::system(("rm -rf " + dir_).c_str()); }

  void UseResolver(uint16_t port) {
    cfg_.networks[0].resolvers = {"127.0.0.1:" + std::to_string(port)};
  }

  // Runs one cycle and returns the only measurement.
  Measurement RunOne(const Target& t) {
    report_ = Run({t});
    EXPECT_EQ(report_.measurements.size(), 1u);
    return report_.measurements.empty() ? Measurement{} : report_.measurements[0];
  }

  CycleReport Run(const std::vector<Target>& targets) {
    targets_ = targets;
    std::unique_ptr<Store> store;
    Status st = Store::Open(cfg_.database, &store);
    EXPECT_TRUE(st.ok()) << st.ToString();
    std::shared_ptr<TrustStore> trust;
    st = TrustStore::Create(cfg_.ca_file, &trust);
    EXPECT_TRUE(st.ok()) << st.ToString();
    EventLoop loop;
    EXPECT_TRUE(loop.Init().ok());
    CycleReport report;
    Cycle cycle(&loop, cfg_, targets_, store.get(), trust);
    st = cycle.Run(nullptr, &report);
    EXPECT_TRUE(st.ok()) << st.ToString();
    EXPECT_EQ(report.store_error, "");
    EXPECT_EQ(loop.watched_fds(), 0u) << "a socket was left registered";
    return report;
  }

  static const Observation* Find(const Measurement& m, Step s) {
    for (const Observation& o : m.observations)
      if (o.step == s) return &o;
    return nullptr;
  }

  std::string dir_;
  Config cfg_;
  std::vector<Target> targets_;
  CycleReport report_;
};

}  // namespace rasad::testing
