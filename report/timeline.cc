#include "report/timeline.h"

#include <algorithm>
#include <climits>
#include <functional>
#include <nlohmann/json.hpp>

#include "probe/core/clock.h"
#include "probe/store/store.h"
#include "report/db.h"

namespace rasad {

using reportdb::SqlError;
using reportdb::Stmt;
using json = nlohmann::json;

namespace {

Status ApplyCycle(sqlite3* db, const std::string& cycle_uid) {
  // Previous contribution: subtract it.
  json old = json::array();
  {
    Stmt q;
    Status st = q.Prepare(db, "SELECT contribution FROM timeline_applied WHERE cycle_uid = ?1");
    if (!st.ok()) return st;
    q.Bind(1, cycle_uid);
    if (q.Step() == SQLITE_ROW) old = json::parse(q.Text(0), nullptr, false);
    if (!old.is_array()) old = json::array();
  }
  Stmt sub, del;
  Status st = sub.Prepare(db,
                          "UPDATE timeline_hourly SET n = n - ?7 WHERE target = ?1 AND endpoint = "
                          "?2 AND network = ?3 AND hour = ?4 AND verdict = ?5 AND confidence = ?6");
  if (!st.ok()) return st;
  for (const json& c : old) {
    if (!c.is_array() || c.size() != 7) continue;
    sub.Reset();
    for (int i = 0; i < 3; ++i) sub.Bind(i + 1, c[i].get<std::string>());
    sub.BindInt(4, c[3].get<int64_t>());
    sub.Bind(5, c[4].get<std::string>());
    sqlite3_bind_text(sub.get(), 6, c[5].get_ref<const std::string&>().c_str(), -1,
                      SQLITE_TRANSIENT);
    sub.BindInt(7, c[6].get<int64_t>());
    if (sub.Step() != SQLITE_DONE) return SqlError(db, "timeline: subtract");
  }
  if (!old.empty()) {
    st = reportdb::Exec(db, "DELETE FROM timeline_hourly WHERE n <= 0", "timeline: prune");
    if (!st.ok()) return st;
  }

  // New contribution.
  Stmt q;
  st = q.Prepare(db,
                 "SELECT v.target, v.endpoint, v.network, (v.t_start / 3600000000) * 3600000000, "
                 "v.verdict, coalesce(v.confidence, ''), count(*), max(coalesce(m.control, 0)) "
                 "FROM verdicts v LEFT JOIN measurements m ON m.uid = v.measurement_uid "
                 "WHERE v.cycle_uid = ?1 GROUP BY 1, 2, 3, 4, 5, 6");
  if (!st.ok()) return st;
  q.Bind(1, cycle_uid);
  Stmt add, series;
  st = add.Prepare(db,
                   "INSERT INTO timeline_hourly (target, endpoint, network, hour, verdict, "
                   "confidence, n) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7) ON CONFLICT DO UPDATE SET "
                   "n = n + excluded.n");
  if (!st.ok()) return st;
  st = series.Prepare(
      db,
      "INSERT INTO timeline_series (target, endpoint, network, control, first_hour, last_hour) "
      "VALUES (?1, ?2, ?3, ?4, ?5, ?5) ON CONFLICT DO UPDATE SET control = max(control, "
      "excluded.control), first_hour = min(first_hour, excluded.first_hour), last_hour = "
      "max(last_hour, excluded.last_hour)");
  if (!st.ok()) return st;
  json contribution = json::array();
  int rc;
  while ((rc = q.Step()) == SQLITE_ROW) {
    std::string target = q.Text(0), endpoint = q.Text(1), network = q.Text(2);
    int64_t hour = q.Int(3);
    std::string verdict = q.Text(4), confidence = q.Text(5);
    int64_t n = q.Int(6);
    add.Reset();
    add.Bind(1, target);
    add.Bind(2, endpoint);
    add.Bind(3, network);
    add.BindInt(4, hour);
    add.Bind(5, verdict);
    sqlite3_bind_text(add.get(), 6, confidence.c_str(), -1, SQLITE_TRANSIENT);
    add.BindInt(7, n);
    if (add.Step() != SQLITE_DONE) return SqlError(db, "timeline: add");
    series.Reset();
    series.Bind(1, target);
    series.Bind(2, endpoint);
    series.Bind(3, network);
    series.BindInt(4, q.Int(7));
    series.BindInt(5, hour);
    if (series.Step() != SQLITE_DONE) return SqlError(db, "timeline: series");
    contribution.push_back({target, endpoint, network, hour, verdict, confidence, n});
  }
  if (rc != SQLITE_DONE) return SqlError(db, "timeline: read verdicts");

  // The volunteer's addresses, for scrubbing.
  Stmt addrs;
  st = addrs.Prepare(db,
                     "INSERT OR IGNORE INTO private_addresses (addr, first_seen) "
                     "SELECT o.local_addr, min(o.t_start) FROM measurements m JOIN observations o "
                     "ON o.measurement_uid = m.uid WHERE m.cycle_uid = ?1 AND o.local_addr IS NOT "
                     "NULL AND o.local_addr <> '' GROUP BY o.local_addr");
  if (!st.ok()) return st;
  addrs.Bind(1, cycle_uid);
  if (addrs.Step() != SQLITE_DONE) return SqlError(db, "timeline: private addresses");

  Stmt rec;
  st = rec.Prepare(db,
                   "INSERT OR REPLACE INTO timeline_applied (cycle_uid, applied_at, contribution) "
                   "VALUES (?1, ?2, ?3)");
  if (!st.ok()) return st;
  rec.Bind(1, cycle_uid);
  rec.BindInt(2, WallMicros());
  rec.Bind(3, contribution.dump());
  if (rec.Step() != SQLITE_DONE) return SqlError(db, "timeline: record");
  return Status::Ok();
}

Status InTransaction(sqlite3* db, const std::string& what, const std::function<Status()>& body) {
  if (sqlite3_exec(db, "BEGIN IMMEDIATE", nullptr, nullptr, nullptr) != SQLITE_OK)
    return SqlError(db, what);
  Status st = body();
  if (!st.ok()) {
    sqlite3_exec(db, "ROLLBACK", nullptr, nullptr, nullptr);
    return Status::IoError(what + ": " + st.message());
  }
  if (sqlite3_exec(db, "COMMIT", nullptr, nullptr, nullptr) != SQLITE_OK) {
    Status e = SqlError(db, what);
    sqlite3_exec(db, "ROLLBACK", nullptr, nullptr, nullptr);
    return e;
  }
  return Status::Ok();
}

}  // namespace

Status UpdateTimeline(Store* store, const std::string& cycle_uid) {
  if (store->SchemaVersion() < 3) return Status::Invalid("database predates the verdicts table");
  Status st = reportdb::EnsureReportTables(store);
  if (!st.ok()) return st;
  sqlite3* db = store->handle();
  return InTransaction(db, "update timeline of cycle " + cycle_uid,
                       [&] { return ApplyCycle(db, cycle_uid); });
}

Status CatchUpTimeline(Store* store, int* applied) {
  if (applied) *applied = 0;
  if (store->SchemaVersion() < 3) return Status::Invalid("database predates the verdicts table");
  Status st = reportdb::EnsureReportTables(store);
  if (!st.ok()) return st;
  sqlite3* db = store->handle();
  std::vector<std::string> todo;
  {
    Stmt q;
    st = q.Prepare(db,
                   "SELECT c.uid FROM cycles c LEFT JOIN timeline_applied a ON a.cycle_uid = c.uid "
                   "WHERE a.cycle_uid IS NULL OR a.applied_at < coalesce(c.finished_at, 0) "
                   "OR a.applied_at < coalesce((SELECT v.computed_at FROM verdicts v "
                   "WHERE v.cycle_uid = c.uid LIMIT 1), 0) ORDER BY c.started_at");
    if (!st.ok()) return st;
    int rc;
    while ((rc = q.Step()) == SQLITE_ROW) todo.push_back(q.Text(0));
    if (rc != SQLITE_DONE) return SqlError(db, "timeline: list cycles");
  }
  // Batches of cycles per transaction: fast on a large backlog, short enough
  // not to hold the write lock for long.
  const size_t kBatch = 200;
  for (size_t i = 0; i < todo.size(); i += kBatch) {
    st = InTransaction(db, "catch up timeline", [&]() -> Status {
      for (size_t j = i; j < std::min(todo.size(), i + kBatch); ++j) {
        Status s = ApplyCycle(db, todo[j]);
        if (!s.ok()) return s;
      }
      return Status::Ok();
    });
    if (!st.ok()) return st;
  }
  if (applied) *applied = static_cast<int>(todo.size());
  return Status::Ok();
}

Status RebuildTimeline(Store* store) {
  Status st = reportdb::EnsureReportTables(store);
  if (!st.ok()) return st;
  st = reportdb::Exec(store->handle(),
                      "DELETE FROM timeline_hourly; DELETE FROM timeline_series; "
                      "DELETE FROM timeline_applied;",
                      "rebuild timeline");
  if (!st.ok()) return st;
  return CatchUpTimeline(store);
}

Status QueryTimeline(const Store& store, const TimelineFilter& f, std::vector<TimelineCount>* out) {
  out->clear();
  sqlite3* db = store.handle();
  std::string sql =
      "SELECT target, endpoint, network, hour, verdict, confidence, n FROM timeline_hourly "
      "WHERE hour >= ?1 AND hour < ?2";
  if (!f.target.empty()) sql += " AND target = ?3";
  if (!f.network.empty()) sql += " AND network = ?4";
  sql += " ORDER BY hour, target, endpoint, network, verdict";
  Stmt q;
  Status st = q.Prepare(db, sql);
  if (!st.ok()) return st;
  // An hour overlaps [since, until) when hour + 1h > since.
  q.BindInt(1, f.since > 0 ? f.since - kMicrosPerHour + 1 : INT64_MIN);
  q.BindInt(2, f.until > 0 ? f.until : INT64_MAX);
  if (!f.target.empty()) q.Bind(3, f.target);
  if (!f.network.empty()) q.Bind(4, f.network);
  int rc;
  while ((rc = q.Step()) == SQLITE_ROW) {
    TimelineCount c;
    c.target = q.Text(0);
    c.endpoint = q.Text(1);
    c.network = q.Text(2);
    c.hour = q.Int(3);
    c.verdict = q.Text(4);
    c.confidence = q.Text(5);
    c.n = q.Int(6);
    out->push_back(std::move(c));
  }
  if (rc != SQLITE_DONE) return SqlError(db, "query timeline");
  return Status::Ok();
}

Status ListSeries(const Store& store, std::vector<Series>* out) {
  out->clear();
  sqlite3* db = store.handle();
  Stmt q;
  Status st = q.Prepare(db,
                        "SELECT target, endpoint, network, control, first_hour, last_hour FROM "
                        "timeline_series ORDER BY target, endpoint, network");
  if (!st.ok()) return st;
  int rc;
  while ((rc = q.Step()) == SQLITE_ROW) {
    Series s;
    s.target = q.Text(0);
    s.endpoint = q.Text(1);
    s.network = q.Text(2);
    s.control = q.Int(3) != 0;
    s.first_hour = q.Int(4);
    s.last_hour = q.Int(5);
    out->push_back(std::move(s));
  }
  if (rc != SQLITE_DONE) return SqlError(db, "list series");
  return Status::Ok();
}

}  // namespace rasad
