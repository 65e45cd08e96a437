// Shared pieces of the control helper's tests: library init, loopback
// servers and short timeouts.
#pragma once

#include <ares.h>
#include <curl/curl.h>
#include <gtest/gtest.h>
#include <stdlib.h>

#include <string>

#include "control/th_measure.h"
#include "tests/support/dns_server.h"

namespace rasad::testing {

// curl and c-ares global state, once, before any test thread.
class ControlGlobals : public ::testing::Environment {
 public:
  void SetUp() override {
    curl_global_init(CURL_GLOBAL_DEFAULT);
    ares_library_init(ARES_LIB_INIT_ALL);
  }
  void TearDown() override {
    ares_library_cleanup();
    curl_global_cleanup();
  }
};

inline std::string ControlTempDir() {
  char tmpl[] = "/tmp/rasad-control-XXXXXX";
  const char* d = mkdtemp(tmpl);
  return d ? d : "/tmp";
}

// Short timeouts: a destination refused by policy must never be tried, and
// if it were, the test should still end quickly (and fail).
inline ThOptions FastOptions() {
  ThOptions o;
  o.resolvers = {"127.0.0.1:1"};  // replaced by tests that resolve
  o.dns_timeout_ms = 500;
  o.dns_tries = 1;
  o.tcp_timeout_ms = 800;
  o.tls_timeout_ms = 800;
  o.http_timeout_ms = 1500;
  o.total_timeout_ms = 5000;
  return o;
}

inline DnsRule KindRule(DnsRule::Kind kind) {
  DnsRule r;
  r.kind = kind;
  return r;
}

}  // namespace rasad::testing
