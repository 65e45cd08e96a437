// EndpointJob: the explicit state machine measuring one endpoint on one
// network: Resolve (every host x resolver x A/AAAA, in parallel) ->
// Connect (one Flow per address x port, in parallel) -> Done.
// It only records; it never judges (beyond naming the furthest step reached).
#pragma once

#include <functional>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "probe/config/config.h"
#include "probe/config/targets.h"
#include "probe/loop/event_loop.h"
#include "probe/measure/observation.h"
#include "probe/net/curl_multi.h"
#include "probe/net/dns_query.h"
#include "probe/net/flow.h"
#include "probe/net/tls_inspect.h"

namespace rasad {

// A configured network, resolved for one cycle.
struct NetworkRuntime {
  NetworkConfig config;
  int ifindex = 0;
  std::vector<std::pair<std::string, int>> resolvers;  // address, port
  std::string probe_error;  // non-empty: this network cannot be measured now
};

struct MeasureContext {
  EventLoop* loop = nullptr;
  CurlMulti* multi = nullptr;
  const Config* config = nullptr;
  std::shared_ptr<TrustStore> trust;
};

class EndpointJob {
 public:
  using Done = std::function<void(Measurement)>;
  EndpointJob(const MeasureContext& ctx, const NetworkRuntime& net, const Target& target,
              const Endpoint& endpoint, std::string cycle_uid, Done done);
  ~EndpointJob();  // abandons work in flight
  EndpointJob(const EndpointJob&) = delete;
  EndpointJob& operator=(const EndpointJob&) = delete;

  void Start();
  void SetAttempt(int attempt) { m_.attempt = attempt; }

 private:
  enum class State { kIdle, kResolving, kConnecting, kDone };
  void StartFlows();
  void MaybeFinish();
  void Summarise();

  MeasureContext ctx_;
  const NetworkRuntime& net_;
  const Target& target_;
  const Endpoint& endpoint_;
  Done done_;
  State state_ = State::kIdle;
  Measurement m_;
  std::vector<std::unique_ptr<DnsQuery>> queries_;
  std::vector<std::unique_ptr<Flow>> flows_;
  size_t pending_ = 0;
  std::vector<std::vector<Observation>> flow_results_;
};

// Derives furthest_step / failed_step / failure / probe_error from the
// observations (exposed for tests).
void SummariseMeasurement(const Endpoint& endpoint, Measurement* m);

}  // namespace rasad
