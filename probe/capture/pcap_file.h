// Reading capture files (pcap and pcapng, through libpcap) and the
// `rasad pcap analyze FILE` command.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <ostream>
#include <string>

#include "probe/capture/detectors.h"
#include "probe/capture/packet.h"

namespace rasad {
namespace capture {

struct PcapReadStats {
  int link_type = -1;
  std::string link_name;  // "EN10MB", "LINUX_SLL2", ...
  uint64_t frames = 0;
  uint64_t decoded = 0;
  uint64_t decode_errors = 0;
  std::map<std::string, uint64_t> errors_by_reason;
  std::string read_error;  // set when the file ended with a read error (truncated file)
  int64_t first_ns = -1;
  int64_t last_ns = -1;
};

// Opens path with nanosecond timestamps and calls on_packet for every frame
// that decodes. Frames that do not decode are counted in *stats. Returns
// false with *error naming the file when it cannot be opened or its link
// type is not supported; a read error part-way is reported in
// stats->read_error and the packets before it are kept.
bool ReadPcapFile(const std::string& path, const std::function<void(const Packet&)>& on_packet,
                  PcapReadStats* stats, std::string* error);

// Decodes the file, runs the detectors and prints a summary and the findings
// to out. Returns 0 on success (with or without findings) and 1 when the
// file cannot be read, with the reason on err.
int AnalyzePcapFile(const std::string& path, std::ostream& out, std::ostream& err,
                    const Thresholds& thresholds = Thresholds());

}  // namespace capture
}  // namespace rasad
