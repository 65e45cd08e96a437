// Human and machine summaries of a cycle: the per-network table printed by
// `rasad probe` and the JSON written by --summary-json (docs/CLI.md).
#pragma once

#include <nlohmann/json.hpp>
#include <ostream>
#include <string>

#include "analysis/verdict.h"
#include "probe/measure/cycle.h"

namespace rasad {

// `verdicts` may be empty (not classified): the VERDICT column is left out.
void PrintCycleTable(const CycleReport& report, const std::vector<Verdict>& verdicts,
                     std::ostream& out);
nlohmann::json CycleSummaryJson(const CycleReport& report, const std::vector<Verdict>& verdicts);
// Verdicts of stored cycles, per network, with the per-app rollup.
void PrintVerdictTable(const std::vector<Verdict>& verdicts, std::ostream& out);

}  // namespace rasad
