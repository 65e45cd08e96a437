#include "analysis/classifier.h"

#include <openssl/evp.h>

#include <algorithm>
#include <map>
#include <set>
#include <tuple>

namespace rasad {

namespace v = verdicts;
using nlohmann::json;

const char* ClassifierVersion() { return "rasad-classifier/1"; }

bool IsControlNetwork(const std::string& network) {
  return network.rfind(kControlNetworkPrefix, 0) == 0;
}

namespace {

std::string B64Decode(const std::string& in) {
  std::string out(in.size() / 4 * 3 + 3, '\0');
  int n = EVP_DecodeBlock(reinterpret_cast<unsigned char*>(out.data()),
                          reinterpret_cast<const unsigned char*>(in.data()),
                          static_cast<int>(in.size()));
  if (n < 0) return "";
  size_t pad = 0;
  if (!in.empty() && in.back() == '=') pad = (in.size() > 1 && in[in.size() - 2] == '=') ? 2 : 1;
  out.resize(static_cast<size_t>(n) - pad);
  return out;
}

bool Succeeded(const Measurement& m) { return !m.failure && m.probe_error.empty(); }

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
};

std::string FromFailure(Step step, const std::string& f) {
  switch (step) {
    case Step::kDns:
      if (f == "dns_nxdomain_error") return v::kDnsNxdomain;
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
  if (m.failure && m.failed_step) {
    l.verdict = FromFailure(*m.failed_step, *m.failure);
    l.rule = std::string("failure_at_") + StepName(*m.failed_step);
    l.evidence["failure"] = *m.failure;
    if (const Observation* o = FailedObservation(m)) l.evidence["observation"] = o->uid;
    return l;
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

    std::string verdict = local.verdict;
    std::string rule = local.rule;
    std::string confidence;

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
        bool same_page = !mine || std::any_of(pages.begin(), pages.end(), [&](const Observation* f) {
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
      // probe error or an unmapped failure: nothing to add
    } else if (local.fingerprint) {
      confidence = "confirmed";
      used.push_back("fingerprint");
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

      if (control && !control_ok && (verdict != v::kDnsBogon || Answers(*control) == answers)) {
        verdict = v::kDown;
        rule = "control_failed_too";
        vd.evidence["control_failure"] = control->failure.value_or(control->probe_error);
      } else if ((control_ok || other_ok) && answers_public && !answers_validated &&
                 !good_answers.empty() && !answers_match &&
                 chosen->failed_step.value_or(Step::kDns) != Step::kDns) {
        // Public answers nobody else saw, and the connection to them failed.
        verdict = v::kDnsInconsistent;
        rule = "answers_match_no_control";
        vd.evidence["answers"] = answers;
        confidence = control_ok && other_ok ? "confirmed" : "probable";
      } else if (control_ok) {
        rule = local.rule + "+control_ok";
        confidence = other_ok ? "confirmed" : "probable";
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
    vd.confidence = IsBlocking(verdict) ? (confidence.empty() ? "probable" : confidence) : "";
    vd.evidence["controls"] = used;
    vd.ooni_blocking = OoniBlocking(verdict);
    vd.ooni_accessible = OoniAccessible(verdict);
    out.push_back(std::move(vd));
  }
  return out;
}

}  // namespace rasad
