#include "report/timefmt.h"

#include <sys/stat.h>
#include <time.h>

#include <cctype>
#include <cstdio>
#include <cstdlib>
#include <cstring>

namespace rasad {

namespace {

// Sets TZ for the lifetime of the object and restores it after.
class TzScope {
 public:
  explicit TzScope(const std::string& name) {
    const char* old = getenv("TZ");
    had_ = old != nullptr;
    if (had_) old_ = old;
    setenv("TZ", name.c_str(), 1);
    tzset();
  }
  ~TzScope() {
    if (had_)
      setenv("TZ", old_.c_str(), 1);
    else
      unsetenv("TZ");
    tzset();
  }

 private:
  bool had_ = false;
  std::string old_;
};

int64_t FromCivilUtc(int y, int mo, int d, int h, int mi, int s) {
  tm t{};
  t.tm_year = y - 1900;
  t.tm_mon = mo - 1;
  t.tm_mday = d;
  t.tm_hour = h;
  t.tm_min = mi;
  t.tm_sec = s;
  return static_cast<int64_t>(timegm(&t)) * 1000000;
}

bool LocalTm(const std::string& zone, bool utc, int64_t micros, tm* out, long* gmtoff) {
  time_t secs = static_cast<time_t>(micros >= 0 ? micros / 1000000 : (micros - 999999) / 1000000);
  if (utc) {
    gmtime_r(&secs, out);
    *gmtoff = 0;
    return true;
  }
  TzScope scope(zone);
  if (!localtime_r(&secs, out)) return false;
  *gmtoff = out->tm_gmtoff;
  return true;
}

}  // namespace

Status ParseTimeArg(const std::string& text, int64_t now, int64_t* out) {
  *out = 0;
  if (text.empty()) return Status::Ok();
  // Relative: digits + unit.
  size_t i = 0;
  while (i < text.size() && isdigit(static_cast<unsigned char>(text[i]))) ++i;
  if (i > 0 && i < text.size() && i + 1 == text.size() && !isdigit((unsigned char)text[i])) {
    int64_t n = std::strtoll(text.substr(0, i).c_str(), nullptr, 10);
    int64_t unit = 0;
    switch (text[i]) {
      case 's':
        unit = 1;
        break;
      case 'm':
        unit = 60;
        break;
      case 'h':
        unit = 3600;
        break;
      case 'd':
        unit = 86400;
        break;
      case 'w':
        unit = 7 * 86400;
        break;
      default:
        break;
    }
    if (unit == 0)
      return Status::Invalid(text + ": unknown unit (use s, m, h, d or w, e.g. 24h or 7d)");
    *out = now - n * unit * 1000000;
    return Status::Ok();
  }
  int y = 0, mo = 0, d = 0, h = 0, mi = 0, s = 0, consumed = 0;
  std::string t = text;
  if (!t.empty() && (t.back() == 'Z' || t.back() == 'z')) t.pop_back();
  for (char& c : t)
    if (c == 'T' || c == 't') c = ' ';
  int got = sscanf(t.c_str(), "%4d-%2d-%2d%n %2d:%2d%n:%2d%n", &y, &mo, &d, &consumed, &h, &mi,
                   &consumed, &s, &consumed);
  if ((got != 3 && got != 5 && got != 6) || consumed != static_cast<int>(t.size()) || mo < 1 ||
      mo > 12 || d < 1 || d > 31 || h > 23 || mi > 59 || s > 60)
    return Status::Invalid(text +
                           ": not a time (use UTC ISO 8601 like 2026-04-08T19:40Z, or relative "
                           "like 24h, 7d)");
  *out = FromCivilUtc(y, mo, d, h, mi, s);
  return Status::Ok();
}

std::string IsoUtc(int64_t micros) {
  time_t secs = static_cast<time_t>(micros / 1000000);
  tm t{};
  gmtime_r(&secs, &t);
  char buf[32];
  strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &t);
  return buf;
}

Status TimeZone::Load(const std::string& name, TimeZone* out) {
  TimeZone z;
  if (name.empty() || name == "UTC" || name == "utc" || name == "Etc/UTC" || name == "Z") {
    *out = z;
    return Status::Ok();
  }
  // glibc silently falls back to UTC for unknown names: check the file.
  struct stat sb;
  if (name.find("..") != std::string::npos || name[0] == '/' ||
      stat(("/usr/share/zoneinfo/" + name).c_str(), &sb) != 0 || !S_ISREG(sb.st_mode))
    return Status::Invalid(name +
                           ": unknown timezone (names as in /usr/share/zoneinfo, e.g. "
                           "Asia/Tehran; Debian package tzdata)");
  z.name_ = name;
  z.utc_ = false;
  *out = z;
  return Status::Ok();
}

long TimeZone::OffsetAt(int64_t micros) const {
  tm t{};
  long off = 0;
  LocalTm(name_, utc_, micros, &t, &off);
  return off;
}

std::string TimeZone::Format(int64_t micros, bool seconds) const {
  tm t{};
  long off = 0;
  if (!LocalTm(name_, utc_, micros, &t, &off)) return "?";
  char buf[40];
  strftime(buf, sizeof buf, seconds ? "%Y-%m-%d %H:%M:%S" : "%Y-%m-%d %H:%M", &t);
  return buf;
}

std::string TimeZone::Day(int64_t micros) const {
  tm t{};
  long off = 0;
  if (!LocalTm(name_, utc_, micros, &t, &off)) return "?";
  char buf[16];
  strftime(buf, sizeof buf, "%Y-%m-%d", &t);
  return buf;
}

int64_t TimeZone::DayStart(int64_t micros) const {
  tm t{};
  long off = 0;
  LocalTm(name_, utc_, micros, &t, &off);
  int64_t local_secs = micros / 1000000 + off;
  int64_t day = local_secs - ((local_secs % 86400) + 86400) % 86400;
  // The offset at midnight may differ (DST change that day): re-check once.
  int64_t guess = (day - off) * 1000000;
  long off2 = OffsetAt(guess);
  return (day - off2) * 1000000;
}

std::string TimeZone::OffsetLabel(int64_t micros) const {
  if (utc_) return "UTC";
  long off = OffsetAt(micros);
  char buf[48];
  long a = off < 0 ? -off : off;
  snprintf(buf, sizeof buf, "UTC%c%02ld:%02ld", off < 0 ? '-' : '+', a / 3600, (a % 3600) / 60);
  return buf;
}

}  // namespace rasad
