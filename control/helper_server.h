// `rasad helper`: the control helper as an HTTP service (libmicrohttpd),
// speaking OONI's Web Connectivity test-helper protocol:
//   POST <any path>  JSON THRequest  -> 200 JSON THResponse
//   GET/HEAD         health check    -> 200 {"message":"Hello OONItarian!"}
//   other methods 405; bad JSON or request 400 {"error":...}; body over the
//   limit 413; more than max_in_flight measurements at once 503.
// One thread per connection; each POST runs MeasureForTh in its thread.
// Privacy: the log has one line per request with method, status, sizes and
// duration; never the client's address and never the measured URL.
// Guide: docs/HELPER.md.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <string>

#include "control/th_measure.h"
#include "control/th_protocol.h"
#include "probe/core/status.h"

namespace rasad {

struct HelperOptions {
  // Address and port to listen on: "127.0.0.1:8080", "[::]:8080" (dual
  // stack), "0.0.0.0:8080". Port 0 = ephemeral. No privileges needed for
  // ports >= 1024; put a TLS-terminating reverse proxy in front for https.
  std::string listen = "127.0.0.1:8080";
  ThOptions th;                   // measurement: resolvers, allow ranges, timeouts, caps
  ThLimits limits;                // request parsing: body size (64 KiB), tcp_connect count, ...
  size_t max_in_flight = 16;      // concurrent measurements; beyond: 503
  unsigned max_connections = 64;  // open connections; beyond: refused by accept
  unsigned connection_timeout_s = 15;  // idle connection timeout (slow clients)
  bool log_requests = true;            // one line per request on stderr
};

// Validates options (listen address, allow ranges, resolvers) and loads the
// trust store into opts->th.trust.
Status PrepareHelperOptions(HelperOptions* opts);

class HelperServer {
 public:
  explicit HelperServer(HelperOptions opts);
  ~HelperServer();  // Stop()
  HelperServer(const HelperServer&) = delete;
  HelperServer& operator=(const HelperServer&) = delete;

  // Prepares the options and starts listening (own threads). In tests,
  // listen "127.0.0.1:0" and read port().
  Status Start();
  uint16_t port() const;
  // Cancels measurements in flight (they answer with "interrupted" failures)
  // and stops the daemon, joining its threads. Idempotent.
  void Stop();

  size_t in_flight() const;
  uint64_t requests() const;  // requests answered so far

  struct Impl;

 private:
  std::unique_ptr<Impl> impl_;
};

// Runs the helper in the foreground until SIGTERM or SIGINT. Clears the
// proxy environment variables first (a proxy would connect on the helper's
// behalf, bypassing its destination policy). Returns the process exit code.
// Requires curl_global_init and ares_library_init (as main does).
int RunHelper(const HelperOptions& opts);

}  // namespace rasad
