#include "report/model.h"

#include <algorithm>
#include <climits>

#include "analysis/classifier.h"
#include "analysis/verdict.h"
#include "probe/core/clock.h"
#include "probe/store/store.h"
#include "report/db.h"

namespace rasad {

using reportdb::Stmt;

std::string NetworkInfo::Describe() const {
  std::string extra = label;
  if (asn) extra += (extra.empty() ? "" : ", ") + std::string("AS") + std::to_string(asn);
  return extra.empty() ? name : name + " (" + extra + ")";
}

void Cell::Add(const TimelineCount& c) {
  n += c.n;
  if (c.verdict == verdicts::kOk) {
    ok += c.n;
  } else if (IsBlocking(c.verdict)) {
    (c.confidence == "confirmed" ? confirmed : probable) += c.n;
    blocking[c.verdict] += c.n;
  } else {
    other += c.n;
  }
}

std::string Cell::Class() const {
  if (n == 0) return "none";
  int64_t b = Blocking();
  if (b * 2 >= n && b > 0) return confirmed > 0 ? "blocked-confirmed" : "blocked-probable";
  // Under a tenth blocking is noise at this scale (a stray failure among a
  // day's verdicts): shown as ok, the counts stay in the tooltip and data.
  if (b > 0 && b * 10 >= n) return "partial";
  if (ok > 0 || b > 0) return "ok";
  return "failure";
}

std::string Cell::TopBlocking() const {
  std::string best;
  int64_t bn = 0;
  for (const auto& [v, k] : blocking)
    if (k > bn) {
      best = v;
      bn = k;
    }
  return best;
}

const NetworkInfo* ReportModel::Network(const std::string& name) const {
  for (const NetworkInfo& n : networks)
    if (n.name == name) return &n;
  return nullptr;
}

std::vector<std::string> ReportModel::Targets(bool include_controls) const {
  std::set<std::string> t;
  for (const Series& s : series)
    if (include_controls || !canaries.count(s.target)) t.insert(s.target);
  return {t.begin(), t.end()};
}

namespace {

Status LoadNetworks(sqlite3* db, const std::string& only, std::vector<NetworkInfo>* out) {
  // The newest description of each network wins.
  Stmt q;
  Status st = q.Prepare(db,
                        "SELECT n.name, n.operator, n.asn FROM cycle_networks n JOIN cycles c ON "
                        "c.uid = n.cycle_uid ORDER BY c.started_at");
  if (!st.ok()) return st;
  std::map<std::string, NetworkInfo> by;
  while (q.Step() == SQLITE_ROW) {
    NetworkInfo n;
    n.name = q.Text(0);
    if (IsControlNetwork(n.name) || (!only.empty() && n.name != only)) continue;
    n.label = q.Text(1);
    n.asn = static_cast<int>(q.Int(2));
    by[n.name] = n;
  }
  for (auto& [k, n] : by) out->push_back(n);
  return Status::Ok();
}

}  // namespace

Status BuildModel(const Store& store, const ModelOptions& o, ReportModel* out) {
  *out = ReportModel();
  ReportModel& m = *out;
  sqlite3* db = store.handle();
  if (!reportdb::HaveReportTables(db))
    return Status::Invalid(std::string(sqlite3_db_filename(db, "main")) +
                           ": no timeline tables yet; run a report once with write access");
  Status st = LoadNetworks(db, o.network, &m.networks);
  if (!st.ok()) return st;
  std::vector<Series> all;
  st = ListSeries(store, &all);
  if (!st.ok()) return st;
  for (const Series& s : all) {
    if (s.control) m.canaries.insert(s.target);
    if (IsControlNetwork(s.network)) continue;
    if (!o.target.empty() && s.target != o.target) continue;
    if (!o.network.empty() && s.network != o.network) continue;
    m.series.push_back(s);
    m.newest = std::max(m.newest, s.last_hour + kMicrosPerHour);
  }
  // Networks that have data but no cycle_networks row (imports) still show.
  for (const Series& s : m.series)
    if (!m.Network(s.network)) {
      NetworkInfo n;
      n.name = s.network;
      m.networks.push_back(n);
    }
  std::sort(m.networks.begin(), m.networks.end(),
            [](const NetworkInfo& a, const NetworkInfo& b) { return a.name < b.name; });

  m.until = o.until ? o.until : (m.newest ? m.newest : WallMicros());
  m.since = o.since ? o.since : m.until - o.default_span;
  if (m.since >= m.until) return Status::Invalid("the period is empty (--since is after --until)");

  TimelineFilter tf;
  tf.since = m.since;
  tf.until = m.until;
  tf.target = o.target;
  tf.network = o.network;
  if (o.need_counts) {
    st = QueryTimeline(store, tf, &m.counts);
    if (!st.ok()) return st;
  }
  m.counts.erase(std::remove_if(m.counts.begin(), m.counts.end(),
                                [](const TimelineCount& c) { return IsControlNetwork(c.network); }),
                 m.counts.end());

  EventFilter ef;
  ef.since = m.since;
  ef.until = m.until;
  ef.target = o.target;
  ef.network = o.network;
  ef.include_controls = o.include_controls;
  if (o.need_events) {
    st = LoadEvents(store, ef, o.rules, &m.events);
    if (!st.ok()) return st;
    m.episodes = GroupEpisodes(m.events);
  }

  if (o.need_latest) {
    Stmt q;
    st = q.Prepare(db,
                   "SELECT t_start, verdict, coalesce(confidence, '') FROM verdicts WHERE target = "
                   "?1 AND endpoint = ?2 AND network = ?3 AND t_start >= ?4 AND t_start < ?5 "
                   "ORDER BY t_start DESC LIMIT 1");
    if (!st.ok()) return st;
    for (const Series& s : m.series) {
      if (!o.include_controls && m.canaries.count(s.target)) continue;
      CompareCell& c = m.compare[{s.target, s.endpoint}][s.network];
      q.Reset();
      q.Bind(1, s.target);
      q.Bind(2, s.endpoint);
      q.Bind(3, s.network);
      q.BindInt(4, m.since);
      q.BindInt(5, m.until);
      if (q.Step() == SQLITE_ROW) {
        c.measured = true;
        c.latest.t = q.Int(0);
        c.latest.verdict = q.Text(1);
        c.latest.confidence = q.Text(2);
      }
    }
    for (const TimelineCount& tc : m.counts) {
      auto it = m.compare.find({tc.target, tc.endpoint});
      if (it == m.compare.end()) continue;
      auto jt = it->second.find(tc.network);
      if (jt != it->second.end()) jt->second.period.Add(tc);
    }
    for (const Event& e : m.events) {
      auto it = m.compare.find({e.target, e.endpoint});
      if (it == m.compare.end()) continue;
      auto jt = it->second.find(e.network);
      if (jt == it->second.end()) continue;
      CompareCell& c = jt->second;
      if (c.latest.t >= e.onset_by && c.latest.t <= e.last_blocking && IsBlocking(c.latest.verdict))
        c.event = &e;
      if (!c.last_event || c.last_event->onset_by < e.onset_by) c.last_event = &e;
    }
  }
  return Status::Ok();
}

}  // namespace rasad
