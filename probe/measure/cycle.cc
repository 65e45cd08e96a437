#include "probe/measure/cycle.h"

#include <net/if.h>

#include <deque>
#include <filesystem>
#include <unordered_map>

#include "probe/capture/evidence.h"
#include "probe/core/clock.h"
#include "probe/net/bind.h"
#include "probe/net/curl_multi.h"

namespace rasad {

std::vector<NetworkRuntime> ResolveNetworks(const Config& config) {
  std::vector<NetworkConfig> nets = config.networks;
  if (nets.empty()) {
    NetworkConfig def;
    def.name = "default";
    def.operator_label = "default route";
    nets.push_back(def);
  }
  std::vector<NetworkRuntime> out;
  for (const NetworkConfig& nc : nets) {
    NetworkRuntime rt;
    rt.config = nc;
    if (!nc.interface.empty()) {
      rt.ifindex = static_cast<int>(if_nametoindex(nc.interface.c_str()));
      if (rt.ifindex == 0) rt.probe_error = "interface " + nc.interface + " not found";
    }
    std::vector<std::string> resolvers = nc.resolvers.empty() ? SystemResolvers() : nc.resolvers;
    for (const std::string& r : resolvers) {
      std::string addr;
      int port = 53;
      // Scoped IPv6 ("fe80::1%eth0") is passed through without the scope.
      std::string plain = r.substr(0, r.find('%'));
      if (SplitHostPort(plain, 53, &addr, &port)) rt.resolvers.emplace_back(addr, port);
    }
    if (rt.resolvers.empty() && rt.probe_error.empty())
      rt.probe_error = "no DNS resolver configured or found in /etc/resolv.conf";
    out.push_back(std::move(rt));
  }
  return out;
}

void WireBytes(const Observation& o, int64_t* sent, int64_t* received) {
  bool v6 = o.remote_addr.find(':') != std::string::npos;
  int64_t ip = v6 ? 40 : 20;
  if (o.step == Step::kDns) {
    int64_t hdr = ip + (o.transport == "udp" ? 8 : 32);
    int64_t tries = o.details.value("timeouts", 0) + 1;
    *sent = o.bytes_sent + (o.bytes_sent ? hdr * tries : 0);
    *received = o.bytes_received + hdr * o.details.value("datagrams_received", 0);
    return;
  }
  *sent = o.bytes_sent;
  *received = o.bytes_received;
  if (o.step == Step::kTcp) {
    // Each segment carries an IP header and a TCP header with timestamps.
    int64_t hdr = ip + 32;
    *sent += hdr * o.details.value("segs_out", static_cast<int64_t>(0));
    *received += hdr * o.details.value("segs_in", static_cast<int64_t>(0));
  }
}

std::string ControlUrl(const Endpoint& e) {
  if (e.last_step < Step::kTls || e.hosts.empty() || e.ports.empty()) return "";
  std::string host = e.sni.empty() ? e.hosts[0] : e.sni;
  if (IsIpLiteral(host)) return "";
  bool https = e.tls;
  int port = e.ports[0];
  std::string url = std::string(https ? "https://" : "http://") + host;
  if (port != (https ? 443 : 80)) url += ":" + std::to_string(port);
  return url + (e.last_step == Step::kHttp ? e.path : "/");
}

Cycle::Cycle(EventLoop* loop, const Config& config, const std::vector<Target>& targets,
             Store* store, std::shared_ptr<TrustStore> trust)
    : loop_(loop), config_(config), targets_(targets), store_(store), trust_(std::move(trust)) {}

Cycle::~Cycle() = default;

Status Cycle::Run(const std::function<bool()>& stop, CycleReport* report) {
  CurlMulti multi(loop_);
  Status st = multi.Init();
  if (!st.ok()) return st;

  report->uid = NewUid();
  report->started_at = WallMicros();
  report->networks = ResolveNetworks(config_);

  CycleInfo info;
  info.uid = report->uid;
  info.started_at = report->started_at;
  info.rasad_version = RASAD_VERSION;
  info.config_file = config_.file;
  for (const Target& t : targets_) info.target_versions[t.name] = t.version;
  if (store_) {
    st = store_->BeginCycle(info);
    if (!st.ok()) return st;  // nothing measured yet: the caller reports it
    for (const NetworkRuntime& rt : report->networks) {
      CycleNetwork cn;
      cn.cycle_uid = report->uid;
      cn.config = rt.config;
      cn.ifindex = rt.ifindex;
      for (auto& [a, p] : rt.resolvers) cn.resolvers.push_back(JoinHostPort(a, p));
      cn.probe_error = rt.probe_error;
      Status s = store_->RecordNetwork(cn);
      if (!s.ok() && report->store_error.empty()) report->store_error = s.ToString();
    }
  }

  // Interleave networks so that the same endpoint is measured on every
  // operator at nearly the same moment (cross-operator comparison).
  struct Work {
    const NetworkRuntime* net;
    const Target* target;
    const Endpoint* endpoint;
    int attempt = 0;
  };
  std::deque<Work> queue;
  for (const Target& t : targets_)
    for (const Endpoint& e : t.endpoints)
      for (const NetworkRuntime& rt : report->networks)
        if (rt.probe_error.empty()) queue.push_back({&rt, &t, &e, 0});

  MeasureContext ctx{loop_, &multi, &config_, trust_};
  std::unordered_map<uint64_t, std::unique_ptr<EndpointJob>> running;
  std::vector<std::unique_ptr<EndpointJob>> retired;  // destroyed outside callbacks
  uint64_t next_id = 0;
  size_t concurrency = config_.concurrency > 0 ? static_cast<size_t>(config_.concurrency) : 1;

  // Packet evidence (docs/EVIDENCE.md): one capture per measured interface.
  capture::EvidenceOptions eopt;
  eopt.hold_on_ms = config_.capture_hold_on_ms;
  for (const Target& t : targets_)
    for (const Endpoint& e : t.endpoints)
      eopt.capture.tcp_ports.insert(eopt.capture.tcp_ports.end(), e.ports.begin(), e.ports.end());
  capture::EvidenceCollector evidence(eopt);
  bool evidence_open = false;
  size_t pending_evidence = 0;
  if (config_.capture) {
    if (log_) evidence.SetLogger(log_);
    std::string dir = std::filesystem::path(config_.database).parent_path().string();
    evidence_open =
        evidence.Open(loop_, report->networks, (dir.empty() ? "." : dir) + "/evidence").ok();
  }
  auto keep = [&](Measurement m) {
    if (store_) {
      Status s = store_->WriteMeasurement(m);
      if (!s.ok() && report->store_error.empty()) report->store_error = s.ToString();
    }
    for (const Observation& o : m.observations) {
      int64_t s = 0, r = 0;
      WireBytes(o, &s, &r);
      report->bytes_sent += s;
      report->bytes_received += r;
    }
    report->measurements.push_back(std::move(m));
  };

  // Failed endpoints are measured again after a pause (docs/CONFIG.md
  // [retries]); the pause runs on a timer, so other endpoints go on.
  std::vector<EventLoop::TimerId> retry_timers;
  size_t pending_retries = 0;
  auto on_done = [&](uint64_t id, const Work& w, Measurement m) {
    if ((m.failure || !m.probe_error.empty()) && w.attempt < config_.retry_count) {
      Work again = w;
      again.attempt = w.attempt + 1;
      ++pending_retries;
      retry_timers.push_back(loop_->AddTimer(config_.retry_spacing_ms * 1000, [&, again] {
        --pending_retries;
        queue.push_front(again);  // retries go before untouched work
      }));
    }
    auto it = running.find(id);
    if (it != running.end()) {
      retired.push_back(std::move(it->second));
      running.erase(it);
    }
    if (evidence_open) {
      // Packets racing the end of the measurement (a genuine answer after an
      // injected one) are still collected for hold_on before judging.
      ++pending_evidence;
      evidence.OnMeasurementDoneLater(std::move(m), [&](Measurement done) {
        --pending_evidence;
        keep(std::move(done));
      });
    } else {
      keep(std::move(m));
    }
  };
  auto launch = [&] {
    while (!queue.empty() && running.size() < concurrency) {
      Work w = queue.front();
      queue.pop_front();
      uint64_t id = next_id++;
      auto job = std::make_unique<EndpointJob>(
          ctx, *w.net, *w.target, *w.endpoint, report->uid,
          [&, id, w](Measurement m) { on_done(id, w, std::move(m)); });
      job->SetAttempt(w.attempt);
      EndpointJob* raw = job.get();
      running.emplace(id, std::move(job));
      raw->Start();
    }
  };

  // The control's view, once per web endpoint, alongside the measurements.
  size_t pending_controls = 0;
  if (control_) {
    for (const Target& t : targets_) {
      for (const Endpoint& e : t.endpoints) {
        std::string url = ControlUrl(e);
        if (url.empty()) continue;
        ++pending_controls;
        control_->Request(url,
                          [&, tp = &t, ep = &e](std::vector<Observation> obs, std::string error) {
                            --pending_controls;
                            Measurement m;
                            m.uid = NewUid();
                            m.cycle_uid = report->uid;
                            m.network = kControlNetwork;
                            m.target = tp->name;
                            m.target_version = tp->version;
                            m.endpoint = ep->name;
                            m.control = tp->control;
                            m.control_kind = tp->control_kind;
                            m.t_start = obs.empty() ? WallMicros() : obs.front().t_start;
                            m.t_end = WallMicros();
                            m.observations = std::move(obs);
                            SummariseMeasurement(*ep, &m);
                            if (!error.empty()) m.probe_error = "control helper: " + error;
                            if (store_) {
                              Status s = store_->WriteMeasurement(m);
                              if (!s.ok() && report->store_error.empty())
                                report->store_error = s.ToString();
                            }
                            report->measurements.push_back(std::move(m));
                          });
      }
    }
  }

  bool aborted = false;
  launch();
  bool told = false;
  while (!running.empty() || pending_retries > 0 || !queue.empty() || pending_controls > 0 ||
         pending_evidence > 0) {
    if (running.empty() && queue.empty() && pending_retries > 0 && !told && log_) {
      told = true;  // only retries left: say why nothing seems to happen
      log_(std::to_string(pending_retries) + " failed endpoint(s) will be measured again in " +
           std::to_string(config_.retry_spacing_ms / 1000) +
           " s (see [retries] in docs/CONFIG.md)");
    }
    if (stop && stop()) {
      aborted = true;
      break;
    }
    loop_->RunOnce(-1);
    retired.clear();
    launch();
  }
  for (EventLoop::TimerId t : retry_timers) loop_->CancelTimer(t);
  if (control_ && pending_controls > 0) control_->CancelAll();
  running.clear();  // abandons in-flight work when stopping
  if (evidence_open) {
    evidence.FlushPending();  // judge and store what is already measured
    report->capture = evidence.StatsJson();
    evidence.Close();
  }
  retired.clear();

  report->finished_at = WallMicros();
  report->status = aborted ? "aborted" : "complete";
  if (store_) {
    CycleTotals totals;
    totals.finished_at = report->finished_at;
    totals.status = report->status;
    totals.measurements = static_cast<int64_t>(report->measurements.size());
    totals.bytes_sent = report->bytes_sent;
    totals.bytes_received = report->bytes_received;
    if (!report->capture.is_null()) totals.capture_json = report->capture.dump();
    Status s = store_->FinishCycle(report->uid, totals);
    if (!s.ok() && report->store_error.empty()) report->store_error = s.ToString();
  }
  return Status::Ok();
}

}  // namespace rasad
