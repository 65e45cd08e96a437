// Times for people: parsing --since/--until and showing stored UTC times in
// a named timezone (the system tz database, /usr/share/zoneinfo).
#pragma once

#include <cstdint>
#include <string>

#include "probe/core/status.h"

namespace rasad {

// "2026-04-08T19:40:00Z", "2026-04-08T19:40Z", "2026-04-08 19:40:00",
// "2026-04-08" (all UTC; a trailing Z is optional), or relative to `now`:
// "24h", "90m", "7d", "2w", "30s" (that long before now). "" gives 0.
Status ParseTimeArg(const std::string& text, int64_t now_micros, int64_t* out_micros);

// "2026-04-08T19:40:12Z" (seconds; UTC).
std::string IsoUtc(int64_t micros);

// A named timezone. Formatting switches the process's TZ for the duration
// of the call (localtime_r); report commands are single-threaded.
class TimeZone {
 public:
  // "" or "UTC" = UTC. Invalid when /usr/share/zoneinfo has no such zone.
  static Status Load(const std::string& name, TimeZone* out);

  const std::string& name() const { return name_; }
  bool utc() const { return utc_; }
  // Offset from UTC at that instant, seconds (e.g. 12600 for +03:30).
  long OffsetAt(int64_t micros) const;
  // "2026-04-08 23:10" (+ ":ss" with seconds) in this zone.
  std::string Format(int64_t micros, bool seconds = false) const;
  // "2026-04-08" of the local day containing that instant.
  std::string Day(int64_t micros) const;
  // Start (µs UTC) of the local day containing that instant.
  int64_t DayStart(int64_t micros) const;
  // "+03:30" / "UTC" abbreviation-free label of the offset at that instant.
  std::string OffsetLabel(int64_t micros) const;

 private:
  std::string name_ = "UTC";
  bool utc_ = true;
};

}  // namespace rasad
