// Analyzer: loads what judgement needs (fingerprints, bogon exceptions) once,
// then turns stored cycles into stored verdicts. Used by the daemon after each
// cycle and by `rasad classify` to recompute any cycle later.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "analysis/classifier.h"
#include "analysis/fingerprints.h"
#include "analysis/verdict.h"
#include "probe/config/config.h"
#include "probe/store/store.h"

namespace rasad {

class Analyzer {
 public:
  // Loads the fingerprint files and public ranges named by the config.
  static Status Create(const Config& config, std::unique_ptr<Analyzer>* out);

  std::vector<Verdict> Classify(const std::vector<Measurement>& measurements) const;
  // Loads a cycle's measurements, classifies them, replaces its verdicts.
  Status ClassifyStored(Store* store, const std::string& cycle_uid,
                        std::vector<Verdict>* out) const;

  const Fingerprints& fingerprints() const { return fingerprints_; }
  const std::vector<std::string>& warnings() const { return warnings_; }

 private:
  std::vector<std::string> warnings_;
  Fingerprints fingerprints_;
  ClassifierOptions options_;
};

// The verdicts table (docs/SCHEMA.md): one transaction per cycle.
Status WriteVerdicts(Store* store, const std::string& cycle_uid,
                     const std::vector<Verdict>& verdicts);
Status LoadVerdicts(const Store& store, const std::string& cycle_uid, std::vector<Verdict>* out);
// Every cycle's uid, oldest first.
Status ListCycles(const Store& store, std::vector<std::string>* out);

}  // namespace rasad
