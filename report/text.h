// Readable tables for `rasad report events|timeline|compare`.
#pragma once

#include <ostream>
#include <string>
#include <vector>

#include "report/model.h"

namespace rasad {

// Column-aligned plain text table (widths in UTF-8 code points).
class TextTable {
 public:
  explicit TextTable(std::vector<std::string> header) : header_(std::move(header)) {}
  void Row(std::vector<std::string> cells) { rows_.push_back(std::move(cells)); }
  void Print(std::ostream& os) const;
  size_t size() const { return rows_.size(); }

 private:
  std::vector<std::string> header_;
  std::vector<std::vector<std::string>> rows_;
};

struct TextOptions {
  TimeZone tz;
  bool by_endpoint = false;  // timeline: one row per endpoint, not per app
  std::string bucket;        // timeline: "hour" | "day" | "" (auto: hour up to 48 h)
};

// "UTC", or "Asia/Tehran, UTC+03:30".
std::string ZoneLabel(const TimeZone& tz, int64_t at);

// "19:45 .. 20:00" style windows, in the zone.
std::string Window(const TimeZone& tz, int64_t after, int64_t by, const char* open_after,
                   const char* open_by);

void PrintEvents(const ReportModel& m, const TextOptions& o, std::ostream& os);
void PrintTimeline(const ReportModel& m, const TextOptions& o, std::ostream& os);
void PrintCompare(const ReportModel& m, const TextOptions& o, std::ostream& os);

// Timeline buckets shared by the text and HTML reports: (bucket start,
// app or app/endpoint, network) -> counts.
struct BucketKey {
  int64_t start;
  std::string row;
  std::string network;
  bool operator<(const BucketKey& b) const {
    return std::tie(start, row, network) < std::tie(b.start, b.row, b.network);
  }
};
std::map<BucketKey, Cell> Buckets(const ReportModel& m, const TimeZone& tz, bool days,
                                  bool by_endpoint, bool include_controls);
// Starts of every bucket of the period.
std::vector<int64_t> BucketStarts(const ReportModel& m, const TimeZone& tz, bool days);
bool UseDays(const ReportModel& m, const std::string& bucket);

}  // namespace rasad
