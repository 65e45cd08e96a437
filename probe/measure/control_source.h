// ControlSource: where a cycle gets the uncensored view of a web endpoint
// (OONI's "control"). The probe only defines the seam; control/ implements it
// with the test-helper protocol. Results are stored as the network "control"
// so verdicts can always be recomputed from the database.
#pragma once

#include <functional>
#include <string>
#include <vector>

#include "probe/measure/observation.h"

namespace rasad {

class ControlSource {
 public:
  // Observations (step details carry "source":"control"), or an error text
  // when no helper answered.
  using Done = std::function<void(std::vector<Observation>, std::string error)>;
  virtual ~ControlSource() = default;
  // Asks about one URL; `done` runs once, from the event loop.
  virtual void Request(const std::string& url, Done done) = 0;
  // Abandons every request in flight (their `done` is not called).
  virtual void CancelAll() = 0;
};

}  // namespace rasad
