// The volunteer's addresses never leave the probe (docs/SCHEMA.md §7): every
// export and report passes its text through a Scrubber that knows each local
// address the database has seen (observations.local_addr) and replaces it.
#pragma once

#include <set>
#include <string>

#include "probe/core/status.h"

namespace rasad {

class Store;

inline constexpr const char* kScrubbed = "[scrubbed]";

class Scrubber {
 public:
  // From private_addresses when the report tables exist and are complete,
  // else from a scan of observations.local_addr.
  static Status Load(const Store& store, Scrubber* out);

  void Add(const std::string& addr);
  const std::set<std::string>& addresses() const { return addrs_; }

  // Replaces every occurrence of a known address in `text` that is not part
  // of a longer address or number ("10.0.0.1" is not scrubbed inside
  // "10.0.0.12"). Returns the text unchanged when nothing matches.
  std::string Scrub(const std::string& text) const;
  bool Contains(const std::string& text) const;

 private:
  std::set<std::string> addrs_;
};

}  // namespace rasad
