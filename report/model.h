// What every report shows, computed once: the period, the networks, hourly
// counts, events and per-app episodes, and the comparison of operators.
// report/text.cc prints it as tables, report/html.cc as one HTML page.
#pragma once

#include <cstdint>
#include <map>
#include <set>
#include <string>
#include <tuple>
#include <vector>

#include "report/events.h"
#include "report/timefmt.h"
#include "report/timeline.h"

namespace rasad {

class Store;

struct NetworkInfo {
  std::string name;
  std::string label;             // operator label ("" when not configured)
  int asn = 0;                   // 0 = unknown
  std::string Describe() const;  // "mci (Hamrah-e-Aval (MCI), AS197207)"
};

struct ModelOptions {
  int64_t since = 0, until = 0;                    // resolved µs UTC; 0 = defaults below
  int64_t default_span = 7 * 24 * kMicrosPerHour;  // when since is 0: this much before `until`
  std::string target, network;
  bool include_controls = false;
  bool need_latest = false;  // compare: the latest verdict per series
  bool need_counts = true;   // timeline counts of the period (not needed by events)
  bool need_events = true;   // events and episodes (not needed by the timeline table)
  EventRules rules;
};

// Counts of one bucket (hour or day) of one app or endpoint on one network.
struct Cell {
  int64_t n = 0, ok = 0, confirmed = 0, probable = 0, other = 0;
  std::map<std::string, int64_t> blocking;  // verdict -> n
  int64_t Blocking() const { return confirmed + probable; }
  // "none" | "ok" | "partial" | "blocked-probable" | "blocked-confirmed" | "failure":
  // blocked when at least half the verdicts were blocking, partial from a
  // tenth, else ok (docs/REPORTS.md, "Timeline").
  std::string Class() const;
  std::string TopBlocking() const;  // most frequent blocking verdict, "" if none
  void Add(const TimelineCount& c);
};

struct LatestVerdict {
  int64_t t = 0;
  std::string verdict, confidence;
};

struct CompareCell {
  bool measured = false;
  Cell period;                        // every verdict of the period
  LatestVerdict latest;               // the last verdict of the period
  const Event* event = nullptr;       // the event the latest verdict belongs to (if blocked now)
  const Event* last_event = nullptr;  // else the last event of the period, if any
};

struct ReportModel {
  int64_t since = 0, until = 0;       // the period shown, µs UTC
  int64_t newest = 0;                 // end of the newest hour with data (0 = no data)
  std::vector<NetworkInfo> networks;  // operator networks, by name
  std::set<std::string> canaries;     // control targets
  std::vector<Series> series;         // in the filter (controls included)
  std::vector<TimelineCount> counts;  // hours overlapping the period
  std::vector<Event> events;          // overlapping the period
  std::vector<Episode> episodes;
  // compare: (target, endpoint) -> network -> cell
  std::map<std::pair<std::string, std::string>, std::map<std::string, CompareCell>> compare;

  const NetworkInfo* Network(const std::string& name) const;
  std::vector<std::string> Targets(bool include_controls) const;  // sorted
};

// `store` must have the report tables (CatchUpTimeline first when writable).
Status BuildModel(const Store& store, const ModelOptions& options, ReportModel* out);

}  // namespace rasad
