#include "report/export.h"

#include <nlohmann/json.hpp>
#include <set>

#include "analysis/verdict.h"
#include "probe/store/store.h"
#include "report/db.h"
#include "report/timefmt.h"

namespace rasad {

using ojson = nlohmann::ordered_json;
using json = nlohmann::json;
using reportdb::Stmt;

namespace {

enum Kind { kText, kInt, kBool, kReal };
struct Col {
  const char* name;
  Kind kind;
};

const std::vector<Col>& Cols(const std::string& what) {
  static const std::vector<Col> kObs = {{"observation_uid", kText},
                                        {"measurement_uid", kText},
                                        {"cycle_uid", kText},
                                        {"seq", kInt},
                                        {"ts_utc", kText},
                                        {"duration_ms", kReal},
                                        {"network", kText},
                                        {"operator", kText},
                                        {"asn", kInt},
                                        {"target", kText},
                                        {"endpoint", kText},
                                        {"control", kBool},
                                        {"attempt", kInt},
                                        {"step", kText},
                                        {"hostname", kText},
                                        {"query_type", kText},
                                        {"resolver", kText},
                                        {"transport", kText},
                                        {"remote_addr", kText},
                                        {"remote_port", kInt},
                                        {"bytes_sent", kInt},
                                        {"bytes_received", kInt},
                                        {"failure", kText},
                                        {"probe_error", kText},
                                        {"dns_rcode", kInt},
                                        {"dns_answers", kText},
                                        {"tls_version", kText},
                                        {"tls_subject", kText},
                                        {"tls_issuer", kText},
                                        {"tls_trusted", kBool},
                                        {"http_status", kInt},
                                        {"http_title", kText},
                                        {"verdict", kText},
                                        {"confidence", kText}};
  static const std::vector<Col> kVerdicts = {{"measurement_uid", kText},
                                             {"cycle_uid", kText},
                                             {"ts_utc", kText},
                                             {"network", kText},
                                             {"operator", kText},
                                             {"asn", kInt},
                                             {"target", kText},
                                             {"endpoint", kText},
                                             {"canary", kBool},
                                             {"verdict", kText},
                                             {"blocking", kBool},
                                             {"confidence", kText},
                                             {"rule", kText},
                                             {"ooni_blocking", kText},
                                             {"ooni_accessible", kBool},
                                             {"classifier", kText}};
  static const std::vector<Col> kEvents = {
      {"event_id", kText},        {"target", kText},       {"endpoint", kText},
      {"network", kText},         {"operator", kText},     {"asn", kInt},
      {"onset_after_utc", kText}, {"onset_by_utc", kText}, {"last_blocking_utc", kText},
      {"end_by_utc", kText},      {"ongoing", kBool},      {"first_technique", kText},
      {"techniques", kText},      {"confidence", kText},   {"blocking_verdicts", kInt},
      {"measurements", kInt},     {"merged_gaps", kInt},   {"evidence", kText}};
  static const std::vector<Col> kNone;
  if (what == "observations") return kObs;
  if (what == "verdicts") return kVerdicts;
  if (what == "events") return kEvents;
  return kNone;
}

std::string Iso(int64_t micros) {
  // Milliseconds, UTC: "2026-04-08T16:00:00.123Z".
  std::string s = IsoUtc(micros);
  char ms[8];
  snprintf(ms, sizeof ms, ".%03d", static_cast<int>((micros / 1000) % 1000));
  return s.substr(0, s.size() - 1) + ms + "Z";
}

// Emits one row in the chosen format.
class RowWriter {
 public:
  RowWriter(const std::vector<Col>& cols, ExportFormat f, const Scrubber& sc,
            const std::function<void(const std::string&)>& line)
      : cols_(cols), format_(f), scrubber_(sc), line_(line) {}

  void Header() {
    if (format_ != ExportFormat::kCsv) return;
    std::string s;
    for (size_t i = 0; i < cols_.size(); ++i) s += (i ? "," : "") + std::string(cols_[i].name);
    line_(s);
  }

  // `values[i]` is null, a string, a number or a bool.
  void Row(const std::vector<json>& values) {
    std::string out;
    if (format_ == ExportFormat::kCsv) {
      for (size_t i = 0; i < cols_.size(); ++i) {
        if (i) out += ',';
        const json& v = values[i];
        if (v.is_null()) continue;
        if (v.is_string())
          out += CsvField(v.get<std::string>());
        else if (v.is_boolean())
          out += v.get<bool>() ? "true" : "false";
        else
          out += v.dump();
      }
    } else {
      ojson o = ojson::object();
      for (size_t i = 0; i < cols_.size(); ++i) o[cols_[i].name] = ojson::parse(values[i].dump());
      out = o.dump(-1, ' ', false, ojson::error_handler_t::replace);
    }
    line_(scrubber_.Scrub(out));
    ++rows_;
  }
  int64_t rows() const { return rows_; }

 private:
  const std::vector<Col>& cols_;
  ExportFormat format_;
  const Scrubber& scrubber_;
  const std::function<void(const std::string&)>& line_;
  int64_t rows_ = 0;
};

json TextOrNull(const Stmt& q, int i) {
  if (q.IsNull(i)) return nullptr;
  return q.Text(i);
}
json IntOrNull(const Stmt& q, int i) {
  if (q.IsNull(i)) return nullptr;
  return q.Int(i);
}

std::string Where(const ExportFilter& f, const char* t, const char* alias) {
  std::string w =
      std::string(" WHERE ") + alias + "." + t + " >= ?1 AND " + alias + "." + t + " < ?2";
  if (!f.target.empty()) w += std::string(" AND ") + alias + ".target = ?3";
  if (!f.network.empty()) w += std::string(" AND ") + alias + ".network = ?4";
  return w;
}

void BindFilter(Stmt* q, const ExportFilter& f) {
  q->BindInt(1, f.since ? f.since : INT64_MIN);
  q->BindInt(2, f.until ? f.until : INT64_MAX);
  if (!f.target.empty()) q->Bind(3, f.target);
  if (!f.network.empty()) q->Bind(4, f.network);
}

Status ExportObservations(sqlite3* db, const ExportFilter& f, RowWriter* w) {
  // Columns are listed one by one: local_addr is private (docs/SCHEMA.md §7).
  std::string sql =
      "SELECT o.uid, o.measurement_uid, m.cycle_uid, o.seq, o.t_start, o.t_end, m.network, "
      "n.operator, n.asn, m.target, m.endpoint, m.control, m.attempt, o.step, o.hostname, "
      "o.query_type, o.resolver, o.transport, o.remote_addr, o.remote_port, o.bytes_sent, "
      "o.bytes_received, o.failure, o.probe_error, o.details, v.verdict, v.confidence "
      "FROM measurements m JOIN observations o ON o.measurement_uid = m.uid "
      "LEFT JOIN cycle_networks n ON n.cycle_uid = m.cycle_uid AND n.name = m.network "
      "LEFT JOIN verdicts v ON v.cycle_uid = m.cycle_uid AND v.network = m.network AND "
      "v.target = m.target AND v.endpoint = m.endpoint" +
      Where(f, "t_start", "m") + " ORDER BY m.t_start, m.uid, o.seq";
  Stmt q;
  Status st = q.Prepare(db, sql);
  if (!st.ok()) return st;
  BindFilter(&q, f);
  int rc;
  while ((rc = q.Step()) == SQLITE_ROW) {
    json d = json::parse(q.Text(24), nullptr, false);
    if (!d.is_object()) d = json::object();
    std::string step = q.Text(13);
    json rcode = nullptr, answers = nullptr, tls_version = nullptr, subject = nullptr,
         issuer = nullptr, trusted = nullptr, status = nullptr, title = nullptr;
    if (step == "dns") {
      if (d.contains("rcode") && d["rcode"].is_number_integer() && d["rcode"].get<int>() >= 0)
        rcode = d["rcode"];
      std::string a;
      if (d.contains("answers") && d["answers"].is_array())
        for (const json& x : d["answers"])
          if (x.is_object() && x.contains("value") && x["value"].is_string())
            a += (a.empty() ? "" : " ") + x["value"].get<std::string>();
      answers = a;
    } else if (step == "tls") {
      if (d.contains("version") && d["version"].is_string()) tls_version = d["version"];
      if (d.contains("chain") && d["chain"].is_array() && !d["chain"].empty() &&
          d["chain"][0].is_object()) {
        const json& leaf = d["chain"][0];
        if (leaf.contains("subject")) subject = leaf["subject"];
        if (leaf.contains("issuer")) issuer = leaf["issuer"];
      }
      if (d.contains("trusted") && d["trusted"].is_boolean()) trusted = d["trusted"];
    } else if (step == "http") {
      if (d.contains("status") && d["status"].is_number_integer()) status = d["status"];
      if (d.contains("title") && d["title"].is_string()) title = d["title"];
    }
    int64_t t0 = q.Int(4), t1 = q.Int(5);
    w->Row({q.Text(0),
            q.Text(1),
            q.Text(2),
            q.Int(3),
            Iso(t0),
            static_cast<double>(t1 - t0) / 1000.0,
            q.Text(6),
            TextOrNull(q, 7),
            IntOrNull(q, 8),
            q.Text(9),
            q.Text(10),
            q.Int(11) != 0,
            q.Int(12),
            step,
            TextOrNull(q, 14),
            TextOrNull(q, 15),
            TextOrNull(q, 16),
            TextOrNull(q, 17),
            TextOrNull(q, 18),
            IntOrNull(q, 19),
            q.Int(20),
            q.Int(21),
            TextOrNull(q, 22),
            TextOrNull(q, 23),
            rcode,
            answers,
            tls_version,
            subject,
            issuer,
            trusted,
            status,
            title,
            TextOrNull(q, 25),
            TextOrNull(q, 26)});
  }
  if (rc != SQLITE_DONE) return reportdb::SqlError(db, "export observations");
  return Status::Ok();
}

std::set<std::string> Canaries(sqlite3* db) {
  std::set<std::string> out;
  Stmt q;
  if (reportdb::HaveReportTables(db) &&
      q.Prepare(db, "SELECT DISTINCT target FROM timeline_series WHERE control = 1").ok())
    while (q.Step() == SQLITE_ROW) out.insert(q.Text(0));
  return out;
}

Status ExportVerdicts(sqlite3* db, const ExportFilter& f, RowWriter* w) {
  std::set<std::string> canaries = Canaries(db);
  std::string sql =
      "SELECT v.measurement_uid, v.cycle_uid, v.t_start, v.network, n.operator, n.asn, v.target, "
      "v.endpoint, v.verdict, v.confidence, v.rule, v.ooni_blocking, v.ooni_accessible, "
      "v.classifier FROM verdicts v LEFT JOIN cycle_networks n ON n.cycle_uid = v.cycle_uid AND "
      "n.name = v.network" +
      Where(f, "t_start", "v") + " ORDER BY v.t_start, v.network, v.target, v.endpoint";
  Stmt q;
  Status st = q.Prepare(db, sql);
  if (!st.ok()) return st;
  BindFilter(&q, f);
  int rc;
  while ((rc = q.Step()) == SQLITE_ROW) {
    std::string verdict = q.Text(8);
    json accessible = nullptr;
    if (!q.IsNull(12)) accessible = q.Int(12) != 0;
    w->Row({q.Text(0), q.Text(1), Iso(q.Int(2)), q.Text(3), TextOrNull(q, 4), IntOrNull(q, 5),
            q.Text(6), q.Text(7), canaries.count(q.Text(6)) > 0, verdict, IsBlocking(verdict),
            TextOrNull(q, 9), q.Text(10), TextOrNull(q, 11), accessible, q.Text(13)});
  }
  if (rc != SQLITE_DONE) return reportdb::SqlError(db, "export verdicts");
  return Status::Ok();
}

Status ExportEvents(const Store& store, const ExportFilter& f, RowWriter* w) {
  sqlite3* db = store.handle();
  EventFilter ef;
  ef.since = f.since;
  ef.until = f.until;
  ef.target = f.target;
  ef.network = f.network;
  std::vector<Event> events;
  Status st = LoadEvents(store, ef, f.rules, &events);
  if (!st.ok()) return st;
  // Newest description of each network.
  std::map<std::string, std::pair<json, json>> nets;
  Stmt q;
  st = q.Prepare(db,
                 "SELECT n.name, n.operator, n.asn FROM cycle_networks n JOIN cycles c ON c.uid = "
                 "n.cycle_uid ORDER BY c.started_at");
  if (!st.ok()) return st;
  while (q.Step() == SQLITE_ROW) nets[q.Text(0)] = {TextOrNull(q, 1), IntOrNull(q, 2)};
  for (const Event& e : events) {
    auto it = nets.find(e.network);
    json op = it == nets.end() ? json(nullptr) : it->second.first;
    json asn = it == nets.end() ? json(nullptr) : it->second.second;
    std::string ev;
    for (const std::string& u : e.evidence) ev += (ev.empty() ? "" : " ") + u;
    std::string techniques;
    for (const TechniqueSpan& s : e.techniques)
      techniques += (techniques.empty() ? "" : ">") + s.technique;
    w->Row({e.id, e.target, e.endpoint, e.network, op, asn,
            e.onset_after ? json(Iso(e.onset_after)) : json(nullptr), Iso(e.onset_by),
            Iso(e.last_blocking), e.end_by ? json(Iso(e.end_by)) : json(nullptr), e.ongoing,
            e.techniques.empty() ? json(nullptr) : json(e.techniques.front().technique), techniques,
            e.confidence.empty() ? json(nullptr) : json(e.confidence), e.blocking_verdicts,
            e.measurements, e.merged_gaps, ev});
  }
  return Status::Ok();
}

}  // namespace

std::string CsvField(const std::string& s) {
  if (s.find_first_of(",\"\r\n") == std::string::npos) return s;
  std::string out = "\"";
  for (char c : s) {
    if (c == '"') out += '"';
    out += c;
  }
  return out + "\"";
}

const std::vector<std::string>& ExportColumns(const std::string& what) {
  static std::map<std::string, std::vector<std::string>> cache;
  auto it = cache.find(what);
  if (it == cache.end()) {
    std::vector<std::string> names;
    for (const Col& c : Cols(what)) names.push_back(c.name);
    it = cache.emplace(what, names).first;
  }
  return it->second;
}

Status ExportRows(const Store& store, const std::string& what, ExportFormat format,
                  const ExportFilter& filter, const Scrubber& scrubber,
                  const std::function<void(const std::string&)>& line, int64_t* rows) {
  const std::vector<Col>& cols = Cols(what);
  if (cols.empty())
    return Status::Invalid(what + ": nothing to export (use observations, verdicts or events)");
  RowWriter w(cols, format, scrubber, line);
  w.Header();
  Status st;
  if (what == "observations")
    st = ExportObservations(store.handle(), filter, &w);
  else if (what == "verdicts")
    st = ExportVerdicts(store.handle(), filter, &w);
  else
    st = ExportEvents(store, filter, &w);
  *rows = w.rows();
  return st;
}

}  // namespace rasad
