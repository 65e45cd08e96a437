#include "report/commands.h"

#include <unistd.h>

#include <cstdio>
#include <fstream>
#include <iostream>
#include <memory>
#include <sstream>

#include "interop/ooni_export.h"
#include "probe/core/clock.h"
#include "probe/store/store.h"
#include "report/db.h"
#include "report/export.h"
#include "report/html.h"
#include "report/model.h"
#include "report/privacy.h"
#include "report/text.h"
#include "report/timeline.h"

namespace rasad {

namespace {

void Err(const std::string& msg) { std::cerr << "rasad: " << msg << std::endl; }

// Opens for reporting: read-write when possible (to bring the timeline up to
// date), else read-only with a warning. Never creates a database.
Status OpenForReport(const std::string& path, bool rebuild, std::unique_ptr<Store>* out) {
  if (access(path.c_str(), F_OK) != 0) return Status::NotFound(path + ": no such database");
  std::unique_ptr<Store> store;
  Status st =
      access(path.c_str(), W_OK) == 0 ? Store::Open(path, &store) : Status::IoError("read-only");
  if (st.ok()) {
    int applied = 0;
    st = rebuild ? RebuildTimeline(store.get()) : CatchUpTimeline(store.get(), &applied);
    if (!st.ok()) return st;
    if (applied > 50) Err("timeline: applied " + std::to_string(applied) + " cycles");
    *out = std::move(store);
    return Status::Ok();
  }
  st = Store::OpenReadOnly(path, &store);
  if (!st.ok()) return st;
  Err(path + ": opened read-only; the timeline may miss the newest cycles");
  *out = std::move(store);
  return Status::Ok();
}

Status ResolvePeriod(const std::string& since, const std::string& until, int64_t* s, int64_t* u) {
  int64_t now = WallMicros();
  Status st = ParseTimeArg(since, now, s);
  if (!st.ok()) return st;
  st = ParseTimeArg(until, now, u);
  if (!st.ok()) return st;
  if (*s && *u && *s >= *u) return Status::Invalid("--since must be before --until");
  return Status::Ok();
}

// Writes to a file atomically (tmp + rename), or to stdout.
class Output {
 public:
  explicit Output(const std::string& path) : path_(path == "-" ? "" : path) {
    if (!path_.empty()) {
      tmp_ = path_ + ".tmp." + std::to_string(getpid());
      f_.open(tmp_, std::ios::binary | std::ios::trunc);
    }
  }
  ~Output() {
    if (!committed_ && !tmp_.empty()) unlink(tmp_.c_str());
  }
  bool ok() const { return path_.empty() || f_.good(); }
  std::ostream& os() { return path_.empty() ? std::cout : f_; }
  Status Commit() {
    if (path_.empty()) {
      std::cout.flush();
      return std::cout ? Status::Ok() : Status::IoError("stdout: write failed");
    }
    f_.close();
    if (!f_) return Status::IoError(path_ + ": write failed");
    if (rename(tmp_.c_str(), path_.c_str()) != 0) return Status::IoError(path_ + ": rename failed");
    committed_ = true;
    return Status::Ok();
  }
  const std::string& path() const { return path_; }

 private:
  std::string path_, tmp_;
  std::ofstream f_;
  bool committed_ = false;
};

std::string BaseName(const std::string& p) {
  size_t s = p.find_last_of('/');
  return s == std::string::npos ? p : p.substr(s + 1);
}

}  // namespace

int RunReport(const std::string& kind, const ReportOptions& o) {
  if (kind != "events" && kind != "timeline" && kind != "compare" && kind != "html") {
    Err("report " + kind + ": unknown (events, timeline, compare or html)");
    return 2;
  }
  if (!o.bucket.empty() && o.bucket != "hour" && o.bucket != "day") {
    Err("--bucket must be hour or day");
    return 2;
  }
  TimeZone tz;
  Status st = TimeZone::Load(o.tz, &tz);
  ModelOptions mo;
  if (st.ok()) st = ResolvePeriod(o.since, o.until, &mo.since, &mo.until);
  if (!st.ok()) {
    Err(st.ToString());
    return 2;
  }
  std::unique_ptr<Store> store;
  st = OpenForReport(o.database, o.rebuild, &store);
  if (!st.ok()) {
    Err(st.ToString());
    return 1;
  }
  mo.target = o.target;
  mo.network = o.network;
  mo.include_controls = o.include_controls;
  // Default periods (docs/REPORTS.md): events all time, compare the last
  // day of data, timeline and html the last week of data.
  if (kind == "events") {
    mo.default_span = INT64_MAX / 4;
    if (!mo.since) mo.since = 1;  // from the beginning
    mo.need_counts = false;
  } else if (kind == "compare") {
    mo.default_span = 24 * kMicrosPerHour;
    mo.need_latest = true;
  } else {
    mo.default_span = 7 * 24 * kMicrosPerHour;
    mo.need_latest = kind == "html";
    mo.need_events = kind == "html";
  }
  ReportModel m;
  st = BuildModel(*store, mo, &m);
  Scrubber sc;
  if (st.ok()) st = Scrubber::Load(*store, &sc);
  if (!st.ok()) {
    Err(st.ToString());
    return 1;
  }
  TextOptions to;
  to.tz = tz;
  to.by_endpoint = o.by_endpoint;
  to.bucket = o.bucket;
  if (kind == "html") {
    HtmlOptions ho;
    ho.tz = tz;
    ho.bucket = o.bucket;
    ho.generated_at = WallMicros();
    ho.database_name = BaseName(o.database);
    std::string out = o.output.empty() ? "rasad-report.html" : o.output;
    Output f(out);
    if (!f.ok()) {
      Err(out + ": cannot write");
      return 1;
    }
    f.os() << RenderHtml(m, ho, sc);
    st = f.Commit();
    if (!st.ok()) {
      Err(st.ToString());
      return 1;
    }
    if (!f.path().empty())
      std::cerr << "wrote " << f.path() << " (" << m.events.size() << " events, "
                << m.networks.size() << " operators)\n";
    return 0;
  }
  std::ostringstream os;
  if (kind == "events")
    PrintEvents(m, to, os);
  else if (kind == "timeline")
    PrintTimeline(m, to, os);
  else
    PrintCompare(m, to, os);
  std::cout << sc.Scrub(os.str());
  std::cout.flush();
  return std::cout ? 0 : 1;
}

int RunExport(const std::string& format, const ExportOptions& o) {
  if (format != "csv" && format != "json" && format != "ooni") {
    Err("export " + format + ": unknown (csv, json or ooni)");
    return 2;
  }
  if (format != "ooni" && o.what != "observations" && o.what != "verdicts" && o.what != "events") {
    Err("--what must be observations, verdicts or events");
    return 2;
  }
  if (o.probe_cc.size() != 2 || !isupper(static_cast<unsigned char>(o.probe_cc[0])) ||
      !isupper(static_cast<unsigned char>(o.probe_cc[1]))) {
    Err("--probe-cc must be an ISO 3166 alpha-2 code such as IR (ZZ = unknown)");
    return 2;
  }
  ExportFilter f;
  Status st = ResolvePeriod(o.since, o.until, &f.since, &f.until);
  if (!st.ok()) {
    Err(st.ToString());
    return 2;
  }
  f.target = o.target;
  f.network = o.network;
  std::unique_ptr<Store> store;
  st = OpenForReport(o.database, false, &store);
  Scrubber sc;
  if (st.ok()) st = Scrubber::Load(*store, &sc);
  if (!st.ok()) {
    Err(st.ToString());
    return 1;
  }
  Output out(o.output);
  if (!out.ok()) {
    Err(o.output + ": cannot write");
    return 1;
  }
  std::ostream& os = out.os();
  auto line = [&](const std::string& s) { os << s << '\n'; };
  int64_t rows = 0;
  if (format == "ooni") {
    OoniExportOptions oo;
    oo.since = f.since;
    oo.until = f.until;
    oo.target = f.target;
    oo.network = f.network;
    oo.probe_cc = o.probe_cc;
    st = ExportOoni(
        *store, oo, [&](const std::string& s) { line(sc.Scrub(s)); }, &rows);
  } else {
    st = ExportRows(*store, o.what, format == "csv" ? ExportFormat::kCsv : ExportFormat::kJson, f,
                    sc, line, &rows);
  }
  if (st.ok()) st = out.Commit();
  if (!st.ok()) {
    Err(st.ToString());
    return 1;
  }
  std::cerr << "exported " << rows << (format == "ooni" ? " measurements" : " rows")
            << (out.path().empty() ? "" : " to " + out.path()) << "\n";
  return 0;
}

}  // namespace rasad
