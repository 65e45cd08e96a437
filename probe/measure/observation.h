// Observation: one step of one measurement, as it happened on the wire.
// No judgement here: analysis/ decides what observations mean.
// Persisted by probe/store (schema: docs/SCHEMA.md).
#pragma once

#include <cstdint>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "probe/config/targets.h"

namespace rasad {

struct Observation {
  std::string uid;       // stable id of this row
  std::string flow_uid;  // groups the tcp/tls/http steps of one connection;
                         // for dns, groups the tries of one query
  Step step = Step::kDns;
  std::string hostname;    // name queried (dns) or SNI/Host (tls/http)
  std::string query_type;  // dns: "A" or "AAAA"
  std::string resolver;    // dns: "ip:port"
  std::string transport;   // "udp" or "tcp"
  std::string local_addr;  // as seen by the socket (private: never exported)
  int local_port = 0;
  std::string remote_addr;
  int remote_port = 0;
  int64_t t_start = 0;  // wall-clock microseconds (UTC)
  int64_t t_end = 0;
  int64_t bytes_sent = 0;  // payload bytes (UDP/TCP), see docs/SCHEMA.md
  int64_t bytes_received = 0;
  std::optional<std::string> failure;  // OONI failure string; nullopt = success
  std::string probe_error;  // set when rasad itself failed (e.g. bind): not a network result
  nlohmann::json details = nlohmann::json::object();  // step-specific fields
  std::string raw;                                    // dns: raw response bytes (empty when none)
};

// The result of measuring one endpoint on one network in one cycle.
struct Measurement {
  std::string uid;
  std::string cycle_uid;
  std::string network;  // NetworkConfig::name
  std::string target;
  std::string target_version;
  std::string endpoint;
  bool control = false;
  std::string control_kind;  // canaries: "ip_literal", "cdn" or "domestic"
  int attempt = 0;           // 0 = first; retries after a failure count up
  int64_t t_start = 0;
  int64_t t_end = 0;
  // Furthest step that succeeded on any connection (nullopt: not even DNS).
  std::optional<Step> furthest_step;
  std::optional<Step> failed_step;     // step that failed after furthest_step
  std::optional<std::string> failure;  // that step's failure string
  std::string probe_error;             // the measurement could not be made
  std::vector<Observation> observations;
};

}  // namespace rasad
