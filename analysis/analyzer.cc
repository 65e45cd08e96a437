#include "analysis/analyzer.h"

#include <sqlite3.h>
#include <unistd.h>

#include "probe/core/clock.h"

namespace rasad {

Status Analyzer::Create(const Config& config, std::unique_ptr<Analyzer>* out) {
  auto a = std::unique_ptr<Analyzer>(new Analyzer());
  Status st = a->options_.bogons.SetPublicRanges(config.public_ranges);
  if (!st.ok()) return st;
  struct Source {
    const std::string& path;
    Status (Fingerprints::*load)(const std::string&);
  };
  const Source sources[] = {
      {config.fingerprints, &Fingerprints::LoadRasad},
      {config.ooni_dns_fingerprints, &Fingerprints::LoadOoniDns},
      {config.ooni_http_fingerprints, &Fingerprints::LoadOoniHttp},
      {config.censoredplanet_blockpages, &Fingerprints::LoadCensoredPlanetBlockpages},
      {config.censoredplanet_false_positives, &Fingerprints::LoadCensoredPlanetFalsePositives},
  };
  for (const Source& s : sources) {
    if (s.path.empty()) continue;
    // The built-in default is relative to the source tree: run from elsewhere
    // without a config, rasad goes on without it (and says so) rather than
    // refusing to measure.
    if (&s.path == &config.fingerprints && s.path == Config().fingerprints &&
        access(s.path.c_str(), R_OK) != 0) {
      a->warnings_.push_back(s.path + ": not found; Iran's fingerprints are not loaded");
      continue;
    }
    st = (a->fingerprints_.*s.load)(s.path);
    if (!st.ok()) return st;
  }
  a->options_.fingerprints = &a->fingerprints_;
  *out = std::move(a);
  return Status::Ok();
}

std::vector<Verdict> Analyzer::Classify(const std::vector<Measurement>& measurements) const {
  return ClassifyCycle(measurements, options_);
}

Status Analyzer::ClassifyStored(Store* store, const std::string& cycle_uid,
                                std::vector<Verdict>* out) const {
  std::vector<Measurement> ms;
  Status st = store->LoadMeasurements(cycle_uid, &ms);
  if (!st.ok()) return st;
  *out = Classify(ms);
  return WriteVerdicts(store, cycle_uid, *out);
}

namespace {

Status SqlError(sqlite3* db, const std::string& what) {
  return Status::IoError(std::string(sqlite3_db_filename(db, "main")) + ": " + what + ": " +
                         sqlite3_errmsg(db));
}

struct Stmt {
  sqlite3_stmt* s = nullptr;
  ~Stmt() { sqlite3_finalize(s); }
};

void BindText(sqlite3_stmt* s, int i, const std::string& v) {
  if (v.empty())
    sqlite3_bind_null(s, i);
  else
    sqlite3_bind_text(s, i, v.c_str(), static_cast<int>(v.size()), SQLITE_TRANSIENT);
}

std::string Col(sqlite3_stmt* s, int i) {
  const unsigned char* t = sqlite3_column_text(s, i);
  return t ? reinterpret_cast<const char*>(t) : "";
}

}  // namespace

Status WriteVerdicts(Store* store, const std::string& cycle_uid,
                     const std::vector<Verdict>& verdicts) {
  sqlite3* db = store->handle();
  if (store->SchemaVersion() < 3) return Status::Invalid("database predates the verdicts table");
  if (sqlite3_exec(db, "BEGIN IMMEDIATE", nullptr, nullptr, nullptr) != SQLITE_OK)
    return SqlError(db, "store verdicts");
  auto fail = [&](const std::string& what) {
    Status st = SqlError(db, what);
    sqlite3_exec(db, "ROLLBACK", nullptr, nullptr, nullptr);
    return st;
  };
  {
    Stmt del;
    if (sqlite3_prepare_v2(db, "DELETE FROM verdicts WHERE cycle_uid = ?1", -1, &del.s, nullptr) !=
        SQLITE_OK)
      return fail("store verdicts");
    BindText(del.s, 1, cycle_uid);
    if (sqlite3_step(del.s) != SQLITE_DONE) return fail("store verdicts");
  }
  Stmt ins;
  if (sqlite3_prepare_v2(
          db,
          "INSERT INTO verdicts (cycle_uid, network, target, endpoint, measurement_uid, t_start, "
          "verdict, confidence, rule, evidence, ooni_blocking, ooni_accessible, classifier, "
          "computed_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14)",
          -1, &ins.s, nullptr) != SQLITE_OK)
    return fail("store verdicts");
  int64_t now = WallMicros();
  for (const Verdict& v : verdicts) {
    sqlite3_reset(ins.s);
    BindText(ins.s, 1, cycle_uid);
    BindText(ins.s, 2, v.network);
    BindText(ins.s, 3, v.target);
    BindText(ins.s, 4, v.endpoint);
    BindText(ins.s, 5, v.measurement_uid);
    sqlite3_bind_int64(ins.s, 6, v.t_start);
    BindText(ins.s, 7, v.verdict);
    BindText(ins.s, 8, v.confidence);
    BindText(ins.s, 9, v.rule);
    BindText(ins.s, 10, v.evidence.dump());
    // "false" is stored as the text false; null as NULL.
    BindText(ins.s, 11,
             v.ooni_blocking.is_null()
                 ? ""
                 : (v.ooni_blocking.is_string() ? v.ooni_blocking.get<std::string>() : "false"));
    if (v.ooni_accessible.is_boolean())
      sqlite3_bind_int(ins.s, 12, v.ooni_accessible.get<bool>() ? 1 : 0);
    else
      sqlite3_bind_null(ins.s, 12);
    BindText(ins.s, 13, ClassifierVersion());
    sqlite3_bind_int64(ins.s, 14, now);
    if (sqlite3_step(ins.s) != SQLITE_DONE) return fail("store verdict " + v.endpoint);
  }
  if (sqlite3_exec(db, "COMMIT", nullptr, nullptr, nullptr) != SQLITE_OK)
    return fail("store verdicts");
  return Status::Ok();
}

Status LoadVerdicts(const Store& store, const std::string& cycle_uid, std::vector<Verdict>* out) {
  out->clear();
  sqlite3* db = store.handle();
  Stmt q;
  if (sqlite3_prepare_v2(db,
                         "SELECT network, target, endpoint, measurement_uid, t_start, verdict, "
                         "confidence, rule, evidence, ooni_blocking, ooni_accessible FROM "
                         "verdicts WHERE cycle_uid = ?1 ORDER BY network, target, endpoint",
                         -1, &q.s, nullptr) != SQLITE_OK)
    return SqlError(db, "load verdicts");
  BindText(q.s, 1, cycle_uid);
  int rc;
  while ((rc = sqlite3_step(q.s)) == SQLITE_ROW) {
    Verdict v;
    v.cycle_uid = cycle_uid;
    v.network = Col(q.s, 0);
    v.target = Col(q.s, 1);
    v.endpoint = Col(q.s, 2);
    v.measurement_uid = Col(q.s, 3);
    v.t_start = sqlite3_column_int64(q.s, 4);
    v.verdict = Col(q.s, 5);
    v.confidence = Col(q.s, 6);
    v.rule = Col(q.s, 7);
    v.evidence = nlohmann::json::parse(Col(q.s, 8), nullptr, false);
    std::string b = Col(q.s, 9);
    v.ooni_blocking =
        b.empty() ? nlohmann::json() : (b == "false" ? nlohmann::json(false) : nlohmann::json(b));
    if (sqlite3_column_type(q.s, 10) != SQLITE_NULL)
      v.ooni_accessible = sqlite3_column_int(q.s, 10) != 0;
    out->push_back(std::move(v));
  }
  if (rc != SQLITE_DONE) return SqlError(db, "load verdicts");
  return Status::Ok();
}

Status ListCycles(const Store& store, std::vector<std::string>* out) {
  out->clear();
  sqlite3* db = store.handle();
  Stmt q;
  if (sqlite3_prepare_v2(db, "SELECT uid FROM cycles ORDER BY started_at, uid", -1, &q.s,
                         nullptr) != SQLITE_OK)
    return SqlError(db, "list cycles");
  int rc;
  while ((rc = sqlite3_step(q.s)) == SQLITE_ROW) out->push_back(Col(q.s, 0));
  if (rc != SQLITE_DONE) return SqlError(db, "list cycles");
  return Status::Ok();
}

}  // namespace rasad
