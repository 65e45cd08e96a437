// rasad.toml: how the probe runs and which operator uplinks it measures.
// Every key is documented in docs/CONFIG.md; an example is rasad.example.toml.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "probe/core/status.h"

namespace rasad {

struct NetworkConfig {
  std::string name;            // short id used in the database, e.g. "mci"
  std::string operator_label;  // e.g. "Hamrah-e-Aval (MCI)"
  int asn = 0;                 // 0 = unknown
  std::string interface;       // bind sockets here (SO_BINDTODEVICE); "" = default route
  // Resolvers as "ip" or "ip:port" ("[v6]:port"); empty = the system's
  // (nameserver lines of /etc/resolv.conf).
  std::vector<std::string> resolvers;
  int line = 0;
};

struct Config {
  std::string file;  // "" when built from defaults
  std::string database = "results/rasad.db";
  std::vector<std::string> targets = {"targets"};  // files or directories
  int64_t interval_ms = 15 * 60 * 1000;
  int64_t jitter_ms = 2 * 60 * 1000;
  int concurrency = 16;              // endpoints in flight at once (all networks)
  int max_addresses_per_family = 2;  // resolved addresses tried per family
  bool ipv6 = true;                  // query AAAA and connect over IPv6
  int64_t dns_timeout_ms = 4000;     // per try
  int dns_tries = 2;
  bool dns_tcp = false;  // DNS over TCP instead of UDP
  int64_t tcp_timeout_ms = 10000;
  int64_t tls_timeout_ms = 10000;
  int64_t http_timeout_ms = 15000;
  // A failed endpoint is measured again `retry_count` times, `retry_spacing_ms`
  // apart, before it is judged: longer than the residual-blocking windows
  // censors keep after a trigger (60 s in Iran, 90 s in China), so a retry is
  // not punished for the first attempt.
  int retry_count = 1;
  int64_t retry_spacing_ms = 120 * 1000;
  // Packet capture for evidence (docs/EVIDENCE.md): needs CAP_NET_RAW; without
  // it rasad warns once and measures without evidence.
  bool capture = true;
  int64_t capture_hold_on_ms = 1000;  // wait for racing packets before judging
  size_t body_cap = 64 * 1024;        // stop reading an HTTP body after this many bytes
  size_t body_store = 4 * 1024;       // first bytes of the body kept in the database
  std::string ca_file;                // extra trust anchors (PEM) besides the system store
  std::string user_agent = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko)";
  std::vector<NetworkConfig> networks;  // empty = one network on the default route
  // CIDRs the classifier treats as public although they are bogons (the lab's
  // TEST-NET hosts). Empty outside the lab. Stored; used by analysis/.
  std::vector<std::string> public_ranges;
  // Fingerprint files (docs/FINGERPRINTS.md). rasad's own file recognises
  // Iran's filter; the third-party files are optional and read from where
  // the volunteer keeps them ("" = not used).
  std::string fingerprints = "targets/fingerprints/rasad.toml";
  std::string ooni_dns_fingerprints;
  std::string ooni_http_fingerprints;
  std::string censoredplanet_blockpages;
  std::string censoredplanet_false_positives;
  // Control helpers speaking OONI's test-helper protocol (docs/HELPER.md),
  // asked once per endpoint per cycle; their answers are stored as the
  // network "control". Empty = no helper.
  std::vector<std::string> control_helpers;
  // DNS-over-HTTPS resolvers (RFC 8484 URLs) asked when no control helper
  // answers: a DNS-only control. Empty = none.
  std::vector<std::string> doh_resolvers;
};

// Loads and validates a config file. Errors: Status::Invalid("file:line: msg").
// Relative paths (database, targets, ca_file) are resolved against the
// current directory, as a user typing a command would expect.
Status LoadConfig(const std::string& path, Config* out);

// Parses "15m", "90s", "250ms", "1h", "2h30m" into milliseconds.
bool ParseDuration(const std::string& text, int64_t* ms);

// nameserver lines of a resolv.conf file ("/etc/resolv.conf" by default).
std::vector<std::string> SystemResolvers(const std::string& resolv_conf = "/etc/resolv.conf");

}  // namespace rasad
