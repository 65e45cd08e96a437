// Evidence: live capture during a cycle, detectors over each finished
// measurement's packets, findings stored as observations of the affected
// step, and the packets of affected flows kept as pcap files
// (docs/EVIDENCE.md "Live capture" and "Evidence files").
//
// Integration (probe/measure/cycle.cc):
//   capture::EvidenceCollector evidence;            // per cycle (or longer)
//   evidence.Open(loop_, report->networks, results_dir + "/evidence");
//   ... in the completion callback, before the measurement is stored:
//   evidence.OnMeasurementDone(&m);
//   ... at the end of the cycle:
//   report->capture = evidence.StatsJson();
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "probe/capture/detectors.h"
#include "probe/capture/live_capture.h"
#include "probe/core/status.h"
#include "probe/loop/event_loop.h"
#include "probe/measure/endpoint_job.h"
#include "probe/measure/observation.h"

namespace rasad {
namespace capture {

struct EvidenceOptions {
  CaptureOptions capture;  // per handle; dns_servers is filled from the networks
  Thresholds thresholds;   // dns_ports is extended with the resolvers' ports
  // OnMeasurementDoneLater waits this long before judging so that answers
  // racing the first one (a genuine DNS answer after an injected one, the
  // server's data after an injected RST) are in the capture. §2.3 asks for
  // a hold-on of >= 1 s after the first DNS answer.
  int64_t hold_on_ms = 1000;
  // Write evidence files (false: findings are still stored, without a file).
  bool write_pcaps = true;
};

// Turns the findings of one connection (or DNS query) into observations
// linked to the affected step: for each finding, the step of `steps` that
// was in progress at the finding's time (the latest with t_start <= t; the
// first step when none). The observation copies that step's flow_uid, step,
// hostname, transport and addresses; t_start = t_end = the finding's time;
// details = {"finding": kind, "signals": n, "proven": bool, "flow": "...",
// "evidence_pcap": path ("" when none), "observation_uid": uid of the
// affected step, "summary": sentence, "finding_details": {...}}. No failure:
// the finding is evidence about the step, not a step of its own.
std::vector<Observation> FindingsToObservations(const std::vector<Finding>& findings,
                                                const std::vector<const Observation*>& steps,
                                                const std::string& evidence_pcap);

// True for observations made by FindingsToObservations (details.finding).
bool IsFindingObservation(const Observation& o);

// Writes frames (all of one link type) to path as a pcap with nanosecond
// timestamps, creating parent directories. Frames are written in the order given.
Status WritePcap(const std::string& path, int link_type, const std::vector<CapturedFrame>& frames);

class EvidenceCollector {
 public:
  explicit EvidenceCollector(EvidenceOptions options = EvidenceOptions());
  ~EvidenceCollector();
  EvidenceCollector(const EvidenceCollector&) = delete;
  EvidenceCollector& operator=(const EvidenceCollector&) = delete;

  // Opens one capture per interface of `networks` (the default route's
  // interface for networks without one; networks with a probe_error are
  // skipped). A capture that cannot be opened (no CAP_NET_RAW, ...) is not an
  // error: it is logged once per process and its networks are measured
  // without evidence (observations get details.capture = "unavailable:
  // <why>"). evidence_dir: "<results dir>/evidence"; files go to
  // <evidence_dir>/<cycle uid>/<measurement uid>.pcap.
  Status Open(EventLoop* loop, const std::vector<NetworkRuntime>& networks,
              const std::string& evidence_dir);
  void Close();

  // Judges a finished measurement now: drains the capture, slices each
  // connection / DNS query, runs the detectors, appends one observation per
  // finding to m->observations, writes the evidence pcap when there is a
  // finding, releases the flows. Every original observation gets
  // details.capture ("ok" or "unavailable: <why>") and, when ok,
  // details.capture_packets. Returns the evidence files written.
  std::vector<std::string> OnMeasurementDone(Measurement* m);
  // The same after hold_on_ms (on the loop): done(m) is called with the
  // finding observations appended. Pending ones run at FlushPending() or
  // Close().
  void OnMeasurementDoneLater(Measurement m, std::function<void(Measurement)> done);
  void FlushPending();
  size_t pending() const { return pending_.size(); }

  // Capture counters summed over interfaces since Open.
  CaptureStats Stats();
  // {"interfaces": {"eth0": {"status": "ok", "link_type": 1, "filter": "...",
  //  received, kernel_dropped, ...}}, "total": {...}, "findings": n,
  //  "evidence_files": n}
  nlohmann::json StatsJson();
  // "ok", or "unavailable: <why>" for the network's capture.
  std::string CaptureStatus(const std::string& network) const;
  // The capture of a network (nullptr when unavailable): tests and replay.
  LiveCapture* CaptureFor(const std::string& network) const;

  void SetLogger(std::function<void(const std::string&)> log) { log_ = std::move(log); }

 private:
  struct Iface {
    std::string name;
    std::unique_ptr<LiveCapture> capture;
    std::string status;  // "ok" / "unavailable: ..."
    std::string filter;
  };
  struct Pending {
    Measurement m;
    std::function<void(Measurement)> done;
    EventLoop::TimerId timer = 0;
  };

  EvidenceOptions opt_;
  EventLoop* loop_ = nullptr;
  std::string evidence_dir_;
  std::vector<std::unique_ptr<Iface>> ifaces_;
  std::map<std::string, Iface*> by_network_;
  std::map<uint64_t, std::unique_ptr<Pending>> pending_;
  uint64_t next_pending_ = 1;
  uint64_t findings_ = 0;
  uint64_t files_ = 0;
  std::function<void(const std::string&)> log_;
};

}  // namespace capture
}  // namespace rasad
