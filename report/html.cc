#include "report/html.h"

#include <openssl/evp.h>

#include <algorithm>
#include <sstream>

#include "analysis/verdict.h"
#include "report/export.h"
#include "report/text.h"

namespace rasad {

namespace {

std::string Esc(const std::string& s) {
  std::string o;
  o.reserve(s.size());
  for (char c : s) {
    switch (c) {
      case '&':
        o += "&amp;";
        break;
      case '<':
        o += "&lt;";
        break;
      case '>':
        o += "&gt;";
        break;
      case '"':
        o += "&quot;";
        break;
      case '\'':
        o += "&#39;";
        break;
      default:
        o += c;
    }
  }
  return o;
}

std::string B64(const std::string& s) {
  std::string out(4 * ((s.size() + 2) / 3) + 1, '\0');
  int n =
      EVP_EncodeBlock(reinterpret_cast<unsigned char*>(out.data()),
                      reinterpret_cast<const unsigned char*>(s.data()), static_cast<int>(s.size()));
  out.resize(static_cast<size_t>(n > 0 ? n : 0));
  return out;
}

std::string Id(const std::string& s) {
  std::string o;
  for (char c : s) o += isalnum(static_cast<unsigned char>(c)) ? c : '-';
  return o;
}

class Csv {
 public:
  explicit Csv(const std::vector<std::string>& header) { Row(header); }
  void Row(const std::vector<std::string>& cells) {
    for (size_t i = 0; i < cells.size(); ++i) s_ += (i ? "," : "") + CsvField(cells[i]);
    s_ += "\r\n";
  }
  const std::string& str() const { return s_; }

 private:
  std::string s_;
};

std::string Download(const std::string& csv, const std::string& file, const std::string& label,
                     const Scrubber& sc) {
  return "<a class=\"download\" download=\"" + Esc(file) +
         "\" href=\"data:text/csv;charset=utf-8;base64," + B64(sc.Scrub(csv)) + "\">" + Esc(label) +
         "</a>";
}

const char* kCss = R"css(
body{font-family:"DejaVu Sans",Arial,Helvetica,sans-serif;margin:24px 32px;color:#212529;
  background:#fff;font-size:14px;line-height:1.45;max-width:1320px}
h1{font-size:26px;margin:0 0 4px}h2{font-size:20px;margin:32px 0 8px;border-bottom:2px solid #dee2e6;
  padding-bottom:4px}h3{font-size:16px;margin:18px 0 6px}
.meta{color:#495057;margin:0 0 12px}
.headline{background:#fff5f5;border-left:4px solid #e03131;padding:8px 12px;margin:6px 0}
.headline.none{background:#ebfbee;border-color:#40c057}
table{border-collapse:collapse;margin:6px 0 10px;width:100%}
th,td{border:1px solid #dee2e6;padding:4px 7px;text-align:left;vertical-align:top}
th{background:#f1f3f5;font-weight:600}
tr.event td.tech{font-family:"DejaVu Sans Mono",monospace;font-size:12px}
td.mono,.mono{font-family:"DejaVu Sans Mono",monospace;font-size:12px;word-break:break-all}
.badge{display:inline-block;padding:0 6px;border-radius:8px;font-size:12px;color:#fff}
.confirmed{background:#e03131}.probable{background:#fd7e14}.unknown{background:#868e96}
.state-blocked{color:#c92a2a;font-weight:600}.state-ok{color:#2b8a3e}.state-other{color:#495057}
.legend span{display:inline-block;margin-right:14px}
.legend i{display:inline-block;width:12px;height:12px;margin-right:4px;vertical-align:-1px;
  border:1px solid #ced4da}
a.download{display:inline-block;margin:2px 0 8px;font-size:13px;color:#1c7ed6}
.heatmap{margin:4px 0 14px;overflow-x:auto}
.caveats li{margin-bottom:4px}
footer{margin-top:36px;color:#868e96;font-size:12px}
)css";

struct Palette {
  const char* cls;
  const char* color;
  const char* label;
};
const Palette kPalette[] = {
    {"ok", "#40c057", "ok"},
    {"partial", "#fcc419", "some blocking"},
    {"blocked-probable", "#fd7e14", "blocked (probable)"},
    {"blocked-confirmed", "#e03131", "blocked (confirmed)"},
    {"failure", "#adb5bd", "inconclusive / down / offline"},
    {"none", "#f1f3f5", "no data"},
};

const char* Color(const std::string& cls) {
  for (const Palette& p : kPalette)
    if (cls == p.cls) return p.color;
  return "#f1f3f5";
}

std::string Badge(const std::string& confidence) {
  std::string c = confidence.empty() ? "unknown" : confidence;
  return "<span class=\"badge " + c + "\">" + Esc(c) + "</span>";
}

std::string NetName(const ReportModel& m, const std::string& n) {
  const NetworkInfo* ni = m.Network(n);
  return ni ? ni->Describe() : n;
}

}  // namespace

std::string RenderHtml(const ReportModel& m, const HtmlOptions& o, const Scrubber& sc) {
  const TimeZone& tz = o.tz;
  bool days =
      o.bucket == "day" || (o.bucket != "hour" && m.until - m.since > 8 * 24 * kMicrosPerHour);
  std::vector<int64_t> starts = BucketStarts(m, tz, days);
  auto buckets = Buckets(m, tz, days, false, true);
  std::vector<std::string> apps = m.Targets(false);
  std::vector<std::string> canaries(m.canaries.begin(), m.canaries.end());
  std::ostringstream h;
  std::string period = (m.since <= 1 ? std::string("the whole history") : tz.Format(m.since)) +
                       " – " + tz.Format(m.until) + " (" + ZoneLabel(tz, m.until) + ")";

  h << "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
    << "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">"
    << "<title>" << Esc(o.title) << "</title><style>" << kCss << "</style></head><body>\n";
  h << "<h1>" << Esc(o.title) << "</h1>\n<p class=\"meta\">Period: " << Esc(period)
    << ". Operators: " << m.networks.size() << ". Generated " << Esc(tz.Format(o.generated_at))
    << " by rasad " << RASAD_VERSION;
  if (!o.database_name.empty()) h << " from " << Esc(o.database_name);
  h << ". All times are " << Esc(tz.name()) << "; the data files are UTC.</p>\n";

  // Headline: who blocked first, per app.
  h << "<section id=\"summary\"><h2>Summary: who blocked first, and how</h2>\n";
  if (m.episodes.empty()) {
    h << "<p class=\"headline none\">No disruption events in this period.</p>\n";
  }
  for (const Episode& ep : m.episodes) {
    h << "<p class=\"headline episode\"><b>" << Esc(ep.target) << "</b>: ";
    for (size_t i = 0; i < ep.networks.size(); ++i) {
      const EpisodeEntry& en = ep.networks[i];
      std::string how = en.first_technique;
      for (size_t k = 1; k < en.techniques.size(); ++k) how += ", then " + en.techniques[k];
      h << (i == 0 ? "blocked on " : "; " + std::string("followed on ")) << "<b>"
        << Esc(NetName(m, en.network)) << "</b> "
        << (en.onset_after ? "between " + Esc(tz.Format(en.onset_after)) + " and " +
                                 Esc(tz.Format(en.onset_by))
                           : "since before " + Esc(tz.Format(en.onset_by)))
        << " by <span class=\"mono\">" << Esc(how) << "</span> " << Badge(en.confidence) << " ("
        << Esc(std::to_string(en.endpoints.size())) << " endpoint"
        << (en.endpoints.size() == 1 ? "" : "s") << ")"
        << (en.ongoing ? ", ongoing" : (en.end_by ? ", until " + Esc(tz.Format(en.end_by)) : ""));
    }
    h << ".</p>\n";
  }
  h << "</section>\n";

  // Heatmap per operator.
  h << "<section id=\"heatmaps\"><h2>Reachability by app and " << (days ? "day" : "hour")
    << ", per operator</h2>\n<p>Each cell aggregates every endpoint of the app in that "
    << (days ? "day" : "hour")
    << ". Red/orange: at least half of the verdicts were blocking (confirmed / probable); "
       "yellow: some were. Hover a cell for its counts.</p>\n<p class=\"legend\">";
  for (const Palette& p : kPalette)
    h << "<span><i style=\"background:" << p.color << "\"></i>" << Esc(p.label) << "</span>";
  h << "</p>\n";
  Csv heat_csv({"bucket_start_utc", "bucket_start_local", "network", "app", "canary", "verdicts",
                "ok", "blocking_confirmed", "blocking_probable", "other", "top_blocking", "class"});
  const int label_w = 170, top = 8, row_h = 22, axis_h = 34;
  int cols = static_cast<int>(starts.size());
  int cell_w = std::max(1, std::min(60, cols ? 1080 / cols : 60));
  std::vector<std::pair<std::string, bool>> rows;
  for (const std::string& a : apps) rows.push_back({a, false});
  for (const std::string& c : canaries) rows.push_back({c, true});
  for (const NetworkInfo& net : m.networks) {
    int width = label_w + cols * cell_w + 10;
    int height = top + static_cast<int>(rows.size()) * row_h + axis_h;
    h << "<h3>" << Esc(net.Describe()) << "</h3>\n<div class=\"heatmap\"><svg id=\"heatmap-"
      << Id(net.name) << "\" class=\"heatmap-chart\" data-network=\"" << Esc(net.name)
      << "\" xmlns=\"http://www.w3.org/2000/svg\" width=\"" << width << "\" height=\"" << height
      << "\" viewBox=\"0 0 " << width << " " << height
      << "\" role=\"img\" font-family=\"DejaVu Sans,Arial,sans-serif\" font-size=\"12\">"
      << "<title>" << Esc(net.Describe()) << ": reachability by app</title>\n";
    for (size_t r = 0; r < rows.size(); ++r) {
      int y = top + static_cast<int>(r) * row_h;
      h << "<text x=\"" << label_w - 8 << "\" y=\"" << y + 15 << "\" text-anchor=\"end\""
        << (rows[r].second ? " fill=\"#868e96\"" : "") << ">" << Esc(rows[r].first)
        << (rows[r].second ? " (canary)" : "") << "</text>\n";
      for (int c = 0; c < cols; ++c) {
        auto it = buckets.find({starts[c], rows[r].first, net.name});
        Cell cell = it == buckets.end() ? Cell() : it->second;
        std::string cls = cell.Class();
        std::string when = days ? tz.Day(starts[c]) : tz.Format(starts[c]);
        h << "<rect class=\"cell c-" << cls << "\" x=\"" << label_w + c * cell_w << "\" y=\""
          << y + 1 << "\" width=\"" << std::max(1, cell_w - (cell_w > 4 ? 1 : 0)) << "\" height=\""
          << row_h - 2 << "\" fill=\"" << Color(cls) << "\"><title>"
          << Esc(rows[r].first + " on " + net.name + ", " + when + ": ");
        if (cell.n == 0) {
          h << "no data";
        } else {
          h << cell.n << " verdicts, " << cell.ok << " ok, " << cell.Blocking() << " blocking";
          if (!cell.TopBlocking().empty()) h << " (" << Esc(cell.TopBlocking()) << ")";
          if (cell.other) h << ", " << cell.other << " other";
        }
        h << "</title></rect>\n";
        if (cell.n)
          heat_csv.Row(
              {IsoUtc(starts[c]), when, net.name, rows[r].first, rows[r].second ? "true" : "false",
               std::to_string(cell.n), std::to_string(cell.ok), std::to_string(cell.confirmed),
               std::to_string(cell.probable), std::to_string(cell.other), cell.TopBlocking(), cls});
      }
    }
    // Time axis: labels about 90 px apart, never overlapping.
    int every = std::max(1, (90 + cell_w - 1) / cell_w);
    int ay = top + static_cast<int>(rows.size()) * row_h;
    for (int c = 0; c < cols; c += every) {
      int x = label_w + c * cell_w;
      h << "<line x1=\"" << x << "\" y1=\"" << ay << "\" x2=\"" << x << "\" y2=\"" << ay + 5
        << "\" stroke=\"#495057\"/><text x=\"" << x << "\" y=\"" << ay + 18
        << "\" fill=\"#495057\">" << Esc(days ? tz.Day(starts[c]) : tz.Format(starts[c]).substr(5))
        << "</text>\n";
    }
    h << "</svg></div>\n";
  }
  if (m.networks.empty()) h << "<p>No operator data in this period.</p>\n";
  h << Download(heat_csv.str(), "heatmap.csv", "Download the heatmap data (CSV)", sc) << "\n";
  h << "</section>\n";

  // Events.
  Csv ev_csv({"event_id", "app", "endpoint", "network", "onset_after_utc", "onset_by_utc",
              "last_blocking_utc", "end_by_utc", "ongoing", "techniques", "confidence",
              "blocking_verdicts", "measurements", "evidence"});
  h << "<section id=\"events\"><h2>Disruption events</h2>\n<p>An event is a run of blocking "
       "verdicts on one endpoint and operator. <i>Onset</i> is the window between the last "
       "measurement that worked and the first blocked one; <i>end</i> the window between the "
       "last blocked and the first working one. Techniques are listed in the order seen.</p>\n";
  h << "<table id=\"events-table\"><thead><tr><th>#</th><th>App / endpoint</th><th>Operator</th>"
       "<th>Onset (between)</th><th>End (between)</th><th>Techniques</th><th>Confidence</th>"
       "<th>Blocking verdicts</th><th>Evidence (measurement uids)</th></tr></thead><tbody>\n";
  int i = 0;
  for (const Event& e : m.events) {
    std::string end = e.ongoing ? "ongoing"
                                : (e.end_by ? Window(tz, e.last_blocking, e.end_by, "", "")
                                            : tz.Format(e.last_blocking) + " .. unknown");
    std::string ev;
    for (size_t k = 0; k < e.evidence.size() && k < 3; ++k) ev += (k ? " " : "") + e.evidence[k];
    if (e.evidence.size() > 3) ev += " …";
    h << "<tr class=\"event\" id=\"event-" << Esc(e.id) << "\"><td>" << ++i << "</td><td>"
      << Esc(e.target + " / " + e.endpoint) << "</td><td>" << Esc(NetName(m, e.network))
      << "</td><td>" << Esc(Window(tz, e.onset_after, e.onset_by, "before data", "")) << "</td><td>"
      << Esc(end) << "</td><td class=\"tech\">";
    for (size_t k = 0; k < e.techniques.size(); ++k)
      h << (k ? " → " : "") << Esc(e.techniques[k].technique) << " <small>("
        << Esc(tz.Format(e.techniques[k].first_seen).substr(5)) << ", ×" << e.techniques[k].count
        << ")</small>";
    h << "</td><td>" << Badge(e.confidence) << "</td><td>" << e.blocking_verdicts << " / "
      << e.measurements << "</td><td class=\"mono\">" << Esc(ev) << "</td></tr>\n";
    std::string all_ev, techs;
    for (const std::string& u : e.evidence) all_ev += (all_ev.empty() ? "" : " ") + u;
    for (const TechniqueSpan& s : e.techniques) techs += (techs.empty() ? "" : ">") + s.technique;
    ev_csv.Row({e.id, e.target, e.endpoint, e.network, e.onset_after ? IsoUtc(e.onset_after) : "",
                IsoUtc(e.onset_by), IsoUtc(e.last_blocking), e.end_by ? IsoUtc(e.end_by) : "",
                e.ongoing ? "true" : "false", techs, e.confidence,
                std::to_string(e.blocking_verdicts), std::to_string(e.measurements), all_ev});
  }
  if (m.events.empty()) h << "<tr><td colspan=\"9\">No events in this period.</td></tr>\n";
  h << "</tbody></table>\n"
    << Download(ev_csv.str(), "events.csv", "Download the events (CSV)", sc) << "\n</section>\n";

  // Operators side by side.
  Csv cmp_csv({"app", "endpoint", "network", "latest_verdict", "latest_utc", "verdicts", "blocking",
               "blocking_share", "event_techniques", "event_onset_by_utc", "event_confidence"});
  h << "<section id=\"compare\"><h2>Operators side by side</h2>\n<p>For each endpoint: the "
       "latest verdict of the period on each operator, since when it has been blocked, and "
       "the share of the period's verdicts that were blocking.</p>\n<table id=\"compare-table\">"
       "<thead><tr><th>App / endpoint</th>";
  for (const NetworkInfo& n : m.networks) h << "<th>" << Esc(n.Describe()) << "</th>";
  h << "</tr></thead><tbody>\n";
  for (const auto& [key, cells] : m.compare) {
    h << "<tr class=\"compare-row\"><td>" << Esc(key.first + " / " + key.second) << "</td>";
    for (const NetworkInfo& n : m.networks) {
      auto it = cells.find(n.name);
      if (it == cells.end() || !it->second.measured) {
        h << "<td class=\"state-other\">not measured</td>";
        continue;
      }
      const CompareCell& c = it->second;
      bool blocked = IsBlocking(c.latest.verdict);
      std::string share =
          c.period.n ? std::to_string((c.period.Blocking() * 100 + c.period.n / 2) / c.period.n) +
                           "% of " + std::to_string(c.period.n) + " blocking"
                     : "";
      h << "<td class=\""
        << (blocked                    ? "state-blocked"
            : c.latest.verdict == "ok" ? "state-ok"
                                       : "state-other")
        << "\"><span class=\"mono\">" << Esc(c.latest.verdict) << "</span>";
      if (c.event)
        h << " since " << Esc(tz.Format(c.event->onset_by)) << " " << Badge(c.event->confidence)
          << "<br><small>" << Esc(c.event->TechniqueChain()) << "</small>";
      h << "<br><small>" << Esc(share) << "</small></td>";
      cmp_csv.Row({key.first, key.second, n.name, c.latest.verdict, IsoUtc(c.latest.t),
                   std::to_string(c.period.n), std::to_string(c.period.Blocking()),
                   c.period.n ? std::to_string(static_cast<double>(c.period.Blocking()) /
                                               static_cast<double>(c.period.n))
                              : "",
                   c.event ? c.event->TechniqueChain() : "",
                   c.event ? IsoUtc(c.event->onset_by) : "", c.event ? c.event->confidence : ""});
    }
    h << "</tr>\n";
  }
  if (m.compare.empty())
    h << "<tr><td colspan=\"" << m.networks.size() + 1 << "\">No verdicts.</td></tr>\n";
  h << "</tbody></table>\n"
    << Download(cmp_csv.str(), "compare.csv", "Download the comparison (CSV)", sc)
    << "\n</section>\n";

  // Methodology.
  h << R"html(<section id="methodology"><h2>Methodology and caveats</h2>
<p>rasad measures each app endpoint from a volunteer's connection on every operator uplink, on a
fixed interval: DNS (A and AAAA against the operator's resolvers), TCP connect, TLS handshake with
the real server name, and an HTTP request. A failed endpoint is retried after a pause longer than
censors' residual-blocking windows before it is judged. Each endpoint, operator and cycle gets one
<i>verdict</i> from a closed vocabulary (<span class="mono">ok</span>,
<span class="mono">dns.bogon</span>, <span class="mono">tls.reset</span>, …) by comparing what the
operator saw with controls: a test helper on an uncensored server, the other operators, canary
sites and TLS validation of DNS answers.</p>
<ul class="caveats">
<li><b>Confidence.</b> <span class="badge confirmed">confirmed</span>: a known blockpage or
sinkhole fingerprint, packet-level proof, or agreement of the control and another operator.
<span class="badge probable">probable</span>: a failure specific to this operator without such
proof.</li>
<li><b>Events.</b> Two consecutive blocking verdicts (or one confirmed) start an event. Gaps of up
to 3 non-blocking cycles inside an event are merged (flapping) unless two consecutive cycles were
ok; inconclusive, down and offline cycles never end an event by themselves within that limit.</li>
<li><b>Times are windows.</b> A disruption began somewhere between the last measurement that
worked and the first that did not; with a 15-minute interval the true moment can be up to one
interval earlier than the first blocked measurement.</li>
<li><b>One vantage point per operator.</b> What one SIM or line sees may differ by region, plan
or time of day; a result is evidence about this connection, not about every customer.</li>
<li><b>Not censorship.</b> <span class="mono">down</span> (the site fails from the control too),
<span class="mono">vantage.offline</span> (canaries fail: the probe's own link is down) and
<span class="mono">inconclusive</span> are never counted as blocking; shutdowns are reported
separately.</li>
<li><b>Privacy.</b> The volunteer's IP addresses are removed from this report and every export.</li>
<li><b>Data.</b> Every chart and table has its data as CSV (UTC times) next to it. Full exports:
<span class="mono">rasad export csv|json --what observations|verdicts|events</span> and
<span class="mono">rasad export ooni</span> (OONI measurement format).</li>
</ul></section>
)html";
  h << "<footer>rasad " << RASAD_VERSION << " · generated " << Esc(IsoUtc(o.generated_at)) << " · "
    << m.events.size() << " events · period " << Esc(IsoUtc(m.since)) << " – "
    << Esc(IsoUtc(m.until)) << "</footer>\n</body></html>\n";
  return sc.Scrub(h.str());
}

}  // namespace rasad
