// The control helper's measurement: what an uncensored vantage point sees for
// a URL, in the OONI test-helper protocol (control/th_protocol.h). Built on
// the probe's engine (one EventLoop, c-ares DnsQuery, curl Flow): DNS for the
// URL's host, TCP connect to every endpoint, a TLS handshake with SNI = host
// on port 443, and an HTTP GET of the URL following redirects.
// Every destination goes through the DestinationPolicy (control/ssrf.h).
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "control/th_protocol.h"
#include "probe/net/tls_inspect.h"

namespace rasad {

struct ThOptions {
  // DNS resolvers as "ip", "ip:port" or "[v6]:port", tried in order (the
  // next only when the previous gave no answer at all). Empty = the
  // nameserver lines of /etc/resolv.conf.
  std::vector<std::string> resolvers;
  // CIDRs the helper may connect to although they are bogons (a lab's
  // TEST-NET ranges; 127.0.0.0/8 in tests). Invalid entries are ignored here
  // (a narrower policy); HelperOptions validation rejects them at start.
  std::vector<std::string> allow_ranges;
  // Extra trust anchors (PEM) besides the system store, for TLS validation.
  std::string ca_file;
  // A ready trust store (shared by a server's requests); built from ca_file
  // when null.
  std::shared_ptr<TrustStore> trust;

  int64_t dns_timeout_ms = 4000;  // per try
  int dns_tries = 2;
  int64_t tcp_timeout_ms = 10000;
  int64_t tls_timeout_ms = 10000;
  int64_t http_timeout_ms = 15000;   // per hop, after TCP/TLS
  int64_t total_timeout_ms = 30000;  // whole request; unfinished steps time out
  size_t body_cap = 4 << 20;         // HTTP body bytes read, then stop
  int max_redirects = 10;
  size_t max_endpoints = 64;       // tcp_connect entries measured
  size_t max_parallel_flows = 16;  // connections open at once per request
  size_t max_dns_addrs = 32;       // addresses kept from the helper's DNS
  int max_http_addresses = 4;      // addresses tried per HTTP hop
  // User-Agent when the request has none.
  std::string default_user_agent =
      "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
      "Chrome/122.0.0.0 Safari/537.3";
  // Set by a server shutting down: the measurement ends early (checked
  // every 100 ms), unfinished steps reported as interrupted.
  const std::atomic<bool>* cancel = nullptr;
};

// Runs one request to completion on its own EventLoop and CurlMulti, in the
// calling thread. Thread-safe (one call per thread at a time). Requires
// curl_global_init and ares_library_init to have run.
THResponse MeasureForTh(const THRequest& request, const ThOptions& options);

}  // namespace rasad
