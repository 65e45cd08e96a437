// report/ — timelines, events, reports and exports for people.
//
// Small SQLite helpers shared by report/ and interop/ooni_export (prepared
// statements that finalize themselves, column readers, errors that name the
// file), and the tables report/ maintains next to the verdicts.
#pragma once

#include <sqlite3.h>

#include <cstdint>
#include <string>

#include "probe/core/status.h"

namespace rasad {

class Store;

namespace reportdb {

class Stmt {
 public:
  Stmt() = default;
  ~Stmt() { sqlite3_finalize(s_); }
  Stmt(const Stmt&) = delete;
  Stmt& operator=(const Stmt&) = delete;

  Status Prepare(sqlite3* db, const std::string& sql);
  sqlite3_stmt* get() const { return s_; }

  void Bind(int i, const std::string& v);  // "" binds NULL
  void BindInt(int i, int64_t v);
  void Reset();
  // SQLITE_ROW, SQLITE_DONE or an error code.
  int Step();

  std::string Text(int i) const;
  int64_t Int(int i) const;
  bool IsNull(int i) const;

 private:
  sqlite3_stmt* s_ = nullptr;
};

Status SqlError(sqlite3* db, const std::string& what);
Status Exec(sqlite3* db, const std::string& sql, const std::string& what);

// The report tables (timeline_hourly, timeline_series, timeline_applied,
// private_addresses) and the covering index events scan come with schema v4
// (probe/store/migrations.cc). A clear error when a database predates it.
Status EnsureReportTables(Store* store);
// True when the report tables exist (a read-only database may lack them).
bool HaveReportTables(sqlite3* db);

}  // namespace reportdb
}  // namespace rasad
