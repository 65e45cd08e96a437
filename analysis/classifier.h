// The classifier: observations of one cycle in, one verdict per
// (network, target, endpoint) out. Pure: no I/O, no clock, so the same rows
// always give the same verdicts (`rasad classify` recomputes them). Rules and
// their order: docs/VERDICTS.md.
#pragma once

#include <string>
#include <vector>

#include "analysis/bogons.h"
#include "analysis/fingerprints.h"
#include "analysis/verdict.h"
#include "probe/measure/observation.h"

namespace rasad {

struct ClassifierOptions {
  const Fingerprints* fingerprints = nullptr;  // may be null: no fingerprint rules
  BogonList bogons;
  // throttled: an HTTP download at least `throttle_ratio` times slower than on
  // another operator (or the control) for the same endpoint, with at least
  // `throttle_min_bytes` received on both.
  double throttle_ratio = 10.0;
  int64_t throttle_min_bytes = 16 * 1024;
};

// Networks whose name starts with this are control vantages (the control
// helper's view of an endpoint), not operators: they inform verdicts and get
// none themselves.
inline constexpr const char* kControlNetworkPrefix = "control";
bool IsControlNetwork(const std::string& network);

// Classifies every (network, target, endpoint) of one cycle. `measurements`
// may hold several attempts per endpoint (retries) and control measurements.
std::vector<Verdict> ClassifyCycle(const std::vector<Measurement>& measurements,
                                   const ClassifierOptions& options);

// The classifier's version, stored with each verdict.
const char* ClassifierVersion();

}  // namespace rasad
