#include "analysis/classifier.h"

#include <openssl/evp.h>

#include <algorithm>
#include <map>
#include <set>
#include <tuple>

#include "probe/core/encoding.h"

namespace rasad {

namespace v = verdicts;
using nlohmann::json;

const char* ClassifierVersion() { return "rasad-classifier/1"; }

bool IsControlNetwork(const std::string& network) {
  return network.rfind(kControlNetworkPrefix, 0) == 0;
}

namespace {

std::string B64Decode(const std::string& in) {
  std::string out;
  return Base64Decode(in, &out) ? out : std::string();
}

bool Succeeded(const Measurement& m) { return !m.failure && m.probe_error.empty(); }

// Packet evidence (probe/capture): rows whose details name a finding.
bool IsFinding(const Observation& o) {
  return o.details.is_object() && o.details.contains("finding");
}

// The strongest finding of a kind prefix ("dns.", "tcp.injection"), proven first.
const Observation* FindFinding(const Measurement& m, const std::string& prefix) {
  const Observation* best = nullptr;
  for (const Observation& o : m.observations) {
    if (!IsFinding(o) || o.details.value("finding", "").rfind(prefix, 0) != 0) continue;
    if (!best || (o.details.value("proven", false) && !best->details.value("proven", false)))
      best = &o;
  }
  return best;
}

std::vector<std::string> Answers(const Measurement& m) {
  std::vector<std::string> out;
  for (const Observation& o : m.observations) {
    if (o.step != Step::kDns || !o.details.contains("answers")) continue;
    for (const auto& a : o.details["answers"]) {
      std::string val = a.value("value", "");
      if (!val.empty() && std::find(out.begin(), out.end(), val) == out.end()) out.push_back(val);
    }
  }
  return out;
}

bool TrustedTls(const Measurement& m) {
  for (const Observation& o : m.observations)
    if (o.step == Step::kTls && !o.failure && o.details.value("trusted", false) &&
        o.details.value("hostname_ok", false))
      return true;
  return false;
}

const Observation* FailedObservation(const Measurement& m) {
  for (const Observation& o : m.observations)
    if (m.failed_step && o.step == *m.failed_step && o.failure && *o.failure == *m.failure)
      return &o;
  return nullptr;
}

// ---- OONI-imported data (interop/ooni_import.cc keeps OONI's tags in
// details.ooni_tags). Native observations carry no tags, so the rules that
// need them never fire on native data.

bool HasTag(const Observation& o, const char* tag) {
  auto it = o.details.find("ooni_tags");
  if (it == o.details.end() || !it->is_array()) return false;
  for (const json& t : *it)
    if (t.is_string() && t.get<std::string>() == tag) return true;
  return false;
}

// Redirect depth (tag depth=N); -1 when untagged.
int Depth(const Observation& o) {
  auto it = o.details.find("ooni_tags");
  if (it == o.details.end() || !it->is_array()) return -1;
  for (const json& t : *it)
    if (t.is_string() && t.get<std::string>().rfind("depth=", 0) == 0)
      return std::atoi(t.get<std::string>().c_str() + 6);
  return -1;
}

// LTE's address-validation handshakes for http:// URLs (fetch_body=false).
bool ValidationOnly(const Observation& o) { return HasTag(o, "fetch_body=false"); }

// The control helper's DNS row (details.source = "control"), if any.
const Observation* ControlDns(const Measurement& c) {
  for (const Observation& o : c.observations)
    if (o.step == Step::kDns) return &o;
  return nullptr;
}

// The final HTTP response the measurement got: the latest http row with a
// status, at the deepest redirect depth, not a validation-only fetch.
const Observation* FinalResponse(const Measurement& m) {
  const Observation* best = nullptr;
  for (const Observation& o : m.observations) {
    if (o.step != Step::kHttp || o.failure || !o.details.contains("status") || ValidationOnly(o))
      continue;
    if (!best || Depth(o) > Depth(*best) || (Depth(o) == Depth(*best) && o.t_end >= best->t_end))
      best = &o;
  }
  return best;
}

std::string Lower(std::string s) {
  std::transform(s.begin(), s.end(), s.begin(),
                 [](unsigned char c) { return static_cast<char>(tolower(c)); });
  return s;
}

// OONI's HTTP comparison (ooni-methodology.md §1.5), conservative: a
// comparison that cannot be made counts as a match. True when the probe's
// final response differs from the control's: same 2xx status, yet body
// length (proportion <= 0.7), uncommon header names and title words all differ.
bool HttpDiffers(const Observation& p, const Observation& c, json* why) {
  int ps = p.details.value("status", 0), cs = c.details.value("status", 0);
  if (ps <= 0 || cs <= 0 || ps != cs || ps < 200 || ps > 299) return false;
  // body length
  int64_t pl = p.details.value("body_length", int64_t(-1));
  int64_t cl = c.details.value("body_length", int64_t(-1));
  bool body_match = true;
  if (pl > 0 && cl > 0 && !p.details.value("body_truncated", false)) {
    double prop = double(std::min(pl, cl)) / double(std::max(pl, cl));
    body_match = prop > 0.7;
    (*why)["body_proportion"] = prop;
  }
  // headers: uncommon names in common
  static const std::set<std::string> kCommon = {"date",
                                                "content-type",
                                                "server",
                                                "cache-control",
                                                "vary",
                                                "set-cookie",
                                                "location",
                                                "expires",
                                                "x-powered-by",
                                                "content-encoding",
                                                "last-modified",
                                                "accept-ranges",
                                                "pragma",
                                                "x-frame-options",
                                                "etag",
                                                "x-content-type-options",
                                                "age",
                                                "via",
                                                "p3p",
                                                "x-xss-protection",
                                                "content-language",
                                                "cf-ray",
                                                "strict-transport-security",
                                                "link",
                                                "x-varnish"};
  auto names = [&](const Observation& o) {
    std::set<std::string> out;
    for (const auto& h : o.details.value("headers_list", json::array()))
      if (h.is_array() && h.size() == 2 && h[0].is_string()) out.insert(Lower(h[0]));
    return out;
  };
  std::set<std::string> pn = names(p), cn = names(c);
  // Unknown (not recorded) counts as a match; an empty list is known.
  bool headers_match =
      !p.details.contains("headers_list") || !c.details.contains("headers_list") || pn == cn;
  for (const std::string& n : pn)
    if (!kCommon.count(n) && cn.count(n)) headers_match = true;
  // title: every word of 5+ bytes in both titles
  auto words = [](const std::string& t) {
    std::set<std::string> out;
    std::string w;
    for (char ch : t + " ") {
      if (isspace(static_cast<unsigned char>(ch))) {
        if (w.size() >= 5) out.insert(Lower(w));
        w.clear();
      } else {
        w += ch;
      }
    }
    return out;
  };
  bool title_match = words(p.details.value("title", "")) == words(c.details.value("title", ""));
  (*why)["status"] = ps;
  (*why)["body_length"] = pl;
  (*why)["control_body_length"] = cl;
  (*why)["title"] = p.details.value("title", "");
  (*why)["control_title"] = c.details.value("title", "");
  return !body_match && !headers_match && !title_match;
}

// Bytes per second of the fastest successful HTTP download, 0 if none.
double HttpRate(const Measurement& m, int64_t* bytes) {
  double best = 0;
  *bytes = 0;
  for (const Observation& o : m.observations) {
    if (o.step != Step::kHttp || o.failure) continue;
    int64_t dt = o.t_end - o.t_start;
    if (dt <= 0) continue;
    double rate = static_cast<double>(o.bytes_received) / (static_cast<double>(dt) / 1e6);
    if (rate > best) {
      best = rate;
      *bytes = o.bytes_received;
    }
  }
  return best;
}

struct Local {
  std::string verdict;
  std::string rule;
  json evidence = json::object();
  bool fingerprint = false;
  std::optional<Step> step;  // the failing step this verdict rests on, if any
};

std::string FromFailure(Step step, const std::string& f) {
  switch (step) {
    case Step::kDns:
      if (f == "dns_nxdomain_error") return v::kDnsNxdomain;
      // Android's getaddrinfo reports every DNS error as EAI_NODATA (probe#2029).
      if (f == "android_dns_cache_no_data") return v::kDnsNxdomain;
      if (f == "dns_servfail_error") return v::kDnsServfail;
      if (f == "dns_refused_error") return v::kDnsRefused;
      if (f == "dns_no_answer") return v::kDnsNoAnswer;
      if (f == "generic_timeout_error") return v::kDnsTimeout;
      return v::kInconclusive;
    case Step::kTcp:
      if (f == "generic_timeout_error") return v::kTcpTimeout;
      if (f == "connection_refused" || f == "connection_reset") return v::kTcpRefused;
      if (f == "host_unreachable" || f == "network_unreachable") return v::kTcpUnreachable;
      return v::kInconclusive;
    case Step::kTls:
      if (f == "connection_reset") return v::kTlsReset;
      if (f == "generic_timeout_error") return v::kTlsTimeout;
      if (f == "eof_error") return v::kTlsEof;
      if (f == "ssl_unknown_authority" || f == "ssl_invalid_hostname" ||
          f == "ssl_invalid_certificate")
        return v::kTlsMitm;
      return v::kInconclusive;
    case Step::kHttp:
      if (f == "connection_reset") return v::kHttpReset;
      if (f == "generic_timeout_error") return v::kHttpTimeout;
      if (f == "eof_error") return v::kHttpEof;
      return v::kInconclusive;
  }
  return v::kInconclusive;
}

// What one attempt shows on its own, before any control is consulted.
Local LocalOutcome(const Measurement& m, const ClassifierOptions& opt) {
  Local l;
  if (!m.probe_error.empty()) {
    l.verdict = v::kInconclusive;
    l.rule = "probe_error";
    l.evidence["probe_error"] = m.probe_error;
    return l;
  }
  // Two different answers to one query on the wire: on-path injection
  // raced the resolver (c-ares only ever sees the first).
  if (const Observation* f = FindFinding(m, "dns.conflicting_responses")) {
    l.verdict = v::kDnsInjected;
    l.rule = "packet_evidence";
    l.fingerprint = f->details.value("proven", false);  // proven: confirmed on its own
    l.evidence["finding"] = f->uid;
    l.evidence["evidence_pcap"] = f->details.value("evidence_pcap", "");
    return l;
  }
  for (const std::string& a : Answers(m)) {
    std::optional<FingerprintMatch> fp;
    if (opt.fingerprints) fp = opt.fingerprints->MatchDnsAnswer(a);
    bool bogon = opt.bogons.IsBogon(a);
    if (fp && !fp->false_positive) {
      l.verdict = bogon ? v::kDnsBogon : v::kDnsInconsistent;
      l.rule = "dns_fingerprint";
      l.fingerprint = true;
      l.evidence["answer"] = a;
      l.evidence["fingerprint"] = fp->name;
      l.evidence["fingerprint_source"] = fp->source;
      return l;
    }
    if (bogon) {
      l.verdict = v::kDnsBogon;
      l.rule = "dns_bogon_answer";
      l.evidence["answer"] = a;
      return l;
    }
  }
  // A redirect straight to a private address (as below) that the probe then
  // failed to follow (OONI's http_invalid_redirect_url on a UserCheck portal
  // at 192.168.x): the redirect, not the client-side failure, is the outcome.
  for (const Observation& o : m.observations) {
    if (!m.failure || o.step != Step::kHttp || !o.details.contains("status")) continue;
    int status = o.details.value("status", 0);
    if (status < 300 || status >= 400) continue;
    for (const auto& h : o.details.value("headers_list", json::array())) {
      if (!h.is_array() || h.size() != 2 || !h[0].is_string() || !h[1].is_string()) continue;
      const std::string k = h[0], val = h[1];
      if (k.size() != 8 || strncasecmp(k.c_str(), "location", 8) != 0) continue;
      size_t start = val.find("://");
      std::string host = start == std::string::npos ? "" : val.substr(start + 3);
      host = host.substr(0, host.find_first_of("/:?"));
      if (!host.empty() && opt.bogons.IsBogon(host)) {
        l.verdict = v::kHttpBlockpage;
        l.rule = "redirect_to_bogon";
        l.evidence["observation"] = o.uid;
        l.evidence["location"] = val;
        return l;
      }
    }
  }
  if (m.failure && m.failed_step) {
    l.verdict = FromFailure(*m.failed_step, *m.failure);
    l.rule = std::string("failure_at_") + StepName(*m.failed_step);
    l.step = m.failed_step;
    l.evidence["failure"] = *m.failure;
    if (const Observation* o = FailedObservation(m)) l.evidence["observation"] = o->uid;
    return l;
  }
  // Redirects followed by the probe (OONI's depth=N tags; the engine records
  // a redirect without following it): the deepest hop speaks for the URL.
  // When it got no response, its failure is the outcome (HTTP > TLS > TCP >
  // DNS, as OONI's analysis orders them); AAAA "no answer" does not count.
  {
    int deepest = -1;
    for (const Observation& o : m.observations) deepest = std::max(deepest, Depth(o));
    if (deepest > 0) {
      const Observation* failed = nullptr;
      bool answered = false;
      for (const Observation& o : m.observations) {
        if (Depth(o) != deepest || ValidationOnly(o)) continue;
        if (o.step == Step::kHttp && !o.failure && o.details.contains("status")) answered = true;
        if (!o.failure) continue;
        if (o.step == Step::kDns && (o.query_type == "AAAA" || o.transport == "doh")) continue;
        if (!failed || static_cast<int>(o.step) > static_cast<int>(failed->step)) failed = &o;
      }
      if (!answered && failed) {
        l.verdict = FromFailure(failed->step, *failed->failure);
        l.rule = std::string("redirect_failure_at_") + StepName(failed->step);
        l.step = failed->step;
        l.evidence["failure"] = *failed->failure;
        l.evidence["observation"] = failed->uid;
        l.evidence["depth"] = deepest;
        return l;
      }
    }
  }
  // Reached: look at what came back.
  for (const Observation& o : m.observations) {
    if (o.step != Step::kHttp || o.failure || !o.details.contains("status")) continue;
    int status = o.details.value("status", 0);
    std::vector<std::pair<std::string, std::string>> headers;
    for (const auto& h : o.details.value("headers_list", json::array()))
      if (h.is_array() && h.size() == 2) headers.emplace_back(h[0], h[1]);
    std::string body = B64Decode(o.details.value("body_prefix_b64", std::string()));
    if (opt.fingerprints) {
      if (auto fp = opt.fingerprints->MatchHttp(status, headers, body)) {
        if (!fp->false_positive) {
          l.verdict = v::kHttpBlockpage;
          l.rule = "http_fingerprint";
          l.fingerprint = true;
          l.evidence["observation"] = o.uid;
          l.evidence["fingerprint"] = fp->name;
          l.evidence["fingerprint_source"] = fp->source;
          l.evidence["status"] = status;
          return l;
        }
        l.evidence["false_positive_signature"] = fp->name;
      }
    }
    // A redirect straight to a private address (Iran's 301 to 10.10.34.34).
    if (status >= 300 && status < 400) {
      for (const auto& [k, val] : headers) {
        if (k.size() != 8 || strncasecmp(k.c_str(), "location", 8) != 0) continue;
        size_t start = val.find("://");
        std::string host = start == std::string::npos ? "" : val.substr(start + 3);
        host = host.substr(0, host.find_first_of("/:?"));
        if (!host.empty() && opt.bogons.IsBogon(host)) {
          l.verdict = v::kHttpBlockpage;
          l.rule = "redirect_to_bogon";
          l.evidence["observation"] = o.uid;
          l.evidence["location"] = val;
          return l;
        }
      }
    }
  }
  l.verdict = v::kOk;
  l.rule = "reached";
  return l;
}

// OONI's "classic" lookups (the system resolver, tag classic, depth 0): what
// a user's browser would use. LTE also asks other resolvers and connects to
// their answers too, so the measurement may have reached the site although
// the user's resolver lied or failed. Returns a verdict when, against the
// control's DNS, the classic lookups
//  - all failed while the control resolved the name (classic_dns_failure), or
//  - answered public addresses that the control does not know (no address
//    or ASN in common), that no trusted TLS handshake validated, and either
//    every connection to them failed (classic_dns_inconsistent) or the
//    control says the name does not exist (classic_dns_ghost).
std::optional<Local> ClassicDns(const Measurement& m, const Measurement* control,
                                const BogonList& bogons) {
  if (!control) return std::nullopt;
  const Observation* cdns = ControlDns(*control);
  if (!cdns) return std::nullopt;
  std::vector<const Observation*> classic;
  for (const Observation& o : m.observations)
    if (o.step == Step::kDns && HasTag(o, "classic") && Depth(o) <= 0 && o.query_type != "AAAA")
      classic.push_back(&o);
  if (classic.empty()) return std::nullopt;
  std::set<std::string> control_answers;
  for (const auto& a : cdns->details.value("answers", json::array()))
    control_answers.insert(a.value("value", ""));
  std::set<int64_t> control_asns;
  const json ip_info = cdns->details.value("ip_info", json::object());
  for (const auto& [ip, info] : ip_info.items())
    if (control_answers.count(ip) && info.is_object() && info.value("asn", int64_t(0)) > 0)
      control_asns.insert(info.value("asn", int64_t(0)));
  const bool control_resolved = !cdns->failure && !control_answers.empty();
  const bool control_nx = cdns->failure && *cdns->failure == "dns_nxdomain_error";
  Local l;
  l.step = Step::kDns;
  l.evidence["control_answers"] = control_answers;

  if (std::all_of(classic.begin(), classic.end(),
                  [](const Observation* o) { return o->failure.has_value(); })) {
    if (!control_resolved) return std::nullopt;
    l.verdict = FromFailure(Step::kDns, *classic.front()->failure);
    if (l.verdict == v::kInconclusive) return std::nullopt;
    l.rule = "classic_dns_failure";
    l.evidence["failure"] = *classic.front()->failure;
    l.evidence["observation"] = classic.front()->uid;
    return l;
  }
  std::set<std::string> answers;
  for (const Observation* o : classic) {
    if (o->failure) continue;
    for (const auto& a : o->details.value("answers", json::array())) {
      std::string val = a.value("value", "");
      if (val.empty()) continue;
      if (bogons.IsBogon(val) || control_answers.count(val)) return std::nullopt;
      int64_t asn = a.value("asn", int64_t(0));
      if (asn > 0 && control_asns.count(asn)) return std::nullopt;
      answers.insert(val);
    }
  }
  if (answers.empty()) return std::nullopt;
  std::map<std::string, bool> flows;  // flow uid -> failed
  for (const Observation& o : m.observations) {
    if (o.step == Step::kDns || !answers.count(o.remote_addr)) continue;
    if (o.step == Step::kTls && !o.failure && o.details.value("trusted", false) &&
        o.details.value("hostname_ok", false))
      return std::nullopt;  // validated: a legitimate address (CDN, GeoDNS)
    if (ValidationOnly(o) || Depth(o) > 0) continue;
    flows[o.flow_uid] = flows[o.flow_uid] || o.failure.has_value();
  }
  bool all_failed = !flows.empty() &&
                    std::all_of(flows.begin(), flows.end(), [](const auto& f) { return f.second; });
  if (control_nx) {
    l.rule = "classic_dns_ghost";
  } else if (control_resolved && all_failed) {
    l.rule = "classic_dns_inconsistent";
  } else {
    return std::nullopt;
  }
  l.verdict = v::kDnsInconsistent;
  l.evidence["answers"] = answers;
  return l;
}

json OoniBlocking(const std::string& verdict) {
  if (verdict == v::kOk || verdict == v::kThrottled || verdict == v::kDown) return false;
  if (verdict.rfind("dns.", 0) == 0) return "dns";
  if (verdict.rfind("tcp.", 0) == 0) return "tcp_ip";
  if (verdict == v::kHttpBlockpage || verdict == v::kHttpDiff) return "http-diff";
  if (verdict.rfind("tls.", 0) == 0 || verdict.rfind("http.", 0) == 0) return "http-failure";
  return nullptr;  // shutdown, vantage.offline, inconclusive
}

json OoniAccessible(const std::string& verdict) {
  if (verdict == v::kOk || verdict == v::kThrottled) return true;
  if (verdict == v::kDown || IsBlocking(verdict)) return false;
  return nullptr;
}

using Key = std::tuple<std::string, std::string, std::string>;  // network, target, endpoint

}  // namespace

std::vector<Verdict> ClassifyCycle(const std::vector<Measurement>& measurements,
                                   const ClassifierOptions& opt) {
  // Attempts per (network, target, endpoint), in order.
  std::map<Key, std::vector<const Measurement*>> groups;
  for (const Measurement& m : measurements) groups[{m.network, m.target, m.endpoint}].push_back(&m);
  for (auto& [k, list] : groups)
    std::sort(list.begin(), list.end(), [](const Measurement* a, const Measurement* b) {
      return std::tie(a->attempt, a->t_start) < std::tie(b->attempt, b->t_start);
    });

  // Per group: did any attempt get through?
  auto group_ok = [&](const Key& k) {
    auto it = groups.find(k);
    if (it == groups.end()) return false;
    for (const Measurement* m : it->second)
      if (Succeeded(*m)) return true;
    return false;
  };

  // Canaries per network: vantage.offline when every foreign canary fails;
  // shutdown when the domestic one still works.
  std::map<std::string, std::string> network_state;
  {
    std::map<std::string, std::pair<int, int>> foreign;  // network -> (total, ok)
    std::map<std::string, std::pair<int, int>> domestic;
    for (const auto& [k, list] : groups) {
      const Measurement* m = list.front();
      if (!m->control || IsControlNetwork(m->network)) continue;
      auto& slot = m->control_kind == "domestic" ? domestic[m->network] : foreign[m->network];
      ++slot.first;
      if (group_ok(k)) ++slot.second;
    }
    for (const auto& [net, f] : foreign) {
      if (f.first == 0 || f.second > 0) continue;
      auto d = domestic.find(net);
      bool domestic_ok = d != domestic.end() && d->second.second > 0;
      network_state[net] = domestic_ok ? v::kShutdown : v::kVantageOffline;
    }
  }

  std::vector<Verdict> out;
  for (const auto& [key, attempts] : groups) {
    const auto& [network, target, endpoint] = key;
    if (IsControlNetwork(network)) continue;
    Verdict vd;
    vd.cycle_uid = attempts.front()->cycle_uid;
    vd.network = network;
    vd.target = target;
    vd.endpoint = endpoint;

    // Local view: any successful attempt wins (retries exist to forgive
    // random loss); otherwise the first attempt speaks (it met the censor
    // before any residual blocking did).
    json tries = json::array();
    const Measurement* chosen = attempts.front();
    Local local = LocalOutcome(*chosen, opt);
    for (const Measurement* m : attempts) {
      Local l = LocalOutcome(*m, opt);
      tries.push_back({{"measurement", m->uid}, {"attempt", m->attempt}, {"local", l.verdict}});
      if (l.verdict == v::kOk && local.verdict != v::kOk) {
        bool retried = m != attempts.front();
        local = l;
        chosen = m;
        if (retried) local.rule = "ok_on_retry";
      }
    }
    vd.measurement_uid = chosen->uid;
    vd.t_start = attempts.front()->t_start;
    vd.evidence = local.evidence;
    vd.evidence["attempts"] = tries;

    // Controls available for this endpoint.
    const Measurement* control = nullptr;
    std::vector<const Measurement*> others;  // other operators, same endpoint
    for (const auto& [k2, list2] : groups) {
      if (std::get<1>(k2) != target || std::get<2>(k2) != endpoint || std::get<0>(k2) == network)
        continue;
      if (IsControlNetwork(std::get<0>(k2))) {
        control = list2.back();
      } else {
        others.insert(others.end(), list2.begin(), list2.end());
      }
    }
    bool control_ok = control && Succeeded(*control);
    bool other_ok = std::any_of(others.begin(), others.end(),
                                [](const Measurement* m) { return Succeeded(*m); });
    json used = json::array();
    if (control) used.push_back("control:" + control->network);
    if (!others.empty()) used.push_back("cross_operator");

    // OONI imports: the user's (classic) resolver, checked against the control.
    bool classic_rule = false;
    if (!local.fingerprint && local.rule != "probe_error" && local.verdict.rfind("dns.", 0) != 0) {
      if (std::optional<Local> c = ClassicDns(*chosen, control, opt.bogons)) {
        json attempts = vd.evidence["attempts"];
        local = *c;
        vd.evidence = local.evidence;
        vd.evidence["attempts"] = attempts;
        classic_rule = true;
        used.push_back("classic_dns");
      }
    }
    // The step the probe failed at, and whether the control got past it (then
    // the control's own later failure does not make the site "down").
    std::optional<Step> failed_at = local.step ? local.step : chosen->failed_step;
    bool control_past = control && !control_ok && failed_at && control->furthest_step &&
                        static_cast<int>(*control->furthest_step) >= static_cast<int>(*failed_at);

    std::string verdict = local.verdict;
    std::string rule = local.rule;
    std::string confidence;
    if (local.rule.rfind("redirect_failure_at_", 0) == 0) used.push_back("redirects");

    if (verdict == v::kOk) {
      // Reached; but was it slow, or different from what the control saw?
      int64_t bytes = 0, obytes = 0;
      double rate = HttpRate(*chosen, &bytes);
      double best_other = 0;
      std::vector<const Measurement*> refs = others;
      if (control) refs.push_back(control);
      for (const Measurement* o : refs) {
        double r = HttpRate(*o, &obytes);
        if (obytes >= opt.throttle_min_bytes) best_other = std::max(best_other, r);
      }
      if (rate > 0 && bytes >= opt.throttle_min_bytes && best_other >= opt.throttle_ratio * rate) {
        verdict = v::kThrottled;
        rule = "slower_than_control";
        confidence = "probable";
        vd.evidence["rate_bps"] = rate;
        vd.evidence["reference_rate_bps"] = best_other;
        used.push_back("throughput");
      }
      // A response over plain HTTP that differs from the control's (same 2xx
      // status, different length, headers and title): content was replaced
      // on the way. Not over TLS (a verified chain rules injection out), and
      // not when the status differs (server-side 403/503, CAPTCHAs).
      if (verdict == v::kOk && control) {
        const Observation* pf = FinalResponse(*chosen);
        const Observation* cf = FinalResponse(*control);
        bool over_tls =
            pf && std::any_of(chosen->observations.begin(), chosen->observations.end(),
                              [&](const Observation& o) {
                                return o.step == Step::kTls && o.flow_uid == pf->flow_uid;
                              });
        json why = json::object();
        if (pf && cf && !over_tls && HttpDiffers(*pf, *cf, &why)) {
          verdict = v::kHttpDiff;
          rule = "http_differs_from_control";
          confidence = "probable";
          why["observation"] = pf->uid;
          vd.evidence["http_diff"] = why;
          used.push_back("http_compare");
        }
      }
      // Reached over plain HTTP on public answers that no control and no
      // operator that reached the site saw, and the page is not the one they
      // got (status or title differ): the resolver sent the name elsewhere.
      // (With a trusted TLS chain, or the same page, different answers are
      // CDN/GeoDNS and stay ok.)
      if (verdict == v::kOk && !TrustedTls(*chosen)) {
        auto page = [](const Measurement& m) -> const Observation* {
          const Observation* last = nullptr;
          for (const Observation& o : m.observations)
            if (o.step == Step::kHttp && !o.failure && o.details.contains("status")) last = &o;
          return last;
        };
        std::vector<std::string> answers = Answers(*chosen);
        std::set<std::string> good;
        std::vector<const Observation*> pages;
        for (const Measurement* o : refs) {
          if (!Succeeded(*o)) continue;
          for (const std::string& a : Answers(*o)) good.insert(a);
          if (const Observation* f = page(*o)) pages.push_back(f);
        }
        const Observation* mine = page(*chosen);
        bool public_unseen =
            !answers.empty() && !good.empty() &&
            std::none_of(answers.begin(), answers.end(), [&](const std::string& a) {
              return opt.bogons.IsBogon(a) || good.count(a) > 0;
            });
        bool same_page =
            !mine || std::any_of(pages.begin(), pages.end(), [&](const Observation* f) {
              std::string t1 = f->details.value("title", ""), t2 = mine->details.value("title", "");
              return f->details.value("status", 0) == mine->details.value("status", 0) &&
                     strcasecmp(t1.c_str(), t2.c_str()) == 0;
            });
        if (public_unseen && !pages.empty() && !same_page) {
          verdict = v::kDnsInconsistent;
          rule = "answers_match_no_control+other_page";
          confidence = control_ok && other_ok ? "confirmed" : "probable";
          vd.evidence["answers"] = answers;
          vd.evidence["title"] = mine->details.value("title", "");
          used.push_back("http_compare");
        }
      }
    } else if (network_state.count(network) && !local.fingerprint) {
      // Every foreign canary failed on this network: any failure here, even
      // one no rule maps (DNS network_unreachable on a downed uplink, a probe
      // error), speaks for the vantage, not for this target.
      verdict = network_state[network];
      rule = "canaries_failed";
      used.push_back("canaries");
    } else if (verdict == v::kInconclusive) {
      // Probe error: nothing to add. An unmapped failure that the control met
      // too (at or before the same step): the site is down, not blocked.
      if (local.rule != "probe_error" && control && !control_ok && !control_past) {
        verdict = v::kDown;
        rule = "control_failed_too";
        vd.evidence["control_failure"] = control->failure.value_or(control->probe_error);
      }
    } else if (local.fingerprint) {
      confidence = "confirmed";
      used.push_back("fingerprint");
    } else if (classic_rule) {
      confidence = control_ok && other_ok ? "confirmed" : "probable";
    } else {
      // A failure (or a bogon answer) without a fingerprint: controls decide.
      std::vector<std::string> answers = Answers(*chosen);
      bool answers_validated = TrustedTls(*chosen);
      // Answers seen by anyone who then reached the site with a valid chain.
      std::set<std::string> good_answers;
      for (const Measurement* o : others)
        if (TrustedTls(*o) || Succeeded(*o))
          for (const std::string& a : Answers(*o)) good_answers.insert(a);
      if (control)
        for (const std::string& a : Answers(*control)) good_answers.insert(a);
      bool answers_public = !answers.empty() &&
                            std::none_of(answers.begin(), answers.end(), [&](const std::string& a) {
                              return opt.bogons.IsBogon(a);
                            });
      bool answers_match = std::any_of(answers.begin(), answers.end(), [&](const std::string& a) {
        return good_answers.count(a) > 0;
      });

      if (control && !control_ok && !control_past &&
          (verdict != v::kDnsBogon || Answers(*control) == answers)) {
        verdict = v::kDown;
        rule = "control_failed_too";
        vd.evidence["control_failure"] = control->failure.value_or(control->probe_error);
      } else if ((control_ok || other_ok) && answers_public && !answers_validated &&
                 !good_answers.empty() && !answers_match &&
                 failed_at.value_or(Step::kDns) != Step::kDns) {
        // Public answers nobody else saw, and the connection to them failed.
        verdict = v::kDnsInconsistent;
        rule = "answers_match_no_control";
        vd.evidence["answers"] = answers;
        confidence = control_ok && other_ok ? "confirmed" : "probable";
      } else if (control_ok) {
        rule = local.rule + "+control_ok";
        confidence = other_ok ? "confirmed" : "probable";
      } else if (control_past) {
        // The control failed too, but only after the step the probe failed at.
        rule = local.rule + "+control_reached_" + StepName(*control->furthest_step);
        confidence = "probable";
      } else if (other_ok) {
        rule = local.rule + "+other_operator_ok";
        confidence = "probable";
      } else if (verdict == v::kDnsBogon) {
        // A private answer to a public name, and nobody to contradict it.
        rule = "dns_bogon_answer";
        confidence = "probable";
      } else {
        verdict = v::kInconclusive;
        rule = local.rule + "+no_control";
      }
    }
    vd.verdict = verdict;
    vd.rule = rule;
    // Packet-level proof that the failure was injected (two independent
    // signals, docs/EVIDENCE.md) confirms a blocking verdict.
    if (IsBlocking(verdict) && confidence != "confirmed") {
      const Observation* proof = FindFinding(*chosen, "tcp.injection");
      if (proof && proof->details.value("proven", false)) {
        confidence = "confirmed";
        vd.rule += "+packet_proof";
        vd.evidence["packet_proof"] = proof->uid;
        vd.evidence["evidence_pcap"] = proof->details.value("evidence_pcap", "");
        used.push_back("packets");
      }
    }
    vd.confidence = IsBlocking(verdict) ? (confidence.empty() ? "probable" : confidence) : "";
    vd.evidence["controls"] = used;
    vd.ooni_blocking = OoniBlocking(verdict);
    vd.ooni_accessible = OoniAccessible(verdict);
    out.push_back(std::move(vd));
  }
  return out;
}

}  // namespace rasad
