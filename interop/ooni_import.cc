#include "interop/ooni_import.h"

#include <arpa/inet.h>
#include <openssl/bio.h>
#include <openssl/evp.h>
#include <openssl/x509.h>
#include <sqlite3.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <ctime>
#include <fstream>
#include <iostream>
#include <map>
#include <memory>
#include <optional>
#include <regex>
#include <set>
#include <sstream>

#include "control/th_client.h"
#include "control/th_protocol.h"
#include "probe/config/targets.h"
#include "probe/core/encoding.h"
#include "probe/measure/endpoint_job.h"
#include "probe/store/store.h"

namespace rasad {

namespace {

using json = nlohmann::json;

// The engine keeps the first body_store bytes (Config default) and takes the
// <title> from them; imported bodies get the same treatment.
constexpr size_t kBodyStore = 4 * 1024;

// ---------------------------------------------------------------- encoding

std::string Hex(const unsigned char* p, size_t n) {
  static const char* kDigits = "0123456789abcdef";
  std::string s;
  s.reserve(2 * n);
  for (size_t i = 0; i < n; ++i) {
    s += kDigits[p[i] >> 4];
    s += kDigits[p[i] & 15];
  }
  return s;
}

std::string Sha256Hex(const std::string& in) {
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  EVP_Digest(in.data(), in.size(), md, &len, EVP_sha256(), nullptr);
  return Hex(md, len);
}

// A uid in the store's format (32 hex digits, the first 12 the time in ms)
// derived from a seed instead of random: re-importing gives the same uids.
std::string DerivedUid(int64_t micros, const std::string& seed) {
  char buf[16];
  uint64_t ms = static_cast<uint64_t>(std::max<int64_t>(micros, 0) / 1000);
  snprintf(buf, sizeof buf, "%012llx", static_cast<unsigned long long>(ms & 0xffffffffffffULL));
  return std::string(buf) + Sha256Hex(seed).substr(0, 20);
}

// ---------------------------------------------------------------- JSON access

std::string Str(const json& j, const char* key) {
  if (!j.is_object()) return "";
  auto it = j.find(key);
  return it != j.end() && it->is_string() ? it->get<std::string>() : "";
}

std::optional<double> Num(const json& j, const char* key) {
  if (!j.is_object()) return std::nullopt;
  auto it = j.find(key);
  if (it == j.end() || !it->is_number()) return std::nullopt;
  return it->get<double>();
}

const json& Member(const json& j, const char* key) {
  static const json kNull;
  if (!j.is_object()) return kNull;
  auto it = j.find(key);
  return it == j.end() ? kNull : *it;
}

// OONI failure: a string, or null for success.
std::optional<std::string> Failure(const json& v) {
  if (v.is_null()) return std::nullopt;
  if (v.is_string()) return v.get<std::string>();
  return v.dump();
}

// A string or OONI BinaryData {"format": "base64", "data": ...}.
bool MaybeBinary(const json& v, std::string* out) {
  out->clear();
  if (v.is_string()) {
    *out = v.get<std::string>();
    return true;
  }
  if (v.is_object() && Str(v, "format") == "base64") return Base64Decode(Str(v, "data"), out);
  return false;
}

// ---------------------------------------------------------------- addresses, times

bool IsIp(const std::string& s) {
  unsigned char buf[16];
  return inet_pton(AF_INET, s.c_str(), buf) == 1 || inet_pton(AF_INET6, s.c_str(), buf) == 1;
}

// "1.2.3.4:443" or "[2001:db8::1]:443".
bool SplitHostPort(const std::string& s, std::string* host, int* port) {
  size_t colon = s.rfind(':');
  if (colon == std::string::npos || colon + 1 >= s.size()) return false;
  std::string h = s.substr(0, colon), p = s.substr(colon + 1);
  if (!std::all_of(p.begin(), p.end(),
                   [](char c) { return isdigit(static_cast<unsigned char>(c)); }))
    return false;
  if (h.size() >= 2 && h.front() == '[' && h.back() == ']') h = h.substr(1, h.size() - 2);
  if (h.empty() || (h.find(':') != std::string::npos && !IsIp(h))) return false;
  *host = h;
  *port = std::atoi(p.c_str());
  return true;
}

std::string JoinHostPort(const std::string& host, int port) {
  return (host.find(':') != std::string::npos ? "[" + host + "]" : host) + ":" +
         std::to_string(port);
}

struct Url {
  std::string scheme, host;
  int port = 0;
  bool ok = false;
};

Url ParseUrl(const std::string& url) {
  Url u;
  size_t sep = url.find("://");
  if (sep == std::string::npos) return u;
  u.scheme = url.substr(0, sep);
  std::transform(u.scheme.begin(), u.scheme.end(), u.scheme.begin(),
                 [](unsigned char c) { return static_cast<char>(tolower(c)); });
  std::string rest = url.substr(sep + 3);
  std::string authority = rest.substr(0, rest.find_first_of("/?#"));
  size_t at = authority.rfind('@');
  if (at != std::string::npos) authority = authority.substr(at + 1);
  int port = 0;
  std::string host;
  if (!authority.empty() && authority.front() == '[') {
    size_t close = authority.find(']');
    if (close == std::string::npos) return u;
    host = authority.substr(1, close - 1);
    if (close + 1 < authority.size() && authority[close + 1] == ':')
      port = std::atoi(authority.c_str() + close + 2);
  } else {
    size_t colon = authority.rfind(':');
    host = authority.substr(0, colon);
    if (colon != std::string::npos) port = std::atoi(authority.c_str() + colon + 1);
  }
  if (port == 0) port = u.scheme == "https" ? 443 : 80;
  u.host = host;
  u.port = port;
  u.ok = !host.empty();
  return u;
}

// "YYYY-MM-DD HH:MM:SS" (df-000) or "YYYY-MM-DDTHH:MM:SSZ" (API), UTC.
bool ParseOoniTime(const std::string& s, int64_t* micros) {
  int y, mo, d, h, mi, sec;
  char sep;
  if (sscanf(s.c_str(), "%4d-%2d-%2d%c%2d:%2d:%2d", &y, &mo, &d, &sep, &h, &mi, &sec) != 7)
    return false;
  if (sep != ' ' && sep != 'T') return false;
  tm t{};
  t.tm_year = y - 1900;
  t.tm_mon = mo - 1;
  t.tm_mday = d;
  t.tm_hour = h;
  t.tm_min = mi;
  t.tm_sec = sec;
  time_t secs = timegm(&t);
  if (secs == static_cast<time_t>(-1)) return false;
  *micros = static_cast<int64_t>(secs) * 1000000;
  return true;
}

// ---------------------------------------------------------------- the converter

int InferredRcode(const std::optional<std::string>& failure) {
  if (!failure || *failure == "dns_no_answer") return 0;
  if (*failure == "dns_nxdomain_error") return 3;
  if (*failure == "dns_servfail_error") return 2;
  if (*failure == "dns_refused_error") return 5;
  return -1;
}

const char* RcodeName(int rcode) {
  switch (rcode) {
    case 0:
      return "NOERROR";
    case 1:
      return "FORMERR";
    case 2:
      return "SERVFAIL";
    case 3:
      return "NXDOMAIN";
    case 4:
      return "NOTIMP";
    case 5:
      return "REFUSED";
    default:
      return "";
  }
}

json CertificateJson(const std::string& der, const std::string& der_b64_in) {
  json c = json::object();
  const unsigned char* p = reinterpret_cast<const unsigned char*>(der.data());
  X509* x = d2i_X509(nullptr, &p, static_cast<long>(der.size()));
  auto name_text = [](const X509_NAME* name) {
    BIO* bio = BIO_new(BIO_s_mem());
    X509_NAME_print_ex(bio, name, 0, XN_FLAG_RFC2253);
    char* data = nullptr;
    long len = BIO_get_mem_data(bio, &data);
    std::string s(data, static_cast<size_t>(len));
    BIO_free(bio);
    return s;
  };
  auto time_text = [](const ASN1_TIME* t) -> std::string {
    tm out{};
    if (!t || ASN1_TIME_to_tm(t, &out) != 1) return "";
    char buf[32];
    strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &out);
    return buf;
  };
  if (x) {
    c["subject"] = name_text(X509_get_subject_name(x));
    c["issuer"] = name_text(X509_get_issuer_name(x));
    c["not_before"] = time_text(X509_get0_notBefore(x));
    c["not_after"] = time_text(X509_get0_notAfter(x));
    X509_free(x);
  } else {
    c["parse_error"] = true;  // kept as bytes; subject/issuer unknown
  }
  c["sha256"] = Sha256Hex(der);
  c["der_b64"] = der.empty() ? der_b64_in : Base64Encode(der);
  return c;
}

struct FlowBuild {
  std::string key;
  std::string scope;
  int64_t t_first = 0;
  std::vector<Observation> tcp, tls, http;
  bool Ok(const std::vector<Observation>& v) const {
    return !v.empty() && std::none_of(v.begin(), v.end(),
                                      [](const Observation& o) { return o.failure.has_value(); });
  }
  bool ConnectedOk() const { return Ok(tcp) && (tls.empty() || Ok(tls)); }
};

class Converter {
 public:
  Converter(int64_t base, std::vector<std::string>* notes) : base_(base), notes_(notes) {}

  void AddArrays(const json& tk, const std::string& scope) {
    int i = 0;
    for (const json& q : Arrayish(tk, "queries")) AddQuery(q, scope, i++, false);
    for (const json& q : Arrayish(tk, "x_dns_duplicate_responses")) AddQuery(q, scope, i++, true);
    i = 0;
    for (const json& e : Arrayish(tk, "tcp_connect")) AddTcp(e, scope, i++);
    i = 0;
    for (const json& e : Arrayish(tk, "tls_handshakes")) AddTls(e, scope, i++);
    // requests[] is newest first: import in chronological order.
    std::vector<const json*> reqs;
    for (const json& e : Arrayish(tk, "requests")) reqs.push_back(&e);
    bool all_timed = std::all_of(reqs.begin(), reqs.end(),
                                 [](const json* e) { return Num(*e, "t").has_value(); });
    if (all_timed)
      std::stable_sort(reqs.begin(), reqs.end(),
                       [](const json* a, const json* b) { return *Num(*a, "t") < *Num(*b, "t"); });
    else
      std::reverse(reqs.begin(), reqs.end());
    i = 0;
    for (const json* e : reqs) AddRequest(*e, scope, i++);
  }

  // Orders and numbers the observations; fills in hostnames and addresses.
  void Finish(const std::string& measurement_uid, std::vector<Observation>* out) {
    for (auto& f : flows_) {
      std::string host, remote;
      int port = 0;
      for (auto* v : {&f->tls, &f->http})
        for (const Observation& o : *v)
          if (host.empty() && !o.hostname.empty()) host = o.hostname;
      for (const Observation& o : f->tcp)
        if (remote.empty()) remote = o.remote_addr, port = o.remote_port;
      if (host.empty() && !remote.empty()) host = ReverseDns(remote);
      if (host.empty()) host = remote;
      std::string flow_uid = DerivedUid(f->t_first, measurement_uid + "/flow/" + f->key);
      for (auto* v : {&f->tcp, &f->tls, &f->http}) {
        for (Observation& o : *v) {
          o.flow_uid = flow_uid;
          if (o.hostname.empty()) o.hostname = host;
          if (o.remote_addr.empty() && !remote.empty()) {
            o.remote_addr = remote;
            o.remote_port = port;
          }
        }
      }
    }
    out->clear();
    for (Observation& o : dns_) out->push_back(std::move(o));
    for (auto& f : flows_)
      for (auto* v : {&f->tcp, &f->tls, &f->http})
        for (Observation& o : *v) out->push_back(std::move(o));
    for (size_t i = 0; i < out->size(); ++i) {
      Observation& o = (*out)[i];
      o.uid = DerivedUid(o.t_start, measurement_uid + "/obs/" + std::to_string(i));
      if (o.flow_uid.empty())
        o.flow_uid = DerivedUid(o.t_start, measurement_uid + "/dnsflow/" + std::to_string(i));
    }
  }

  const std::vector<std::string>& resolvers() const { return resolvers_; }

 private:
  static const json& Arrayish(const json& tk, const char* key) {
    static const json kEmpty = json::array();
    const json& v = Member(tk, key);
    return v.is_array() ? v : kEmpty;
  }

  void Times(const json& e, int64_t* t0, int64_t* t1) const {
    std::optional<double> a = Num(e, "t0"), b = Num(e, "t");
    if (!a) a = Num(e, "started");  // tor's legacy tcp_connect
    if (!b) b = a;
    if (!a) a = b;
    *t0 = a ? base_ + std::llround(*a * 1e6) : base_;
    *t1 = b ? base_ + std::llround(*b * 1e6) : *t0;
    if (*t1 < *t0) *t1 = *t0;
  }

  // OONI's tags (depth=N, fetch_body=..., classic, tcptls_experiment) kept
  // on the observation: the classifier can tell redirects and LTE's
  // address-validation handshakes apart.
  static void Tags(const json& e, Observation* o) {
    const json& tags = Member(e, "tags");
    if (tags.is_array() && !tags.empty()) o->details["ooni_tags"] = tags;
  }

  static std::string TxKey(const json& e, const std::string& scope) {
    const json& tx = Member(e, "transaction_id");
    if (tx.is_number_integer() || tx.is_string())
      return scope + "tx:" + (tx.is_string() ? tx.get<std::string>() : tx.dump());
    return "";
  }

  FlowBuild* GetFlow(const std::string& key, const std::string& scope, int64_t t) {
    auto it = by_key_.find(key);
    if (it != by_key_.end()) {
      it->second->t_first = std::min(it->second->t_first, t);
      return it->second;
    }
    flows_.push_back(std::make_unique<FlowBuild>());
    FlowBuild* f = flows_.back().get();
    f->key = key;
    f->scope = scope;
    f->t_first = t;
    by_key_[key] = f;
    return f;
  }

  static bool Answered(const Observation& dns, const std::string& ip) {
    auto it = dns.details.find("answers");
    if (it == dns.details.end() || !it->is_array()) return false;
    for (const json& a : *it)
      if (a.is_object() && a.value("value", "") == ip) return true;
    return false;
  }

  std::string ReverseDns(const std::string& ip) const {
    for (const Observation& o : dns_)
      if (Answered(o, ip)) return o.hostname;
    return "";
  }

  void AddQuery(const json& q, const std::string& scope, int index, bool duplicate) {
    if (!q.is_object()) return;
    Observation o;
    o.step = Step::kDns;
    o.hostname = Str(q, "hostname");
    o.query_type = Str(q, "query_type");
    std::string resolver = Str(q, "resolver_address");
    if (resolver.empty() && !Str(q, "resolver_hostname").empty()) {
      resolver = Str(q, "resolver_hostname");
      if (auto port = Num(q, "resolver_port"))
        resolver = JoinHostPort(resolver, int(*port));
      else if (!Str(q, "resolver_port").empty())
        resolver += ":" + Str(q, "resolver_port");
    }
    o.resolver = resolver;
    std::string engine = Str(q, "engine");
    o.transport = engine;  // udp, tcp; else OONI's engine name (getaddrinfo, system, doh, dot)
    if (!resolver.empty() &&
        std::find(resolvers_.begin(), resolvers_.end(), resolver) == resolvers_.end())
      resolvers_.push_back(resolver);
    std::string host;
    int port = 0;
    if (SplitHostPort(resolver, &host, &port) && IsIp(host)) {
      o.remote_addr = host;
      o.remote_port = port;
    }
    Tags(q, &o);
    Times(q, &o.t_start, &o.t_end);
    o.failure = Failure(Member(q, "failure"));
    json& d = o.details;
    json answers = json::array(), cnames = json::array();
    for (const json& a : Arrayish(q, "answers")) {
      std::string type = Str(a, "answer_type");
      if (type == "A" || type == "AAAA") {
        json ans = {{"type", type}, {"value", Str(a, type == "A" ? "ipv4" : "ipv6")}};
        if (auto ttl = Num(a, "ttl")) ans["ttl"] = static_cast<int64_t>(*ttl);
        if (auto asn = Num(a, "asn"); asn && *asn > 0) ans["asn"] = static_cast<int64_t>(*asn);
        answers.push_back(ans);
      } else if (type == "CNAME") {
        cnames.push_back(Str(a, "hostname"));
      }
    }
    int rcode;
    if (auto rc = Num(q, "rcode")) {
      rcode = static_cast<int>(*rc);
    } else {
      rcode = InferredRcode(o.failure);
      d["rcode_inferred"] = true;  // OONI did not record it: derived from the failure string
    }
    d["rcode"] = rcode;
    if (*RcodeName(rcode)) d["rcode_name"] = RcodeName(rcode);
    d["answers"] = answers;
    if (!cnames.empty()) d["cnames"] = cnames;
    if (!engine.empty()) d["engine"] = engine;
    if (auto gai = Num(q, "getaddrinfo_error"); gai && *gai != 0)
      d["getaddrinfo_error"] = static_cast<int64_t>(*gai);
    if (duplicate) d["duplicate_response"] = true;
    std::string raw_b64 = Str(q, "raw_response");
    if (!raw_b64.empty()) {
      std::string raw;
      if (Base64Decode(raw_b64, &raw)) {
        o.raw = raw;
        o.bytes_received = static_cast<int64_t>(raw.size());
      } else {
        Note("queries[" + std::to_string(index) + "]: raw_response is not valid base64 (dropped)");
      }
    }
    (void)scope;
    dns_.push_back(std::move(o));
  }

  void AddTcp(const json& e, const std::string& scope, int index) {
    if (!e.is_object()) return;
    Observation o;
    o.step = Step::kTcp;
    o.transport = "tcp";
    o.remote_addr = Str(e, "ip");
    if (auto p = Num(e, "port")) o.remote_port = static_cast<int>(*p);
    Tags(e, &o);
    Times(e, &o.t_start, &o.t_end);
    const json& status = Member(e, "status");
    o.failure = Failure(Member(status, "failure"));
    const json& success = Member(status, "success");
    if (!o.failure && success.is_boolean() && !success.get<bool>())
      o.failure = "unknown_failure: connect failed without a failure string";
    std::string key = TxKey(e, scope);
    if (key.empty())
      key =
          scope + "tcp#" + std::to_string(index) + ":" + JoinHostPort(o.remote_addr, o.remote_port);
    GetFlow(key, scope, o.t_start)->tcp.push_back(std::move(o));
  }

  // A flow of this scope for a step without a transaction id: the latest one
  // whose earlier steps succeeded, that `match` accepts and that does not yet
  // have that step.
  template <typename Match>
  FlowBuild* Claim(const std::string& scope, int64_t t, Match match) {
    // Prefer flows that started no later than the step; among those the latest.
    FlowBuild* best = nullptr;
    bool best_before = false;
    for (auto& f : flows_) {
      if (f->scope != scope || !match(*f)) continue;
      bool before = f->t_first <= t;
      if (!best || (before && !best_before) ||
          (before == best_before && f->t_first >= best->t_first)) {
        best = f.get();
        best_before = before;
      }
    }
    return best;
  }

  void AddTls(const json& e, const std::string& scope, int index) {
    if (!e.is_object()) return;
    Observation o;
    o.step = Step::kTls;
    o.transport = Str(e, "network").empty() ? "tcp" : Str(e, "network");
    std::string host;
    int port = 0;
    if (SplitHostPort(Str(e, "address"), &host, &port)) {
      o.remote_addr = host;
      o.remote_port = port;
    }
    o.hostname = Str(e, "server_name");
    Tags(e, &o);
    Times(e, &o.t_start, &o.t_end);
    o.failure = Failure(Member(e, "failure"));
    json& d = o.details;
    d["version"] = Str(e, "tls_version");
    d["cipher"] = Str(e, "cipher_suite");
    d["alpn"] = Str(e, "negotiated_protocol");
    d["sni"] = o.hostname;
    json chain = json::array();
    for (const json& c : Arrayish(e, "peer_certificates")) {
      std::string der;
      if (!MaybeBinary(c, &der) || der.empty()) {
        Note("tls_handshakes[" + std::to_string(index) +
             "]: a peer certificate is not base64 (dropped)");
        continue;
      }
      chain.push_back(CertificateJson(der, ""));
    }
    d["chain"] = chain;
    bool no_verify =
        Member(e, "no_tls_verify").is_boolean() && Member(e, "no_tls_verify").get<bool>();
    if (no_verify) d["no_tls_verify"] = true;
    // Trust as judged by OONI's probe (Mozilla CA bundle, pinned CAs for
    // Signal), not re-verified here.
    if (!o.failure && !no_verify) {
      d["trusted"] = true;
      d["hostname_ok"] = true;
    } else if (o.failure &&
               (*o.failure == "ssl_unknown_authority" || *o.failure == "ssl_invalid_certificate")) {
      d["trusted"] = false;
    } else if (o.failure && *o.failure == "ssl_invalid_hostname") {
      d["hostname_ok"] = false;
      d["names_missing"] = json::array({o.hostname});
    }
    d["verify_source"] = "ooni";
    std::string key = TxKey(e, scope);
    FlowBuild* f = nullptr;
    if (!key.empty()) {
      f = GetFlow(key, scope, o.t_start);
    } else {
      const std::string addr = o.remote_addr;
      const int p = o.remote_port;
      const std::string sni = o.hostname;
      f = Claim(scope, o.t_start, [&](const FlowBuild& fb) {
        if (!fb.tls.empty() || !fb.http.empty() || !fb.Ok(fb.tcp)) return false;
        const Observation& tcp = fb.tcp.front();
        if (!addr.empty()) return tcp.remote_addr == addr && tcp.remote_port == p;
        // No address (urlgetter-based IM tests): the connection to an address
        // the SNI resolved to.
        if (tcp.remote_addr == sni) return true;
        for (const Observation& q : dns_)
          if (q.hostname == sni && Answered(q, tcp.remote_addr)) return true;
        return false;
      });
      if (!f) f = GetFlow(scope + "tls#" + std::to_string(index), scope, o.t_start);
    }
    f->tls.push_back(std::move(o));
  }

  void AddRequest(const json& e, const std::string& scope, int index) {
    if (!e.is_object()) return;
    const json& req = Member(e, "request");
    const json& resp = Member(e, "response");
    Observation o;
    o.step = Step::kHttp;
    o.transport = Str(e, "network").empty() ? "tcp" : Str(e, "network");
    std::string host;
    int port = 0;
    if (SplitHostPort(Str(e, "address"), &host, &port)) {
      o.remote_addr = host;
      o.remote_port = port;
    }
    Tags(e, &o);
    Times(e, &o.t_start, &o.t_end);
    o.failure = Failure(Member(e, "failure"));
    json& d = o.details;
    std::string url = Str(req, "url");
    // Host header (request headers_list, else headers).
    std::string host_header;
    for (const json& h : Arrayish(req, "headers_list"))
      if (h.is_array() && h.size() == 2 && h[0].is_string()) {
        std::string name = h[0].get<std::string>();
        std::transform(name.begin(), name.end(), name.begin(),
                       [](unsigned char c) { return static_cast<char>(tolower(c)); });
        std::string v;
        if (name == "host" && MaybeBinary(h[1], &v)) host_header = v;
      }
    if (host_header.empty() && Member(req, "headers").is_object())
      for (auto& [k, v] : Member(req, "headers").items()) {
        std::string name = k, val;
        std::transform(name.begin(), name.end(), name.begin(),
                       [](unsigned char c) { return static_cast<char>(tolower(c)); });
        if (name == "host" && MaybeBinary(v, &val)) host_header = val;
      }
    if (url.empty() && !host_header.empty()) {
      url = "http://" + host_header + "/";
      d["url_inferred"] = true;  // legacy entry without request.url: from the Host header
    }
    Url u = ParseUrl(url);
    if (!url.empty()) d["url"] = url;
    std::string method = Str(req, "method");
    if (!method.empty()) d["method"] = method;
    o.hostname = host_header.empty() ? u.host : host_header;
    {
      std::string h;
      int p = 0;
      if (!host_header.empty() && SplitHostPort(host_header, &h, &p)) o.hostname = h;
    }
    int code = 0;
    if (auto c = Num(resp, "code")) code = static_cast<int>(*c);
    if (code > 0) {
      d["status"] = code;
      std::string line = Str(resp, "response_line");
      if (!line.empty()) d["status_line"] = line;
      std::string alpn = Str(e, "alpn");
      if (line.rfind("HTTP/", 0) == 0)
        d["http_version"] = line.substr(5, line.find(' ') - 5);
      else if (alpn == "h2")
        d["http_version"] = "2";
      else if (alpn == "h3")
        d["http_version"] = "3";
      else if (alpn == "http/1.1")
        d["http_version"] = "1.1";
      json hl = json::array();
      if (Member(resp, "headers_list").is_array()) {
        for (const json& h : Member(resp, "headers_list")) {
          std::string v;
          if (h.is_array() && h.size() == 2 && h[0].is_string() && MaybeBinary(h[1], &v))
            hl.push_back({h[0].get<std::string>(), v});
        }
      } else if (Member(resp, "headers").is_object()) {
        // Older formats: a map of first values (order lost).
        for (auto& [k, v] : Member(resp, "headers").items()) {
          std::string val;
          if (v.is_array()) {
            for (const json& one : v)
              if (MaybeBinary(one, &val)) hl.push_back({k, val});
          } else if (MaybeBinary(v, &val)) {
            hl.push_back({k, val});
          }
        }
      }
      d["headers_list"] = hl;
      std::string body;
      const json& b = Member(resp, "body");
      if (!b.is_null() && !MaybeBinary(b, &body))
        Note("requests[" + std::to_string(index) +
             "]: response body in an unknown format (dropped)");
      d["body_length"] = static_cast<int64_t>(body.size());
      d["body_sha256"] = Sha256Hex(body);
      d["body_truncated"] = Member(resp, "body_is_truncated").is_boolean() &&
                            Member(resp, "body_is_truncated").get<bool>();
      std::string prefix = body.substr(0, kBodyStore);
      d["title"] = HtmlTitle(prefix);
      d["body_prefix_b64"] = Base64Encode(prefix);
    }
    std::string key = TxKey(e, scope);
    FlowBuild* f = nullptr;
    if (!key.empty()) {
      f = GetFlow(key, scope, o.t_start);
    } else {
      // Legacy entries: the connection this request most likely used.
      const std::string addr = o.remote_addr;
      const int aport = o.remote_port;
      auto same_conn = [&](const FlowBuild& fb) {
        if (!fb.http.empty() || fb.tcp.empty()) return false;
        const Observation& tcp = fb.tcp.front();
        if (!addr.empty()) return tcp.remote_addr == addr && tcp.remote_port == aport;
        if (!u.ok || tcp.remote_port != u.port) return false;
        if ((u.scheme == "https") != !fb.tls.empty()) return false;
        if (tcp.remote_addr == u.host) return true;
        if (!fb.tls.empty() && fb.tls.front().hostname == u.host) return true;
        for (const Observation& q : dns_)
          if (q.hostname == u.host && Answered(q, tcp.remote_addr)) return true;
        return false;
      };
      f = Claim(scope, o.t_start,
                [&](const FlowBuild& fb) { return fb.ConnectedOk() && same_conn(fb); });
      if (!f && o.failure && code <= 0) {
        // The round trip failed where its connection already failed (urlgetter
        // reports the TLS or connect failure again on the request): the engine
        // records no http step after a failed one, so neither does the import.
        FlowBuild* failed = Claim(scope, o.t_start, [&](const FlowBuild& fb) {
          if (!same_conn(fb)) return false;
          const Observation* last = fb.tls.empty() ? &fb.tcp.front() : &fb.tls.front();
          return last->failure == o.failure;
        });
        if (failed) {
          Observation& last = failed->tls.empty() ? failed->tcp.front() : failed->tls.front();
          if (!url.empty()) last.details["request_url"] = url;
          return;
        }
      }
      if (!f) f = GetFlow(scope + "http#" + std::to_string(index), scope, o.t_start);
    }
    f->http.push_back(std::move(o));
  }

  void Note(const std::string& s) { notes_->push_back(s); }

  int64_t base_;
  std::vector<std::string>* notes_;
  std::vector<Observation> dns_;
  std::vector<std::unique_ptr<FlowBuild>> flows_;
  std::map<std::string, FlowBuild*> by_key_;
  std::vector<std::string> resolvers_;
};

// test_keys entries that are raw data (mapped to observations, or dropped),
// not OONI's verdict.
const std::set<std::string>& RawKeys() {
  static const std::set<std::string> k = {"queries",
                                          "tcp_connect",
                                          "tls_handshakes",
                                          "requests",
                                          "network_events",
                                          "x_dns_duplicate_responses",
                                          "control",
                                          "x_control_request",
                                          "x_conn_priority_log",
                                          "x_dns_whoami",
                                          "x_doh",
                                          "x_do53",
                                          "client_resolver",
                                          "agent",
                                          "socksproxy",
                                          "retries",
                                          "targets",
                                          "tunnel",
                                          "bootstrap_time",
                                          "tor_log",
                                          "tor_progress_summary"};
  return k;
}

std::string ReplaceAll(std::string s, const std::string& from, const std::string& to) {
  if (from.empty()) return s;
  size_t pos = 0;
  while ((pos = s.find(from, pos)) != std::string::npos) {
    s.replace(pos, from.size(), to);
    pos += to.size();
  }
  return s;
}

// The test helper's response (test_keys.control) as a measurement of its own
// on network control-ooni: observations from ThResponseToObservations, made
// deterministic (uids derived from the probe measurement's, times = its start,
// since the helper reports none). Summary: SummariseMeasurement over DNS, TCP
// and TLS; then the helper's HTTP GET decides: success -> reached http;
// failure -> failed at http unless an earlier step already failed.
Measurement ControlMeasurement(const Measurement& probe, const THResponse& resp,
                               const std::string& url) {
  Measurement c;
  c.uid = DerivedUid(probe.t_start, probe.uid + "/control-ooni");
  c.cycle_uid = probe.cycle_uid;
  c.network = kOoniControlNetwork;
  c.target = probe.target;
  c.target_version = probe.target_version;
  c.endpoint = probe.endpoint;
  c.control = false;  // not a canary
  c.t_start = probe.t_start;
  c.t_end = probe.t_start;
  c.observations = ThResponseToObservations(resp, url);
  std::map<std::string, std::string> flows;
  for (size_t i = 0; i < c.observations.size(); ++i) {
    Observation& o = c.observations[i];
    o.uid = DerivedUid(c.t_start, c.uid + "/obs/" + std::to_string(i));
    auto it = flows.find(o.flow_uid);
    if (it == flows.end())
      it = flows.emplace(o.flow_uid, DerivedUid(c.t_start, c.uid + "/flow/" + std::to_string(i)))
               .first;
    o.flow_uid = it->second;
    o.t_start = o.t_end = c.t_start;
  }
  Url u = ParseUrl(url);
  Endpoint ep;
  ep.name = c.endpoint;
  if (u.ok) ep.hosts.push_back(u.host);
  ep.last_step = Step::kHttp;
  ep.tls = u.scheme == "https";
  Measurement lower = c;
  lower.observations.clear();
  const Observation* http = nullptr;
  for (const Observation& o : c.observations) {
    if (o.step == Step::kHttp)
      http = &o;
    else
      lower.observations.push_back(o);
  }
  SummariseMeasurement(ep, &lower);
  c.furthest_step = lower.furthest_step;
  c.failed_step = lower.failed_step;
  c.failure = lower.failure;
  c.probe_error = lower.probe_error;
  if (http && !http->failure) {
    c.furthest_step = Step::kHttp;
    c.failed_step.reset();
    c.failure.reset();
    c.probe_error.clear();
  } else if (http && !c.failure) {
    c.failed_step = Step::kHttp;
    c.failure = http->failure;
  }
  return c;
}

}  // namespace

// ============================================================== parsing

Status ParseOoniMeasurement(const json& in, OoniMeasurement* out) {
  *out = OoniMeasurement();
  if (!in.is_object()) return Status::Invalid("not a JSON object");
  // API wrapper (api.ooni.io measurement_meta with full=true).
  if (in.contains("raw_measurement")) {
    const json& raw = in["raw_measurement"];
    if (raw.is_string()) {
      json parsed = json::parse(raw.get<std::string>(), nullptr, false);
      if (parsed.is_discarded()) return Status::Invalid("raw_measurement is not valid JSON");
      return ParseOoniMeasurement(parsed, out);
    }
    if (raw.is_object()) return ParseOoniMeasurement(raw, out);
    return Status::Invalid("raw_measurement is empty (API metadata without the measurement)");
  }
  if (!in.contains("test_keys")) {
    if (in.contains("queries") || in.contains("requests") || in.contains("tcp_connect"))
      return Status::Invalid(
          "test_keys only, without the df-000 base keys (test_name, measurement_start_time, "
          "probe_asn): cannot attribute it to a network or time");
    if (in.contains("results") && in.contains("metadata"))
      return Status::Invalid("an OONI API measurement list (metadata only, no raw measurements)");
    return Status::Invalid("not an OONI measurement (no test_keys)");
  }
  // Volunteer safety: probe_ip is never stored; a real one is scrubbed from
  // every string (OONI's probes already write 127.0.0.1).
  json j = in;
  std::string probe_ip = Str(j, "probe_ip");
  j.erase("probe_ip");
  if (!probe_ip.empty() && probe_ip != "127.0.0.1" && IsIp(probe_ip)) {
    std::string text = j.dump(-1, ' ', false, json::error_handler_t::replace);
    if (text.find(probe_ip) != std::string::npos) {
      j = json::parse(ReplaceAll(text, probe_ip, "[scrubbed]"), nullptr, false);
      if (j.is_discarded()) return Status::Invalid("cannot scrub probe_ip");
    }
  }

  const json& tk = j["test_keys"];
  if (!tk.is_object()) return Status::Invalid("test_keys is not an object");
  out->test_name = Str(j, "test_name");
  if (out->test_name.empty()) return Status::Invalid("no test_name");
  std::string test_version = Str(j, "test_version");
  out->measurement_start_time = Str(j, "measurement_start_time");
  int64_t base = 0;
  if (!ParseOoniTime(out->measurement_start_time, &base))
    return Status::Invalid("measurement_start_time missing or not \"YYYY-MM-DD HH:MM:SS\": \"" +
                           out->measurement_start_time + "\"");
  out->ooni_measurement_uid = Str(j, "measurement_uid");
  out->report_id = Str(j, "report_id");
  out->input = Str(j, "input");
  out->probe_cc = Str(j, "probe_cc");
  if (out->probe_cc.empty()) out->probe_cc = "ZZ";
  out->probe_asn = Str(j, "probe_asn");
  if (out->probe_asn.empty()) {
    if (auto n = Num(j, "probe_asn")) out->probe_asn = "AS" + std::to_string(int64_t(*n));
  }
  if (out->probe_asn.empty()) {
    out->probe_asn = "AS0";
    out->notes.push_back("no probe_asn: network ooni:AS0 (unknown)");
  }

  // Network.
  out->net.name = "ooni:" + out->probe_asn;
  out->net.operator_label = out->probe_cc + " " + out->probe_asn;
  if (out->probe_asn.size() > 2 && (out->probe_asn[0] == 'A' || out->probe_asn[0] == 'a'))
    out->net.asn = std::atoi(out->probe_asn.c_str() + 2);

  // Identity and uid.
  std::string seed;
  if (!out->report_id.empty())
    seed = std::string("ooni\x1f") + out->report_id + "\x1f" + out->input + "\x1f" +
           out->measurement_start_time + "\x1f" + out->test_name;
  else
    seed = "ooni-json\x1f" + j.dump(-1, ' ', false, json::error_handler_t::replace);
  Measurement& m = out->m;
  m.uid = DerivedUid(base, seed);
  m.network = out->net.name;
  m.target = "ooni";
  m.target_version = test_version.empty() ? out->test_name : out->test_name + " " + test_version;
  m.endpoint = out->input.empty() ? out->test_name : out->input;
  m.control = false;

  // Observations.
  Converter conv(base, &out->notes);
  conv.AddArrays(tk, "");
  if (tk.contains("targets") && tk["targets"].is_object())
    for (auto& [name, target] : tk["targets"].items())
      conv.AddArrays(target, "target:" + name + "/");
  conv.Finish(m.uid, &m.observations);
  out->net.resolvers = conv.resolvers();

  // Times.
  m.t_start = base;
  m.t_end = base;
  if (!m.observations.empty()) {
    m.t_start = m.observations.front().t_start;
    for (const Observation& o : m.observations) {
      m.t_start = std::min(m.t_start, o.t_start);
      m.t_end = std::max(m.t_end, o.t_end);
    }
  } else if (auto rt = Num(j, "test_runtime")) {
    m.t_end = base + std::llround(*rt * 1e6);
  }

  // Summary (same rules as the engine's).
  Endpoint ep;
  ep.name = m.endpoint;
  Url u = ParseUrl(out->input);
  if (u.ok) ep.hosts.push_back(u.host);
  bool any_dns = false;
  int last = 0;
  for (const Observation& o : m.observations) {
    last = std::max(last, static_cast<int>(o.step));
    if (o.step == Step::kDns) any_dns = true;
  }
  if (!any_dns)  // IM tests dialling IP literals (telegram DCs, tor)
    for (const Observation& o : m.observations)
      if (o.step == Step::kTcp && IsIp(o.remote_addr)) ep.hosts.push_back(o.remote_addr);
  ep.last_step = static_cast<Step>(last);
  ep.tls = u.ok ? u.scheme == "https" : true;
  // LTE also handshakes on 443 for http:// URLs only to validate addresses
  // (tag fetch_body=false): kept as observations, but they do not speak for
  // the endpoint, as no such flow exists in the engine for an http endpoint.
  auto validation_only = [](const Observation& o) {
    auto it = o.details.find("ooni_tags");
    if (it == o.details.end() || !it->is_array()) return false;
    for (const json& t : *it)
      if (t == "fetch_body=false") return true;
    return false;
  };
  Measurement fetching = m;
  fetching.observations.clear();
  for (const Observation& o : m.observations)
    if (!validation_only(o)) fetching.observations.push_back(o);
  SummariseMeasurement(ep, &fetching);
  m.furthest_step = fetching.furthest_step;
  m.failed_step = fetching.failed_step;
  m.failure = fetching.failure;
  m.probe_error = fetching.probe_error;
  // Legacy requests that joined no recorded connection form flows of their
  // own (no tcp step), which never "get furthest" in the summary: when the
  // input is a URL and no request got a response, the final request's
  // failure is the measurement's (as OONI's "final request failed").
  if (u.ok && !m.failure && m.probe_error.empty() &&
      (!m.furthest_step || *m.furthest_step < Step::kHttp)) {
    const Observation* last = nullptr;
    bool any_ok = false;
    for (const Observation& o : fetching.observations) {
      if (o.step != Step::kHttp) continue;
      if (!o.failure) any_ok = true;
      if (!last || o.t_end >= last->t_end) last = &o;
    }
    if (last && !any_ok && last->failure) {
      m.failed_step = Step::kHttp;
      m.failure = last->failure;
    }
  }

  // OONI's verdict and control.
  json& v = out->ooni_verdict;
  v = json::object();
  v["test_name"] = out->test_name;
  v["test_version"] = test_version;
  for (auto& [k, val] : tk.items())
    if (!RawKeys().count(k)) v[k] = val;
  if (tk.contains("targets") && tk["targets"].is_object()) {
    json targets = json::object();
    for (auto& [name, t] : tk["targets"].items()) {
      json s = json::object();
      for (const char* key :
           {"target_name", "target_protocol", "target_address", "failure", "summary"})
        if (t.is_object() && t.contains(key)) s[key] = t[key];
      targets[name] = s;
    }
    v["targets"] = targets;
  }
  out->control = tk.contains("control") && tk["control"].is_object() ? tk["control"] : json();
  // The control as a measurement of network control-ooni, unless OONI says the
  // control failed (its response then holds defaults, not the helper's view).
  if (out->control.is_object() && u.ok) {
    const json& cf = Member(tk, "control_failure");
    THResponse resp;
    Status ps =
        ParseThResponse(out->control.dump(-1, ' ', false, json::error_handler_t::replace), &resp);
    if (!cf.is_null())
      out->notes.push_back("control_failure " +
                           (cf.is_string() ? cf.get<std::string>() : cf.dump()) +
                           ": no control-ooni measurement");
    else if (!ps.ok())
      out->notes.push_back("test_keys.control is not a test helper response (" + ps.message() +
                           "): no control-ooni measurement");
    else
      out->control_m = ControlMeasurement(m, resp, out->input);
  }
  return Status::Ok();
}

// ============================================================== storage

namespace {

const char kCreateOoniImports[] =
    "CREATE TABLE IF NOT EXISTS ooni_imports ("
    " measurement_uid TEXT PRIMARY KEY REFERENCES measurements(uid) ON DELETE CASCADE,"
    " report_id TEXT,"
    " measurement_start_time TEXT,"
    " test_name TEXT,"
    " input TEXT,"
    " probe_cc TEXT,"
    " probe_asn TEXT,"
    " ooni_verdict TEXT NOT NULL CHECK (json_valid(ooni_verdict)),"
    " control TEXT CHECK (control IS NULL OR json_valid(control)),"
    " ooni_measurement_uid TEXT"
    ") STRICT";

std::string DbError(sqlite3* db, const std::string& what) {
  const char* file = sqlite3_db_filename(db, "main");
  return std::string(file && *file ? file : ":memory:") + ": " + what + ": " + sqlite3_errmsg(db);
}

struct StmtDeleter {
  void operator()(sqlite3_stmt* s) const { sqlite3_finalize(s); }
};
using Stmt = std::unique_ptr<sqlite3_stmt, StmtDeleter>;

Status PrepareStmt(sqlite3* db, const char* sql, Stmt* out) {
  sqlite3_stmt* s = nullptr;
  if (sqlite3_prepare_v2(db, sql, -1, &s, nullptr) != SQLITE_OK)
    return Status::IoError(DbError(db, "prepare"));
  out->reset(s);
  return Status::Ok();
}

void BindText(sqlite3_stmt* s, int i, const std::string& v, bool null_if_empty = true) {
  if (v.empty() && null_if_empty)
    sqlite3_bind_null(s, i);
  else
    sqlite3_bind_text(s, i, v.data(), static_cast<int>(v.size()), SQLITE_TRANSIENT);
}

Status MeasurementExists(sqlite3* db, const std::string& uid, bool* exists) {
  Stmt st;
  Status s = PrepareStmt(db, "SELECT 1 FROM measurements WHERE uid = ?1", &st);
  if (!s.ok()) return s;
  BindText(st.get(), 1, uid);
  int rc = sqlite3_step(st.get());
  if (rc != SQLITE_ROW && rc != SQLITE_DONE) return Status::IoError(DbError(db, "lookup " + uid));
  *exists = rc == SQLITE_ROW;
  return Status::Ok();
}

Status CountMeasurements(sqlite3* db, const std::string& cycle_uid, int64_t* n) {
  Stmt st;
  Status s = PrepareStmt(db, "SELECT count(*) FROM measurements WHERE cycle_uid = ?1", &st);
  if (!s.ok()) return s;
  BindText(st.get(), 1, cycle_uid);
  if (sqlite3_step(st.get()) != SQLITE_ROW) return Status::IoError(DbError(db, "count"));
  *n = sqlite3_column_int64(st.get(), 0);
  return Status::Ok();
}

Status WriteOoniImport(sqlite3* db, const OoniMeasurement& om, bool replace) {
  Stmt st;
  Status s = PrepareStmt(db,
                         replace ? "INSERT OR REPLACE INTO ooni_imports VALUES "
                                   "(?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)"
                                 : "INSERT OR IGNORE INTO ooni_imports VALUES "
                                   "(?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
                         &st);
  if (!s.ok()) return s;
  auto dump = [](const json& v) { return v.dump(-1, ' ', false, json::error_handler_t::replace); };
  BindText(st.get(), 1, om.m.uid);
  BindText(st.get(), 2, om.report_id);
  BindText(st.get(), 3, om.measurement_start_time);
  BindText(st.get(), 4, om.test_name);
  BindText(st.get(), 5, om.input);
  BindText(st.get(), 6, om.probe_cc);
  BindText(st.get(), 7, om.probe_asn);
  BindText(st.get(), 8, dump(om.ooni_verdict), false);
  BindText(st.get(), 9, om.control.is_null() ? "" : dump(om.control));
  BindText(st.get(), 10, om.ooni_measurement_uid);
  if (sqlite3_step(st.get()) != SQLITE_DONE)
    return Status::IoError(DbError(db, "write ooni_imports " + om.m.uid));
  return Status::Ok();
}

// OONI measurement_uid "20230706183840.201925_PK_webconnectivity_19f5e0d803cbaea7".
const std::regex& UidRegex() {
  static const std::regex r("([0-9]{14})\\.[0-9]+_([A-Z]{2})_([a-z0-9]+)_[0-9a-f]+");
  return r;
}

std::string TestNameFromUidPart(const std::string& s) {
  static const std::map<std::string, std::string> kNames = {
      {"webconnectivity", "web_connectivity"},
      {"facebookmessenger", "facebook_messenger"},
      {"httpheaderfieldmanipulation", "http_header_field_manipulation"},
      {"httpinvalidrequestline", "http_invalid_request_line"},
      {"stunreachability", "stun_reachability"},
      {"torsf", "torsf"},
      {"dnscheck", "dnscheck"},
  };
  auto it = kNames.find(s);
  return it == kNames.end() ? s : it->second;
}

// A bare test_keys object whose file names its measurement in a comment
// ("// See https://explorer.ooni.org/m/<measurement_uid>"): the base keys are
// rebuilt from the uid (time, country, test); the ASN stays unknown.
bool SynthesiseBaseKeys(const json& tk, const std::string& uid, json* out, std::string* note) {
  std::smatch mt;
  if (!std::regex_search(uid, mt, UidRegex())) return false;
  std::string ts = mt[1];
  json j = json::object();
  j["measurement_uid"] = mt[0].str();
  j["measurement_start_time"] = ts.substr(0, 4) + "-" + ts.substr(4, 2) + "-" + ts.substr(6, 2) +
                                " " + ts.substr(8, 2) + ":" + ts.substr(10, 2) + ":" +
                                ts.substr(12, 2);
  j["probe_cc"] = mt[2].str();
  j["test_name"] = TestNameFromUidPart(mt[3]);
  std::string input = Str(Member(tk, "x_control_request"), "http_request");
  if (input.empty() && Member(tk, "requests").is_array() && !tk["requests"].empty())
    input = Str(Member(tk["requests"].back(), "request"), "url");
  if (!input.empty()) j["input"] = input;
  j["test_keys"] = tk;
  *out = j;
  *note = "test_keys only: base keys rebuilt from measurement_uid " + mt[0].str() +
          " (start time = the uid's time, probe_asn unknown)";
  return true;
}

struct Record {
  json j;
  std::string where;  // "FILE:LINE" or "FILE: element N"
};

}  // namespace

Status EnsureOoniImportsTable(Store* store) {
  char* err = nullptr;
  if (sqlite3_exec(store->handle(), kCreateOoniImports, nullptr, nullptr, &err) != SQLITE_OK) {
    std::string msg = err ? err : "unknown error";
    sqlite3_free(err);
    const char* file = sqlite3_db_filename(store->handle(), "main");
    return Status::IoError(std::string(file ? file : "") + ": create ooni_imports: " + msg);
  }
  return Status::Ok();
}

Status ImportOoniFile(const std::string& path, Store* store, OoniImportStats* stats,
                      std::vector<OoniMeasurement>* parsed) {
  OoniImportStats local;
  if (!stats) stats = &local;
  std::ifstream f(path, std::ios::binary);
  if (!f) return Status::IoError(path + ": cannot read: " + strerror(errno));
  std::string content((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
  if (f.bad()) return Status::IoError(path + ": read error");
  const std::string file_hash = Sha256Hex(content);

  // Lines; `//` comment lines become blank (line numbers stay right).
  std::vector<std::string> lines;
  {
    std::istringstream ss(content);
    std::string line;
    while (std::getline(ss, line)) lines.push_back(line);
  }
  std::string uid_hint, stripped;
  for (std::string& line : lines) {
    size_t i = line.find_first_not_of(" \t\r");
    if (i != std::string::npos && line.compare(i, 2, "//") == 0) {
      std::smatch mt;
      if (uid_hint.empty() && std::regex_search(line, mt, UidRegex())) uid_hint = mt[0];
      line.clear();
    }
    stripped += line;
    stripped += '\n';
  }

  std::vector<Record> records;
  Status parse_error;
  json whole = json::parse(stripped, nullptr, false);
  if (!whole.is_discarded()) {
    if (whole.is_array()) {
      for (size_t i = 0; i < whole.size(); ++i)
        records.push_back({std::move(whole[i]), path + ": element " + std::to_string(i)});
    } else {
      records.push_back({std::move(whole), path + ":1"});
    }
  } else {
    // JSONL when the first record is complete on its own line.
    size_t first = 0;
    while (first < lines.size() && lines[first].find_first_not_of(" \t\r") == std::string::npos)
      ++first;
    bool jsonl = first < lines.size() && !json::parse(lines[first], nullptr, false).is_discarded();
    if (jsonl) {
      for (size_t i = first; i < lines.size(); ++i) {
        if (lines[i].find_first_not_of(" \t\r") == std::string::npos) continue;
        try {
          records.push_back({json::parse(lines[i]), path + ":" + std::to_string(i + 1)});
        } catch (const json::parse_error& e) {
          parse_error = Status::Invalid(path + ":" + std::to_string(i + 1) +
                                        ": invalid JSON record: " + e.what());
          break;
        }
      }
    } else {
      try {
        json ignored = json::parse(stripped);
        (void)ignored;
      } catch (const json::parse_error& e) {
        size_t line = 1;
        for (size_t i = 0; i < std::min<size_t>(e.byte ? e.byte - 1 : 0, stripped.size()); ++i)
          if (stripped[i] == '\n') ++line;
        return Status::Invalid(path + ":" + std::to_string(line) + ": invalid JSON: " + e.what());
      }
    }
  }

  // Convert.
  std::vector<OoniMeasurement> ms;
  for (Record& r : records) {
    if (r.j.is_object() && !r.j.contains("test_keys") && !r.j.contains("raw_measurement") &&
        !uid_hint.empty() && (r.j.contains("queries") || r.j.contains("requests"))) {
      json full;
      std::string note;
      if (SynthesiseBaseKeys(r.j, uid_hint, &full, &note)) {
        r.j = std::move(full);
        stats->warnings.push_back(r.where + ": " + note);
      }
    }
    OoniMeasurement om;
    Status s = ParseOoniMeasurement(r.j, &om);
    if (!s.ok()) {
      ++stats->skipped;
      stats->warnings.push_back(r.where + ": skipped: " + s.message());
      continue;
    }
    for (const std::string& n : om.notes) stats->warnings.push_back(r.where + ": " + n);
    ms.push_back(std::move(om));
  }
  if (ms.empty()) {
    if (parsed) parsed->clear();
    return parse_error;
  }

  // One cycle per file, uid from the contents.
  int64_t started = ms.front().m.t_start, finished = ms.front().m.t_end;
  std::set<std::string> versions;
  for (const OoniMeasurement& om : ms) {
    started = std::min(started, om.m.t_start);
    finished = std::max(finished, om.m.t_end);
    versions.insert(om.m.target_version);
  }
  const std::string cycle_uid = DerivedUid(started, "ooni-import-file\x1f" + file_hash);
  stats->cycle_uid = cycle_uid;
  for (OoniMeasurement& om : ms) {
    om.m.cycle_uid = cycle_uid;
    if (om.control_m) om.control_m->cycle_uid = cycle_uid;
  }

  Status s = EnsureOoniImportsTable(store);
  if (!s.ok()) return s;
  std::string status;
  s = store->CycleStatus(cycle_uid, &status);
  if (s.ok() && status == "complete") {
    stats->skipped += static_cast<int>(ms.size());
    stats->warnings.push_back(path + ": already imported (cycle " + cycle_uid + "); skipped");
    if (parsed) *parsed = std::move(ms);
    return parse_error;
  }
  if (!s.ok() && !s.IsNotFound()) return s;
  if (s.IsNotFound()) {
    CycleInfo info;
    info.uid = cycle_uid;
    info.started_at = started;
    info.rasad_version = std::string(RASAD_VERSION) + " (ooni import)";
    std::string joined;
    for (const std::string& v : versions) joined += (joined.empty() ? "" : "; ") + v;
    info.target_versions["ooni"] = joined;
    s = store->BeginCycle(info);
    if (!s.ok()) return s;
  }
  // Networks, once each.
  std::map<std::string, CycleNetwork> nets;
  for (const OoniMeasurement& om : ms) {
    auto it = nets.find(om.net.name);
    if (it == nets.end()) {
      CycleNetwork cn;
      cn.cycle_uid = cycle_uid;
      cn.config = om.net;
      cn.config.resolvers.clear();
      it = nets.emplace(om.net.name, cn).first;
    }
    for (const std::string& r : om.net.resolvers)
      if (std::find(it->second.resolvers.begin(), it->second.resolvers.end(), r) ==
          it->second.resolvers.end())
        it->second.resolvers.push_back(r);
  }
  if (std::any_of(ms.begin(), ms.end(),
                  [](const OoniMeasurement& om) { return om.control_m.has_value(); })) {
    CycleNetwork cn;
    cn.cycle_uid = cycle_uid;
    cn.config.name = kOoniControlNetwork;
    cn.config.operator_label = "OONI test helper";
    nets.emplace(cn.config.name, cn);
  }
  for (auto& [name, cn] : nets) {
    s = store->RecordNetwork(cn);
    if (!s.ok()) return s;
  }
  int already = 0;
  for (const OoniMeasurement& om : ms) {
    bool exists = false;
    s = MeasurementExists(store->handle(), om.m.uid, &exists);
    if (!s.ok()) return s;
    bool control_exists = false;
    if (om.control_m) {
      s = MeasurementExists(store->handle(), om.control_m->uid, &control_exists);
      if (!s.ok()) return s;
    }
    if (exists) {
      ++already;
      ++stats->skipped;
      s = WriteOoniImport(store->handle(), om, false);  // in case a crash lost it
      if (!s.ok()) return s;
    } else {
      s = store->WriteMeasurement(om.m);
      if (!s.ok()) return s;  // the cycle stays 'running': marked interrupted at next open
      s = WriteOoniImport(store->handle(), om, true);
      if (!s.ok()) return s;
      ++stats->measurements;
    }
    if (om.control_m && !control_exists) {  // written after its probe measurement
      s = store->WriteMeasurement(*om.control_m);
      if (!s.ok()) return s;
      ++stats->controls;
    }
  }
  if (already)
    stats->warnings.push_back(path + ": " + std::to_string(already) +
                              " measurement(s) already in the database; skipped");
  CycleTotals totals;
  totals.finished_at = finished;
  totals.status = parse_error.ok() ? "complete" : "aborted";
  s = CountMeasurements(store->handle(), cycle_uid, &totals.measurements);
  if (!s.ok()) return s;
  s = store->FinishCycle(cycle_uid, totals);
  if (!s.ok()) return s;
  if (parsed) *parsed = std::move(ms);
  return parse_error;
}

int RunImportOoni(const std::vector<std::string>& files, const std::string& database,
                  std::vector<std::string>* cycles) {
  std::unique_ptr<Store> store;
  Status s = Store::Open(database, &store);
  if (!s.ok()) {
    std::cerr << "rasad: " << s.ToString() << "\n";
    return 1;
  }
  int rc = 0;
  for (const std::string& file : files) {
    OoniImportStats stats;
    s = ImportOoniFile(file, store.get(), &stats);
    for (const std::string& w : stats.warnings) std::cerr << "warning: " << w << "\n";
    std::cout << file << ": " << stats.measurements << " measurement(s) imported";
    if (stats.controls) std::cout << " (+" << stats.controls << " control-ooni)";
    std::cout << ", " << stats.skipped << " skipped";
    if (!stats.cycle_uid.empty()) std::cout << " (cycle " << stats.cycle_uid << ")";
    if (cycles && stats.measurements + stats.controls > 0 &&
        std::find(cycles->begin(), cycles->end(), stats.cycle_uid) == cycles->end())
      cycles->push_back(stats.cycle_uid);
    std::cout << "\n";
    if (!s.ok()) {
      std::cerr << "rasad: " << s.ToString() << "\n";
      rc = 1;
    }
  }
  return rc;
}

}  // namespace rasad
