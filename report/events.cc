#include "report/events.h"

#include <algorithm>
#include <climits>
#include <map>
#include <optional>
#include <set>

#include "analysis/classifier.h"
#include "analysis/verdict.h"
#include "probe/store/store.h"
#include "report/db.h"

namespace rasad {

using reportdb::Stmt;

bool ConfidenceAbove(const std::string& a, const std::string& b) {
  auto rank = [](const std::string& c) { return c == "confirmed" ? 2 : c == "probable" ? 1 : 0; };
  return rank(a) > rank(b);
}

std::string Event::TechniqueChain() const {
  std::string s;
  for (const TechniqueSpan& t : techniques) {
    if (!s.empty()) s += " > ";
    s += t.technique;
  }
  return s;
}

int64_t Event::IntervalEnd() const {
  if (ongoing) return INT64_MAX;
  return end_by ? end_by : last_blocking;
}

namespace {

bool GapMergeable(const std::vector<const VerdictPoint*>& gap, const EventRules& rules) {
  if (static_cast<int>(gap.size()) > rules.max_gap) return false;
  for (size_t i = 1; i < gap.size(); ++i)
    if (gap[i]->verdict == verdicts::kOk && gap[i - 1]->verdict == verdicts::kOk) return false;
  return true;
}

}  // namespace

std::vector<Event> EventsOfSeries(const std::string& target, const std::string& endpoint,
                                  const std::string& network,
                                  const std::vector<VerdictPoint>& points,
                                  const EventRules& rules) {
  std::vector<Event> out;
  std::optional<Event> cur;
  int run = 0, max_run = 0;
  bool confirmed = false;
  std::vector<const VerdictPoint*> gap;  // non-blocking verdicts since cur's last blocking
  int64_t last_ok = 0;
  int waiting = -1;  // index in `out` of a closed event whose end (first ok) is not seen yet

  auto finish = [&](bool series_end) {
    Event e = std::move(*cur);
    cur.reset();
    for (const VerdictPoint* p : gap)
      if (p->verdict == verdicts::kOk) {
        e.end_by = p->t;
        break;
      }
    bool qualifies = max_run >= rules.min_consecutive || confirmed;
    if (!qualifies) return;
    if (e.end_by == 0 && series_end) e.ongoing = true;
    out.push_back(std::move(e));
    if (out.back().end_by == 0 && !series_end) waiting = static_cast<int>(out.size()) - 1;
  };

  for (const VerdictPoint& p : points) {
    if (IsBlocking(p.verdict)) {
      if (cur) {
        if (GapMergeable(gap, rules)) {
          cur->measurements += static_cast<int>(gap.size());
          if (!gap.empty()) {
            ++cur->merged_gaps;
            run = 0;
          }
        } else {
          finish(false);
        }
      }
      waiting = -1;  // blocked again before any ok: that event's end stays unknown
      if (!cur) {
        cur.emplace();
        cur->id = p.measurement_uid;
        cur->target = target;
        cur->endpoint = endpoint;
        cur->network = network;
        cur->onset_after = last_ok;
        cur->onset_by = p.t;
        run = 0;
        max_run = 0;
        confirmed = false;
      }
      gap.clear();
      Event& e = *cur;
      ++run;
      max_run = std::max(max_run, run);
      if (p.confidence == "confirmed") confirmed = true;
      ++e.blocking_verdicts;
      ++e.measurements;
      e.last_blocking = p.t;
      if (ConfidenceAbove(p.confidence, e.confidence)) e.confidence = p.confidence;
      bool new_span = e.techniques.empty() || e.techniques.back().technique != p.verdict;
      if (new_span) {
        TechniqueSpan s;
        s.technique = p.verdict;
        s.first_seen = p.t;
        s.first_measurement = p.measurement_uid;
        e.techniques.push_back(s);
      }
      TechniqueSpan& s = e.techniques.back();
      s.last_seen = p.t;
      ++s.count;
      if ((e.evidence.size() < rules.max_evidence || new_span) &&
          std::find(e.evidence.begin(), e.evidence.end(), p.measurement_uid) == e.evidence.end())
        e.evidence.push_back(p.measurement_uid);
    } else {
      if (p.verdict == verdicts::kOk) {
        last_ok = p.t;
        if (waiting >= 0) {
          out[waiting].end_by = p.t;
          waiting = -1;
        }
      }
      if (cur) {
        gap.push_back(&p);
        if (!GapMergeable(gap, rules)) {
          finish(false);
          gap.clear();
        }
      }
    }
  }
  if (cur) finish(true);
  return out;
}

namespace {

Status CanaryTargets(sqlite3* db, std::set<std::string>* out) {
  Stmt q;
  Status st;
  if (reportdb::HaveReportTables(db)) {
    st = q.Prepare(db, "SELECT DISTINCT target FROM timeline_series WHERE control = 1");
  } else {
    st = q.Prepare(db,
                   "SELECT DISTINCT target FROM measurements WHERE control = 1 AND cycle_uid IN "
                   "(SELECT uid FROM cycles ORDER BY started_at DESC LIMIT 10)");
  }
  if (!st.ok()) return st;
  while (q.Step() == SQLITE_ROW) out->insert(q.Text(0));
  return Status::Ok();
}

}  // namespace

Status LoadEvents(const Store& store, const EventFilter& f, const EventRules& rules,
                  std::vector<Event>* out) {
  out->clear();
  sqlite3* db = store.handle();
  std::set<std::string> canaries;
  Status st = CanaryTargets(db, &canaries);
  if (!st.ok()) return st;
  std::string sql =
      "SELECT target, endpoint, network, t_start, verdict, confidence, measurement_uid FROM "
      "verdicts";
  std::vector<std::string> where;
  if (!f.target.empty()) where.push_back("target = ?1");
  if (!f.network.empty()) where.push_back("network = ?2");
  for (size_t i = 0; i < where.size(); ++i) sql += (i ? " AND " : " WHERE ") + where[i];
  sql += " ORDER BY target, endpoint, network, t_start";
  Stmt q;
  st = q.Prepare(db, sql);
  if (!st.ok()) return st;
  if (!f.target.empty()) q.Bind(1, f.target);
  if (!f.network.empty()) q.Bind(2, f.network);

  std::string target, endpoint, network;
  std::vector<VerdictPoint> points;
  auto flush = [&] {
    if (!points.empty() && !IsControlNetwork(network) &&
        (f.include_controls || !canaries.count(target))) {
      for (Event& e : EventsOfSeries(target, endpoint, network, points, rules)) {
        if (f.since && e.IntervalEnd() < f.since) continue;
        if (f.until && e.onset_by >= f.until) continue;
        out->push_back(std::move(e));
      }
    }
    points.clear();
  };
  int rc;
  while ((rc = q.Step()) == SQLITE_ROW) {
    const char* t = reinterpret_cast<const char*>(sqlite3_column_text(q.get(), 0));
    const char* e = reinterpret_cast<const char*>(sqlite3_column_text(q.get(), 1));
    const char* n = reinterpret_cast<const char*>(sqlite3_column_text(q.get(), 2));
    if (target != t || endpoint != e || network != n) {
      flush();
      target = t;
      endpoint = e;
      network = n;
    }
    VerdictPoint p;
    p.t = q.Int(3);
    p.verdict = q.Text(4);
    p.confidence = q.Text(5);
    p.measurement_uid = q.Text(6);
    points.push_back(std::move(p));
  }
  if (rc != SQLITE_DONE) return reportdb::SqlError(db, "load verdicts for events");
  flush();
  std::stable_sort(out->begin(), out->end(), [](const Event& a, const Event& b) {
    if (a.onset_by != b.onset_by) return a.onset_by < b.onset_by;
    return std::tie(a.target, a.network, a.endpoint) < std::tie(b.target, b.network, b.endpoint);
  });
  return Status::Ok();
}

std::vector<Episode> GroupEpisodes(const std::vector<Event>& events) {
  std::map<std::string, std::vector<const Event*>> by_target;
  for (const Event& e : events) by_target[e.target].push_back(&e);
  std::vector<Episode> out;
  for (auto& [target, list] : by_target) {
    std::sort(list.begin(), list.end(),
              [](const Event* a, const Event* b) { return a->onset_by < b->onset_by; });
    std::vector<std::vector<const Event*>> groups;
    int64_t end = 0;
    for (const Event* e : list) {
      if (groups.empty() || e->onset_by > end) {
        groups.emplace_back();
        end = e->IntervalEnd();
      } else {
        end = std::max(end, e->IntervalEnd());
      }
      groups.back().push_back(e);
    }
    for (const auto& g : groups) {
      Episode ep;
      ep.target = target;
      ep.start = g.front()->onset_by;
      std::map<std::string, size_t> idx;
      std::map<std::string, std::vector<std::pair<int64_t, std::string>>> spans;
      for (const Event* e : g) {
        ep.event_ids.push_back(e->id);
        auto it = idx.find(e->network);
        if (it == idx.end()) {
          EpisodeEntry en;
          en.network = e->network;
          en.onset_after = e->onset_after;
          en.onset_by = e->onset_by;
          en.first_technique = e->techniques.empty() ? "" : e->techniques.front().technique;
          idx[e->network] = ep.networks.size();
          ep.networks.push_back(en);
          it = idx.find(e->network);
        }
        EpisodeEntry& en = ep.networks[it->second];
        if (std::find(en.endpoints.begin(), en.endpoints.end(), e->endpoint) == en.endpoints.end())
          en.endpoints.push_back(e->endpoint);
        if (ConfidenceAbove(e->confidence, en.confidence)) en.confidence = e->confidence;
        if (e->ongoing) en.ongoing = true;
        en.end_by = std::max(en.end_by, e->end_by);
        for (const TechniqueSpan& s : e->techniques)
          spans[e->network].push_back({s.first_seen, s.technique});
      }
      for (EpisodeEntry& en : ep.networks) {
        if (en.ongoing) en.end_by = 0;
        auto& sp = spans[en.network];
        std::stable_sort(sp.begin(), sp.end(),
                         [](const auto& a, const auto& b) { return a.first < b.first; });
        for (const auto& [t, tech] : sp)
          if (std::find(en.techniques.begin(), en.techniques.end(), tech) == en.techniques.end())
            en.techniques.push_back(tech);
      }
      out.push_back(std::move(ep));
    }
  }
  std::stable_sort(out.begin(), out.end(),
                   [](const Episode& a, const Episode& b) { return a.start < b.start; });
  return out;
}

}  // namespace rasad
