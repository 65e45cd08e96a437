// `rasad report events|timeline|compare|html` and `rasad export
// csv|json|ooni` as functions the CLI calls (docs/REPORTS.md,
// docs/EXPORTS.md). They return the process exit code: 0 ok, 1 database or
// I/O error, 2 bad arguments.
#pragma once

#include <string>

namespace rasad {

struct ReportOptions {
  std::string database = "results/rasad.db";
  std::string since, until;       // UTC ISO 8601 or relative ("24h", "7d"); "" = default period
  std::string tz;                 // e.g. "Asia/Tehran"; "" = UTC
  std::string target;             // one app
  std::string network;            // one operator network
  std::string output;             // html: file (default rasad-report.html, "-" = stdout)
  std::string bucket;             // timeline/html: "hour" | "day" | "" (auto)
  bool by_endpoint = false;       // timeline: rows per endpoint, not per app
  bool include_controls = false;  // events: canary targets too
  bool rebuild = false;           // recompute the timeline counts first
};

struct ExportOptions {
  std::string database = "results/rasad.db";
  std::string what = "verdicts";  // csv/json: observations | verdicts | events
  std::string since, until, target, network;
  std::string output;           // "" or "-" = stdout
  std::string probe_cc = "ZZ";  // ooni: the networks' country
};

int RunReport(const std::string& kind /*events|timeline|compare|html*/, const ReportOptions& o);
int RunExport(const std::string& format /*csv|json|ooni*/, const ExportOptions& o);

}  // namespace rasad
