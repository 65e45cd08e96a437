// The one place where library and kernel results become OONI failure strings
// (vocabulary: ooni/spec df-007, table in docs/FAILURES.md). Every mapping
// rasad makes goes through these functions, so data stays comparable.
#pragma once

#include <optional>
#include <string>

namespace rasad {

// Which library produced a result, for tables keyed by (source, code, errno).
enum class FailureSource { kErrno, kCurl, kAres };

struct FailureMapping {
  FailureSource source;
  int code;             // errno, CURLcode or ares status
  int os_errno;         // curl: CURLINFO_OS_ERRNO condition (-1 = any)
  const char* failure;  // OONI string; nullptr = probe-side error, not a network result
};

// The whole table, for docs and tests.
const FailureMapping* FailureTable(size_t* count);

// errno from connect()/recv()/send() -> failure ("connection_refused", ...).
std::string FailureFromErrno(int err);

// curl result of a transfer. `os_errno` is CURLINFO_OS_ERRNO (read only on
// failure). Returns nullopt for CURLE_OK. Probe-side errors (our bind
// callback refused: CURLE_ABORTED_BY_CALLBACK) are reported via *probe_error.
std::optional<std::string> FailureFromCurl(int curl_code, int os_errno, std::string* probe_error);

// c-ares status of a query. `rcode` is the DNS rcode of the response when one
// was received (-1 otherwise): ARES_ENOTFOUND is NXDOMAIN only if rcode == 3.
std::optional<std::string> FailureFromAres(int ares_status, int rcode);

// OpenSSL X509_V_ERR_* from our own chain verification -> failure.
std::string FailureFromX509(int verify_error);

// "unknown_failure: <text>" with IP addresses scrubbed, as probe-cli does.
std::string UnknownFailure(const std::string& text);

}  // namespace rasad
