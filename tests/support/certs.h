// Test PKI generated at run time with the OpenSSL 3 API: a "Lab CA" root and leaves signed by
// it (EC P-256 keys, SHA-256 signatures), for the TLS scripted servers.
#pragma once

#include <string>
#include <vector>

struct evp_pkey_st;  // EVP_PKEY
struct x509_st;      // X509

namespace rasad::testing {

struct Pem {
  std::string cert_pem, key_pem;
};

class CertKit {
 public:
  // Creates dir (mkdir -p) and writes the CA there: dir/ca.crt (trust anchor) and dir/ca.key.
  explicit CertKit(const std::string& dir);
  ~CertKit();
  CertKit(const CertKit&) = delete;
  CertKit& operator=(const CertKit&) = delete;

  Pem Ca() const;
  std::string ca_file() const;  // PEM file holding the CA certificate
  const std::string& dir() const { return dir_; }

  // Leaf signed by the CA. Each name becomes a subjectAltName: IP literals (v4 or v6) as
  // iPAddress entries, everything else as dNSName. The subject CN is the first name.
  // Validity: notBefore = now + valid_from_days, notAfter = now + valid_to_days (days, may be
  // negative). extendedKeyUsage serverAuth, basicConstraints CA:FALSE.
  Pem Leaf(const std::vector<std::string>& names, int valid_from_days = -1,
           int valid_to_days = 365);
  // Self-signed leaf with the same SANs: fails verification (depth-zero self-signed).
  Pem SelfSigned(const std::vector<std::string>& names);
  // CA-signed, valid from 30 days ago until 1 day ago: fails verification (expired).
  Pem Expired(const std::vector<std::string>& names);

  // Writes dir/stem.crt and dir/stem.key (0600), returns dir/stem.
  std::string WriteFiles(const Pem& p, const std::string& stem);

 private:
  std::string dir_;
  Pem ca_;
  evp_pkey_st* ca_key_ = nullptr;
  x509_st* ca_cert_ = nullptr;
};

}  // namespace rasad::testing
