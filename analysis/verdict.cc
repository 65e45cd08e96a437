#include "analysis/verdict.h"

#include <algorithm>
#include <map>

namespace rasad {

const std::vector<std::string>& AllVerdicts() {
  namespace v = verdicts;
  static const std::vector<std::string> kAll = {
      v::kOk,          v::kDnsNxdomain,    v::kDnsServfail, v::kDnsRefused,      v::kDnsNoAnswer,
      v::kDnsTimeout,  v::kDnsBogon,       v::kDnsInjected, v::kDnsInconsistent, v::kTcpTimeout,
      v::kTcpRefused,  v::kTcpUnreachable, v::kTlsReset,    v::kTlsTimeout,      v::kTlsEof,
      v::kTlsMitm,     v::kHttpReset,      v::kHttpTimeout, v::kHttpEof,         v::kHttpBlockpage,
      v::kHttpDiff,    v::kThrottled,      v::kDown,        v::kShutdown,        v::kVantageOffline,
      v::kInconclusive};
  return kAll;
}

bool IsBlocking(const std::string& verdict) {
  namespace v = verdicts;
  return verdict != v::kOk && verdict != v::kDown && verdict != v::kShutdown &&
         verdict != v::kVantageOffline && verdict != v::kInconclusive;
}

std::vector<AppRollup> RollupByApp(const std::vector<Verdict>& verdicts) {
  std::map<std::pair<std::string, std::string>, AppRollup> by;
  for (const Verdict& v : verdicts) {
    AppRollup& r = by[{v.network, v.target}];
    r.network = v.network;
    r.target = v.target;
    r.endpoints.emplace_back(v.endpoint, v.verdict);
  }
  std::vector<AppRollup> out;
  for (auto& [k, r] : by) {
    size_t blocking = 0, ok = 0;
    std::map<std::string, int> other;
    for (const auto& [e, v] : r.endpoints) {
      if (IsBlocking(v)) {
        ++blocking;
      } else if (v == verdicts::kOk) {
        ++ok;
      } else {
        ++other[v];
      }
    }
    if (blocking == r.endpoints.size()) {
      r.status = "blocked";
    } else if (blocking > 0) {
      r.status = "partial";
    } else if (ok == r.endpoints.size()) {
      r.status = "ok";
    } else {
      auto most = std::max_element(other.begin(), other.end(), [](const auto& a, const auto& b) {
        return a.second < b.second;
      });
      r.status = ok > 0 ? "ok" : most->first;
    }
    out.push_back(std::move(r));
  }
  return out;
}

}  // namespace rasad
