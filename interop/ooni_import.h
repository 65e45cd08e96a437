// interop/ — OONI-format import and export.
//
// Import: OONI measurement JSON (df-000 base keys + test_keys with queries[],
// tcp_connect[], tls_handshakes[], requests[]) becomes rasad Measurements and
// Observations with the same `details` keys as the native engine
// (docs/SCHEMA.md §4), so analysis/ classifies imported and native data alike.
// OONI's own verdict (test_keys.blocking, accessible, dns_consistency, x_*
// flags, IM *_status keys) and the control (test helper) response are kept
// beside the measurement in the `ooni_imports` table. Field mapping, what is
// dropped and the table: docs/OONI_IMPORT.md.
#pragma once

#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "probe/config/config.h"
#include "probe/core/status.h"
#include "probe/measure/observation.h"

namespace rasad {

class Store;

// Network of the measurements made from OONI's test helper responses.
inline constexpr const char* kOoniControlNetwork = "control-ooni";

struct OoniImportStats {
  int measurements = 0;  // OONI measurements written by this call
  int controls = 0;      // control-ooni measurements (test helper responses) written with them
  int skipped = 0;       // records not written: not a measurement, or already in the database
  std::vector<std::string> warnings;
  std::string cycle_uid;  // the file's cycle ("" when nothing was importable)
};

struct OoniMeasurement {
  Measurement m;      // network "ooni:<probe_asn>", target "ooni", endpoint input URL or test_name
  NetworkConfig net;  // name = m.network, operator_label "<probe_cc> <probe_asn>", asn
  nlohmann::json ooni_verdict;  // {"test_name", "test_version", "blocking", "accessible", ...}
  nlohmann::json control;       // test_keys.control, or null
  // The test helper's view of the same URL (web_connectivity with a
  // test_keys.control object): network kOoniControlNetwork, same cycle,
  // target and endpoint as `m`, observations from ThResponseToObservations
  // (details.source = "control"), uids derived from m.uid, times = m.t_start.
  // The classifier uses it as the control for `m` (IsControlNetwork).
  std::optional<Measurement> control_m;
  // Identity of the OONI measurement (columns of ooni_imports).
  std::string ooni_measurement_uid;  // server-side measurement_uid, "" when absent
  std::string report_id;
  std::string measurement_start_time;  // as in the file, "YYYY-MM-DD HH:MM:SS" (UTC)
  std::string test_name;
  std::string input;  // "" when null
  std::string probe_cc;
  std::string probe_asn;
  std::vector<std::string> notes;  // what could not be mapped (reported as warnings on import)
};

// Parses one OONI measurement (already-parsed JSON; an API wrapper
// {"raw_measurement": ...} is unwrapped). Uids are derived deterministically
// from the measurement's identity (report_id, input, start time, test name),
// so the same measurement always maps to the same rasad uids. probe_ip is
// never copied (and, when it is a real address, scrubbed from every string).
// Invalid: not an OONI measurement (the message says why).
Status ParseOoniMeasurement(const nlohmann::json& j, OoniMeasurement* out);

// Reads FILE (one JSON object, a JSON array of them, or JSONL; `//` comment
// lines are ignored) and writes everything into `store` as one cycle per file.
// The cycle uid is derived from the SHA-256 of the file contents: importing
// the same file again is detected and skipped; measurements already present
// (same OONI identity, e.g. from another file) are skipped one by one.
// Networks are recorded per probe_asn. Malformed JSON is an error naming
// FILE:LINE (for JSONL the line of the bad record); records before it are
// still written (the cycle is then marked 'aborted'). Records that are valid
// JSON but not measurements are skipped with a warning.
Status ImportOoniFile(const std::string& path, Store* store, OoniImportStats* stats,
                      std::vector<OoniMeasurement>* parsed = nullptr);

// Creates the ooni_imports table if missing (ImportOoniFile calls it).
Status EnsureOoniImportsTable(Store* store);

// `rasad import ooni FILE... [--database DB]`: opens (creating) the database,
// imports each file, prints one line per file to stdout and errors/warnings to
// stderr. Returns the process exit code (0 = every file imported).
// `cycles`, when given, receives the uid of every cycle written to (to
// classify them next).
int RunImportOoni(const std::vector<std::string>& files, const std::string& database,
                  std::vector<std::string>* cycles = nullptr);

}  // namespace rasad
