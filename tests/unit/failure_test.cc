// The failure table: every mapping rasad makes, checked against OONI's
// vocabulary (df-007) and the behaviour observed on Debian 12's libraries.
#include "probe/measure/failure.h"

#include <ares.h>
#include <curl/curl.h>
#include <gtest/gtest.h>
#include <openssl/x509_vfy.h>

#include <cerrno>
#include <set>

namespace rasad {
namespace {

TEST(FailureTable, EveryStringIsOonisVocabulary) {
  const std::set<std::string> ooni = {
      "connection_refused",    "connection_reset",      "connection_aborted",
      "generic_timeout_error", "host_unreachable",      "network_unreachable",
      "network_down",          "network_reset",         "eof_error",
      "interrupted",           "dns_nxdomain_error",    "dns_no_answer",
      "dns_refused_error",     "dns_servfail_error",    "dns_server_misbehaving",
      "ssl_invalid_hostname",  "ssl_unknown_authority", "ssl_invalid_certificate",
      "ssl_failed_handshake",  "address_not_available", "address_family_not_supported",
      "permission_denied",     "http_request_failed"};
  size_t n = 0;
  const FailureMapping* t = FailureTable(&n);
  ASSERT_GT(n, 30u);
  for (size_t i = 0; i < n; ++i) {
    if (!t[i].failure) continue;  // probe-side errors
    EXPECT_TRUE(ooni.count(t[i].failure)) << t[i].failure;
  }
}

TEST(FailureTable, CurlResultsObservedOnDebian12) {
  std::string probe;
  EXPECT_EQ(FailureFromCurl(CURLE_COULDNT_CONNECT, ECONNREFUSED, &probe), "connection_refused");
  EXPECT_EQ(FailureFromCurl(CURLE_COULDNT_CONNECT, ETIMEDOUT, &probe), "generic_timeout_error");
  EXPECT_EQ(FailureFromCurl(CURLE_COULDNT_CONNECT, ENETUNREACH, &probe), "network_unreachable");
  EXPECT_EQ(FailureFromCurl(CURLE_COULDNT_CONNECT, EHOSTUNREACH, &probe), "host_unreachable");
  EXPECT_EQ(FailureFromCurl(CURLE_SSL_CONNECT_ERROR, ECONNRESET, &probe), "connection_reset");
  EXPECT_EQ(FailureFromCurl(CURLE_SSL_CONNECT_ERROR, 0, &probe), "eof_error");
  EXPECT_EQ(FailureFromCurl(CURLE_SSL_CONNECT_ERROR, EPROTO, &probe), "ssl_failed_handshake");
  EXPECT_EQ(FailureFromCurl(CURLE_OPERATION_TIMEDOUT, 0, &probe), "generic_timeout_error");
  EXPECT_EQ(FailureFromCurl(CURLE_RECV_ERROR, ECONNRESET, &probe), "connection_reset");
  EXPECT_EQ(FailureFromCurl(CURLE_GOT_NOTHING, 0, &probe), "eof_error");
  EXPECT_EQ(probe, "");
  EXPECT_EQ(FailureFromCurl(CURLE_OK, 0, &probe), std::nullopt);
}

TEST(FailureTable, OurOwnAbortIsAProbeErrorNotANetworkFailure) {
  std::string probe;
  EXPECT_EQ(FailureFromCurl(CURLE_ABORTED_BY_CALLBACK, 0, &probe), std::nullopt);
  EXPECT_NE(probe.find("curl: "), std::string::npos);
}

TEST(FailureTable, AresStatusesNeedTheRcode) {
  EXPECT_EQ(FailureFromAres(ARES_ENOTFOUND, 3), "dns_nxdomain_error");
  // c-ares also says ENOTFOUND for NOERROR without records: that is no answer.
  EXPECT_EQ(FailureFromAres(ARES_ENOTFOUND, 0), "dns_no_answer");
  EXPECT_EQ(FailureFromAres(ARES_ENODATA, 0), "dns_no_answer");
  EXPECT_EQ(FailureFromAres(ARES_ESERVFAIL, 2), "dns_servfail_error");
  EXPECT_EQ(FailureFromAres(ARES_EREFUSED, 5), "dns_refused_error");
  EXPECT_EQ(FailureFromAres(ARES_ETIMEOUT, -1), "generic_timeout_error");
  EXPECT_EQ(FailureFromAres(ARES_EBADRESP, -1), "dns_server_misbehaving");
  EXPECT_EQ(FailureFromAres(ARES_SUCCESS, 0), std::nullopt);
}

TEST(FailureTable, ErrnoAndCertificates) {
  EXPECT_EQ(FailureFromErrno(ECONNRESET), "connection_reset");
  EXPECT_EQ(FailureFromErrno(ECONNREFUSED), "connection_refused");
  EXPECT_EQ(FailureFromX509(X509_V_ERR_DEPTH_ZERO_SELF_SIGNED_CERT), "ssl_unknown_authority");
  EXPECT_EQ(FailureFromX509(X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT_LOCALLY), "ssl_unknown_authority");
  EXPECT_EQ(FailureFromX509(X509_V_ERR_CERT_HAS_EXPIRED), "ssl_invalid_certificate");
  EXPECT_EQ(FailureFromX509(X509_V_ERR_HOSTNAME_MISMATCH), "ssl_invalid_hostname");
}

TEST(FailureTable, UnknownFailuresAreScrubbedOfAddresses) {
  std::string f = UnknownFailure("weird thing from 203.0.113.9 and [2001:db8::1]:443");
  EXPECT_EQ(f.rfind("unknown_failure: ", 0), 0u);
  EXPECT_EQ(f.find("203.0.113.9"), std::string::npos) << f;
  EXPECT_EQ(f.find("2001:db8"), std::string::npos) << f;
}

}  // namespace
}  // namespace rasad
