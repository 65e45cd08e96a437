// Store: the SQLite database of raw observations (schema: docs/SCHEMA.md).
// One writer connection, owned by the probe's loop thread. WAL journal,
// synchronous=NORMAL, busy_timeout; schema migrations via PRAGMA user_version.
// Durability contract: a measurement is committed in one transaction as soon
// as it completes; a cycle is marked complete in a final transaction. After a
// kill -9 the database opens, passes integrity_check and holds every cycle
// that completed (cycles cut short are marked 'interrupted' on next open).
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "probe/config/config.h"
#include "probe/core/status.h"
#include "probe/measure/observation.h"

struct sqlite3;

namespace rasad {

struct CycleInfo {
  std::string uid;
  int64_t started_at = 0;  // wall micros
  std::string rasad_version;
  std::string config_file;
  std::map<std::string, std::string> target_versions;  // target name -> version
};

struct CycleTotals {
  int64_t finished_at = 0;
  std::string status = "complete";  // "complete" | "interrupted" | "aborted"
  int64_t measurements = 0;
  int64_t bytes_sent = 0;
  int64_t bytes_received = 0;
  // Packet capture statistics per interface (JSON; "" = no capture).
  std::string capture_json;
};

// A network as measured in one cycle.
struct CycleNetwork {
  std::string cycle_uid;
  NetworkConfig config;
  int ifindex = 0;                     // 0 = default route / unknown
  std::vector<std::string> resolvers;  // the resolvers actually used
  std::string probe_error;             // e.g. interface missing: nothing measured
};

class Store {
 public:
  ~Store();
  Store(const Store&) = delete;
  Store& operator=(const Store&) = delete;

  // Opens (creating if needed, with parent directory) and migrates.
  static Status Open(const std::string& path, std::unique_ptr<Store>* out);
  // Opens an existing database read-only (reports, summaries); no migration.
  static Status OpenReadOnly(const std::string& path, std::unique_ptr<Store>* out);

  static int LatestSchemaVersion();
  int SchemaVersion() const;

  // Cycles left 'running' by a killed process become 'interrupted'.
  // Returns how many were marked.
  Status MarkInterruptedCycles(int* count);

  Status BeginCycle(const CycleInfo& info);
  Status RecordNetwork(const CycleNetwork& net);
  // Writes a measurement and all its observations in one transaction.
  Status WriteMeasurement(const Measurement& m);
  Status FinishCycle(const std::string& cycle_uid, const CycleTotals& totals);

  // Reading back (for summaries, tests and later analysis).
  Status LatestCycleUid(std::string* uid) const;  // NotFound when empty
  Status LoadMeasurements(const std::string& cycle_uid, std::vector<Measurement>* out) const;
  Status LoadNetworks(const std::string& cycle_uid, std::vector<CycleNetwork>* out) const;
  Status CycleStatus(const std::string& cycle_uid, std::string* status) const;

  // PRAGMA integrity_check == "ok".
  Status CheckIntegrity() const;

  sqlite3* handle() const { return db_; }

 private:
  explicit Store(sqlite3* db) : db_(db) {}
  Status Exec(const char* sql) const;
  sqlite3* db_ = nullptr;
};

}  // namespace rasad
