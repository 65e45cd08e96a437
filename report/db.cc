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

Status EnsureReportTables(Store* store) {
  // Migration v4 (probe/store/migrations.cc) creates them; Store::Open applies it.
  if (HaveReportTables(store->handle())) return Status::Ok();
  return Status::Invalid(std::string(sqlite3_db_filename(store->handle(), "main")) +
                         ": the report tables are missing (database older than schema v4; open "
                         "it once with this rasad to migrate)");
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
