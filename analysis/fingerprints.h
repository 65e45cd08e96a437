// Fingerprints: known signs of censorship (and of pages that only look like
// it) in a DNS answer or an HTTP response.
//
// Sources, loaded from configurable paths (formats and licences:
// docs/FINGERPRINTS.md):
//   * OONI's blocking-fingerprints, fingerprints_dns.csv and fingerprints_http.csv;
//   * Censored Planet's blockpage_signatures.json and false_positive_signatures.json
//     (JSON lines, Python regular expressions, matched with re.DOTALL against
//     the reconstructed response: status line, headers, blank line, body);
//   * rasad's own file, targets/fingerprints/rasad.toml, which alone recognises
//     Iran's national filter (10.10.34.34-36, d0::11, the iframe, peyvandha.ir).
//
// Every loader fails with "FILE:LINE: message" on a malformed row and leaves the
// set unchanged. A Python regex construct that has no std::regex equivalent
// (lookbehind, scoped flags, ...) is not an error: the row is skipped and listed
// in unsupported() as "FILE:LINE: name: reason". A translated regex that
// std::regex still rejects is an error naming the line.
//
// Matching is const and thread-safe. All literal patterns are found in one pass
// over the response; std::regex runs only when a pattern's required literal is
// present, and only on a bounded window (std::regex is recursive: it overflows
// the stack on long inputs). Limits: kMaxScanBytes, kRegexWindowBytes.
#pragma once

#include <cstddef>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "probe/core/status.h"

namespace rasad {

struct FingerprintMatch {
  std::string name;        // as in its file, e.g. "ooni.ir_4", "b_nat_ir_national_1"
  std::string source;      // "ooni", "censoredplanet" or "rasad"
  std::string location;    // "dns", "body", "header.<lowercase name>", "title" or "status"
  std::string confidence;  // OONI confidence_no_fp ("0".."10"); rasad's own; "" for CP
  std::vector<std::string> countries;  // expected countries (ISO codes); may be empty
  bool false_positive = false;         // a page that looks like a blockpage but is not
  std::string scope;  // OONI scope: nat, isp, prod, inst, vbw, fp, ... ("" if unknown)
};

// Per loaded file: how many entries it contributed and how many were skipped.
struct FingerprintFileStats {
  std::string path;
  std::string kind;  // "ooni-dns", "ooni-http", "cp-blockpages", "cp-false-positives", "rasad"
  size_t loaded = 0;
  size_t unsupported = 0;  // skipped: regex constructs std::regex lacks (see unsupported())
  size_t regex = 0;        // loaded entries that need std::regex (the rest are literals or
                           // literal sequences, matched without it)
};

class Fingerprints {
 public:
  // The first kMaxScanBytes of a body are scanned (OONI's LTE body cap, 512 KiB).
  static constexpr size_t kMaxScanBytes = 512 * 1024;
  // std::regex sees at most this many bytes: a window centred on the first
  // occurrence of the pattern's longest required literal (or the start).
  static constexpr size_t kRegexWindowBytes = 2 * 1024;

  Fingerprints();
  ~Fingerprints();
  Fingerprints(Fingerprints&&) noexcept;
  Fingerprints& operator=(Fingerprints&&) noexcept;

  Status LoadOoniDns(const std::string& csv);
  Status LoadOoniHttp(const std::string& csv);
  Status LoadCensoredPlanetBlockpages(const std::string& jsonl);
  Status LoadCensoredPlanetFalsePositives(const std::string& jsonl);
  Status LoadRasad(const std::string& toml_path);

  // A DNS answer: an IPv4/IPv6 address (an IPv4-mapped IPv6 address counts as
  // IPv4; any textual form of an IPv6 address matches) or a CNAME target name.
  std::optional<FingerprintMatch> MatchDnsAnswer(const std::string& answer) const;

  // An HTTP response. False-positive signatures are checked first: if one
  // matches it is returned (false_positive = true) and no blockpage is.
  // Within each group, rasad's own fingerprints come first, then OONI's, then
  // Censored Planet's, each in file order.
  std::optional<FingerprintMatch> MatchHttp(
      int status, const std::vector<std::pair<std::string, std::string>>& headers,
      const std::string& body) const;

  // Every match, false positives first, in the order above (evidence for a verdict).
  std::vector<FingerprintMatch> MatchHttpAll(
      int status, const std::vector<std::pair<std::string, std::string>>& headers,
      const std::string& body) const;

  // Loaded entries (DNS + HTTP), disabled ones excluded.
  size_t size() const;
  size_t dns_size() const;
  size_t http_size() const;
  const std::vector<FingerprintFileStats>& files() const;
  // "FILE:LINE: name: reason" for each skipped regex.
  const std::vector<std::string>& unsupported() const;

  struct Impl;

 private:
  std::unique_ptr<Impl> impl_;
};

}  // namespace rasad
