// Time helpers. Stored times are UTC wall-clock microseconds since the Unix
// epoch; durations inside a measurement use the monotonic clock.
#pragma once

#include <cstdint>
#include <string>

namespace rasad {

int64_t WallMicros();       // CLOCK_REALTIME, microseconds
int64_t MonotonicMicros();  // CLOCK_MONOTONIC, microseconds
// "2026-11-28T13:44:27.123456Z"
std::string FormatUtc(int64_t wall_micros);
// A random 128-bit identifier as 32 lowercase hex digits, time-ordered in its
// first 12 digits (milliseconds) so uids sort by creation time.
std::string NewUid();

}  // namespace rasad
