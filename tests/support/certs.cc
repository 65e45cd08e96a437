#include "tests/support/certs.h"

#include <arpa/inet.h>
#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>
#include <sys/stat.h>

#include <cerrno>
#include <cstdio>
#include <fstream>
#include <memory>
#include <stdexcept>

namespace rasad::testing {
namespace {

[[noreturn]] void Fail(const std::string& what) {
  char buf[256] = {0};
  unsigned long e = ERR_get_error();
  if (e != 0) ERR_error_string_n(e, buf, sizeof buf);
  ERR_clear_error();
  throw std::runtime_error("CertKit: " + what + (e != 0 ? std::string(": ") + buf : ""));
}

struct PkeyFree {
  void operator()(EVP_PKEY* p) const { EVP_PKEY_free(p); }
};
struct X509Free {
  void operator()(X509* p) const { X509_free(p); }
};
struct ExtFree {
  void operator()(X509_EXTENSION* p) const { X509_EXTENSION_free(p); }
};
struct BioFree {
  void operator()(BIO* p) const { BIO_free(p); }
};
using PkeyPtr = std::unique_ptr<EVP_PKEY, PkeyFree>;
using X509Ptr = std::unique_ptr<X509, X509Free>;

void MkdirP(const std::string& dir) {
  std::string cur;
  size_t pos = 0;
  while (pos != std::string::npos) {
    pos = dir.find('/', pos + 1);
    cur = dir.substr(0, pos);
    if (cur.empty()) continue;
    if (mkdir(cur.c_str(), 0755) != 0 && errno != EEXIST) {
      throw std::runtime_error("CertKit: mkdir " + cur + " failed");
    }
  }
}

void WriteFile(const std::string& path, const std::string& data, mode_t mode) {
  {
    std::ofstream out(path, std::ios::binary | std::ios::trunc);
    if (!out) throw std::runtime_error("CertKit: cannot write " + path);
    out << data;
    if (!out) throw std::runtime_error("CertKit: cannot write " + path);
  }
  chmod(path.c_str(), mode);
}

PkeyPtr NewKey() {
  PkeyPtr key(EVP_EC_gen("P-256"));
  if (!key) Fail("EVP_EC_gen");
  return key;
}

std::string CertPem(X509* cert) {
  std::unique_ptr<BIO, BioFree> bio(BIO_new(BIO_s_mem()));
  if (!bio || PEM_write_bio_X509(bio.get(), cert) != 1) Fail("PEM_write_bio_X509");
  char* data = nullptr;
  long n = BIO_get_mem_data(bio.get(), &data);
  return std::string(data, static_cast<size_t>(n));
}

std::string KeyPem(EVP_PKEY* key) {
  std::unique_ptr<BIO, BioFree> bio(BIO_new(BIO_s_mem()));
  if (!bio || PEM_write_bio_PrivateKey(bio.get(), key, nullptr, nullptr, 0, nullptr, nullptr) != 1)
    Fail("PEM_write_bio_PrivateKey");
  char* data = nullptr;
  long n = BIO_get_mem_data(bio.get(), &data);
  return std::string(data, static_cast<size_t>(n));
}

bool IsIpLiteral(const std::string& s) {
  unsigned char buf[16];
  return inet_pton(AF_INET, s.c_str(), buf) == 1 || inet_pton(AF_INET6, s.c_str(), buf) == 1;
}

void AddExt(X509* cert, X509* issuer, int nid, const std::string& value) {
  X509V3_CTX ctx;
  X509V3_set_ctx(&ctx, issuer, cert, nullptr, nullptr, 0);
  std::unique_ptr<X509_EXTENSION, ExtFree> ext(
      X509V3_EXT_conf_nid(nullptr, &ctx, nid, value.c_str()));
  if (!ext) Fail("extension " + std::to_string(nid) + "=" + value);
  if (X509_add_ext(cert, ext.get(), -1) != 1) Fail("X509_add_ext");
}

void SetRandomSerial(X509* cert) {
  unsigned char raw[8];
  if (RAND_bytes(raw, sizeof raw) != 1) Fail("RAND_bytes");
  raw[0] &= 0x7f;  // positive
  raw[0] |= 0x01;  // non-zero, fixed length
  BIGNUM* bn = BN_bin2bn(raw, sizeof raw, nullptr);
  if (bn == nullptr) Fail("BN_bin2bn");
  ASN1_INTEGER* serial = BN_to_ASN1_INTEGER(bn, X509_get_serialNumber(cert));
  BN_free(bn);
  if (serial == nullptr) Fail("BN_to_ASN1_INTEGER");
}

void SetName(X509_NAME* name, const std::string& cn) {
  std::string v = cn.substr(0, 64);
  if (v.empty()) v = "rasad test";
  if (X509_NAME_add_entry_by_txt(name, "O", MBSTRING_UTF8,
                                 reinterpret_cast<const unsigned char*>("rasad lab"), -1, -1,
                                 0) != 1 ||
      X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_UTF8,
                                 reinterpret_cast<const unsigned char*>(v.c_str()), -1, -1,
                                 0) != 1) {
    Fail("X509_NAME_add_entry_by_txt");
  }
}

// Builds and signs a certificate. issuer/issuer_key null => self-signed with `key`.
X509Ptr MakeCert(EVP_PKEY* key, const std::string& cn, const std::vector<std::string>& names,
                 bool is_ca, X509* issuer, EVP_PKEY* issuer_key, long from_days, long to_days) {
  X509Ptr cert(X509_new());
  if (!cert) Fail("X509_new");
  X509_set_version(cert.get(), 2);  // v3
  SetRandomSerial(cert.get());
  if (X509_time_adj_ex(X509_getm_notBefore(cert.get()), static_cast<int>(from_days), 0, nullptr) ==
          nullptr ||
      X509_time_adj_ex(X509_getm_notAfter(cert.get()), static_cast<int>(to_days), 0, nullptr) ==
          nullptr) {
    Fail("X509_time_adj_ex");
  }
  SetName(X509_get_subject_name(cert.get()), cn);
  X509* signer = issuer != nullptr ? issuer : cert.get();
  EVP_PKEY* signer_key = issuer_key != nullptr ? issuer_key : key;
  if (X509_set_issuer_name(cert.get(), X509_get_subject_name(signer)) != 1) Fail("set_issuer");
  if (X509_set_pubkey(cert.get(), key) != 1) Fail("X509_set_pubkey");

  if (is_ca) {
    AddExt(cert.get(), signer, NID_basic_constraints, "critical,CA:TRUE");
    AddExt(cert.get(), signer, NID_key_usage, "critical,keyCertSign,cRLSign");
    AddExt(cert.get(), signer, NID_subject_key_identifier, "hash");
  } else {
    AddExt(cert.get(), signer, NID_basic_constraints, "critical,CA:FALSE");
    AddExt(cert.get(), signer, NID_key_usage, "critical,digitalSignature,keyAgreement");
    AddExt(cert.get(), signer, NID_ext_key_usage, "serverAuth,clientAuth");
    AddExt(cert.get(), signer, NID_subject_key_identifier, "hash");
    if (issuer != nullptr) {
      AddExt(cert.get(), signer, NID_authority_key_identifier, "keyid:always");
    }
    std::string san;
    for (const auto& n : names) {
      if (n.empty()) continue;
      if (!san.empty()) san += ",";
      san += (IsIpLiteral(n) ? "IP:" : "DNS:") + n;
    }
    if (!san.empty()) AddExt(cert.get(), signer, NID_subject_alt_name, san);
  }
  if (X509_sign(cert.get(), signer_key, EVP_sha256()) == 0) Fail("X509_sign");
  return cert;
}

}  // namespace

CertKit::CertKit(const std::string& dir) : dir_(dir) {
  while (dir_.size() > 1 && dir_.back() == '/') dir_.pop_back();
  MkdirP(dir_);
  PkeyPtr key = NewKey();
  X509Ptr cert = MakeCert(key.get(), "Lab CA", {}, true, nullptr, nullptr, -2, 3650);
  ca_.cert_pem = CertPem(cert.get());
  ca_.key_pem = KeyPem(key.get());
  WriteFile(dir_ + "/ca.crt", ca_.cert_pem, 0644);
  WriteFile(dir_ + "/ca.key", ca_.key_pem, 0600);
  ca_key_ = key.release();
  ca_cert_ = cert.release();
}

CertKit::~CertKit() {
  EVP_PKEY_free(ca_key_);
  X509_free(ca_cert_);
}

Pem CertKit::Ca() const { return ca_; }

std::string CertKit::ca_file() const { return dir_ + "/ca.crt"; }

Pem CertKit::Leaf(const std::vector<std::string>& names, int valid_from_days, int valid_to_days) {
  PkeyPtr key = NewKey();
  X509Ptr cert = MakeCert(key.get(), names.empty() ? std::string() : names.front(), names, false,
                          ca_cert_, ca_key_, valid_from_days, valid_to_days);
  return Pem{CertPem(cert.get()), KeyPem(key.get())};
}

Pem CertKit::SelfSigned(const std::vector<std::string>& names) {
  PkeyPtr key = NewKey();
  X509Ptr cert = MakeCert(key.get(), names.empty() ? std::string() : names.front(), names, false,
                          nullptr, nullptr, -1, 365);
  return Pem{CertPem(cert.get()), KeyPem(key.get())};
}

Pem CertKit::Expired(const std::vector<std::string>& names) { return Leaf(names, -30, -1); }

std::string CertKit::WriteFiles(const Pem& p, const std::string& stem) {
  std::string base = dir_ + "/" + stem;
  WriteFile(base + ".crt", p.cert_pem, 0644);
  WriteFile(base + ".key", p.key_pem, 0600);
  return base;
}

}  // namespace rasad::testing
