#include "report/text.h"

#include <algorithm>
#include <climits>

#include "analysis/verdict.h"

namespace rasad {

namespace {

size_t Width(const std::string& s) {
  size_t w = 0;
  for (unsigned char c : s)
    if ((c & 0xC0) != 0x80) ++w;
  return w;
}

std::string Pct(int64_t a, int64_t b) {
  if (b == 0) return "-";
  return std::to_string((a * 100 + b / 2) / b) + "%";
}

}  // namespace

std::string ZoneLabel(const TimeZone& tz, int64_t at) {
  return tz.utc() ? "UTC" : tz.name() + ", " + tz.OffsetLabel(at);
}

void TextTable::Print(std::ostream& os) const {
  std::vector<size_t> w(header_.size(), 0);
  for (size_t i = 0; i < header_.size(); ++i) w[i] = Width(header_[i]);
  for (const auto& r : rows_)
    for (size_t i = 0; i < r.size() && i < w.size(); ++i) w[i] = std::max(w[i], Width(r[i]));
  auto line = [&](const std::vector<std::string>& r) {
    std::string s;
    for (size_t i = 0; i < w.size(); ++i) {
      std::string c = i < r.size() ? r[i] : "";
      s += c;
      if (i + 1 < w.size()) s += std::string(w[i] - Width(c) + 2, ' ');
    }
    while (!s.empty() && s.back() == ' ') s.pop_back();
    os << s << "\n";
  };
  line(header_);
  std::vector<std::string> dashes;
  for (size_t x : w) dashes.push_back(std::string(x, '-'));
  line(dashes);
  for (const auto& r : rows_) line(r);
}

std::string Window(const TimeZone& tz, int64_t after, int64_t by, const char* open_after,
                   const char* open_by) {
  std::string a = after ? tz.Format(after) : open_after;
  std::string b = by ? tz.Format(by) : open_by;
  // Same day: show the date once.
  if (after && by && a.substr(0, 10) == b.substr(0, 10)) b = b.substr(11);
  return a + " .. " + b;
}

void PrintEvents(const ReportModel& m, const TextOptions& o, std::ostream& os) {
  const TimeZone& tz = o.tz;
  os << "Disruption events, "
     << (m.since <= 1 ? "whole history up to " + tz.Format(m.until)
                      : tz.Format(m.since) + " .. " + tz.Format(m.until))
     << " (" << ZoneLabel(tz, m.until) << "): " << m.events.size() << " event"
     << (m.events.size() == 1 ? "" : "s") << "\n";
  os << "onset = between the last ok and the first blocking measurement; end = between the last "
        "blocking and the first ok one.\n\n";
  if (!m.events.empty()) {
    TextTable t({"#", "app/endpoint", "network", "onset (between)", "end (between)", "techniques",
                 "confidence", "blocking", "evidence (first measurement)"});
    int i = 0;
    for (const Event& e : m.events) {
      std::string end = e.ongoing ? "ongoing"
                                  : (e.end_by ? Window(tz, e.last_blocking, e.end_by, "", "")
                                              : tz.Format(e.last_blocking) + " .. unknown");
      t.Row({std::to_string(++i), e.target + "/" + e.endpoint, e.network,
             Window(tz, e.onset_after, e.onset_by, "before data", ""), end, e.TechniqueChain(),
             e.confidence.empty() ? "-" : e.confidence,
             std::to_string(e.blocking_verdicts) + "/" + std::to_string(e.measurements),
             e.evidence.empty() ? "" : e.evidence.front()});
    }
    t.Print(os);
  }
  if (!m.episodes.empty()) {
    os << "\nWho blocked first (per app; events that overlap in time are one episode):\n";
    for (const Episode& ep : m.episodes) {
      os << "\n" << ep.target << ", from " << tz.Format(ep.start) << "\n";
      TextTable t({"order", "network", "onset (between)", "how", "then", "endpoints", "confidence",
                   "until"});
      int k = 0;
      for (const EpisodeEntry& en : ep.networks) {
        const NetworkInfo* ni = m.Network(en.network);
        std::string then;
        for (size_t i = 1; i < en.techniques.size(); ++i)
          then += (then.empty() ? "" : ", ") + en.techniques[i];
        std::string eps;
        for (const std::string& e : en.endpoints) eps += (eps.empty() ? "" : ", ") + e;
        t.Row({std::to_string(++k), ni ? ni->Describe() : en.network,
               Window(tz, en.onset_after, en.onset_by, "before data", ""), en.first_technique,
               then.empty() ? "-" : then, eps, en.confidence.empty() ? "-" : en.confidence,
               en.ongoing ? "ongoing" : (en.end_by ? tz.Format(en.end_by) : "unknown")});
      }
      t.Print(os);
    }
  }
}

bool UseDays(const ReportModel& m, const std::string& bucket) {
  if (bucket == "day") return true;
  if (bucket == "hour") return false;
  return m.until - m.since > 48 * kMicrosPerHour;
}

std::vector<int64_t> BucketStarts(const ReportModel& m, const TimeZone& tz, bool days) {
  std::vector<int64_t> out;
  if (!days) {
    for (int64_t h = m.since - ((m.since % kMicrosPerHour) + kMicrosPerHour) % kMicrosPerHour;
         h < m.until; h += kMicrosPerHour)
      out.push_back(h);
    return out;
  }
  for (int64_t d = tz.DayStart(m.since); d < m.until;) {
    out.push_back(d);
    // Next local midnight (days are 23-25 h around DST changes).
    int64_t next = tz.DayStart(d + 26 * kMicrosPerHour);
    if (next <= d) next = d + 24 * kMicrosPerHour;
    d = next;
  }
  return out;
}

std::map<BucketKey, Cell> Buckets(const ReportModel& m, const TimeZone& tz, bool days,
                                  bool by_endpoint, bool include_controls) {
  std::map<BucketKey, Cell> out;
  std::map<int64_t, int64_t> day_of_hour;  // cache: DayStart is not free
  for (const TimelineCount& c : m.counts) {
    if (!include_controls && m.canaries.count(c.target)) continue;
    int64_t start = c.hour;
    if (days) {
      auto it = day_of_hour.find(c.hour);
      if (it == day_of_hour.end()) it = day_of_hour.emplace(c.hour, tz.DayStart(c.hour)).first;
      start = it->second;
    }
    out[{start, by_endpoint ? c.target + "/" + c.endpoint : c.target, c.network}].Add(c);
  }
  return out;
}

void PrintTimeline(const ReportModel& m, const TextOptions& o, std::ostream& os) {
  const TimeZone& tz = o.tz;
  bool days = UseDays(m, o.bucket);
  auto buckets = Buckets(m, tz, days, o.by_endpoint, false);
  os << "Timeline per " << (days ? "day" : "hour") << ", " << tz.Format(m.since) << " .. "
     << tz.Format(m.until) << " (" << ZoneLabel(tz, m.until) << ")\n";
  if (!tz.utc() && !days)
    os << "(buckets are UTC hours, labelled with their start in " << tz.name() << ")\n";
  os << "\n";
  TextTable t({days ? "day" : "hour", o.by_endpoint ? "app/endpoint" : "app", "network", "verdicts",
               "ok", "blocking", "other", "blocked by", "state"});
  for (const auto& [k, c] : buckets) {
    t.Row({days ? tz.Day(k.start) : tz.Format(k.start), k.row, k.network, std::to_string(c.n),
           std::to_string(c.ok), std::to_string(c.Blocking()), std::to_string(c.other),
           c.TopBlocking().empty() ? "-" : c.TopBlocking(), c.Class()});
  }
  if (t.size() == 0)
    os << "no verdicts in this period\n";
  else
    t.Print(os);
}

void PrintCompare(const ReportModel& m, const TextOptions& o, std::ostream& os) {
  const TimeZone& tz = o.tz;
  os << "Operators side by side, " << tz.Format(m.since) << " .. " << tz.Format(m.until) << " ("
     << ZoneLabel(tz, m.until) << ")\n";
  os << "Each cell: the latest verdict of the period, since when, and the share of the period's "
        "verdicts that were blocking.\n\n";
  std::vector<std::string> header = {"app/endpoint"};
  for (const NetworkInfo& n : m.networks) header.push_back(n.Describe());
  TextTable t(header);
  for (const auto& [key, cells] : m.compare) {
    std::vector<std::string> row = {key.first + "/" + key.second};
    for (const NetworkInfo& n : m.networks) {
      auto it = cells.find(n.name);
      if (it == cells.end() || !it->second.measured) {
        row.push_back("not measured");
        continue;
      }
      const CompareCell& c = it->second;
      std::string s;
      if (c.event) {
        s = "BLOCKED " + c.event->TechniqueChain() + " since " +
            (c.event->onset_after ? tz.Format(c.event->onset_by) : "before data") + " [" +
            (c.event->confidence.empty() ? "?" : c.event->confidence) + "]";
      } else if (IsBlocking(c.latest.verdict)) {
        s = c.latest.verdict + " (not yet an event)";
      } else {
        s = c.latest.verdict;
        if (c.last_event)
          s += "; was " + c.last_event->TechniqueChain() + " " + tz.Format(c.last_event->onset_by) +
               " .. " + (c.last_event->end_by ? tz.Format(c.last_event->end_by) : std::string("?"));
      }
      s += " (" + Pct(c.period.Blocking(), c.period.n) + " blocking)";
      row.push_back(s);
    }
    t.Row(row);
  }
  if (t.size() == 0) {
    os << "no verdicts in this period\n";
    return;
  }
  t.Print(os);

  // Per app: blocked / partial / ok from the latest verdict of each endpoint.
  os << "\nPer app (latest verdict of each endpoint):\n";
  std::vector<Verdict> latest;
  for (const auto& [key, cells] : m.compare)
    for (const auto& [net, c] : cells) {
      if (!c.measured) continue;
      Verdict v;
      v.network = net;
      v.target = key.first;
      v.endpoint = key.second;
      v.verdict = c.latest.verdict;
      latest.push_back(v);
    }
  std::map<std::string, std::map<std::string, std::string>> status;  // app -> net -> status
  for (const AppRollup& r : RollupByApp(latest)) {
    std::string s = r.status;
    std::string blocked;
    for (const auto& [e, v] : r.endpoints)
      if (IsBlocking(v)) blocked += (blocked.empty() ? "" : ", ") + e + " " + v;
    if (!blocked.empty()) s += ": " + blocked;
    status[r.target][r.network] = s;
  }
  std::vector<std::string> h2 = {"app"};
  for (const NetworkInfo& n : m.networks) h2.push_back(n.name);
  TextTable t2(h2);
  for (const auto& [app, nets] : status) {
    std::vector<std::string> row = {app};
    for (const NetworkInfo& n : m.networks) {
      auto it = nets.find(n.name);
      row.push_back(it == nets.end() ? "not measured" : it->second);
    }
    t2.Row(row);
  }
  t2.Print(os);
}

}  // namespace rasad
