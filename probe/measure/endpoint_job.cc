#include "probe/measure/endpoint_job.h"

#include <algorithm>
#include <map>
#include <set>

#include "probe/core/clock.h"
#include "probe/net/bind.h"

namespace rasad {

EndpointJob::EndpointJob(const MeasureContext& ctx, const NetworkRuntime& net, const Target& target,
                         const Endpoint& endpoint, std::string cycle_uid, Done done)
    : ctx_(ctx), net_(net), target_(target), endpoint_(endpoint), done_(std::move(done)) {
  m_.uid = NewUid();
  m_.cycle_uid = std::move(cycle_uid);
  m_.network = net.config.name;
  m_.target = target.name;
  m_.target_version = target.version;
  m_.endpoint = endpoint.name;
  m_.control = target.control;
  m_.control_kind = target.control_kind;
}

EndpointJob::~EndpointJob() = default;  // queries_/flows_ abandon themselves

void EndpointJob::Start() {
  m_.t_start = WallMicros();
  state_ = State::kResolving;
  const Config& cfg = *ctx_.config;
  for (const std::string& host : endpoint_.hosts) {
    if (IsIpLiteral(host)) continue;
    for (const auto& [addr, port] : net_.resolvers) {
      for (int qtype : {1, 28}) {
        if (qtype == 28 && !cfg.ipv6) continue;
        DnsQuerySpec spec;
        spec.name = host;
        spec.qtype = qtype;
        spec.resolver_addr = addr;
        spec.resolver_port = port;
        spec.interface = net_.config.interface;
        spec.timeout_ms = cfg.dns_timeout_ms;
        spec.tries = cfg.dns_tries;
        spec.tcp = cfg.dns_tcp;
        ++pending_;
        queries_.push_back(std::make_unique<DnsQuery>(ctx_.loop, spec, [this](Observation o) {
          m_.observations.push_back(std::move(o));
          --pending_;
          MaybeFinish();
        }));
      }
    }
  }
  if (pending_ == 0) {
    // Only IP literals: nothing to resolve. Continue from the loop so that
    // done_ never runs inside Start().
    ++pending_;
    ctx_.loop->AddTimer(0, [this] {
      --pending_;
      MaybeFinish();
    });
    return;
  }
  for (auto& q : queries_) q->Start();
}

void EndpointJob::MaybeFinish() {
  if (pending_ > 0) return;
  if (state_ == State::kResolving) {
    if (endpoint_.last_step > Step::kDns) {
      StartFlows();
      if (pending_ > 0) return;
    }
  }
  state_ = State::kDone;
  m_.t_end = WallMicros();
  for (auto& r : flow_results_)
    for (auto& o : r) m_.observations.push_back(std::move(o));
  flow_results_.clear();
  SummariseMeasurement(endpoint_, &m_);
  // Deliver from the loop: the caller may destroy this job in done_.
  ctx_.loop->AddTimer(0, [this] {
    Done done = std::move(done_);
    done(std::move(m_));
  });
}

void EndpointJob::StartFlows() {
  state_ = State::kConnecting;
  const Config& cfg = *ctx_.config;
  for (const std::string& host : endpoint_.hosts) {
    // Addresses for this host: the literal, or every answer (all resolvers),
    // deduplicated, bounded per family.
    std::vector<std::string> v4, v6;
    auto add = [&](const std::string& a) {
      bool is6 = false;
      if (!IsIpLiteral(a, &is6)) return;
      auto& list = is6 ? v6 : v4;
      if (std::find(list.begin(), list.end(), a) != list.end()) return;
      if (static_cast<int>(list.size()) < cfg.max_addresses_per_family) list.push_back(a);
    };
    if (IsIpLiteral(host)) {
      add(host);
    } else {
      for (const Observation& o : m_.observations) {
        if (o.step != Step::kDns || o.hostname != host || !o.details.contains("answers")) continue;
        for (const auto& ans : o.details["answers"]) add(ans.value("value", ""));
      }
    }
    if (!cfg.ipv6) v6.clear();
    std::vector<std::string> addrs = v4;
    addrs.insert(addrs.end(), v6.begin(), v6.end());
    for (const std::string& addr : addrs) {
      for (uint16_t port : endpoint_.ports) {
        FlowSpec spec;
        spec.host = endpoint_.sni.empty() ? host : endpoint_.sni;
        spec.address = addr;
        spec.port = port;
        spec.tls = endpoint_.tls;
        spec.last_step = endpoint_.last_step;
        spec.method = endpoint_.method;
        spec.path = endpoint_.path;
        spec.interface = net_.config.interface;
        spec.trust = ctx_.trust;
        spec.expect_cert_names = endpoint_.expect_cert_names;
        spec.expect_status = endpoint_.expect_status;
        spec.tcp_timeout_ms = cfg.tcp_timeout_ms;
        spec.tls_timeout_ms = cfg.tls_timeout_ms;
        spec.http_timeout_ms = cfg.http_timeout_ms;
        spec.body_cap = cfg.body_cap;
        spec.body_store = cfg.body_store;
        spec.user_agent = cfg.user_agent;
        size_t slot = flow_results_.size();
        flow_results_.emplace_back();
        ++pending_;
        flows_.push_back(std::make_unique<Flow>(ctx_.loop, ctx_.multi, spec,
                                                [this, slot](std::vector<Observation> obs) {
                                                  flow_results_[slot] = std::move(obs);
                                                  --pending_;
                                                  MaybeFinish();
                                                }));
      }
    }
  }
  for (auto& f : flows_) f->Start();
}

namespace {
// Packet-evidence rows (docs/EVIDENCE.md) describe a step; they are not one.
bool IsFinding(const Observation& o) { return o.details.contains("finding"); }
}  // namespace

void SummariseMeasurement(const Endpoint& endpoint, Measurement* m) {
  m->furthest_step.reset();
  m->failed_step.reset();
  m->failure.reset();
  bool any_literal = std::any_of(endpoint.hosts.begin(), endpoint.hosts.end(),
                                 [](const std::string& h) { return IsIpLiteral(h); });
  // DNS: reached when any query produced an address.
  const Observation* first_dns_failure = nullptr;
  const Observation* first_probe_error = nullptr;
  bool dns_ok = false;
  for (const Observation& o : m->observations) {
    if (IsFinding(o)) continue;
    if (!o.probe_error.empty() && !first_probe_error) first_probe_error = &o;
    if (o.step != Step::kDns) continue;
    if (!o.failure && o.probe_error.empty()) dns_ok = true;
    if (o.failure && !first_dns_failure) first_dns_failure = &o;
  }
  bool resolved = dns_ok || any_literal;
  if (dns_ok) m->furthest_step = Step::kDns;

  // Flows: the one that got furthest speaks for the endpoint.
  std::map<std::string, std::vector<const Observation*>> flows;
  std::vector<std::string> order;
  for (const Observation& o : m->observations) {
    if (o.step == Step::kDns || IsFinding(o)) continue;
    if (!flows.count(o.flow_uid)) order.push_back(o.flow_uid);
    flows[o.flow_uid].push_back(&o);
  }
  int best = -1;
  const Observation* best_fail = nullptr;
  bool have_flow_result = false;
  for (const std::string& id : order) {
    int reached = -1;
    const Observation* fail = nullptr;
    bool probe_only = false;
    for (const Observation* o : flows[id]) {
      if (!o->probe_error.empty()) {
        probe_only = true;
        break;
      }
      if (o->failure) {
        fail = o;
        break;
      }
      reached = std::max(reached, static_cast<int>(o->step));
    }
    if (probe_only) continue;
    if (!have_flow_result || reached > best) {
      best = reached;
      best_fail = fail;
      have_flow_result = true;
    }
  }
  if (have_flow_result) {
    if (best >= 0) m->furthest_step = static_cast<Step>(best);
    if (best_fail) {
      m->failed_step = best_fail->step;
      m->failure = best_fail->failure;
    }
  } else if (!resolved) {
    if (first_dns_failure) {
      m->failed_step = Step::kDns;
      m->failure = first_dns_failure->failure;
    }
  }
  if (!have_flow_result && !dns_ok && !first_dns_failure && first_probe_error)
    m->probe_error = first_probe_error->probe_error;
  if (!have_flow_result && resolved && endpoint.last_step > Step::kDns && first_probe_error)
    m->probe_error = first_probe_error->probe_error;
}

}  // namespace rasad
