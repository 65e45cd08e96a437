// interop/ooni_export — rasad measurements out as OONI measurements
// (df-000 base keys; test_keys queries[], tcp_connect[], tls_handshakes[],
// requests[] as in OONI's data formats df-002/005/006/001), one JSON object
// per line. The inverse of ooni_import. Field mapping: docs/EXPORTS.md.
//
// Safety: probe_ip is always "127.0.0.1"; the volunteer's local addresses
// are never copied (observations.local_addr is not read) and, where they
// appear inside text (an echoed header, an error message), the caller's
// scrubber replaces them.
#pragma once

#include <functional>
#include <nlohmann/json.hpp>
#include <string>

#include "analysis/verdict.h"
#include "probe/core/status.h"
#include "probe/measure/observation.h"
#include "probe/store/store.h"

namespace rasad {

struct OoniExportOptions {
  int64_t since = 0, until = 0;  // measurement t_start, µs UTC; 0 = unbounded
  std::string target, network;   // "" = all
  // ISO 3166 alpha-2 country of every network ("ZZ" = unknown, OONI's value):
  // rasad's network configuration has an ASN but no country.
  std::string probe_cc = "ZZ";
};

// One measurement as an OONI measurement. `net` (may be null) gives
// probe_asn and probe_network_name; `verdict` (may be null) gives
// test_keys.blocking/accessible and the x_rasad_* keys.
nlohmann::ordered_json MeasurementToOoni(const Measurement& m, const CycleNetwork* net,
                                         const Verdict* verdict, int64_t cycle_started_at,
                                         const std::string& probe_cc);

// Every operator measurement in the filter (control networks excluded), in
// time order, one line each to `line` (without the newline). `count` gets the
// number written.
Status ExportOoni(const Store& store, const OoniExportOptions& options,
                  const std::function<void(const std::string&)>& line, int64_t* count);

}  // namespace rasad
