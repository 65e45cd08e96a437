// Timeline counts: per (target, endpoint, network, UTC hour) the number of
// verdicts of each kind, maintained incrementally as cycles are classified
// (docs/REPORTS.md, "Timeline"). Reports read these counts instead of
// scanning every verdict.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "probe/core/status.h"

namespace rasad {

class Store;

inline constexpr int64_t kMicrosPerHour = 3600LL * 1000000;

// Adds a cycle's verdicts to the hourly counts. Call it right after
// WriteVerdicts. Idempotent: the cycle's previous contribution (recorded in
// timeline_applied) is subtracted first, so a re-classified cycle counts once.
// Also records the cycle's local addresses (observations.local_addr) in
// private_addresses, the set every export and report scrubs.
// Creates the report tables when missing.
Status UpdateTimeline(Store* store, const std::string& cycle_uid);

// Applies every cycle that UpdateTimeline has not seen, or saw before its
// verdicts were recomputed or before it finished. `applied` (optional)
// receives how many cycles were applied.
Status CatchUpTimeline(Store* store, int* applied = nullptr);

// Drops the counts and applies every cycle again.
Status RebuildTimeline(Store* store);

struct TimelineFilter {
  int64_t since = 0;    // µs UTC, inclusive; 0 = unbounded
  int64_t until = 0;    // µs UTC, exclusive; 0 = unbounded
  std::string target;   // "" = all
  std::string network;  // "" = all
};

struct TimelineCount {
  std::string target, endpoint, network;
  int64_t hour = 0;  // start of the UTC hour, µs
  std::string verdict;
  std::string confidence;  // "confirmed" | "probable" | ""
  int64_t n = 0;
};

// Counts of hours overlapping the filter, ordered by hour, target, endpoint,
// network, verdict.
Status QueryTimeline(const Store& store, const TimelineFilter& filter,
                     std::vector<TimelineCount>* out);

struct Series {
  std::string target, endpoint, network;
  bool control = false;  // a canary target (measurements.control)
  int64_t first_hour = 0, last_hour = 0;
};
// Every (target, endpoint, network) with counts, ordered.
Status ListSeries(const Store& store, std::vector<Series>* out);

}  // namespace rasad
