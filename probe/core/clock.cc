#include "probe/core/clock.h"

#include <sys/random.h>
#include <time.h>

#include <cstdio>

namespace rasad {

namespace {
int64_t Micros(clockid_t id) {
  timespec ts{};
  clock_gettime(id, &ts);
  return static_cast<int64_t>(ts.tv_sec) * 1000000 + ts.tv_nsec / 1000;
}
}  // namespace

int64_t WallMicros() { return Micros(CLOCK_REALTIME); }
int64_t MonotonicMicros() { return Micros(CLOCK_MONOTONIC); }

std::string FormatUtc(int64_t wall_micros) {
  time_t secs = static_cast<time_t>(wall_micros / 1000000);
  tm t{};
  gmtime_r(&secs, &t);
  char buf[64];
  snprintf(buf, sizeof buf, "%04d-%02d-%02dT%02d:%02d:%02d.%06lldZ", t.tm_year + 1900, t.tm_mon + 1,
           t.tm_mday, t.tm_hour, t.tm_min, t.tm_sec, static_cast<long long>(wall_micros % 1000000));
  return buf;
}

std::string NewUid() {
  unsigned char rnd[10];
  if (getrandom(rnd, sizeof rnd, 0) != static_cast<ssize_t>(sizeof rnd)) {
    // getrandom on Linux >= 3.17 only fails on EINTR/EFAULT; fall back to time.
    for (auto& b : rnd) b = static_cast<unsigned char>(MonotonicMicros() >> 3);
  }
  uint64_t ms = static_cast<uint64_t>(WallMicros() / 1000);
  char buf[33];
  snprintf(buf, sizeof buf, "%012llx", static_cast<unsigned long long>(ms & 0xffffffffffffULL));
  std::string out(buf);
  for (unsigned char b : rnd) {
    snprintf(buf, sizeof buf, "%02x", b);
    out += buf;
  }
  return out;
}

}  // namespace rasad
