// `rasad report html`: one self-contained HTML file (inline CSS and SVG, no
// script, no external resource) that opens offline and can be attached to
// an email: heatmap of app x time per operator, who blocked first, the event
// list, operators side by side, methodology and caveats; the data behind
// each chart and table is downloadable from the page (CSV in data: URIs).
#pragma once

#include <string>

#include "report/model.h"
#include "report/privacy.h"

namespace rasad {

struct HtmlOptions {
  TimeZone tz;
  std::string title = "Network disruption report";
  std::string database_name;  // shown as provenance (a base name, never a path)
  int64_t generated_at = 0;
  std::string bucket;  // "hour" | "day" | "" (auto: hours up to 8 days)
};

// The page. Every text is HTML-escaped; the whole page (and each embedded
// CSV, before encoding) passes through `scrubber`.
std::string RenderHtml(const ReportModel& m, const HtmlOptions& options, const Scrubber& scrubber);

}  // namespace rasad
