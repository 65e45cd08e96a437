// Cycle: one pass over every (network, target endpoint), at most
// `concurrency` endpoints in flight, each written to the store as soon as it
// completes. All networks are measured at once, on one EventLoop.
#pragma once

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "probe/config/config.h"
#include "probe/config/targets.h"
#include "probe/loop/event_loop.h"
#include "probe/measure/control_source.h"
#include "probe/measure/endpoint_job.h"
#include "probe/store/store.h"

namespace rasad {

struct CycleReport {
  std::string uid;
  std::string status;  // complete | aborted
  int64_t started_at = 0, finished_at = 0;
  std::vector<NetworkRuntime> networks;
  std::vector<Measurement> measurements;       // in completion order
  int64_t bytes_sent = 0, bytes_received = 0;  // estimated on the wire (docs/SCHEMA.md)
  std::string store_error;                     // first storage error, if any (measuring goes on)
  nlohmann::json capture;  // packet capture statistics per interface (docs/EVIDENCE.md)
};

// Resolves the configured networks for this cycle: interface present, its
// resolvers (configured or the system's). The default route when none.
std::vector<NetworkRuntime> ResolveNetworks(const Config& config);

// The network name under which control results are stored.
inline constexpr const char* kControlNetwork = "control";

// The URL a control helper is asked about for a web endpoint ("" for
// endpoints that stop before TLS or use IP literals only).
std::string ControlUrl(const Endpoint& e);

// Bytes on the wire for one observation: payload plus IP/UDP/TCP headers.
void WireBytes(const Observation& o, int64_t* sent, int64_t* received);

class Cycle {
 public:
  Cycle(EventLoop* loop, const Config& config, const std::vector<Target>& targets, Store* store,
        std::shared_ptr<TrustStore> trust);
  ~Cycle();

  // Runs to completion, or until stop() returns true (then in-flight work is
  // abandoned and the cycle is stored as 'aborted').
  Status Run(const std::function<bool()>& stop, CycleReport* report);
  // Progress messages for a person watching (e.g. "retrying in 2m").
  void SetLogger(std::function<void(const std::string&)> log) { log_ = std::move(log); }
  // Asks `source` about every web endpoint once per cycle (not owned).
  void SetControlSource(ControlSource* source) { control_ = source; }

 private:
  std::function<void(const std::string&)> log_;
  ControlSource* control_ = nullptr;
  EventLoop* loop_;
  const Config& config_;
  const std::vector<Target>& targets_;
  Store* store_;
  std::shared_ptr<TrustStore> trust_;
};

}  // namespace rasad
