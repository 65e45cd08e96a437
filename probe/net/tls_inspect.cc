#include "probe/net/tls_inspect.h"

#include <openssl/bio.h>
#include <openssl/evp.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "probe/measure/failure.h"
#include "probe/net/bind.h"

namespace rasad {

Status TrustStore::Create(const std::string& ca_file, std::shared_ptr<TrustStore>* out) {
  auto ts = std::shared_ptr<TrustStore>(new TrustStore());
  ts->store_ = X509_STORE_new();
  if (!ts->store_) return Status::Internal("X509_STORE_new failed");
  X509_STORE_set_default_paths(ts->store_);
  if (!ca_file.empty() && X509_STORE_load_file(ts->store_, ca_file.c_str()) != 1)
    return Status::Invalid(ca_file + ": cannot load CA certificates (PEM expected)");
  *out = std::move(ts);
  return Status::Ok();
}

TrustStore::~TrustStore() {
  if (store_) X509_STORE_free(store_);
}

namespace {

std::string NameText(const X509_NAME* name) {
  BIO* bio = BIO_new(BIO_s_mem());
  X509_NAME_print_ex(bio, name, 0, XN_FLAG_RFC2253);
  char* data = nullptr;
  long len = BIO_get_mem_data(bio, &data);
  std::string s(data, static_cast<size_t>(len));
  BIO_free(bio);
  return s;
}

std::string TimeText(const ASN1_TIME* t) {
  tm out{};
  if (ASN1_TIME_to_tm(t, &out) != 1) return "";
  char buf[32];
  strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &out);
  return buf;
}

std::string Hex(const unsigned char* p, size_t n) {
  static const char* kDigits = "0123456789abcdef";
  std::string s;
  for (size_t i = 0; i < n; ++i) {
    s += kDigits[p[i] >> 4];
    s += kDigits[p[i] & 15];
  }
  return s;
}

std::string Base64(const unsigned char* p, int n) {
  std::string out(4 * ((n + 2) / 3) + 1, '\0');
  int len = EVP_EncodeBlock(reinterpret_cast<unsigned char*>(out.data()), p, n);
  out.resize(static_cast<size_t>(len));
  return out;
}

nlohmann::json CertJson(X509* cert) {
  nlohmann::json c;
  c["subject"] = NameText(X509_get_subject_name(cert));
  c["issuer"] = NameText(X509_get_issuer_name(cert));
  c["not_before"] = TimeText(X509_get0_notBefore(cert));
  c["not_after"] = TimeText(X509_get0_notAfter(cert));
  unsigned char* der = nullptr;
  int len = i2d_X509(cert, &der);
  if (len > 0) {
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int mdlen = 0;
    EVP_Digest(der, static_cast<size_t>(len), md, &mdlen, EVP_sha256(), nullptr);
    c["sha256"] = Hex(md, mdlen);
    c["der_b64"] = Base64(der, len);
    OPENSSL_free(der);
  }
  return c;
}

}  // namespace

TlsInspection InspectTls(SSL* ssl, const TrustStore& trust, const std::string& sni,
                         const std::vector<std::string>& names) {
  TlsInspection out;
  nlohmann::json& d = out.details;
  d["version"] = SSL_get_version(ssl);
  d["cipher"] = SSL_get_cipher(ssl);
  const unsigned char* alpn = nullptr;
  unsigned int alpn_len = 0;
  SSL_get0_alpn_selected(ssl, &alpn, &alpn_len);
  d["alpn"] =
      std::string(reinterpret_cast<const char*>(alpn ? alpn : (const unsigned char*)""), alpn_len);
  d["sni"] = sni;
  STACK_OF(X509)* chain = SSL_get_peer_cert_chain(ssl);  // leaf first (client side)
  nlohmann::json certs = nlohmann::json::array();
  X509* leaf = SSL_get0_peer_certificate(ssl);
  if (chain) {
    for (int i = 0; i < sk_X509_num(chain); ++i) certs.push_back(CertJson(sk_X509_value(chain, i)));
  }
  d["chain"] = certs;
  if (!leaf) {
    d["trusted"] = false;
    out.failure = "ssl_failed_handshake";
    return out;
  }

  X509_STORE_CTX* ctx = X509_STORE_CTX_new();
  X509_STORE_CTX_init(ctx, trust.store(), leaf, chain);
  int ok = X509_verify_cert(ctx);
  int err = ok == 1 ? X509_V_OK : X509_STORE_CTX_get_error(ctx);
  X509_STORE_CTX_free(ctx);
  d["trusted"] = ok == 1;
  d["verify_error"] = err;
  d["verify_error_string"] = X509_verify_cert_error_string(err);

  std::vector<std::string> want = names;
  if (want.empty() && !sni.empty()) want.push_back(sni);
  bool names_ok = true;
  nlohmann::json missing = nlohmann::json::array();
  for (const auto& n : want) {
    bool hit = IsIpLiteral(n) ? X509_check_ip_asc(leaf, n.c_str(), 0) == 1
                              : X509_check_host(leaf, n.c_str(), n.size(), 0, nullptr) == 1;
    if (!hit) {
      names_ok = false;
      missing.push_back(n);
    }
  }
  d["hostname_ok"] = names_ok;
  if (!names_ok) d["names_missing"] = missing;

  if (err != X509_V_OK)
    out.failure = FailureFromX509(err);
  else if (!names_ok)
    out.failure = "ssl_invalid_hostname";
  return out;
}

}  // namespace rasad
