// Verdicts: what the observations of one endpoint on one operator in one
// cycle mean. A closed vocabulary of stable strings (docs/VERDICTS.md);
// always recomputable from the stored observations (`rasad classify`).
#pragma once

#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

namespace rasad {

// The vocabulary. Anything not listed here is a bug.
namespace verdicts {
inline constexpr const char* kOk = "ok";
inline constexpr const char* kDnsNxdomain = "dns.nxdomain";
inline constexpr const char* kDnsServfail = "dns.servfail";
inline constexpr const char* kDnsRefused = "dns.refused";
inline constexpr const char* kDnsNoAnswer = "dns.no_answer";
inline constexpr const char* kDnsTimeout = "dns.timeout";
inline constexpr const char* kDnsBogon = "dns.bogon";
inline constexpr const char* kDnsInjected = "dns.injected";
inline constexpr const char* kDnsInconsistent = "dns.inconsistent";
inline constexpr const char* kTcpTimeout = "tcp.timeout";
inline constexpr const char* kTcpRefused = "tcp.refused";
inline constexpr const char* kTcpUnreachable = "tcp.unreachable";
inline constexpr const char* kTlsReset = "tls.reset";
inline constexpr const char* kTlsTimeout = "tls.timeout";
inline constexpr const char* kTlsEof = "tls.eof";
inline constexpr const char* kTlsMitm = "tls.mitm";
inline constexpr const char* kHttpReset = "http.reset";
inline constexpr const char* kHttpTimeout = "http.timeout";
inline constexpr const char* kHttpEof = "http.eof";
inline constexpr const char* kHttpBlockpage = "http.blockpage";
inline constexpr const char* kHttpDiff = "http.diff";
inline constexpr const char* kThrottled = "throttled";
inline constexpr const char* kDown = "down";
inline constexpr const char* kShutdown = "shutdown";
inline constexpr const char* kVantageOffline = "vantage.offline";
inline constexpr const char* kInconclusive = "inconclusive";
}  // namespace verdicts

const std::vector<std::string>& AllVerdicts();
// Verdicts that claim interference (everything but ok, down, shutdown,
// vantage.offline and inconclusive; shutdown is interference of a different
// kind and is reported as such).
bool IsBlocking(const std::string& verdict);

struct Verdict {
  std::string cycle_uid;
  std::string network;
  std::string target;
  std::string endpoint;
  std::string measurement_uid;  // the attempt the verdict speaks for
  int64_t t_start = 0;
  std::string verdict;
  std::string confidence;  // "confirmed" | "probable" | "" (not a blocking verdict)
  std::string rule;        // the rule that decided (docs/VERDICTS.md)
  nlohmann::json evidence = nlohmann::json::object();  // observation uids, controls, fingerprint
  // OONI web_connectivity mapping for export: blocking is false, a string
  // ("dns", "tcp_ip", "http-failure", "http-diff") or null; accessible is
  // true, false or null.
  nlohmann::json ooni_blocking;
  nlohmann::json ooni_accessible;
};

// Per app (target) and operator: "ok", "blocked", "partial", or the
// network-wide verdicts; with each endpoint's verdict.
struct AppRollup {
  std::string network;
  std::string target;
  std::string status;
  std::vector<std::pair<std::string, std::string>> endpoints;  // endpoint, verdict
};

std::vector<AppRollup> RollupByApp(const std::vector<Verdict>& verdicts);

}  // namespace rasad
