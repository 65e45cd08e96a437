#include "probe/store/store.h"

#include <sqlite3.h>
#include <sys/stat.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <system_error>
#include <utility>

#include "probe/store/migrations.h"

namespace rasad {

namespace {

// ---------------------------------------------------------------------------
// SQL. Every statement below is prepared once per connection (on first use)
// and then reused: Prepare() finds it again among the connection's statements
// by its text (sqlite3_next_stmt), so Store needs no extra members. The
// destructor finalizes exactly these statements.

const char kInsertCycle[] =
    "INSERT INTO cycles (uid, started_at, status, rasad_version, config_file) "
    "VALUES (?1, ?2, 'running', ?3, ?4)";
const char kInsertCycleTarget[] =
    "INSERT INTO cycle_targets (cycle_uid, target, version) VALUES (?1, ?2, ?3)";
const char kUpsertNetwork[] =
    "INSERT INTO cycle_networks (cycle_uid, name, operator, asn, interface, ifindex, "
    "resolvers, configured_resolvers, probe_error) "
    "VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9) "
    "ON CONFLICT (cycle_uid, name) DO UPDATE SET operator = excluded.operator, "
    "asn = excluded.asn, interface = excluded.interface, ifindex = excluded.ifindex, "
    "resolvers = excluded.resolvers, configured_resolvers = excluded.configured_resolvers, "
    "probe_error = excluded.probe_error";
const char kInsertMeasurement[] =
    "INSERT INTO measurements (uid, cycle_uid, network, target, target_version, endpoint, "
    "control, t_start, t_end, furthest_step, failed_step, failure, probe_error, attempt, "
    "control_kind) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15)";
const char kInsertObservation[] =
    "INSERT INTO observations (uid, measurement_uid, seq, flow_uid, step, hostname, "
    "query_type, resolver, transport, local_addr, local_port, remote_addr, remote_port, "
    "t_start, t_end, bytes_sent, bytes_received, failure, probe_error, details, raw) "
    "VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17, "
    "?18, ?19, ?20, ?21)";
const char kFinishCycle[] =
    "UPDATE cycles SET finished_at = ?2, status = ?3, measurements = ?4, bytes_sent = ?5, "
    "bytes_received = ?6, capture = ?7 WHERE uid = ?1";
// An interrupted cycle keeps what was stored before the process died: its
// measurement count and the end of its last measurement. Its byte totals (the
// probe's wire estimate, kept in memory) are lost and stay NULL.
const char kMarkInterrupted[] =
    "UPDATE cycles SET status = 'interrupted', "
    "finished_at = (SELECT MAX(t_end) FROM measurements WHERE cycle_uid = cycles.uid), "
    "measurements = (SELECT COUNT(*) FROM measurements WHERE cycle_uid = cycles.uid) "
    "WHERE status = 'running'";
const char kLatestCycle[] = "SELECT uid FROM cycles ORDER BY started_at DESC, uid DESC LIMIT 1";
const char kCycleStatus[] = "SELECT status FROM cycles WHERE uid = ?1";
const char kSelectMeasurements[] =
    "SELECT uid, cycle_uid, network, target, target_version, endpoint, control, t_start, "
    "t_end, furthest_step, failed_step, failure, probe_error, attempt, control_kind "
    "FROM measurements WHERE cycle_uid = ?1 ORDER BY t_start, uid";
// Read-only openers of databases older than v3 (no attempt/control_kind).
const char kSelectMeasurementsV2[] =
    "SELECT uid, cycle_uid, network, target, target_version, endpoint, control, t_start, "
    "t_end, furthest_step, failed_step, failure, probe_error, 0, NULL "
    "FROM measurements WHERE cycle_uid = ?1 ORDER BY t_start, uid";
const char kSelectObservations[] =
    "SELECT uid, flow_uid, step, hostname, query_type, resolver, transport, local_addr, "
    "local_port, remote_addr, remote_port, t_start, t_end, bytes_sent, bytes_received, "
    "failure, probe_error, details, raw "
    "FROM observations WHERE measurement_uid = ?1 ORDER BY seq";
const char kSelectNetworks[] =
    "SELECT cycle_uid, name, operator, asn, interface, ifindex, resolvers, "
    "configured_resolvers, probe_error FROM cycle_networks WHERE cycle_uid = ?1 ORDER BY name";

const char kInsertCertificate[] =
    "INSERT OR IGNORE INTO certificates (sha256, der_b64, first_seen) VALUES (?1, ?2, ?3)";
const char kSelectCertificate[] = "SELECT der_b64 FROM certificates WHERE sha256 = ?1";

const char* const kCachedSql[] = {
    kInsertCertificate,  kSelectCertificate, kInsertCycle,       kInsertCycleTarget,
    kUpsertNetwork,      kInsertMeasurement, kInsertObservation, kFinishCycle,
    kMarkInterrupted,    kLatestCycle,       kCycleStatus,       kSelectMeasurements,
    kSelectObservations, kSelectNetworks,
};

// Tables a reader needs (present since v1).
const char* const kRequiredTables[] = {"cycles", "cycle_targets", "cycle_networks", "measurements",
                                       "observations"};

// ---------------------------------------------------------------------------
// Errors: "<file>: <what>: <SQLite's message>".

std::string DbPath(sqlite3* db) {
  const char* f = sqlite3_db_filename(db, "main");
  return (f && *f) ? f : ":memory:";
}

Status FromCode(int rc, std::string msg) {
  switch (rc & 0xff) {
    case SQLITE_FULL:
    case SQLITE_IOERR:
    case SQLITE_CANTOPEN:
    case SQLITE_READONLY:
    case SQLITE_BUSY:
    case SQLITE_LOCKED:
    case SQLITE_PERM:
    case SQLITE_NOLFS:
    case SQLITE_PROTOCOL:
      return Status::IoError(std::move(msg));
    case SQLITE_CONSTRAINT:
    case SQLITE_MISMATCH:
    case SQLITE_RANGE:
    case SQLITE_TOOBIG:
    case SQLITE_NOTADB:
      return Status::Invalid(std::move(msg));
    default:
      return Status::Internal(std::move(msg));
  }
}

// Call right after the failing call, before anything else touches `db`.
Status SqlError(sqlite3* db, int rc, const std::string& what) {
  return FromCode(rc, DbPath(db) + ": " + what + ": " + sqlite3_errmsg(db));
}

// ---------------------------------------------------------------------------
// Statements.

// A cached statement borrowed for one use: reset and unbound on scope exit.
class Stmt {
 public:
  Stmt() = default;
  Stmt(const Stmt&) = delete;
  Stmt& operator=(const Stmt&) = delete;
  ~Stmt() {
    if (s_ != nullptr) {
      sqlite3_reset(s_);
      sqlite3_clear_bindings(s_);
    }
  }
  sqlite3_stmt* get() const { return s_; }
  void set(sqlite3_stmt* s) { s_ = s; }

 private:
  sqlite3_stmt* s_ = nullptr;
};

Status Prepare(sqlite3* db, const char* sql, Stmt* out) {
  for (sqlite3_stmt* s = sqlite3_next_stmt(db, nullptr); s != nullptr;
       s = sqlite3_next_stmt(db, s)) {
    if (!sqlite3_stmt_busy(s) && std::strcmp(sqlite3_sql(s), sql) == 0) {
      out->set(s);
      return Status::Ok();
    }
  }
  sqlite3_stmt* s = nullptr;
  int rc = sqlite3_prepare_v3(db, sql, -1, SQLITE_PREPARE_PERSISTENT, &s, nullptr);
  if (rc != SQLITE_OK) return SqlError(db, rc, "prepare");
  out->set(s);
  return Status::Ok();
}

// Binds parameters ?1, ?2, ... in order; remembers the first error.
class Binder {
 public:
  explicit Binder(sqlite3_stmt* s) : s_(s) {}
  Binder& Text(const std::string& v) {
    return Check(sqlite3_bind_text64(s_, i_, v.data(), v.size(), SQLITE_TRANSIENT, SQLITE_UTF8));
  }
  // "" is stored as NULL (absent).
  Binder& TextOrNull(const std::string& v) { return v.empty() ? Null() : Text(v); }
  Binder& OptText(const std::optional<std::string>& v) { return v ? Text(*v) : Null(); }
  Binder& Int(int64_t v) { return Check(sqlite3_bind_int64(s_, i_, v)); }
  // 0 is stored as NULL (unknown).
  Binder& IntOrNull(int64_t v) { return v == 0 ? Null() : Int(v); }
  Binder& BlobOrNull(const std::string& v) {
    if (v.empty()) return Null();
    return Check(sqlite3_bind_blob64(s_, i_, v.data(), v.size(), SQLITE_TRANSIENT));
  }
  Binder& Null() { return Check(sqlite3_bind_null(s_, i_)); }
  int rc() const { return rc_; }

 private:
  Binder& Check(int rc) {
    if (rc != SQLITE_OK && rc_ == SQLITE_OK) rc_ = rc;
    ++i_;
    return *this;
  }
  sqlite3_stmt* s_;
  int i_ = 1;
  int rc_ = SQLITE_OK;
};

std::string ColText(sqlite3_stmt* s, int i) {
  const unsigned char* p = sqlite3_column_text(s, i);
  if (p == nullptr) return std::string();
  return std::string(reinterpret_cast<const char*>(p), sqlite3_column_bytes(s, i));
}

std::optional<std::string> ColOptText(sqlite3_stmt* s, int i) {
  if (sqlite3_column_type(s, i) == SQLITE_NULL) return std::nullopt;
  return ColText(s, i);
}

std::string ColBlob(sqlite3_stmt* s, int i) {
  const void* p = sqlite3_column_blob(s, i);
  if (p == nullptr) return std::string();
  return std::string(static_cast<const char*>(p), sqlite3_column_bytes(s, i));
}

int64_t ColInt(sqlite3_stmt* s, int i) { return sqlite3_column_int64(s, i); }

// Runs a statement that returns no rows.
Status StepDone(sqlite3* db, sqlite3_stmt* s, int bind_rc, const std::string& what) {
  if (bind_rc != SQLITE_OK) return SqlError(db, bind_rc, what);
  int rc = sqlite3_step(s);
  if (rc != SQLITE_DONE) return SqlError(db, rc, what);
  return Status::Ok();
}

Status ExecSql(sqlite3* db, const char* sql, const std::string& what) {
  char* err = nullptr;
  int rc = sqlite3_exec(db, sql, nullptr, nullptr, &err);
  if (rc == SQLITE_OK) return Status::Ok();
  std::string msg = DbPath(db) + ": " + what + ": " + (err ? err : sqlite3_errstr(rc));
  sqlite3_free(err);
  return FromCode(rc, std::move(msg));
}

// A write (BEGIN IMMEDIATE) or read (BEGIN) transaction, rolled back on scope
// exit unless committed. If SQLite already rolled back by itself (e.g. on
// SQLITE_FULL) there is nothing left to roll back.
class Transaction {
 public:
  explicit Transaction(sqlite3* db) : db_(db) {}
  Transaction(const Transaction&) = delete;
  Transaction& operator=(const Transaction&) = delete;
  ~Transaction() {
    if (open_ && !sqlite3_get_autocommit(db_))
      sqlite3_exec(db_, "ROLLBACK", nullptr, nullptr, nullptr);
  }
  Status Begin(bool write, const std::string& what) {
    Status s = ExecSql(db_, write ? "BEGIN IMMEDIATE" : "BEGIN", what + ": begin");
    open_ = s.ok();
    return s;
  }
  Status Commit(const std::string& what) {
    Status s = ExecSql(db_, "COMMIT", what + ": commit");
    if (s.ok()) open_ = false;
    return s;
  }

 private:
  sqlite3* db_;
  bool open_ = false;
};

Status ReadInt(sqlite3* db, const char* sql, int64_t* out, const std::string& what) {
  sqlite3_stmt* s = nullptr;
  int rc = sqlite3_prepare_v2(db, sql, -1, &s, nullptr);
  if (rc != SQLITE_OK) return SqlError(db, rc, what);
  rc = sqlite3_step(s);
  Status st;
  if (rc == SQLITE_ROW) {
    *out = sqlite3_column_int64(s, 0);
  } else {
    st = SqlError(db, rc, what);
  }
  sqlite3_finalize(s);
  return st;
}

// The first real read of the file: also where SQLite notices that a file is
// not a database at all.
Status ReadUserVersion(sqlite3* db, const std::string& path, int64_t* v) {
  sqlite3_stmt* s = nullptr;
  int rc = sqlite3_prepare_v2(db, "PRAGMA user_version", -1, &s, nullptr);
  if (rc == SQLITE_OK) rc = sqlite3_step(s);
  if (rc == SQLITE_ROW) {
    *v = sqlite3_column_int64(s, 0);
    sqlite3_finalize(s);
    return Status::Ok();
  }
  std::string msg = sqlite3_errmsg(db);
  sqlite3_finalize(s);
  if ((rc & 0xff) == SQLITE_NOTADB) {
    return Status::Invalid(path + ": not a SQLite database: " + msg);
  }
  return FromCode(rc, path + ": cannot read schema version: " + msg);
}

// Counts tables in the file (any, or only the ones a reader needs).
Status CountTables(sqlite3* db, bool required_only, int64_t* n) {
  if (!required_only) {
    return ReadInt(db, "SELECT COUNT(*) FROM sqlite_schema", n, "read schema");
  }
  *n = 0;
  for (const char* t : kRequiredTables) {
    std::string sql =
        std::string("SELECT COUNT(*) FROM sqlite_schema WHERE type = 'table' AND name = '") + t +
        "'";
    int64_t c = 0;
    Status s = ReadInt(db, sql.c_str(), &c, "read schema");
    if (!s.ok()) return s;
    *n += c;
  }
  return Status::Ok();
}

// Checks the version and content of a freshly opened file before anything is
// written to it.
Status CheckSchema(sqlite3* db, const std::string& path, bool read_only, int64_t* version) {
  Status s = ReadUserVersion(db, path, version);
  if (!s.ok()) return s;
  int latest = Store::LatestSchemaVersion();
  if (*version > latest) {
    return Status::Invalid(path + ": database schema v" + std::to_string(*version) +
                           " is newer than this rasad (v" + std::to_string(latest) +
                           "); upgrade rasad");
  }
  if (*version < 0) {
    return Status::Invalid(path + ": not a rasad database (user_version " +
                           std::to_string(*version) + ")");
  }
  if (*version == 0) {
    // A fresh file has no tables. Tables without a version belong to some
    // other program: refuse rather than add ours to its database.
    int64_t n = 0;
    s = CountTables(db, false, &n);
    if (!s.ok()) return s;
    if (n > 0) {
      return Status::Invalid(path + ": not a rasad database (it has tables but no schema version)");
    }
    if (read_only) return Status::Invalid(path + ": empty database (no rasad schema)");
  }
  if (read_only) {
    int64_t n = 0;
    s = CountTables(db, true, &n);
    if (!s.ok()) return s;
    if (n != static_cast<int64_t>(sizeof(kRequiredTables) / sizeof(kRequiredTables[0]))) {
      return Status::Invalid(path + ": not a rasad database (schema v" + std::to_string(*version) +
                             " lacks rasad tables)");
    }
  }
  return Status::Ok();
}

// Applies every migration above the file's user_version, each in its own
// transaction that also sets user_version. The version is re-read inside the
// write lock, so two processes opening the same new file at once are safe.
Status Migrate(sqlite3* db, const std::string& path) {
  for (const Migration& m : Migrations()) {
    std::string what = "migration v" + std::to_string(m.version) + " (" + m.name + ")";
    Transaction txn(db);
    Status s = txn.Begin(true, what);
    if (!s.ok()) return s;
    int64_t v = 0;
    s = ReadUserVersion(db, path, &v);
    if (!s.ok()) return s;
    if (v >= m.version) continue;
    if (v != m.version - 1) {
      return Status::Internal(path + ": schema v" + std::to_string(v) + " cannot take migration v" +
                              std::to_string(m.version));
    }
    s = ExecSql(db, m.sql, what);
    if (!s.ok()) return s;
    std::string set_version = "PRAGMA user_version = " + std::to_string(m.version);
    s = ExecSql(db, set_version.c_str(), what);
    if (!s.ok()) return s;
    s = txn.Commit(what);
    if (!s.ok()) return s;
  }
  return Status::Ok();
}

// Own step names: the column values are part of the on-disk format.
const char* StepText(Step s) {
  switch (s) {
    case Step::kDns:
      return "dns";
    case Step::kTcp:
      return "tcp";
    case Step::kTls:
      return "tls";
    case Step::kHttp:
      return "http";
  }
  return "dns";
}

bool StepFromText(const std::string& t, Step* out) {
  if (t == "dns") {
    *out = Step::kDns;
  } else if (t == "tcp") {
    *out = Step::kTcp;
  } else if (t == "tls") {
    *out = Step::kTls;
  } else if (t == "http") {
    *out = Step::kHttp;
  } else {
    return false;
  }
  return true;
}

Status ColOptStep(sqlite3* db, sqlite3_stmt* s, int i, std::optional<Step>* out) {
  out->reset();
  if (sqlite3_column_type(s, i) == SQLITE_NULL) return Status::Ok();
  Step step;
  std::string t = ColText(s, i);
  if (!StepFromText(t, &step)) {
    return Status::Internal(DbPath(db) + ": unknown step '" + t + "'");
  }
  *out = step;
  return Status::Ok();
}

std::string DumpJson(const nlohmann::json& j) {
  // Invalid UTF-8 in a string becomes U+FFFD instead of throwing.
  return j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

Status ParseStringArray(sqlite3* db, const std::string& text, std::vector<std::string>* out) {
  out->clear();
  nlohmann::json j = nlohmann::json::parse(text, nullptr, false);
  if (j.is_discarded() || !j.is_array()) {
    return Status::Internal(DbPath(db) + ": resolvers column is not a JSON array: " + text);
  }
  for (const auto& e : j) {
    if (e.is_string()) out->push_back(e.get<std::string>());
  }
  return Status::Ok();
}

// Puts each chain certificate's DER (kept once in `certificates`) back into a
// TLS observation's details. Databases from before v2 have it inline.
void RestoreCertificates(sqlite3* db, Observation* o) {
  if (o->step != Step::kTls || !o->details.is_object() || !o->details.contains("chain")) return;
  for (auto& cert : o->details["chain"]) {
    if (!cert.is_object() || cert.contains("der_b64") || !cert.contains("sha256")) continue;
    Stmt stmt;
    if (!Prepare(db, kSelectCertificate, &stmt).ok()) return;  // pre-v2, read-only
    if (Binder(stmt.get()).Text(cert["sha256"].get<std::string>()).rc() != SQLITE_OK) continue;
    if (sqlite3_step(stmt.get()) == SQLITE_ROW) cert["der_b64"] = ColText(stmt.get(), 0);
    sqlite3_reset(stmt.get());
  }
}

Status LoadObservations(sqlite3* db, Measurement* m) {
  Stmt stmt;
  Status st = Prepare(db, kSelectObservations, &stmt);
  if (!st.ok()) return st;
  sqlite3_stmt* s = stmt.get();
  int rc = Binder(s).Text(m->uid).rc();
  if (rc != SQLITE_OK) return SqlError(db, rc, "load observations");
  while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
    Observation o;
    o.uid = ColText(s, 0);
    o.flow_uid = ColText(s, 1);
    std::string step = ColText(s, 2);
    if (!StepFromText(step, &o.step)) {
      return Status::Internal(DbPath(db) + ": observation " + o.uid + ": unknown step '" + step +
                              "'");
    }
    o.hostname = ColText(s, 3);
    o.query_type = ColText(s, 4);
    o.resolver = ColText(s, 5);
    o.transport = ColText(s, 6);
    o.local_addr = ColText(s, 7);
    o.local_port = static_cast<int>(ColInt(s, 8));
    o.remote_addr = ColText(s, 9);
    o.remote_port = static_cast<int>(ColInt(s, 10));
    o.t_start = ColInt(s, 11);
    o.t_end = ColInt(s, 12);
    o.bytes_sent = ColInt(s, 13);
    o.bytes_received = ColInt(s, 14);
    o.failure = ColOptText(s, 15);
    o.probe_error = ColText(s, 16);
    std::string details = ColText(s, 17);
    if (!details.empty()) {
      o.details = nlohmann::json::parse(details, nullptr, false);
      if (o.details.is_discarded()) {
        return Status::Internal(DbPath(db) + ": observation " + o.uid +
                                ": details is not valid JSON");
      }
    }
    o.raw = ColBlob(s, 18);
    RestoreCertificates(db, &o);
    m->observations.push_back(std::move(o));
  }
  if (rc != SQLITE_DONE) return SqlError(db, rc, "load observations");
  return Status::Ok();
}

}  // namespace

// ---------------------------------------------------------------------------

Store::~Store() {
  if (db_ == nullptr) return;
  std::vector<sqlite3_stmt*> ours;
  for (sqlite3_stmt* s = sqlite3_next_stmt(db_, nullptr); s != nullptr;
       s = sqlite3_next_stmt(db_, s)) {
    for (const char* sql : kCachedSql) {
      if (std::strcmp(sqlite3_sql(s), sql) == 0) {
        ours.push_back(s);
        break;
      }
    }
  }
  for (sqlite3_stmt* s : ours) sqlite3_finalize(s);
  // close_v2: if someone still holds a statement on handle(), the connection
  // closes when that statement is finalized.
  sqlite3_close_v2(db_);
}

int Store::LatestSchemaVersion() { return Migrations().empty() ? 0 : Migrations().back().version; }

Status Store::Open(const std::string& path, std::unique_ptr<Store>* out) {
  out->reset();
  if (path.empty()) return Status::Invalid("database path is empty");
  if (path != ":memory:") {
    std::filesystem::path parent = std::filesystem::path(path).parent_path();
    if (!parent.empty()) {
      std::error_code ec;
      std::filesystem::create_directories(parent, ec);
      if (ec) {
        return Status::IoError(path + ": cannot create directory " + parent.string() + ": " +
                               ec.message());
      }
    }
  }
  sqlite3* db = nullptr;
  int rc = sqlite3_open_v2(path.c_str(), &db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, nullptr);
  if (rc != SQLITE_OK) {
    std::string msg = db ? sqlite3_errmsg(db) : sqlite3_errstr(rc);
    sqlite3_close(db);
    return FromCode(rc, path + ": cannot open: " + msg);
  }
  std::unique_ptr<Store> store(new Store(db));
  sqlite3_busy_timeout(db, 5000);

  // Look before writing anything: a foreign or newer file stays untouched.
  int64_t version = 0;
  Status s = CheckSchema(db, path, /*read_only=*/false, &version);
  if (!s.ok()) return s;

  // journal_mode returns the resulting mode; anything but WAL (":memory:"
  // aside) means the durability contract in store.h does not hold.
  sqlite3_stmt* st = nullptr;
  rc = sqlite3_prepare_v2(db, "PRAGMA journal_mode=WAL", -1, &st, nullptr);
  if (rc == SQLITE_OK) rc = sqlite3_step(st);
  if (rc != SQLITE_ROW) {
    s = SqlError(db, rc, "set journal_mode=WAL");
    sqlite3_finalize(st);
    return s;
  }
  std::string mode = ColText(st, 0);
  sqlite3_finalize(st);
  if (mode != "wal" && mode != "memory") {
    return Status::IoError(path + ": cannot enable WAL journal (journal_mode is " + mode + ")");
  }
  s = ExecSql(db,
              "PRAGMA synchronous=NORMAL; PRAGMA foreign_keys=ON; "
              "PRAGMA journal_size_limit=67108864;",
              "configure");
  if (!s.ok()) return s;
  if (version < LatestSchemaVersion()) {
    s = Migrate(db, path);
    if (!s.ok()) return s;
  }
  *out = std::move(store);
  return Status::Ok();
}

Status Store::OpenReadOnly(const std::string& path, std::unique_ptr<Store>* out) {
  out->reset();
  struct stat sb;
  if (stat(path.c_str(), &sb) != 0) {
    if (errno == ENOENT) return Status::NotFound(path + ": no such database file");
    return Status::IoError(path + ": " + std::strerror(errno));
  }
  sqlite3* db = nullptr;
  int rc = sqlite3_open_v2(path.c_str(), &db, SQLITE_OPEN_READONLY, nullptr);
  if (rc != SQLITE_OK) {
    std::string msg = db ? sqlite3_errmsg(db) : sqlite3_errstr(rc);
    sqlite3_close(db);
    return FromCode(rc, path + ": cannot open read-only: " + msg);
  }
  std::unique_ptr<Store> store(new Store(db));
  sqlite3_busy_timeout(db, 5000);
  int64_t version = 0;
  Status s = CheckSchema(db, path, /*read_only=*/true, &version);
  if (!s.ok()) return s;
  *out = std::move(store);
  return Status::Ok();
}

int Store::SchemaVersion() const {
  int64_t v = -1;
  if (!ReadInt(db_, "PRAGMA user_version", &v, "read schema version").ok()) return -1;
  return static_cast<int>(v);
}

Status Store::Exec(const char* sql) const { return ExecSql(db_, sql, "exec"); }

Status Store::MarkInterruptedCycles(int* count) {
  if (count) *count = 0;
  Stmt stmt;
  Status s = Prepare(db_, kMarkInterrupted, &stmt);
  if (!s.ok()) return s;
  // A single statement is its own transaction.
  s = StepDone(db_, stmt.get(), SQLITE_OK, "mark interrupted cycles");
  if (!s.ok()) return s;
  if (count) *count = sqlite3_changes(db_);
  return Status::Ok();
}

Status Store::BeginCycle(const CycleInfo& info) {
  const std::string what = "begin cycle " + info.uid;
  Transaction txn(db_);
  Status s = txn.Begin(true, what);
  if (!s.ok()) return s;
  {
    Stmt stmt;
    s = Prepare(db_, kInsertCycle, &stmt);
    if (!s.ok()) return s;
    int rc = Binder(stmt.get())
                 .Text(info.uid)
                 .Int(info.started_at)
                 .Text(info.rasad_version)
                 .TextOrNull(info.config_file)
                 .rc();
    s = StepDone(db_, stmt.get(), rc, what);
    if (!s.ok()) return s;
  }
  for (const auto& [target, version] : info.target_versions) {
    Stmt stmt;
    s = Prepare(db_, kInsertCycleTarget, &stmt);
    if (!s.ok()) return s;
    int rc = Binder(stmt.get()).Text(info.uid).Text(target).Text(version).rc();
    s = StepDone(db_, stmt.get(), rc, what + ": target " + target);
    if (!s.ok()) return s;
  }
  return txn.Commit(what);
}

Status Store::RecordNetwork(const CycleNetwork& net) {
  std::string resolvers = DumpJson(net.resolvers);
  std::string configured = DumpJson(net.config.resolvers);
  Stmt stmt;
  Status s = Prepare(db_, kUpsertNetwork, &stmt);
  if (!s.ok()) return s;
  int rc = Binder(stmt.get())
               .Text(net.cycle_uid)
               .Text(net.config.name)
               .TextOrNull(net.config.operator_label)
               .IntOrNull(net.config.asn)
               .TextOrNull(net.config.interface)
               .IntOrNull(net.ifindex)
               .Text(resolvers)
               .Text(configured)
               .TextOrNull(net.probe_error)
               .rc();
  return StepDone(db_, stmt.get(), rc, "record network " + net.config.name);
}

Status Store::WriteMeasurement(const Measurement& m) {
  // Serialise before taking the write lock.
  std::vector<std::string> details;
  details.reserve(m.observations.size());
  std::vector<std::pair<std::string, std::string>> certs;  // sha256, der_b64
  for (const Observation& o : m.observations) {
    try {
      if (o.step == Step::kTls && o.details.is_object() && o.details.contains("chain")) {
        nlohmann::json d = o.details;
        for (auto& cert : d["chain"]) {
          if (!cert.is_object() || !cert.contains("der_b64") || !cert.contains("sha256")) continue;
          certs.emplace_back(cert["sha256"].get<std::string>(), cert["der_b64"].get<std::string>());
          cert.erase("der_b64");
        }
        details.push_back(DumpJson(d));
        continue;
      }
      details.push_back(o.details.is_null() ? std::string("{}") : DumpJson(o.details));
    } catch (const std::exception& e) {
      return Status::Invalid(DbPath(db_) + ": measurement " + m.uid + ": observation " + o.uid +
                             ": details: " + e.what());
    }
  }
  const std::string what = "write measurement " + m.uid;
  Transaction txn(db_);
  Status s = txn.Begin(true, what);
  if (!s.ok()) return s;
  {
    Stmt stmt;
    s = Prepare(db_, kInsertMeasurement, &stmt);
    if (!s.ok()) return s;
    Binder b(stmt.get());
    b.Text(m.uid)
        .Text(m.cycle_uid)
        .Text(m.network)
        .Text(m.target)
        .TextOrNull(m.target_version)
        .Text(m.endpoint)
        .Int(m.control ? 1 : 0)
        .Int(m.t_start)
        .Int(m.t_end);
    if (m.furthest_step) {
      b.Text(StepText(*m.furthest_step));
    } else {
      b.Null();
    }
    if (m.failed_step) {
      b.Text(StepText(*m.failed_step));
    } else {
      b.Null();
    }
    b.OptText(m.failure).TextOrNull(m.probe_error).Int(m.attempt).TextOrNull(m.control_kind);
    s = StepDone(db_, stmt.get(), b.rc(), what);
    if (!s.ok()) return s;
  }
  for (const auto& [sha, der] : certs) {
    Stmt cs;
    s = Prepare(db_, kInsertCertificate, &cs);
    if (!s.ok()) return s;
    int rc = Binder(cs.get()).Text(sha).Text(der).Int(m.t_start).rc();
    s = StepDone(db_, cs.get(), rc, what + ": certificate " + sha);
    if (!s.ok()) return s;
  }
  Stmt stmt;
  s = Prepare(db_, kInsertObservation, &stmt);
  if (!s.ok()) return s;
  for (size_t i = 0; i < m.observations.size(); ++i) {
    const Observation& o = m.observations[i];
    int rc = Binder(stmt.get())
                 .Text(o.uid)
                 .Text(m.uid)
                 .Int(static_cast<int64_t>(i))
                 .TextOrNull(o.flow_uid)
                 .Text(StepText(o.step))
                 .TextOrNull(o.hostname)
                 .TextOrNull(o.query_type)
                 .TextOrNull(o.resolver)
                 .TextOrNull(o.transport)
                 .TextOrNull(o.local_addr)
                 .IntOrNull(o.local_port)
                 .TextOrNull(o.remote_addr)
                 .IntOrNull(o.remote_port)
                 .Int(o.t_start)
                 .Int(o.t_end)
                 .Int(o.bytes_sent)
                 .Int(o.bytes_received)
                 .OptText(o.failure)
                 .TextOrNull(o.probe_error)
                 .Text(details[i])
                 .BlobOrNull(o.raw)
                 .rc();
    s = StepDone(db_, stmt.get(), rc, what + ": observation " + o.uid);
    if (!s.ok()) return s;
    sqlite3_reset(stmt.get());
    sqlite3_clear_bindings(stmt.get());
  }
  return txn.Commit(what);
}

Status Store::FinishCycle(const std::string& cycle_uid, const CycleTotals& totals) {
  if (totals.status != "complete" && totals.status != "interrupted" && totals.status != "aborted") {
    return Status::Invalid(DbPath(db_) + ": finish cycle " + cycle_uid + ": bad status '" +
                           totals.status + "'");
  }
  Stmt stmt;
  Status s = Prepare(db_, kFinishCycle, &stmt);
  if (!s.ok()) return s;
  int rc = Binder(stmt.get())
               .Text(cycle_uid)
               .Int(totals.finished_at)
               .Text(totals.status)
               .Int(totals.measurements)
               .Int(totals.bytes_sent)
               .Int(totals.bytes_received)
               .TextOrNull(totals.capture_json)
               .rc();
  s = StepDone(db_, stmt.get(), rc, "finish cycle " + cycle_uid);
  if (!s.ok()) return s;
  if (sqlite3_changes(db_) == 0) {
    return Status::NotFound(DbPath(db_) + ": finish cycle: no cycle " + cycle_uid);
  }
  return Status::Ok();
}

Status Store::LatestCycleUid(std::string* uid) const {
  uid->clear();
  Stmt stmt;
  Status s = Prepare(db_, kLatestCycle, &stmt);
  if (!s.ok()) return s;
  int rc = sqlite3_step(stmt.get());
  if (rc == SQLITE_ROW) {
    *uid = ColText(stmt.get(), 0);
    return Status::Ok();
  }
  if (rc == SQLITE_DONE) return Status::NotFound(DbPath(db_) + ": no cycles");
  return SqlError(db_, rc, "latest cycle");
}

Status Store::LoadMeasurements(const std::string& cycle_uid, std::vector<Measurement>* out) const {
  out->clear();
  // One read transaction: a consistent snapshot even while a writer works.
  Transaction txn(db_);
  if (sqlite3_get_autocommit(db_)) {
    Status s = txn.Begin(false, "load measurements");
    if (!s.ok()) return s;
  }
  Stmt stmt;
  Status st =
      Prepare(db_, SchemaVersion() >= 3 ? kSelectMeasurements : kSelectMeasurementsV2, &stmt);
  if (!st.ok()) return st;
  sqlite3_stmt* s = stmt.get();
  int rc = Binder(s).Text(cycle_uid).rc();
  if (rc != SQLITE_OK) return SqlError(db_, rc, "load measurements");
  while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
    Measurement m;
    m.uid = ColText(s, 0);
    m.cycle_uid = ColText(s, 1);
    m.network = ColText(s, 2);
    m.target = ColText(s, 3);
    m.target_version = ColText(s, 4);
    m.endpoint = ColText(s, 5);
    m.control = ColInt(s, 6) != 0;
    m.t_start = ColInt(s, 7);
    m.t_end = ColInt(s, 8);
    st = ColOptStep(db_, s, 9, &m.furthest_step);
    if (!st.ok()) return st;
    st = ColOptStep(db_, s, 10, &m.failed_step);
    if (!st.ok()) return st;
    m.failure = ColOptText(s, 11);
    m.probe_error = ColText(s, 12);
    m.attempt = static_cast<int>(ColInt(s, 13));
    m.control_kind = ColText(s, 14);
    out->push_back(std::move(m));
  }
  if (rc != SQLITE_DONE) return SqlError(db_, rc, "load measurements");
  for (Measurement& m : *out) {
    st = LoadObservations(db_, &m);
    if (!st.ok()) return st;
  }
  return Status::Ok();
}

Status Store::LoadNetworks(const std::string& cycle_uid, std::vector<CycleNetwork>* out) const {
  out->clear();
  Stmt stmt;
  Status st = Prepare(db_, kSelectNetworks, &stmt);
  if (!st.ok()) return st;
  sqlite3_stmt* s = stmt.get();
  int rc = Binder(s).Text(cycle_uid).rc();
  if (rc != SQLITE_OK) return SqlError(db_, rc, "load networks");
  while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
    CycleNetwork n;
    n.cycle_uid = ColText(s, 0);
    n.config.name = ColText(s, 1);
    n.config.operator_label = ColText(s, 2);
    n.config.asn = static_cast<int>(ColInt(s, 3));
    n.config.interface = ColText(s, 4);
    n.ifindex = static_cast<int>(ColInt(s, 5));
    st = ParseStringArray(db_, ColText(s, 6), &n.resolvers);
    if (!st.ok()) return st;
    st = ParseStringArray(db_, ColText(s, 7), &n.config.resolvers);
    if (!st.ok()) return st;
    n.probe_error = ColText(s, 8);
    out->push_back(std::move(n));
  }
  if (rc != SQLITE_DONE) return SqlError(db_, rc, "load networks");
  return Status::Ok();
}

Status Store::CycleStatus(const std::string& cycle_uid, std::string* status) const {
  status->clear();
  Stmt stmt;
  Status s = Prepare(db_, kCycleStatus, &stmt);
  if (!s.ok()) return s;
  int rc = Binder(stmt.get()).Text(cycle_uid).rc();
  if (rc != SQLITE_OK) return SqlError(db_, rc, "cycle status");
  rc = sqlite3_step(stmt.get());
  if (rc == SQLITE_ROW) {
    *status = ColText(stmt.get(), 0);
    return Status::Ok();
  }
  if (rc == SQLITE_DONE) return Status::NotFound(DbPath(db_) + ": no cycle " + cycle_uid);
  return SqlError(db_, rc, "cycle status");
}

Status Store::CheckIntegrity() const {
  sqlite3_stmt* s = nullptr;
  int rc = sqlite3_prepare_v2(db_, "PRAGMA integrity_check", -1, &s, nullptr);
  if (rc != SQLITE_OK) return SqlError(db_, rc, "integrity_check");
  std::string result;
  while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
    if (!result.empty()) result += "; ";
    result += ColText(s, 0);
  }
  Status st;
  if (rc != SQLITE_DONE) {
    st = SqlError(db_, rc, "integrity_check");
  } else if (result != "ok") {
    st = Status::Internal(DbPath(db_) + ": integrity_check: " + result);
  }
  sqlite3_finalize(s);
  return st;
}

}  // namespace rasad
