// Inspecting a finished TLS handshake: what was negotiated, the peer chain,
// and rasad's own verification. curl runs with verification off so that an
// interceptor's certificate is still seen; the verdict on the chain is made
// here against the system store plus the configured extra CA file.
#pragma once

#include <openssl/ssl.h>

#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "probe/core/status.h"

namespace rasad {

class TrustStore {
 public:
  // System default trust (OpenSSL's default paths) plus ca_file when given.
  static Status Create(const std::string& ca_file, std::shared_ptr<TrustStore>* out);
  ~TrustStore();
  X509_STORE* store() const { return store_; }

 private:
  X509_STORE* store_ = nullptr;
};

struct TlsInspection {
  nlohmann::json details;              // version, cipher, alpn, chain, verify fields
  std::optional<std::string> failure;  // ssl_unknown_authority, ssl_invalid_hostname, ...
};

// `names`: names the leaf must cover (the SNI when empty).
TlsInspection InspectTls(SSL* ssl, const TrustStore& trust, const std::string& sni,
                         const std::vector<std::string>& names);

}  // namespace rasad
