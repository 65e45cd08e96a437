#include "probe/store/migrations.h"

namespace rasad {

namespace {

// v1: cycles, the networks and target versions of each cycle, measurements
// and their observations. Every column is documented in docs/SCHEMA.md.
// Times are INTEGER wall-clock microseconds since the Unix epoch (UTC).
// NULL means "absent" (for failure: success).
const char kV1Initial[] = R"sql(
CREATE TABLE cycles (
  uid            TEXT    PRIMARY KEY NOT NULL,
  started_at     INTEGER NOT NULL,
  finished_at    INTEGER,
  status         TEXT    NOT NULL DEFAULT 'running'
                 CHECK (status IN ('running', 'complete', 'interrupted', 'aborted')),
  rasad_version  TEXT    NOT NULL,
  config_file    TEXT,
  measurements   INTEGER,
  bytes_sent     INTEGER,
  bytes_received INTEGER
) STRICT;
CREATE INDEX cycles_by_start ON cycles (started_at);

CREATE TABLE cycle_targets (
  cycle_uid TEXT NOT NULL REFERENCES cycles (uid) ON DELETE CASCADE,
  target    TEXT NOT NULL,
  version   TEXT NOT NULL,
  PRIMARY KEY (cycle_uid, target)
) STRICT, WITHOUT ROWID;

CREATE TABLE cycle_networks (
  cycle_uid            TEXT    NOT NULL REFERENCES cycles (uid) ON DELETE CASCADE,
  name                 TEXT    NOT NULL,
  operator             TEXT,
  asn                  INTEGER,
  interface            TEXT,
  ifindex              INTEGER,
  resolvers            TEXT    NOT NULL DEFAULT '[]' CHECK (json_valid(resolvers)),
  configured_resolvers TEXT    NOT NULL DEFAULT '[]' CHECK (json_valid(configured_resolvers)),
  probe_error          TEXT,
  PRIMARY KEY (cycle_uid, name)
) STRICT, WITHOUT ROWID;

CREATE TABLE measurements (
  uid            TEXT    PRIMARY KEY NOT NULL,
  cycle_uid      TEXT    NOT NULL REFERENCES cycles (uid) ON DELETE CASCADE,
  network        TEXT    NOT NULL,
  target         TEXT    NOT NULL,
  target_version TEXT,
  endpoint       TEXT    NOT NULL,
  control        INTEGER NOT NULL DEFAULT 0 CHECK (control IN (0, 1)),
  t_start        INTEGER NOT NULL,
  t_end          INTEGER NOT NULL,
  furthest_step  TEXT    CHECK (furthest_step IN ('dns', 'tcp', 'tls', 'http')),
  failed_step    TEXT    CHECK (failed_step IN ('dns', 'tcp', 'tls', 'http')),
  failure        TEXT,
  probe_error    TEXT
) STRICT;
CREATE INDEX measurements_by_cycle ON measurements (cycle_uid);
CREATE INDEX measurements_timeline ON measurements (target, endpoint, network, t_start);

CREATE TABLE observations (
  uid             TEXT    PRIMARY KEY NOT NULL,
  measurement_uid TEXT    NOT NULL REFERENCES measurements (uid) ON DELETE CASCADE,
  seq             INTEGER NOT NULL,
  flow_uid        TEXT,
  step            TEXT    NOT NULL CHECK (step IN ('dns', 'tcp', 'tls', 'http')),
  hostname        TEXT,
  query_type      TEXT,
  resolver        TEXT,
  transport       TEXT,
  local_addr      TEXT,
  local_port      INTEGER,
  remote_addr     TEXT,
  remote_port     INTEGER,
  t_start         INTEGER NOT NULL,
  t_end           INTEGER NOT NULL,
  bytes_sent      INTEGER NOT NULL DEFAULT 0,
  bytes_received  INTEGER NOT NULL DEFAULT 0,
  failure         TEXT,
  probe_error     TEXT,
  details         TEXT    NOT NULL DEFAULT '{}' CHECK (json_valid(details)),
  raw             BLOB
) STRICT;
CREATE UNIQUE INDEX observations_by_measurement ON observations (measurement_uid, seq);
CREATE INDEX observations_by_remote ON observations (remote_addr, remote_port, t_start);
)sql";

// v2: certificates are stored once, by SHA-256 of their DER. A TLS
// observation's details.chain keeps subject, issuer, dates and sha256; the
// DER itself (2-4 KiB per certificate, the same every cycle) lives here.
const char kV2Certificates[] = R"sql(
CREATE TABLE certificates (
  sha256     TEXT    PRIMARY KEY NOT NULL CHECK (length(sha256) = 64),
  der_b64    TEXT    NOT NULL,
  first_seen INTEGER NOT NULL
) STRICT, WITHOUT ROWID;
)sql";

// v3: retries and canaries. `attempt` numbers the measurements of one
// endpoint in one cycle (0 = first; later ones are retries after a failure);
// `control_kind` says which canary a control target is, so verdicts can be
// recomputed from the database alone. `verdicts` holds analysis/'s judgement
// of each (cycle, network, target, endpoint): derived data, recomputable at
// any time with `rasad classify`.
const char kV3Verdicts[] = R"sql(
ALTER TABLE measurements ADD COLUMN attempt INTEGER NOT NULL DEFAULT 0;
ALTER TABLE measurements ADD COLUMN control_kind TEXT;
CREATE TABLE verdicts (
  cycle_uid        TEXT    NOT NULL REFERENCES cycles (uid) ON DELETE CASCADE,
  network          TEXT    NOT NULL,
  target           TEXT    NOT NULL,
  endpoint         TEXT    NOT NULL,
  measurement_uid  TEXT    NOT NULL,
  t_start          INTEGER NOT NULL,
  verdict          TEXT    NOT NULL,
  confidence       TEXT    CHECK (confidence IN ('confirmed', 'probable')),
  rule             TEXT    NOT NULL,
  evidence         TEXT    NOT NULL DEFAULT '{}' CHECK (json_valid(evidence)),
  ooni_blocking    TEXT,
  ooni_accessible  INTEGER,
  classifier       TEXT    NOT NULL,
  computed_at      INTEGER NOT NULL,
  PRIMARY KEY (cycle_uid, network, target, endpoint)
) STRICT, WITHOUT ROWID;
CREATE INDEX verdicts_by_target ON verdicts (target, endpoint, network, t_start);
)sql";

// v4: what reports and imports keep. Incremental timeline counts per hour
// (report/timeline.cc), the volunteer's own addresses for scrubbing exports
// (never exported themselves), OONI's verdict and control for imported
// measurements (interop/), and a covering index for event queries.
// IF NOT EXISTS: report/ and interop/ created these tables on the fly
// before this migration existed.
const char kV4ReportsAndImports[] = R"sql(
CREATE TABLE IF NOT EXISTS timeline_hourly (
  target     TEXT    NOT NULL,
  endpoint   TEXT    NOT NULL,
  network    TEXT    NOT NULL,
  hour       INTEGER NOT NULL,
  verdict    TEXT    NOT NULL,
  confidence TEXT    NOT NULL DEFAULT '',
  n          INTEGER NOT NULL,
  PRIMARY KEY (target, endpoint, network, hour, verdict, confidence)
) STRICT, WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS timeline_hourly_by_hour ON timeline_hourly (hour);
CREATE TABLE IF NOT EXISTS timeline_series (
  target     TEXT    NOT NULL,
  endpoint   TEXT    NOT NULL,
  network    TEXT    NOT NULL,
  control    INTEGER NOT NULL DEFAULT 0,
  first_hour INTEGER NOT NULL,
  last_hour  INTEGER NOT NULL,
  PRIMARY KEY (target, endpoint, network)
) STRICT, WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS timeline_applied (
  cycle_uid    TEXT    PRIMARY KEY NOT NULL,
  applied_at   INTEGER NOT NULL,
  contribution TEXT    NOT NULL DEFAULT '[]' CHECK (json_valid(contribution))
) STRICT, WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS private_addresses (
  addr       TEXT    PRIMARY KEY NOT NULL,
  first_seen INTEGER NOT NULL
) STRICT, WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS verdicts_events
  ON verdicts (target, endpoint, network, t_start, verdict, confidence, measurement_uid);
CREATE TABLE IF NOT EXISTS ooni_imports (
  measurement_uid TEXT PRIMARY KEY REFERENCES measurements(uid) ON DELETE CASCADE,
  report_id TEXT,
  measurement_start_time TEXT,
  test_name TEXT,
  input TEXT,
  probe_cc TEXT,
  probe_asn TEXT,
  ooni_verdict TEXT NOT NULL CHECK (json_valid(ooni_verdict)),
  control TEXT CHECK (control IS NULL OR json_valid(control)),
  ooni_measurement_uid TEXT
) STRICT;
)sql";

// v5: packet capture statistics of each cycle (received, dropped by the
// kernel, dropped by rasad's memory bounds, per interface; docs/EVIDENCE.md).
const char kV5CaptureStats[] = R"sql(
ALTER TABLE cycles ADD COLUMN capture TEXT CHECK (capture IS NULL OR json_valid(capture));
)sql";

}  // namespace

const std::vector<Migration>& Migrations() {
  // Append only. Never edit a migration that has shipped.
  static const std::vector<Migration> kMigrations = {
      {1, "initial schema", kV1Initial},
      {2, "certificates stored once", kV2Certificates},
      {3, "retries, canary kinds and verdicts", kV3Verdicts},
      {4, "timelines, private addresses, OONI imports", kV4ReportsAndImports},
      {5, "capture statistics per cycle", kV5CaptureStats},
  };
  return kMigrations;
}

}  // namespace rasad
