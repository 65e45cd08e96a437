#include "probe/capture/evidence.h"

#include <pcap/pcap.h>

#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <set>
#include <system_error>

#include "probe/core/clock.h"

namespace rasad {
namespace capture {

namespace {

// Warned once per process and reason: a probe without CAP_NET_RAW says so at
// its first cycle, not at every one.
bool FirstTime(const std::string& reason) {
  static std::set<std::string>* seen = new std::set<std::string>();
  return seen->insert(reason).second;
}

}  // namespace

bool IsFindingObservation(const Observation& o) {
  return o.details.is_object() && o.details.contains("finding");
}

std::vector<Observation> FindingsToObservations(const std::vector<Finding>& findings,
                                                const std::vector<const Observation*>& steps,
                                                const std::string& evidence_pcap) {
  std::vector<const Observation*> sorted;
  for (const Observation* s : steps)
    if (s) sorted.push_back(s);
  std::stable_sort(sorted.begin(), sorted.end(), [](const Observation* a, const Observation* b) {
    return a->t_start < b->t_start;
  });
  std::vector<Observation> out;
  if (sorted.empty()) return out;
  for (const Finding& f : findings) {
    int64_t t_us = f.t_ns / 1000;
    const Observation* target = sorted.front();
    for (const Observation* s : sorted)
      if (s->t_start <= t_us) target = s;
    Observation o;
    o.uid = NewUid();
    o.flow_uid = target->flow_uid;
    o.step = target->step;
    o.hostname = target->hostname;
    o.query_type = target->query_type;
    o.resolver = target->resolver;
    o.transport = target->transport;
    o.local_addr = target->local_addr;
    o.local_port = target->local_port;
    o.remote_addr = target->remote_addr;
    o.remote_port = target->remote_port;
    o.t_start = o.t_end = t_us;
    nlohmann::json d = nlohmann::json::object();
    d["finding"] = f.kind;
    d["signals"] = f.signals;
    d["proven"] = f.proven;
    d["flow"] = f.flow;
    d["evidence_pcap"] = evidence_pcap;
    d["observation_uid"] = target->uid;
    if (f.details.is_object() && f.details.contains("summary")) d["summary"] = f.details["summary"];
    d["finding_details"] = f.details;
    o.details = std::move(d);
    out.push_back(std::move(o));
  }
  return out;
}

Status WritePcap(const std::string& path, int link_type, const std::vector<CapturedFrame>& frames) {
  std::error_code ec;
  std::filesystem::path p(path);
  if (p.has_parent_path()) std::filesystem::create_directories(p.parent_path(), ec);
  if (ec) return Status::IoError("cannot create " + p.parent_path().string() + ": " + ec.message());
  uint32_t snap = 65535;
  for (const CapturedFrame& f : frames)
    if (f.bytes) snap = std::max<uint32_t>(snap, static_cast<uint32_t>(f.bytes->size()));
  pcap_t* dead = pcap_open_dead_with_tstamp_precision(link_type, static_cast<int>(snap),
                                                      PCAP_TSTAMP_PRECISION_NANO);
  if (!dead) return Status::Internal("pcap_open_dead failed");
  std::string tmp = path + ".tmp";
  pcap_dumper_t* d = pcap_dump_open(dead, tmp.c_str());
  if (!d) {
    std::string why = pcap_geterr(dead);
    pcap_close(dead);
    return Status::IoError("cannot write " + path + ": " + why);
  }
  for (const CapturedFrame& f : frames) {
    if (!f.bytes) continue;
    struct pcap_pkthdr h {};
    h.ts.tv_sec = static_cast<time_t>(f.ts_ns / 1000000000);
    h.ts.tv_usec = static_cast<suseconds_t>(f.ts_ns % 1000000000);  // ns: nano dumper
    h.caplen = static_cast<bpf_u_int32>(f.bytes->size());
    h.len = std::max<bpf_u_int32>(f.wire_len, h.caplen);
    pcap_dump(reinterpret_cast<u_char*>(d), &h, f.bytes->data());
  }
  bool ok = pcap_dump_flush(d) == 0;
  pcap_dump_close(d);
  pcap_close(dead);
  if (!ok || std::rename(tmp.c_str(), path.c_str()) != 0) {
    std::remove(tmp.c_str());
    return Status::IoError("cannot write " + path);
  }
  return Status::Ok();
}

EvidenceCollector::EvidenceCollector(EvidenceOptions options) : opt_(std::move(options)) {}

EvidenceCollector::~EvidenceCollector() { Close(); }

Status EvidenceCollector::Open(EventLoop* loop, const std::vector<NetworkRuntime>& networks,
                               const std::string& evidence_dir) {
  Close();
  loop_ = loop;
  evidence_dir_ = evidence_dir;
  // One handle per interface, shared by the networks on it.
  std::map<std::string, std::vector<const NetworkRuntime*>> by_iface;
  for (const NetworkRuntime& n : networks) {
    if (!n.probe_error.empty()) continue;
    std::string iface = n.config.interface;
    if (iface.empty()) iface = DefaultRouteInterface();
    if (iface.empty()) iface = "any";
    by_iface[iface].push_back(&n);
  }
  for (auto& [name, nets] : by_iface) {
    auto ifc = std::make_unique<Iface>();
    ifc->name = name;
    CaptureOptions co = opt_.capture;
    for (const NetworkRuntime* n : nets)
      for (const auto& r : n->resolvers) co.dns_servers.push_back(r);
    ifc->filter = co.filter.empty() ? DefaultFilter(co.dns_servers, co.tcp_ports) : co.filter;
    for (const auto& r : co.dns_servers) {
      uint16_t port = static_cast<uint16_t>(r.second);
      if (!IsDnsPort(opt_.thresholds, port)) opt_.thresholds.dns_ports.push_back(port);
    }
    ifc->capture = std::make_unique<LiveCapture>(name, co);
    Status st = ifc->capture->Open(loop);
    if (st.ok()) {
      ifc->status = "ok";
    } else {
      ifc->status = "unavailable: " + ifc->capture->unavailable_reason();
      if (log_ && FirstTime(ifc->status))
        log_("warning: packet capture " + ifc->status +
             "; measuring without packet evidence (docs/EVIDENCE.md \"Privileges\")");
    }
    for (const NetworkRuntime* n : nets) by_network_[n->config.name] = ifc.get();
    ifaces_.push_back(std::move(ifc));
  }
  return Status::Ok();
}

void EvidenceCollector::Close() {
  FlushPending();
  for (auto& i : ifaces_) i->capture->Close();
}

LiveCapture* EvidenceCollector::CaptureFor(const std::string& network) const {
  auto it = by_network_.find(network);
  if (it == by_network_.end() || !it->second->capture->is_open()) return nullptr;
  return it->second->capture.get();
}

std::string EvidenceCollector::CaptureStatus(const std::string& network) const {
  auto it = by_network_.find(network);
  if (it == by_network_.end()) return "unavailable: no capture opened for network " + network;
  return it->second->status;
}

std::vector<std::string> EvidenceCollector::OnMeasurementDone(Measurement* m) {
  std::vector<std::string> files;
  LiveCapture* cap = CaptureFor(m->network);
  if (!cap) {
    std::string status = CaptureStatus(m->network);
    for (Observation& o : m->observations)
      if (!IsFindingObservation(o)) o.details["capture"] = status;
    return files;
  }
  cap->Poll();  // whatever the kernel holds for this measurement

  // One group per connection (tcp/tls/http share flow_uid) or DNS query.
  std::vector<std::string> order;
  std::map<std::string, std::vector<Observation*>> groups;
  for (Observation& o : m->observations) {
    if (IsFindingObservation(o)) continue;
    if (!groups.count(o.flow_uid)) order.push_back(o.flow_uid);
    groups[o.flow_uid].push_back(&o);
  }
  std::vector<Observation> found;
  std::vector<CapturedFrame> evidence;
  for (size_t gi = 0; gi < order.size(); ++gi) {
    std::vector<Observation*>& g = groups[order[gi]];
    std::vector<const Observation*> steps(g.begin(), g.end());
    PacketSlice slice = cap->SliceFlow(steps);
    for (Observation* o : g) {
      o->details["capture"] = "ok";
      o->details["capture_packets"] = slice.packets.size();
    }
    if (slice.empty()) continue;
    Detector detector(opt_.thresholds);
    for (const Packet& p : slice.packets) detector.Add(p);
    std::vector<Finding> findings = detector.Finish();
    if (findings.empty()) continue;
    for (Observation& fo : FindingsToObservations(findings, steps, "")) {
      found.push_back(std::move(fo));
    }
    evidence.insert(evidence.end(), slice.frames.begin(), slice.frames.end());
  }
  std::string path;
  if (!found.empty() && opt_.write_pcaps && !evidence_dir_.empty()) {
    std::stable_sort(
        evidence.begin(), evidence.end(),
        [](const CapturedFrame& a, const CapturedFrame& b) { return a.ts_ns < b.ts_ns; });
    std::string cycle = m->cycle_uid.empty() ? "no-cycle" : m->cycle_uid;
    std::string uid = m->uid.empty() ? NewUid() : m->uid;
    path = evidence_dir_ + "/" + cycle + "/" + uid + ".pcap";
    Status st = WritePcap(path, cap->link_type(), evidence);
    if (st.ok()) {
      files.push_back(path);
      ++files_;
    } else {
      if (log_) log_("warning: evidence file: " + st.ToString());
      path.clear();
    }
  }
  for (Observation& fo : found) {
    fo.details["evidence_pcap"] = path;
    m->observations.push_back(std::move(fo));
  }
  findings_ += found.size();
  for (const std::string& fu : order)
    for (Observation* o : groups[fu]) cap->Release(*o);
  return files;
}

void EvidenceCollector::OnMeasurementDoneLater(Measurement m,
                                               std::function<void(Measurement)> done) {
  if (!loop_ || opt_.hold_on_ms <= 0 || !CaptureFor(m.network)) {
    OnMeasurementDone(&m);
    done(std::move(m));
    return;
  }
  uint64_t id = next_pending_++;
  auto p = std::make_unique<Pending>();
  p->m = std::move(m);
  p->done = std::move(done);
  p->timer = loop_->AddTimer(opt_.hold_on_ms * 1000, [this, id] {
    auto it = pending_.find(id);
    if (it == pending_.end()) return;
    std::unique_ptr<Pending> pend = std::move(it->second);
    pending_.erase(it);
    OnMeasurementDone(&pend->m);
    pend->done(std::move(pend->m));
  });
  pending_[id] = std::move(p);
}

void EvidenceCollector::FlushPending() {
  while (!pending_.empty()) {
    auto it = pending_.begin();
    std::unique_ptr<Pending> pend = std::move(it->second);
    pending_.erase(it);
    if (loop_ && pend->timer) loop_->CancelTimer(pend->timer);
    OnMeasurementDone(&pend->m);
    pend->done(std::move(pend->m));
  }
}

CaptureStats EvidenceCollector::Stats() {
  CaptureStats total;
  for (auto& i : ifaces_) total += i->capture->Stats();
  return total;
}

nlohmann::json EvidenceCollector::StatsJson() {
  nlohmann::json out = nlohmann::json::object();
  nlohmann::json ifs = nlohmann::json::object();
  CaptureStats total;
  for (auto& i : ifaces_) {
    CaptureStats s = i->capture->Stats();
    total += s;
    nlohmann::json j = s.ToJson();
    j["status"] = i->status;
    j["filter"] = i->filter;
    j["link_type"] = i->capture->link_type();
    ifs[i->name] = j;
  }
  out["interfaces"] = ifs;
  out["total"] = total.ToJson();
  out["findings"] = findings_;
  out["evidence_files"] = files_;
  return out;
}

}  // namespace capture
}  // namespace rasad
