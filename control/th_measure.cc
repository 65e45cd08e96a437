#include "control/th_measure.h"

#include <algorithm>
#include <cctype>
#include <cstring>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <set>

#include "control/ssrf.h"
#include "probe/config/config.h"
#include "probe/loop/event_loop.h"
#include "probe/net/bind.h"
#include "probe/net/curl_multi.h"
#include "probe/net/dns_query.h"
#include "probe/net/flow.h"

namespace rasad {

namespace {

using Resolver = std::pair<std::string, int>;

// Go's textproto.CanonicalMIMEHeaderKey: "content-type" -> "Content-Type".
// Names with characters outside a token are returned unchanged, as Go does.
std::string CanonicalHeaderName(const std::string& name) {
  for (char c : name) {
    unsigned char u = static_cast<unsigned char>(c);
    if (!(isalnum(u) || strchr("!#$%&'*+-.^_`|~", c))) return name;
  }
  std::string out = name;
  bool upper = true;
  for (char& c : out) {
    c = static_cast<char>(upper ? toupper(static_cast<unsigned char>(c))
                                : tolower(static_cast<unsigned char>(c)));
    upper = c == '-';
  }
  return out;
}

std::string Lower(std::string s) {
  std::transform(s.begin(), s.end(), s.begin(),
                 [](unsigned char c) { return static_cast<char>(tolower(c)); });
  return s;
}

// "h3=\":443\"" in an Alt-Svc value -> the port, or 0.
int AltSvcH3Port(const std::string& alt_svc) {
  size_t at = alt_svc.find("h3=\":");
  if (at == std::string::npos) return 0;
  size_t start = at + 5, end = alt_svc.find('"', start);
  if (end == std::string::npos) return 0;
  std::string port = alt_svc.substr(start, end - start);
  if (port.empty() || port.size() > 5 || port.find_first_not_of("0123456789") != std::string::npos)
    return 0;
  int p = atoi(port.c_str());
  return p > 0 && p <= 65535 ? p : 0;
}

std::optional<std::string> ObsFailure(const Observation& o) {
  if (o.failure) return o.failure;
  if (!o.probe_error.empty()) return "unknown_failure: " + o.probe_error;
  return std::nullopt;
}

// A and AAAA for one name, against the resolvers in order: the next resolver
// is asked only when neither query got any response from the previous one.
class Resolution {
 public:
  using Done = std::function<void(std::optional<std::string> failure, std::vector<std::string>)>;
  Resolution(EventLoop* loop, const ThOptions& o, const std::vector<Resolver>& resolvers,
             std::string name, Done done)
      : loop_(loop), o_(o), resolvers_(resolvers), name_(std::move(name)), done_(std::move(done)) {}

  void Start() { Try(0); }

 private:
  void Try(size_t i) {
    if (i >= resolvers_.size()) {
      // Only reached with no resolver at all (the loop below stops at the last).
      finish_ = loop_->AddTimer(0, [this] {
        finish_ = 0;
        Done d = std::move(done_);
        d(std::string("unknown_failure: no DNS resolver configured"), {});
      });
      return;
    }
    pending_ = 2;
    const int qtypes[2] = {1, 28};
    for (int k = 0; k < 2; ++k) {
      DnsQuerySpec spec;
      spec.name = name_;
      spec.qtype = qtypes[k];
      spec.resolver_addr = resolvers_[i].first;
      spec.resolver_port = resolvers_[i].second;
      spec.timeout_ms = o_.dns_timeout_ms;
      spec.tries = o_.dns_tries;
      queries_[k] = std::make_unique<DnsQuery>(loop_, spec, [this, k, i](Observation obs) {
        obs_[k] = std::move(obs);
        if (--pending_ == 0) Evaluate(i);
      });
    }
    queries_[0]->Start();
    queries_[1]->Start();
  }

  void Evaluate(size_t i) {
    bool answered = !obs_[0].raw.empty() || !obs_[1].raw.empty();
    if (!answered && i + 1 < resolvers_.size()) {
      Try(i + 1);
      return;
    }
    std::vector<std::string> addrs;
    std::set<std::string> seen;
    for (const Observation& o : obs_) {
      auto it = o.details.find("answers");
      if (it == o.details.end() || !it->is_array()) continue;
      for (const auto& a : *it) {
        std::string ip = CanonicalIp(a.value("value", ""));
        if (!ip.empty() && seen.insert(ip).second && addrs.size() < o_.max_dns_addrs)
          addrs.push_back(ip);
      }
    }
    std::optional<std::string> failure;
    if (addrs.empty()) {
      std::optional<std::string> fa = ObsFailure(obs_[0]), faaaa = ObsFailure(obs_[1]);
      if (fa == "dns_nxdomain_error" || faaaa == "dns_nxdomain_error")
        failure = "dns_nxdomain_error";
      else if (fa && *fa != "dns_no_answer")
        failure = fa;
      else if (faaaa && *faaaa != "dns_no_answer")
        failure = faaaa;
      else
        failure = "dns_no_answer";
    }
    Done d = std::move(done_);
    d(failure, addrs);  // may not destroy this (owned by the measurer)
  }

  EventLoop* loop_;
  const ThOptions& o_;
  const std::vector<Resolver>& resolvers_;
  std::string name_;
  Done done_;
  int pending_ = 0;
  std::unique_ptr<DnsQuery> queries_[2];
  Observation obs_[2];
  EventLoop::TimerId finish_ = 0;

 public:
  ~Resolution() {
    if (finish_) loop_->CancelTimer(finish_);
  }
};

class Measurer {
 public:
  Measurer(EventLoop* loop, CurlMulti* multi, const THRequest& req, const ThOptions& o,
           std::shared_ptr<TrustStore> trust, const DestinationPolicy& policy,
           std::vector<Resolver> resolvers)
      : loop_(loop),
        multi_(multi),
        req_(req),
        o_(o),
        trust_(std::move(trust)),
        policy_(policy),
        resolvers_(std::move(resolvers)) {}

  ~Measurer() {
    for (EventLoop::TimerId t : {deadline_, cancel_poll_})
      if (t) loop_->CancelTimer(t);
    // Flows and queries still running are abandoned by their destructors.
  }

  bool finished() const { return finished_; }
  THResponse Take() { return std::move(resp_); }

  void Start() {
    deadline_ = loop_->AddTimer(o_.total_timeout_ms * 1000, [this] {
      deadline_ = 0;
      Abort("generic_timeout_error");
    });
    if (o_.cancel) PollCancel();
    Status st = ParseThUrl(req_.http_request, &url_);
    if (!st.ok()) {
      resp_.dns.failure = "unknown_error";
      resp_.http_request.failure = "unknown_failure: " + st.message();
      Finish();
      return;
    }
    user_agent_ = o_.default_user_agent;
    for (const auto& [name, values] : req_.http_request_headers)
      if (Lower(name) == "user-agent" && !values.empty()) user_agent_ = values[0];
    // As oohelperd: only the IPs of the probe's endpoints are used; the ports
    // come from the URL.
    for (const std::string& ep : req_.tcp_connect) {
      std::string addr;
      int port = 0;
      if (!SplitHostPort(ep, -1, &addr, &port)) continue;
      std::string ip = CanonicalIp(addr);
      if (!ip.empty()) resp_.ip_info[ip].flags |= kIpFlagResolvedByProbe;
    }
    if (url_.host_is_ip) {
      OnDns(std::nullopt, {url_.host});
      return;
    }
    dns_ = std::make_unique<Resolution>(
        loop_, o_, resolvers_, url_.host,
        [this](std::optional<std::string> failure, std::vector<std::string> addrs) {
          OnDns(failure, addrs);
        });
    dns_->Start();
  }

 private:
  struct Endpoint {
    std::string ip, key;
    int port = 0;
    bool tls = false;
    bool started = false, done = false;
    std::unique_ptr<Flow> flow;
  };

  void PollCancel() {
    cancel_poll_ = loop_->AddTimer(100 * 1000, [this] {
      cancel_poll_ = 0;
      if (o_.cancel->load()) {
        Abort("interrupted");
        return;
      }
      PollCancel();
    });
  }

  void OnDns(std::optional<std::string> failure, std::vector<std::string> addrs) {
    dns_done_ = true;
    resp_.dns.failure = ThLegacyDnsFailure(failure);
    resp_.dns.addrs = failure ? std::vector<std::string>{} : addrs;
    for (const std::string& ip : resp_.dns.addrs) resp_.ip_info[ip].flags |= kIpFlagResolvedByTh;
    for (auto& [ip, info] : resp_.ip_info)
      if (IsBogon(ip) && !policy_.ExplicitlyAllowed(ip)) info.flags |= kIpFlagBogon;

    // Endpoints: every address (probe's and ours) the policy allows, at the
    // URL's ports. Refused addresses are omitted (ip_info flags them 4).
    for (const auto& [ip, info] : resp_.ip_info) {
      if (!policy_.Allowed(ip)) continue;
      for (int port : url_.MeasurePorts()) {
        if (endpoints_.size() >= o_.max_endpoints) break;
        auto ep = std::make_unique<Endpoint>();
        ep->ip = ip;
        ep->port = port;
        ep->key = JoinHostPort(ip, port);
        // TLS on 443 (oohelperd), and on an https URL's explicit port.
        ep->tls = port == 443 || url_.scheme == "https";
        endpoints_.push_back(std::move(ep));
      }
    }
    Pump();

    if (failure || resp_.dns.addrs.empty()) {
      // oohelperd's legacy string for an HTTP request whose lookup failed.
      HttpFailed("dns_lookup_error");
    } else {
      StartHop(req_.http_request, url_, resp_.dns.addrs);
    }
    MaybeFinish();
  }

  void Pump() {
    while (active_ < o_.max_parallel_flows && next_ < endpoints_.size()) {
      Endpoint* ep = endpoints_[next_++].get();
      FlowSpec spec;
      spec.host = url_.host;
      spec.address = ep->ip;
      spec.port = ep->port;
      spec.tls = ep->tls;
      spec.last_step = ep->tls ? Step::kTls : Step::kTcp;
      spec.trust = trust_;
      spec.tcp_timeout_ms = o_.tcp_timeout_ms;
      spec.tls_timeout_ms = o_.tls_timeout_ms;
      spec.user_agent = user_agent_;
      ep->started = true;
      ++active_;
      ep->flow = std::make_unique<Flow>(
          loop_, multi_, spec, [this, ep](std::vector<Observation> obs) { OnEndpoint(ep, obs); });
      ep->flow->Start();
    }
  }

  void OnEndpoint(Endpoint* ep, const std::vector<Observation>& obs) {
    ep->done = true;
    --active_;
    THTcpConnectResult tcp;
    tcp.failure = obs.empty() ? std::optional<std::string>("unknown_failure: no observation")
                              : ObsFailure(obs[0]);
    tcp.status = !tcp.failure;
    resp_.tcp_connect[ep->key] = tcp;
    if (ep->tls && tcp.status) {
      THTlsHandshakeResult tls;
      tls.server_name = url_.host;
      tls.failure = "unknown_failure: no TLS observation";
      for (const Observation& o : obs)
        if (o.step == Step::kTls) tls.failure = ObsFailure(o);
      tls.status = !tls.failure;
      resp_.tls_handshake[ep->key] = tls;
      if (tls.status) resp_.ip_info[ep->ip].flags |= kIpFlagValidForDomain;
    }
    Pump();
    MaybeFinish();
  }

  // One HTTP request of the redirect chain.
  void StartHop(const std::string& url, const ThUrl& parsed,
                const std::vector<std::string>& addrs) {
    hop_url_ = url;
    hop_ = parsed;
    hop_addrs_.clear();
    for (const std::string& a : addrs)
      if (policy_.Allowed(a) && static_cast<int>(hop_addrs_.size()) < o_.max_http_addresses)
        hop_addrs_.push_back(a);
    if (hop_addrs_.empty()) {
      HttpFailed(kBlockedByHelperPolicy);
      return;
    }
    TryHttpAddress(0);
  }

  void TryHttpAddress(size_t k) {
    FlowSpec spec;
    spec.host = hop_.host;
    spec.address = hop_addrs_[k];
    spec.port = hop_.DefaultPort();
    spec.tls = hop_.scheme == "https";
    spec.last_step = Step::kHttp;
    spec.path = hop_.path;
    spec.trust = trust_;
    spec.tcp_timeout_ms = o_.tcp_timeout_ms;
    spec.tls_timeout_ms = o_.tls_timeout_ms;
    spec.http_timeout_ms = o_.http_timeout_ms;
    spec.body_cap = o_.body_cap;
    spec.body_store = std::min<size_t>(o_.body_cap, 64 * 1024);  // enough for the <title>
    spec.user_agent = user_agent_;
    // The previous hop's flow may be the one calling us: keep it alive.
    if (http_flow_) retired_.push_back(std::move(http_flow_));
    http_flow_ = std::make_unique<Flow>(
        loop_, multi_, spec, [this, k](std::vector<Observation> obs) { OnHttp(k, obs); });
    http_flow_->Start();
  }

  void OnHttp(size_t k, const std::vector<Observation>& obs) {
    if (http_done_) return;
    // Like a dialer: a connect failure moves on to the next address.
    if (!obs.empty() && ObsFailure(obs[0]) && k + 1 < hop_addrs_.size()) {
      TryHttpAddress(k + 1);
      return;
    }
    const Observation* http = nullptr;
    for (const Observation& o : obs) {
      if (std::optional<std::string> f = ObsFailure(o)) {
        HttpFailed(*f);
        MaybeFinish();
        return;
      }
      if (o.step == Step::kHttp) http = &o;
    }
    if (!http || !http->details.contains("status")) {
      HttpFailed("unknown_failure: no HTTP response");
      MaybeFinish();
      return;
    }
    const nlohmann::json& d = http->details;
    int64_t status = d.value("status", int64_t{-1});
    std::vector<std::pair<std::string, std::string>> headers;
    if (auto it = d.find("headers_list"); it != d.end() && it->is_array())
      for (const auto& h : *it)
        if (h.is_array() && h.size() == 2 && h[0].is_string() && h[1].is_string())
          headers.emplace_back(h[0].get<std::string>(), h[1].get<std::string>());

    bool redirect =
        status == 301 || status == 302 || status == 303 || status == 307 || status == 308;
    std::string location;
    for (const auto& [name, value] : headers)
      if (Lower(name) == "location") {
        location = value;
        break;
      }
    if (redirect && !location.empty()) {
      if (redirects_ >= o_.max_redirects) {
        HttpFailed("unknown_failure: stopped after " + std::to_string(o_.max_redirects) +
                   " redirects");
        MaybeFinish();
        return;
      }
      ++redirects_;
      std::string next;
      ThUrl parsed;
      if (!ResolveRedirect(hop_url_, location, &next).ok() || !ParseThUrl(next, &parsed).ok()) {
        HttpFailed("unknown_failure: invalid redirect location");
        MaybeFinish();
        return;
      }
      if (parsed.host_is_ip) {
        StartHop(next, parsed, {parsed.host});
      } else if (parsed.host == hop_.host) {
        std::vector<std::string> addrs = hop_addrs_;
        StartHop(next, parsed, addrs);
      } else {
        if (redirect_dns_) retired_dns_.push_back(std::move(redirect_dns_));
        redirect_dns_ =
            std::make_unique<Resolution>(loop_, o_, resolvers_, parsed.host,
                                         [this, next, parsed](std::optional<std::string> failure,
                                                              std::vector<std::string> addrs) {
                                           if (failure || addrs.empty()) {
                                             HttpFailed("dns_lookup_error");
                                           } else {
                                             StartHop(next, parsed, addrs);
                                           }
                                           MaybeFinish();
                                         });
        redirect_dns_->Start();
      }
      MaybeFinish();  // StartHop may have ended the chain (policy refusal)
      return;
    }

    THHttpRequestResult& r = resp_.http_request;
    r.failure = std::nullopt;
    r.status_code = status;
    r.body_length = d.value("body_length", int64_t{0});
    r.title = d.value("title", std::string());
    for (const auto& [name, value] : headers) {
      std::string canon = CanonicalHeaderName(name);
      if (!r.headers.count(canon)) r.headers[canon] = value;
      if (hop_.scheme == "https" && Lower(name) == "alt-svc" && r.discovered_h3_endpoint.empty())
        if (int p = AltSvcH3Port(value)) r.discovered_h3_endpoint = JoinHostPort(hop_.host, p);
    }
    http_done_ = true;
    MaybeFinish();
  }

  void HttpFailed(const std::string& failure) {
    THHttpRequestResult& r = resp_.http_request;
    r = THHttpRequestResult();
    r.failure = failure;
    http_done_ = true;
  }

  void MaybeFinish() {
    if (finished_ || !dns_done_ || !http_done_) return;
    for (const auto& ep : endpoints_)
      if (!ep->done) return;
    Finish();
  }

  // Ends the measurement now: whatever has not finished gets `failure`.
  void Abort(const std::string& failure) {
    if (finished_) return;
    if (!dns_done_) {
      resp_.dns.failure = ThLegacyDnsFailure(failure);
      resp_.dns.addrs.clear();
    }
    for (const auto& ep : endpoints_)
      if (!ep->done) resp_.tcp_connect[ep->key] = THTcpConnectResult{false, failure};
    if (!http_done_) HttpFailed(failure);
    Finish();
  }

  void Finish() {
    finished_ = true;
    for (EventLoop::TimerId* t : {&deadline_, &cancel_poll_})
      if (*t) {
        loop_->CancelTimer(*t);
        *t = 0;
      }
  }

  EventLoop* loop_;
  CurlMulti* multi_;
  const THRequest& req_;
  const ThOptions& o_;
  std::shared_ptr<TrustStore> trust_;
  const DestinationPolicy& policy_;
  std::vector<Resolver> resolvers_;
  THResponse resp_;
  ThUrl url_;
  std::string user_agent_;
  bool finished_ = false, dns_done_ = false, http_done_ = false;
  EventLoop::TimerId deadline_ = 0, cancel_poll_ = 0;
  std::unique_ptr<Resolution> dns_;
  std::vector<std::unique_ptr<Endpoint>> endpoints_;
  size_t next_ = 0, active_ = 0;
  // HTTP chain
  std::string hop_url_;
  ThUrl hop_;
  std::vector<std::string> hop_addrs_;
  int redirects_ = 0;
  std::unique_ptr<Flow> http_flow_;
  std::vector<std::unique_ptr<Flow>> retired_;
  std::unique_ptr<Resolution> redirect_dns_;
  std::vector<std::unique_ptr<Resolution>> retired_dns_;
};

THResponse ErrorResponse(const std::string& why) {
  THResponse r;
  r.dns.failure = "unknown_error";
  r.http_request.failure = "unknown_failure: " + why;
  return r;
}

}  // namespace

THResponse MeasureForTh(const THRequest& request, const ThOptions& o) {
  std::shared_ptr<TrustStore> trust = o.trust;
  if (!trust) {
    Status st = TrustStore::Create(o.ca_file, &trust);
    if (!st.ok()) return ErrorResponse("helper trust store: " + st.message());
  }
  std::vector<std::string> valid_ranges;
  for (const std::string& r : o.allow_ranges) {
    IpPrefix p;
    if (ParseIpPrefix(r, &p)) valid_ranges.push_back(r);
  }
  DestinationPolicy policy;
  DestinationPolicy::Create(valid_ranges, &policy);
  std::vector<Resolver> resolvers;
  for (const std::string& r : o.resolvers.empty() ? SystemResolvers() : o.resolvers) {
    std::string addr;
    int port = 0;
    if (SplitHostPort(r, 53, &addr, &port) && IsIpLiteral(addr)) resolvers.emplace_back(addr, port);
  }

  EventLoop loop;
  if (!loop.Init().ok()) return ErrorResponse("cannot create event loop");
  CurlMulti multi(&loop);
  if (!multi.Init().ok()) return ErrorResponse("cannot create curl multi handle");
  THResponse resp;
  {
    Measurer m(&loop, &multi, request, o, trust, policy, resolvers);
    m.Start();
    loop.RunUntil([&] { return m.finished(); });
    resp = m.Take();
  }  // abandons anything still running, before the multi and the loop go
  return resp;
}

}  // namespace rasad
