// Tidy exports for spreadsheets and newsroom tools: one row per observation,
// verdict or event, as CSV (RFC 4180, header row) or JSON Lines (one object
// per row, the same keys, typed values). Columns: docs/EXPORTS.md.
// observations.local_addr is never selected, and every line passes through
// the Scrubber (report/privacy.h).
#pragma once

#include <functional>
#include <string>
#include <vector>

#include "probe/core/status.h"
#include "report/events.h"
#include "report/privacy.h"

namespace rasad {

class Store;

struct ExportFilter {
  int64_t since = 0, until = 0;  // µs UTC; 0 = unbounded
  std::string target, network;
  EventRules rules;  // events
};

enum class ExportFormat { kCsv, kJson };

// The documented columns of each kind ("observations", "verdicts", "events").
const std::vector<std::string>& ExportColumns(const std::string& what);

// Writes the rows (CSV: the header first) to `line`, each without newline.
Status ExportRows(const Store& store, const std::string& what, ExportFormat format,
                  const ExportFilter& filter, const Scrubber& scrubber,
                  const std::function<void(const std::string&)>& line, int64_t* rows);

// RFC 4180 field quoting (quotes only when needed).
std::string CsvField(const std::string& s);

}  // namespace rasad
