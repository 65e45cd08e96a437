// Disruption events: runs of blocking verdicts on one (target, endpoint,
// network), with the uncertainty of their onset and end, the techniques seen
// in order, a confidence and the evidence. Rules: docs/REPORTS.md, "Events".
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "probe/core/status.h"

namespace rasad {

class Store;

struct EventRules {
  // A gap of non-blocking verdicts between two blocking ones is merged into
  // the event when it is at most this many cycles long and holds no two
  // consecutive "ok" verdicts.
  int max_gap = 3;
  // An event needs this many consecutive blocking verdicts (or one
  // "confirmed" verdict) to be reported.
  int min_consecutive = 2;
  // Evidence: measurement uids kept per event (the first ones, plus the first
  // of each technique).
  size_t max_evidence = 10;
};

struct TechniqueSpan {
  std::string technique;                  // a blocking verdict, e.g. "dns.bogon"
  int64_t first_seen = 0, last_seen = 0;  // verdict t_start, µs UTC
  int count = 0;
  std::string first_measurement;
};

struct Event {
  std::string id;  // the uid of its first blocking measurement (stable)
  std::string target, endpoint, network;
  // Onset: blocking began after `onset_after` (the last ok measurement before;
  // 0 = none observed: blocked since observation began) and by `onset_by`
  // (the first blocking measurement).
  int64_t onset_after = 0, onset_by = 0;
  // End: the last blocking measurement, and the first ok one after it
  // (`end_by`, 0 = none yet). `ongoing`: no ok measurement after the event.
  int64_t last_blocking = 0, end_by = 0;
  bool ongoing = false;
  std::vector<TechniqueSpan> techniques;  // in order; a change is a new span
  std::string confidence;                 // max over its verdicts
  int blocking_verdicts = 0;
  int measurements = 0;               // verdicts inside the event, gaps included
  int merged_gaps = 0;                // flapping gaps merged by the rule
  std::vector<std::string> evidence;  // measurement uids

  std::string TechniqueChain() const;  // "dns.bogon > tls.reset"
  // End of the interval used for overlap: end_by, else last_blocking, or
  // INT64_MAX when ongoing.
  int64_t IntervalEnd() const;
};

struct EventFilter {
  int64_t since = 0, until = 0;  // keep events overlapping [since, until); 0 = unbounded
  std::string target, network;
  bool include_controls = false;  // canary targets
};

// One row of the verdicts table as events see it (exposed for tests).
struct VerdictPoint {
  int64_t t = 0;
  std::string verdict, confidence, measurement_uid;
};
// Events of one series, its verdicts in time order.
std::vector<Event> EventsOfSeries(const std::string& target, const std::string& endpoint,
                                  const std::string& network,
                                  const std::vector<VerdictPoint>& points,
                                  const EventRules& rules = {});

// Every event in the database (control networks excluded; canary targets
// unless asked), ordered by onset.
Status LoadEvents(const Store& store, const EventFilter& filter, const EventRules& rules,
                  std::vector<Event>* out);

// Events of one app on several operators that overlap in time: "which
// operator blocked first, and how". Per network, its earliest event in the
// episode.
struct EpisodeEntry {
  std::string network;
  int64_t onset_after = 0, onset_by = 0;
  std::string first_technique;          // of its earliest event
  std::vector<std::string> endpoints;   // endpoints with events in the episode
  std::vector<std::string> techniques;  // every technique seen, first-seen order
  std::string confidence;
  bool ongoing = false;
  int64_t end_by = 0;  // latest end of its events (0 when ongoing or unknown)
};
struct Episode {
  std::string target;
  int64_t start = 0;                   // earliest onset_by
  std::vector<EpisodeEntry> networks;  // ordered by onset_by: first is who blocked first
  std::vector<std::string> event_ids;
};
std::vector<Episode> GroupEpisodes(const std::vector<Event>& events);

bool ConfidenceAbove(const std::string& a, const std::string& b);  // confirmed > probable > ""

}  // namespace rasad
