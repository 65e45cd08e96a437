#include "report/db.h"

#include "probe/store/store.h"

namespace rasad {
namespace reportdb {

Status Stmt::Prepare(sqlite3* db, const std::string& sql) {
  sqlite3_finalize(s_);
  s_ = nullptr;
  if (sqlite3_prepare_v2(db, sql.c_str(), static_cast<int>(sql.size()), &s_, nullptr) != SQLITE_OK)
    return SqlError(db, "prepare");
  return Status::Ok();
}

void Stmt::Bind(int i, const std::string& v) {
  if (v.empty())
    sqlite3_bind_null(s_, i);
  else
    sqlite3_bind_text(s_, i, v.c_str(), static_cast<int>(v.size()), SQLITE_TRANSIENT);
}

void Stmt::BindInt(int i, int64_t v) { sqlite3_bind_int64(s_, i, v); }

void Stmt::Reset() {
  sqlite3_reset(s_);
  sqlite3_clear_bindings(s_);
}

int Stmt::Step() { return sqlite3_step(s_); }

std::string Stmt::Text(int i) const {
  const unsigned char* t = sqlite3_column_text(s_, i);
  if (!t) return "";
  return std::string(reinterpret_cast<const char*>(t), sqlite3_column_bytes(s_, i));
}

int64_t Stmt::Int(int i) const { return sqlite3_column_int64(s_, i); }

bool Stmt::IsNull(int i) const { return sqlite3_column_type(s_, i) == SQLITE_NULL; }

Status SqlError(sqlite3* db, const std::string& what) {
  const char* file = sqlite3_db_filename(db, "main");
  return Status::IoError(std::string(file && *file ? file : ":memory:") + ": " + what + ": " +
                         sqlite3_errmsg(db));
}

Status Exec(sqlite3* db, const std::string& sql, const std::string& what) {
  if (sqlite3_exec(db, sql.c_str(), nullptr, nullptr, nullptr) != SQLITE_OK)
    return SqlError(db, what);
  return Status::Ok();
}

const char* ReportTablesSql() {
  // Keep in sync with docs/REPORTS.md ("Tables") and the proposed migration.
  return R"sql(
CREATE TABLE IF NOT EXISTS timeline_hourly (
  target     TEXT    NOT NULL,
  endpoint   TEXT    NOT NULL,
  network    TEXT    NOT NULL,
  hour       INTEGER NOT NULL,
  verdict    TEXT    NOT NULL,
  confidence TEXT    NOT NULL DEFAULT '',
  n          INTEGER NOT NULL,
  PRIMARY KEY (target, endpoint, network, hour, verdict, confidence)
) STRICT, WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS timeline_hourly_by_hour ON timeline_hourly (hour);
CREATE TABLE IF NOT EXISTS timeline_series (
  target     TEXT    NOT NULL,
  endpoint   TEXT    NOT NULL,
  network    TEXT    NOT NULL,
  control    INTEGER NOT NULL DEFAULT 0,
  first_hour INTEGER NOT NULL,
  last_hour  INTEGER NOT NULL,
  PRIMARY KEY (target, endpoint, network)
) STRICT, WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS timeline_applied (
  cycle_uid    TEXT    PRIMARY KEY NOT NULL,
  applied_at   INTEGER NOT NULL,
  contribution TEXT    NOT NULL DEFAULT '[]' CHECK (json_valid(contribution))
) STRICT, WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS private_addresses (
  addr       TEXT    PRIMARY KEY NOT NULL,
  first_seen INTEGER NOT NULL
) STRICT, WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS verdicts_events
  ON verdicts (target, endpoint, network, t_start, verdict, confidence, measurement_uid);
)sql";
}

Status EnsureReportTables(Store* store) {
  // Every statement is IF NOT EXISTS: cheap when everything is there.
  return Exec(store->handle(), ReportTablesSql(), "create report tables");
}

bool HaveReportTables(sqlite3* db) {
  Stmt q;
  if (!q.Prepare(db,
                 "SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name IN "
                 "('timeline_hourly', 'timeline_series', 'timeline_applied', 'private_addresses')")
           .ok())
    return false;
  return q.Step() == SQLITE_ROW && q.Int(0) == 4;
}

}  // namespace reportdb
}  // namespace rasad
