// Human and machine summaries of a cycle: the per-network table printed by
// `rasad probe` and the JSON written by --summary-json (docs/CLI.md).
#pragma once

#include <nlohmann/json.hpp>
#include <ostream>
#include <string>

#include "probe/measure/cycle.h"

namespace rasad {

void PrintCycleTable(const CycleReport& report, std::ostream& out);
nlohmann::json CycleSummaryJson(const CycleReport& report);

}  // namespace rasad
