#include "probe/measure/failure.h"

#include <ares.h>
#include <curl/curl.h>
#include <openssl/x509_vfy.h>

#include <cerrno>
#include <regex>

namespace rasad {

namespace {

// Order matters: the first row matching (source, code, errno) wins, so rows
// with a specific errno come before the catch-all (-1) row of the same code.
const FailureMapping kTable[] = {
    // Kernel errors (connect, recv, send), ooni/probe-cli netxlite/errno.go.
    {FailureSource::kErrno, ECONNREFUSED, -1, "connection_refused"},
    {FailureSource::kErrno, ECONNRESET, -1, "connection_reset"},
    {FailureSource::kErrno, ECONNABORTED, -1, "connection_aborted"},
    {FailureSource::kErrno, ETIMEDOUT, -1, "generic_timeout_error"},
    {FailureSource::kErrno, EHOSTUNREACH, -1, "host_unreachable"},
    {FailureSource::kErrno, ENETUNREACH, -1, "network_unreachable"},
    {FailureSource::kErrno, ENETDOWN, -1, "network_down"},
    {FailureSource::kErrno, ENETRESET, -1, "network_reset"},
    {FailureSource::kErrno, EPIPE, -1, "connection_reset"},
    {FailureSource::kErrno, EADDRNOTAVAIL, -1, "address_not_available"},
    {FailureSource::kErrno, EAFNOSUPPORT, -1, "address_family_not_supported"},
    {FailureSource::kErrno, EACCES, -1, "permission_denied"},
    {FailureSource::kErrno, EPERM, -1, "permission_denied"},
    // libcurl 7.88.1 (observed against scripted loopback servers; see
    // integration notes section 5). CURLINFO_OS_ERRNO disambiguates.
    {FailureSource::kCurl, CURLE_COULDNT_CONNECT, ECONNREFUSED, "connection_refused"},
    {FailureSource::kCurl, CURLE_COULDNT_CONNECT, ETIMEDOUT, "generic_timeout_error"},
    {FailureSource::kCurl, CURLE_COULDNT_CONNECT, ENETUNREACH, "network_unreachable"},
    {FailureSource::kCurl, CURLE_COULDNT_CONNECT, EHOSTUNREACH, "host_unreachable"},
    {FailureSource::kCurl, CURLE_COULDNT_CONNECT, ECONNRESET, "connection_reset"},
    {FailureSource::kCurl, CURLE_COULDNT_CONNECT, -1, "connection_refused"},
    {FailureSource::kCurl, CURLE_OPERATION_TIMEDOUT, -1, "generic_timeout_error"},
    {FailureSource::kCurl, CURLE_SSL_CONNECT_ERROR, ECONNRESET, "connection_reset"},
    {FailureSource::kCurl, CURLE_SSL_CONNECT_ERROR, 0, "eof_error"},
    {FailureSource::kCurl, CURLE_SSL_CONNECT_ERROR, -1, "ssl_failed_handshake"},
    {FailureSource::kCurl, CURLE_RECV_ERROR, ECONNRESET, "connection_reset"},
    {FailureSource::kCurl, CURLE_RECV_ERROR, -1, "eof_error"},
    {FailureSource::kCurl, CURLE_SEND_ERROR, ECONNRESET, "connection_reset"},
    {FailureSource::kCurl, CURLE_SEND_ERROR, EPIPE, "connection_reset"},
    {FailureSource::kCurl, CURLE_SEND_ERROR, -1, "eof_error"},
    {FailureSource::kCurl, CURLE_GOT_NOTHING, -1, "eof_error"},
    {FailureSource::kCurl, CURLE_PARTIAL_FILE, -1, "eof_error"},
    {FailureSource::kCurl, CURLE_PEER_FAILED_VERIFICATION, -1, "ssl_unknown_authority"},
    {FailureSource::kCurl, CURLE_WEIRD_SERVER_REPLY, -1, "http_request_failed"},
    {FailureSource::kCurl, CURLE_UNSUPPORTED_PROTOCOL, -1, "http_request_failed"},
    {FailureSource::kCurl, CURLE_HTTP2, -1, "http_request_failed"},
    {FailureSource::kCurl, CURLE_TOO_MANY_REDIRECTS, -1, "http_request_failed"},
    // Our own SOCKOPTFUNCTION / PREREQFUNCTION refused: a probe error.
    {FailureSource::kCurl, CURLE_ABORTED_BY_CALLBACK, -1, nullptr},
    {FailureSource::kCurl, CURLE_OUT_OF_MEMORY, -1, nullptr},
    {FailureSource::kCurl, CURLE_FAILED_INIT, -1, nullptr},
    // c-ares 1.18.1 with ARES_FLAG_NOCHECKRESP (so rcodes reach us).
    {FailureSource::kAres, ARES_ENOTFOUND, -1, "dns_nxdomain_error"},
    {FailureSource::kAres, ARES_ENODATA, -1, "dns_no_answer"},
    {FailureSource::kAres, ARES_ESERVFAIL, -1, "dns_servfail_error"},
    {FailureSource::kAres, ARES_EREFUSED, -1, "dns_refused_error"},
    {FailureSource::kAres, ARES_ETIMEOUT, -1, "generic_timeout_error"},
    {FailureSource::kAres, ARES_ECONNREFUSED, -1, "connection_refused"},
    {FailureSource::kAres, ARES_EFORMERR, -1, "dns_server_misbehaving"},
    {FailureSource::kAres, ARES_EBADRESP, -1, "dns_server_misbehaving"},
    {FailureSource::kAres, ARES_ENOTIMP, -1, "dns_server_misbehaving"},
    {FailureSource::kAres, ARES_ECANCELLED, -1, "interrupted"},
    {FailureSource::kAres, ARES_EDESTRUCTION, -1, "interrupted"},
};

const FailureMapping* Lookup(FailureSource src, int code, int os_errno) {
  for (const auto& row : kTable) {
    if (row.source == src && row.code == code && (row.os_errno == -1 || row.os_errno == os_errno))
      return &row;
  }
  return nullptr;
}

}  // namespace

const FailureMapping* FailureTable(size_t* count) {
  *count = sizeof kTable / sizeof kTable[0];
  return kTable;
}

std::string UnknownFailure(const std::string& text) {
  static const std::regex kV4(R"(\b\d{1,3}(\.\d{1,3}){3}\b)");
  static const std::regex kV6(R"(\[?[0-9a-fA-F]{0,4}(:[0-9a-fA-F]{0,4}){2,7}\]?)");
  std::string s = std::regex_replace(text, kV4, "[scrubbed]");
  s = std::regex_replace(s, kV6, "[scrubbed]");
  return "unknown_failure: " + s;
}

std::string FailureFromErrno(int err) {
  if (const FailureMapping* m = Lookup(FailureSource::kErrno, err, -1)) return m->failure;
  return UnknownFailure(std::string("errno ") + std::to_string(err));
}

std::optional<std::string> FailureFromCurl(int curl_code, int os_errno, std::string* probe_error) {
  if (curl_code == CURLE_OK) return std::nullopt;
  if (const FailureMapping* m = Lookup(FailureSource::kCurl, curl_code, os_errno)) {
    if (m->failure) return std::string(m->failure);
    if (probe_error)
      *probe_error = std::string("curl: ") + curl_easy_strerror(static_cast<CURLcode>(curl_code));
    return std::nullopt;
  }
  return UnknownFailure(curl_easy_strerror(static_cast<CURLcode>(curl_code)));
}

std::optional<std::string> FailureFromAres(int ares_status, int rcode) {
  if (ares_status == ARES_SUCCESS) return std::nullopt;
  // c-ares reports NOERROR-without-records as ENOTFOUND too in some paths.
  if (ares_status == ARES_ENOTFOUND && rcode == 0) return std::string("dns_no_answer");
  if (const FailureMapping* m = Lookup(FailureSource::kAres, ares_status, -1))
    return std::string(m->failure);
  return UnknownFailure(ares_strerror(ares_status));
}

std::string FailureFromX509(int verify_error) {
  switch (verify_error) {
    case X509_V_ERR_DEPTH_ZERO_SELF_SIGNED_CERT:
    case X509_V_ERR_SELF_SIGNED_CERT_IN_CHAIN:
    case X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT_LOCALLY:
    case X509_V_ERR_UNABLE_TO_VERIFY_LEAF_SIGNATURE:
    case X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT:
    case X509_V_ERR_CERT_UNTRUSTED:
      return "ssl_unknown_authority";
    case X509_V_ERR_HOSTNAME_MISMATCH:
      return "ssl_invalid_hostname";
    default:
      return "ssl_invalid_certificate";  // expired, not yet valid, bad signature...
  }
}

}  // namespace rasad
