// Store tests: real SQLite files in a temporary directory, no mocks.
// Includes a crash test (fork + SIGKILL of a writing child) and disk-full
// tests (PRAGMA max_page_count, and a 512 KiB tmpfs when mounting is allowed).
#include "probe/store/store.h"

#include <errno.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <sqlite3.h>
#include <stdlib.h>
#include <sys/mount.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <random>
#include <set>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "probe/core/clock.h"
#include "probe/store/migrations.h"

namespace rasad {
namespace {

namespace fs = std::filesystem;

std::string ReadFile(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  std::stringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

void WriteFile(const std::string& path, const std::string& data) {
  std::ofstream f(path, std::ios::binary | std::ios::trunc);
  f << data;
}

// Runs SQL on a raw connection (independent of Store); returns the first
// column of the first row, "" if none.
std::string RawQuery(const std::string& path, const std::string& sql) {
  sqlite3* db = nullptr;
  EXPECT_EQ(sqlite3_open(path.c_str(), &db), SQLITE_OK);
  sqlite3_stmt* s = nullptr;
  std::string out;
  int rc = sqlite3_prepare_v2(db, sql.c_str(), -1, &s, nullptr);
  EXPECT_EQ(rc, SQLITE_OK) << sqlite3_errmsg(db);
  if (rc == SQLITE_OK && sqlite3_step(s) == SQLITE_ROW && sqlite3_column_text(s, 0)) {
    out = reinterpret_cast<const char*>(sqlite3_column_text(s, 0));
  }
  sqlite3_finalize(s);
  sqlite3_close(db);
  return out;
}

std::string QueryOne(sqlite3* db, const std::string& sql) {
  sqlite3_stmt* s = nullptr;
  std::string out;
  int rc = sqlite3_prepare_v2(db, sql.c_str(), -1, &s, nullptr);
  EXPECT_EQ(rc, SQLITE_OK) << sqlite3_errmsg(db);
  if (rc == SQLITE_OK && sqlite3_step(s) == SQLITE_ROW && sqlite3_column_text(s, 0)) {
    out = reinterpret_cast<const char*>(sqlite3_column_text(s, 0));
  }
  sqlite3_finalize(s);
  return out;
}

class StoreTest : public ::testing::Test {
 protected:
  void SetUp() override {
    const char* base = getenv("TMPDIR");
    std::string tmpl = std::string(base && *base ? base : "/tmp") + "/rasad_store_XXXXXX";
    std::vector<char> buf(tmpl.begin(), tmpl.end());
    buf.push_back('\0');
    ASSERT_NE(mkdtemp(buf.data()), nullptr);
    dir_ = buf.data();
  }
  void TearDown() override {
    std::error_code ec;
    fs::remove_all(dir_, ec);
  }
  std::string Path(const std::string& name) const { return dir_ + "/" + name; }

  std::string dir_;
};

CycleInfo MakeCycle(const std::string& uid, int64_t started_at) {
  CycleInfo c;
  c.uid = uid;
  c.started_at = started_at;
  c.rasad_version = "0.1.0";
  c.config_file = "/etc/rasad/rasad.toml";
  c.target_versions = {{"clubhouse", "2024-01-02"}, {"signal", "7"}};
  return c;
}

Observation MakeObservation(const std::string& uid, Step step, int64_t t) {
  Observation o;
  o.uid = uid;
  o.flow_uid = uid + "-flow";
  o.step = step;
  o.hostname = "www.example.com";
  o.transport = step == Step::kDns ? "udp" : "tcp";
  o.local_addr = "10.0.0.2";
  o.local_port = 40000;
  o.remote_addr = "203.0.113.7";
  o.remote_port = step == Step::kDns ? 53 : 443;
  o.t_start = t;
  o.t_end = t + 1500;
  o.bytes_sent = 40;
  o.bytes_received = 120;
  return o;
}

// Measurement uid "<cycle>-m<i>", observation uids "<measurement>-o<j>".
Measurement MakeMeasurement(const std::string& cycle_uid, int i, int observations = 3) {
  Measurement m;
  m.uid = cycle_uid + "-m" + std::to_string(i);
  m.cycle_uid = cycle_uid;
  m.network = "mci";
  m.target = "clubhouse";
  m.target_version = "2024-01-02";
  m.endpoint = "api";
  m.t_start = 1700000000000000 + i * 1000;
  m.t_end = m.t_start + 900;
  m.furthest_step = Step::kTcp;
  m.failed_step = Step::kTls;
  m.failure = "connection_reset";
  const Step steps[] = {Step::kDns, Step::kTcp, Step::kTls, Step::kHttp};
  for (int j = 0; j < observations; ++j) {
    Observation o = MakeObservation(m.uid + "-o" + std::to_string(j), steps[j % 4], m.t_start + j);
    o.details = {{"j", j}};
    m.observations.push_back(o);
  }
  return m;
}

void ExpectSame(const Observation& a, const Observation& b) {
  SCOPED_TRACE("observation " + a.uid);
  EXPECT_EQ(a.uid, b.uid);
  EXPECT_EQ(a.flow_uid, b.flow_uid);
  EXPECT_EQ(a.step, b.step);
  EXPECT_EQ(a.hostname, b.hostname);
  EXPECT_EQ(a.query_type, b.query_type);
  EXPECT_EQ(a.resolver, b.resolver);
  EXPECT_EQ(a.transport, b.transport);
  EXPECT_EQ(a.local_addr, b.local_addr);
  EXPECT_EQ(a.local_port, b.local_port);
  EXPECT_EQ(a.remote_addr, b.remote_addr);
  EXPECT_EQ(a.remote_port, b.remote_port);
  EXPECT_EQ(a.t_start, b.t_start);
  EXPECT_EQ(a.t_end, b.t_end);
  EXPECT_EQ(a.bytes_sent, b.bytes_sent);
  EXPECT_EQ(a.bytes_received, b.bytes_received);
  EXPECT_EQ(a.failure, b.failure);
  EXPECT_EQ(a.probe_error, b.probe_error);
  EXPECT_EQ(a.details, b.details) << a.details.dump() << " vs " << b.details.dump();
  EXPECT_EQ(a.raw, b.raw);
}

void ExpectSame(const Measurement& a, const Measurement& b) {
  SCOPED_TRACE("measurement " + a.uid);
  EXPECT_EQ(a.uid, b.uid);
  EXPECT_EQ(a.cycle_uid, b.cycle_uid);
  EXPECT_EQ(a.network, b.network);
  EXPECT_EQ(a.target, b.target);
  EXPECT_EQ(a.target_version, b.target_version);
  EXPECT_EQ(a.endpoint, b.endpoint);
  EXPECT_EQ(a.control, b.control);
  EXPECT_EQ(a.t_start, b.t_start);
  EXPECT_EQ(a.t_end, b.t_end);
  EXPECT_EQ(a.furthest_step, b.furthest_step);
  EXPECT_EQ(a.failed_step, b.failed_step);
  EXPECT_EQ(a.failure, b.failure);
  EXPECT_EQ(a.probe_error, b.probe_error);
  ASSERT_EQ(a.observations.size(), b.observations.size());
  for (size_t i = 0; i < a.observations.size(); ++i)
    ExpectSame(a.observations[i], b.observations[i]);
}

// --- Opening and migrations -------------------------------------------------

TEST(MigrationsTest, VersionsAreConsecutiveFromOne) {
  const auto& ms = Migrations();
  ASSERT_FALSE(ms.empty());
  for (size_t i = 0; i < ms.size(); ++i) {
    EXPECT_EQ(ms[i].version, static_cast<int>(i) + 1);
    EXPECT_NE(ms[i].name, nullptr);
    EXPECT_NE(ms[i].sql, nullptr);
  }
  EXPECT_EQ(Store::LatestSchemaVersion(), ms.back().version);
}

TEST_F(StoreTest, FreshDatabaseIsMigratedToLatest) {
  std::string path = Path("a/b/rasad.db");  // parent directories do not exist yet
  std::unique_ptr<Store> store;
  Status s = Store::Open(path, &store);
  ASSERT_TRUE(s.ok()) << s.ToString();
  EXPECT_EQ(store->SchemaVersion(), Store::LatestSchemaVersion());
  EXPECT_EQ(QueryOne(store->handle(), "PRAGMA journal_mode"), "wal");
  EXPECT_EQ(QueryOne(store->handle(), "PRAGMA synchronous"), "1");  // NORMAL
  EXPECT_EQ(QueryOne(store->handle(), "PRAGMA foreign_keys"), "1");
  EXPECT_EQ(QueryOne(store->handle(), "PRAGMA busy_timeout"), "5000");
  for (const char* t :
       {"cycles", "cycle_targets", "cycle_networks", "measurements", "observations"}) {
    EXPECT_EQ(
        QueryOne(store->handle(),
                 std::string("SELECT strict FROM pragma_table_list WHERE name = '") + t + "'"),
        "1")
        << t << " should be a STRICT table";
  }
  for (const char* idx : {"measurements_by_cycle", "measurements_timeline",
                          "observations_by_measurement", "observations_by_remote"}) {
    EXPECT_EQ(QueryOne(store->handle(),
                       std::string("SELECT COUNT(*) FROM sqlite_schema WHERE type = 'index' AND "
                                   "name = '") +
                           idx + "'"),
              "1")
        << idx;
  }
  EXPECT_TRUE(store->CheckIntegrity().ok());
  store.reset();
  EXPECT_EQ(RawQuery(path, "PRAGMA user_version"), std::to_string(Store::LatestSchemaVersion()));

  // Reopening is a no-op.
  s = Store::Open(path, &store);
  ASSERT_TRUE(s.ok()) << s.ToString();
  EXPECT_EQ(store->SchemaVersion(), Store::LatestSchemaVersion());
}

TEST_F(StoreTest, NewerSchemaIsRefusedAndUntouched) {
  std::string path = Path("newer.db");
  {
    sqlite3* db = nullptr;
    ASSERT_EQ(sqlite3_open(path.c_str(), &db), SQLITE_OK);
    ASSERT_EQ(sqlite3_exec(db, "CREATE TABLE future (x); PRAGMA user_version = 99;", nullptr,
                           nullptr, nullptr),
              SQLITE_OK);
    sqlite3_close(db);
  }
  std::string before = ReadFile(path);
  std::unique_ptr<Store> store;
  Status s = Store::Open(path, &store);
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(store, nullptr);
  std::string want = "database schema v99 is newer than this rasad (v" +
                     std::to_string(Store::LatestSchemaVersion()) + "); upgrade rasad";
  EXPECT_NE(s.message().find(want), std::string::npos) << s.message();
  EXPECT_NE(s.message().find(path), std::string::npos) << s.message();
  EXPECT_EQ(ReadFile(path), before);
  EXPECT_FALSE(fs::exists(path + "-wal"));
  EXPECT_EQ(RawQuery(path, "PRAGMA journal_mode"), "delete");

  s = Store::OpenReadOnly(path, &store);
  ASSERT_FALSE(s.ok());
  EXPECT_NE(s.message().find(want), std::string::npos) << s.message();
  EXPECT_EQ(ReadFile(path), before);
}

TEST_F(StoreTest, NonDatabaseFileIsRefused) {
  std::string path = Path("notes.txt");
  std::string text(8192, 'x');
  text.replace(0, 30, "this is not a sqlite database\n");
  WriteFile(path, text);
  std::unique_ptr<Store> store;
  Status s = Store::Open(path, &store);
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(store, nullptr);
  EXPECT_NE(s.message().find(path), std::string::npos) << s.message();
  EXPECT_NE(s.message().find("not a database"), std::string::npos) << s.message();
  EXPECT_EQ(ReadFile(path), text);

  s = Store::OpenReadOnly(path, &store);
  ASSERT_FALSE(s.ok());
  EXPECT_NE(s.message().find(path), std::string::npos) << s.message();
  EXPECT_NE(s.message().find("not a database"), std::string::npos) << s.message();
  EXPECT_EQ(ReadFile(path), text);
}

TEST_F(StoreTest, ForeignSqliteDatabaseIsRefused) {
  std::string path = Path("other.db");
  ASSERT_EQ(RawQuery(path, "CREATE TABLE moz_places (id INTEGER)"), "");
  std::string before = ReadFile(path);
  std::unique_ptr<Store> store;
  Status s = Store::Open(path, &store);
  ASSERT_FALSE(s.ok());
  EXPECT_NE(s.message().find("not a rasad database"), std::string::npos) << s.message();
  EXPECT_EQ(ReadFile(path), before);
}

TEST_F(StoreTest, OpenReadOnlyMissingFileIsNotFound) {
  std::string path = Path("missing/rasad.db");
  std::unique_ptr<Store> store;
  Status s = Store::OpenReadOnly(path, &store);
  EXPECT_TRUE(s.IsNotFound()) << s.ToString();
  EXPECT_NE(s.message().find(path), std::string::npos) << s.message();
  EXPECT_FALSE(fs::exists(path));
  EXPECT_FALSE(fs::exists(Path("missing")));
}

TEST_F(StoreTest, OpenReadOnlyRefusesEmptyFile) {
  std::string path = Path("empty.db");
  WriteFile(path, "");
  std::unique_ptr<Store> store;
  Status s = Store::OpenReadOnly(path, &store);
  ASSERT_FALSE(s.ok());
  EXPECT_NE(s.message().find(path), std::string::npos) << s.message();
}

// --- Round trips ------------------------------------------------------------

TEST_F(StoreTest, MeasurementsRoundTrip) {
  std::string path = Path("rasad.db");
  std::unique_ptr<Store> store;
  ASSERT_TRUE(Store::Open(path, &store).ok());
  std::string uid;
  EXPECT_TRUE(store->LatestCycleUid(&uid).IsNotFound());

  const std::string cycle = NewUid();
  ASSERT_TRUE(store->BeginCycle(MakeCycle(cycle, 1700000000000000)).ok());
  std::string status;
  ASSERT_TRUE(store->CycleStatus(cycle, &status).ok());
  EXPECT_EQ(status, "running");

  // DNS: success, raw bytes with NULs, unicode hostname (an IDN as typed).
  Measurement a;
  a.uid = "m-a";
  a.cycle_uid = cycle;
  a.network = "mci";
  a.target = "persian-news";
  a.target_version = "3";
  a.endpoint = "www";
  a.control = false;
  a.t_start = 1700000000500000;
  a.t_end = 1700000000600000;
  a.furthest_step = Step::kHttp;
  // failed_step and failure absent: success.
  Observation dns = MakeObservation("o-dns", Step::kDns, a.t_start);
  dns.hostname = "خبر.ایران";
  dns.query_type = "A";
  dns.resolver = "1.1.1.1:53";
  dns.raw = std::string("\x12\x34\x81\x80\x00\x01\x00\x01\x00\x00\x00\x00", 12) +
            std::string("\0\0\0", 3) + "\xff\xfe";
  dns.details = {{"rcode", 0},
                 {"rcode_name", "NOERROR"},
                 {"answers", {{{"type", "A"}, {"value", "10.10.34.35"}, {"ttl", 60}}}},
                 {"tries", 1},
                 {"timeouts", 0},
                 {"query_id", 4660}};
  Observation http = MakeObservation("o-http", Step::kHttp, a.t_start + 10);
  http.failure = std::string();  // present but empty: distinct from nullopt
  http.details = {{"url", "https://www.example.com/"},
                  {"status", 200},
                  {"headers_list", {{"Content-Type", "text/html; charset=utf-8"}}},
                  {"title", "صفحه مسدود است 🚫"},
                  {"body_truncated", false}};
  http.local_port = 0;   // unknown
  http.remote_port = 0;  // unknown
  http.remote_addr = "";
  a.observations = {dns, http};

  // TCP failure, control, probe error and empty details.
  Measurement b;
  b.uid = "m-b";
  b.cycle_uid = cycle;
  b.network = "irancell";
  b.target = "control-ip";
  b.target_version = "";
  b.endpoint = "ip";
  b.control = true;
  b.t_start = 1700000000100000;  // earlier than a: loads first
  b.t_end = 1700000000200000;
  b.furthest_step = Step::kDns;
  b.failed_step = Step::kTcp;
  b.failure = "connection_refused";
  b.probe_error = "";
  Observation tcp = MakeObservation("o-tcp", Step::kTcp, b.t_start);
  tcp.failure = "connection_refused";
  tcp.details = {{"errno", 111}};
  tcp.local_addr = "2001:db8::2";
  tcp.remote_addr = "2001:db8::7";
  Observation tls = MakeObservation("o-tls", Step::kTls, b.t_start + 5);
  tls.probe_error = "bind to wwan1 failed: No such device";
  tls.details = nlohmann::json::object();
  tls.flow_uid = "";
  b.observations = {tcp, tls};

  // Same t_start as b: ordered by uid after it.
  Measurement c = MakeMeasurement(cycle, 0, 0);
  c.uid = "m-c";
  c.t_start = b.t_start;
  c.furthest_step.reset();
  c.failed_step = Step::kDns;
  c.failure = "dns_nxdomain_error";

  for (const Measurement* m : {&a, &b, &c}) {
    Status s = store->WriteMeasurement(*m);
    ASSERT_TRUE(s.ok()) << s.ToString();
  }
  std::vector<Measurement> got;
  Status s = store->LoadMeasurements(cycle, &got);
  ASSERT_TRUE(s.ok()) << s.ToString();
  ASSERT_EQ(got.size(), 3u);
  ExpectSame(got[0], b);
  ExpectSame(got[1], c);
  ExpectSame(got[2], a);

  // Absent values are stored as NULL, present-but-empty failure as ''.
  sqlite3* db = store->handle();
  EXPECT_EQ(QueryOne(db, "SELECT failure IS NULL FROM measurements WHERE uid = 'm-a'"), "1");
  EXPECT_EQ(QueryOne(db, "SELECT failure = '' FROM observations WHERE uid = 'o-http'"), "1");
  EXPECT_EQ(QueryOne(db, "SELECT remote_port IS NULL FROM observations WHERE uid = 'o-http'"), "1");
  EXPECT_EQ(QueryOne(db, "SELECT raw IS NULL FROM observations WHERE uid = 'o-tcp'"), "1");
  EXPECT_EQ(QueryOne(db, "SELECT length(raw) FROM observations WHERE uid = 'o-dns'"), "17");
  EXPECT_EQ(QueryOne(db, "SELECT details->>'$.rcode_name' FROM observations WHERE uid = 'o-dns'"),
            "NOERROR");
  EXPECT_EQ(QueryOne(db, "SELECT typeof(t_start) FROM observations WHERE uid = 'o-dns'"),
            "integer");

  CycleTotals totals;
  totals.finished_at = 1700000001000000;
  totals.measurements = 3;
  totals.bytes_sent = 1234;
  totals.bytes_received = 5678;
  ASSERT_TRUE(store->FinishCycle(cycle, totals).ok());
  ASSERT_TRUE(store->CycleStatus(cycle, &status).ok());
  EXPECT_EQ(status, "complete");
  EXPECT_EQ(QueryOne(db,
                     "SELECT finished_at || ',' || measurements || ',' || bytes_sent || ',' "
                     "|| bytes_received FROM cycles"),
            "1700000001000000,3,1234,5678");
  EXPECT_EQ(QueryOne(db,
                     "SELECT group_concat(target || '=' || version, ';') FROM "
                     "(SELECT * FROM cycle_targets ORDER BY target)"),
            "clubhouse=2024-01-02;signal=7");
  EXPECT_TRUE(store->FinishCycle("no-such-cycle", totals).IsNotFound());
  totals.status = "bogus";
  EXPECT_FALSE(store->FinishCycle(cycle, totals).ok());
  ASSERT_TRUE(store->LatestCycleUid(&uid).ok());
  EXPECT_EQ(uid, cycle);

  // Reading back through a separate read-only connection gives the same.
  store.reset();
  ASSERT_TRUE(Store::OpenReadOnly(path, &store).ok());
  got.clear();
  ASSERT_TRUE(store->LoadMeasurements(cycle, &got).ok());
  ASSERT_EQ(got.size(), 3u);
  ExpectSame(got[0], b);
  ExpectSame(got[1], c);
  ExpectSame(got[2], a);
  ASSERT_TRUE(store->LoadMeasurements("other", &got).ok());
  EXPECT_TRUE(got.empty());
}

TEST_F(StoreTest, NetworksRoundTrip) {
  std::unique_ptr<Store> store;
  ASSERT_TRUE(Store::Open(Path("rasad.db"), &store).ok());
  ASSERT_TRUE(store->BeginCycle(MakeCycle("c1", 1)).ok());
  CycleNetwork mci;
  mci.cycle_uid = "c1";
  mci.config.name = "mci";
  mci.config.operator_label = "Hamrah-e-Aval (MCI)";
  mci.config.asn = 197207;
  mci.config.interface = "wwan0";
  mci.config.resolvers = {};
  mci.ifindex = 4;
  mci.resolvers = {"10.0.0.1", "[2001:db8::1]:53"};
  CycleNetwork down;
  down.cycle_uid = "c1";
  down.config.name = "irancell";
  down.config.resolvers = {"1.1.1.1", "8.8.8.8:53"};
  down.probe_error = "interface wwan1 not found";
  ASSERT_TRUE(store->RecordNetwork(mci).ok());
  ASSERT_TRUE(store->RecordNetwork(down).ok());
  // Recording again replaces the row.
  down.probe_error = "interface wwan1 is down";
  ASSERT_TRUE(store->RecordNetwork(down).ok());
  CycleNetwork orphan = mci;
  orphan.cycle_uid = "no-such-cycle";
  EXPECT_FALSE(store->RecordNetwork(orphan).ok());

  std::vector<CycleNetwork> got;
  Status s = store->LoadNetworks("c1", &got);
  ASSERT_TRUE(s.ok()) << s.ToString();
  ASSERT_EQ(got.size(), 2u);  // ordered by name
  const CycleNetwork& g0 = got[0];
  EXPECT_EQ(g0.cycle_uid, "c1");
  EXPECT_EQ(g0.config.name, "irancell");
  EXPECT_EQ(g0.config.operator_label, "");
  EXPECT_EQ(g0.config.asn, 0);
  EXPECT_EQ(g0.config.interface, "");
  EXPECT_EQ(g0.config.resolvers, down.config.resolvers);
  EXPECT_EQ(g0.ifindex, 0);
  EXPECT_TRUE(g0.resolvers.empty());
  EXPECT_EQ(g0.probe_error, "interface wwan1 is down");
  const CycleNetwork& g1 = got[1];
  EXPECT_EQ(g1.config.name, "mci");
  EXPECT_EQ(g1.config.operator_label, mci.config.operator_label);
  EXPECT_EQ(g1.config.asn, 197207);
  EXPECT_EQ(g1.config.interface, "wwan0");
  EXPECT_TRUE(g1.config.resolvers.empty());
  EXPECT_EQ(g1.ifindex, 4);
  EXPECT_EQ(g1.resolvers, mci.resolvers);
  EXPECT_EQ(g1.probe_error, "");
  EXPECT_EQ(QueryOne(store->handle(),
                     "SELECT asn IS NULL FROM cycle_networks WHERE name = "
                     "'irancell'"),
            "1");
}

// --- Interruption and errors ------------------------------------------------

TEST_F(StoreTest, RunningCyclesAreMarkedInterrupted) {
  std::string path = Path("rasad.db");
  std::unique_ptr<Store> store;
  ASSERT_TRUE(Store::Open(path, &store).ok());
  ASSERT_TRUE(store->BeginCycle(MakeCycle("done", 100)).ok());
  ASSERT_TRUE(store->WriteMeasurement(MakeMeasurement("done", 0)).ok());
  CycleTotals t;
  t.finished_at = 200;
  t.measurements = 1;
  ASSERT_TRUE(store->FinishCycle("done", t).ok());
  ASSERT_TRUE(store->BeginCycle(MakeCycle("cut", 300)).ok());
  ASSERT_TRUE(store->WriteMeasurement(MakeMeasurement("cut", 0)).ok());
  ASSERT_TRUE(store->WriteMeasurement(MakeMeasurement("cut", 1)).ok());
  ASSERT_TRUE(store->BeginCycle(MakeCycle("empty", 400)).ok());
  store.reset();

  ASSERT_TRUE(Store::Open(path, &store).ok());
  std::string status;
  ASSERT_TRUE(store->CycleStatus("cut", &status).ok());
  EXPECT_EQ(status, "running");  // Open alone changes nothing
  int n = -1;
  ASSERT_TRUE(store->MarkInterruptedCycles(&n).ok());
  EXPECT_EQ(n, 2);
  ASSERT_TRUE(store->CycleStatus("cut", &status).ok());
  EXPECT_EQ(status, "interrupted");
  ASSERT_TRUE(store->CycleStatus("empty", &status).ok());
  EXPECT_EQ(status, "interrupted");
  ASSERT_TRUE(store->CycleStatus("done", &status).ok());
  EXPECT_EQ(status, "complete");
  EXPECT_TRUE(store->CycleStatus("nope", &status).IsNotFound());
  sqlite3* db = store->handle();
  Measurement last = MakeMeasurement("cut", 1);
  EXPECT_EQ(QueryOne(db,
                     "SELECT measurements || ',' || finished_at || ',' || "
                     "coalesce(bytes_sent, 'null') FROM cycles WHERE uid = 'cut'"),
            "2," + std::to_string(last.t_end) + ",null");
  EXPECT_EQ(QueryOne(db,
                     "SELECT measurements || ',' || coalesce(finished_at, 'null') FROM "
                     "cycles WHERE uid = 'empty'"),
            "0,null");
  ASSERT_TRUE(store->MarkInterruptedCycles(&n).ok());
  EXPECT_EQ(n, 0);
  // Data of the interrupted cycle is kept.
  std::vector<Measurement> got;
  ASSERT_TRUE(store->LoadMeasurements("cut", &got).ok());
  EXPECT_EQ(got.size(), 2u);
}

TEST_F(StoreTest, FailedWriteRollsBackOnlyThatMeasurement) {
  std::unique_ptr<Store> store;
  ASSERT_TRUE(Store::Open(Path("rasad.db"), &store).ok());
  ASSERT_TRUE(store->BeginCycle(MakeCycle("c", 1)).ok());
  Measurement m0 = MakeMeasurement("c", 0);
  ASSERT_TRUE(store->WriteMeasurement(m0).ok());

  // Duplicate measurement uid.
  Status s = store->WriteMeasurement(m0);
  EXPECT_TRUE(s.IsInvalid()) << s.ToString();
  EXPECT_NE(s.message().find("UNIQUE"), std::string::npos) << s.message();
  EXPECT_NE(s.message().find("rasad.db"), std::string::npos) << s.message();

  // Second observation collides with an existing one: the measurement row
  // and its first observation must not remain.
  Measurement m1 = MakeMeasurement("c", 1);
  m1.observations[1].uid = m0.observations[0].uid;
  EXPECT_FALSE(store->WriteMeasurement(m1).ok());

  // Unknown cycle: foreign key.
  Measurement orphan = MakeMeasurement("nope", 0);
  s = store->WriteMeasurement(orphan);
  EXPECT_FALSE(s.ok());
  EXPECT_NE(s.message().find("FOREIGN KEY"), std::string::npos) << s.message();

  // Duplicate cycle.
  EXPECT_FALSE(store->BeginCycle(MakeCycle("c", 1)).ok());

  // Still usable, nothing half-written.
  EXPECT_TRUE(sqlite3_get_autocommit(store->handle()));
  Measurement m2 = MakeMeasurement("c", 2);
  ASSERT_TRUE(store->WriteMeasurement(m2).ok());
  std::vector<Measurement> got;
  ASSERT_TRUE(store->LoadMeasurements("c", &got).ok());
  ASSERT_EQ(got.size(), 2u);
  ExpectSame(got[0], m0);
  ExpectSame(got[1], m2);
  EXPECT_EQ(QueryOne(store->handle(), "SELECT COUNT(*) FROM observations"), "6");
  EXPECT_TRUE(store->CheckIntegrity().ok());
}

TEST_F(StoreTest, ReadOnlyOpenReadsWhileWriterHoldsTheLock) {
  std::string path = Path("rasad.db");
  std::unique_ptr<Store> writer;
  ASSERT_TRUE(Store::Open(path, &writer).ok());
  ASSERT_TRUE(writer->BeginCycle(MakeCycle("c1", 1)).ok());
  Measurement m0 = MakeMeasurement("c1", 0);
  ASSERT_TRUE(writer->WriteMeasurement(m0).ok());

  // The writer is mid-transaction, holding the write lock.
  ASSERT_EQ(sqlite3_exec(writer->handle(),
                         "BEGIN IMMEDIATE; INSERT INTO cycles (uid, started_at, rasad_version) "
                         "VALUES ('c2', 2, 'x');",
                         nullptr, nullptr, nullptr),
            SQLITE_OK);

  auto t0 = std::chrono::steady_clock::now();
  std::unique_ptr<Store> reader;
  Status s = Store::OpenReadOnly(path, &reader);
  ASSERT_TRUE(s.ok()) << s.ToString();
  EXPECT_EQ(reader->SchemaVersion(), Store::LatestSchemaVersion());
  std::string uid;
  ASSERT_TRUE(reader->LatestCycleUid(&uid).ok());
  EXPECT_EQ(uid, "c1");  // c2 not committed yet
  std::vector<Measurement> got;
  ASSERT_TRUE(reader->LoadMeasurements("c1", &got).ok());
  ASSERT_EQ(got.size(), 1u);
  ExpectSame(got[0], m0);
  EXPECT_LT(std::chrono::steady_clock::now() - t0, std::chrono::seconds(2));  // never waited

  // A reader cannot write.
  s = reader->BeginCycle(MakeCycle("c3", 3));
  EXPECT_TRUE(s.IsIoError()) << s.ToString();
  EXPECT_NE(s.message().find("readonly"), std::string::npos) << s.message();

  ASSERT_EQ(sqlite3_exec(writer->handle(), "COMMIT", nullptr, nullptr, nullptr), SQLITE_OK);
  ASSERT_TRUE(reader->LatestCycleUid(&uid).ok());
  EXPECT_EQ(uid, "c2");
  EXPECT_TRUE(reader->CheckIntegrity().ok());
}

// --- Crash safety -----------------------------------------------------------

constexpr int kCrashMeasurementsPerCycle = 20;
constexpr int kCrashObservations = 3;

// Child: writes cycles forever, reporting each finished cycle on `fd`.
[[noreturn]] void CrashChild(const std::string& path, int fd) {
  std::unique_ptr<Store> store;
  if (!Store::Open(path, &store).ok()) _exit(2);
  int n = 0;
  if (!store->MarkInterruptedCycles(&n).ok()) _exit(3);
  for (;;) {
    std::string cycle = NewUid();
    if (!store->BeginCycle(MakeCycle(cycle, WallMicros())).ok()) _exit(4);
    for (int i = 0; i < kCrashMeasurementsPerCycle; ++i) {
      Measurement m = MakeMeasurement(cycle, i, kCrashObservations);
      m.observations[0].raw = std::string(200, static_cast<char>(i));
      if (!store->WriteMeasurement(m).ok()) _exit(5);
    }
    CycleTotals t;
    t.finished_at = WallMicros();
    t.measurements = kCrashMeasurementsPerCycle;
    if (!store->FinishCycle(cycle, t).ok()) _exit(6);
    std::string line = cycle + "\n";
    if (write(fd, line.data(), line.size()) != static_cast<ssize_t>(line.size())) _exit(7);
  }
}

// Reads newline-terminated uids from fd into *out; stops after `want` lines
// in total (or at EOF when want < 0). Returns false on EOF before `want`.
bool ReadUids(int fd, std::string* buffer, std::vector<std::string>* out, int want) {
  for (;;) {
    size_t nl;
    while ((nl = buffer->find('\n')) != std::string::npos) {
      out->push_back(buffer->substr(0, nl));
      buffer->erase(0, nl + 1);
    }
    if (want >= 0 && static_cast<int>(out->size()) >= want) return true;
    char buf[4096];
    ssize_t r = read(fd, buf, sizeof buf);
    if (r < 0 && errno == EINTR) continue;
    if (r <= 0) return want < 0;
    buffer->append(buf, r);
  }
}

TEST_F(StoreTest, SurvivesKillDashNineWhileWriting) {
  const std::string path = Path("crash/rasad.db");
  std::random_device rd;
  const unsigned seed = rd();
  SCOPED_TRACE("seed " + std::to_string(seed));
  std::mt19937 rng(seed);
  std::uniform_int_distribution<int> extra_us(0, 8000);
  const int fixed_delays_us[] = {0, 500, 2000, 5000};

  std::set<std::string> reported;  // over all trials
  for (int trial = 0; trial < 6; ++trial) {
    int delay_us = trial < 4 ? fixed_delays_us[trial] : extra_us(rng);
    SCOPED_TRACE("trial " + std::to_string(trial) + " delay " + std::to_string(delay_us) + "us");
    int fds[2];
    ASSERT_EQ(pipe(fds), 0);
    pid_t pid = fork();
    ASSERT_GE(pid, 0);
    if (pid == 0) {
      close(fds[0]);
      CrashChild(path, fds[1]);
    }
    close(fds[1]);
    std::string buffer;
    std::vector<std::string> uids;
    bool enough = ReadUids(fds[0], &buffer, &uids, 3);
    if (enough) std::this_thread::sleep_for(std::chrono::microseconds(delay_us));
    kill(pid, SIGKILL);
    int wstatus = 0;
    ASSERT_EQ(waitpid(pid, &wstatus, 0), pid);
    ASSERT_TRUE(enough) << "child exited early, status " << wstatus;
    EXPECT_TRUE(WIFSIGNALED(wstatus) && WTERMSIG(wstatus) == SIGKILL) << wstatus;
    ReadUids(fds[0], &buffer, &uids, -1);  // cycles finished during the delay
    close(fds[0]);
    reported.insert(uids.begin(), uids.end());

    std::unique_ptr<Store> store;
    Status s = Store::Open(path, &store);
    ASSERT_TRUE(s.ok()) << s.ToString();
    s = store->CheckIntegrity();
    ASSERT_TRUE(s.ok()) << s.ToString();
    EXPECT_EQ(QueryOne(store->handle(), "PRAGMA foreign_key_check"), "");

    // Every cycle the child reported is complete, with all its data.
    for (const std::string& cycle : reported) {
      std::string status;
      ASSERT_TRUE(store->CycleStatus(cycle, &status).ok()) << cycle;
      EXPECT_EQ(status, "complete") << cycle;
      std::vector<Measurement> got;
      ASSERT_TRUE(store->LoadMeasurements(cycle, &got).ok());
      ASSERT_EQ(got.size(), static_cast<size_t>(kCrashMeasurementsPerCycle)) << cycle;
      for (int i = 0; i < kCrashMeasurementsPerCycle; ++i) {
        Measurement want = MakeMeasurement(cycle, i, kCrashObservations);
        want.observations[0].raw = std::string(200, static_cast<char>(i));
        ExpectSame(got[i], want);
      }
    }

    // At most one cycle was cut short; it becomes interrupted and holds only
    // whole measurements.
    int marked = -1;
    ASSERT_TRUE(store->MarkInterruptedCycles(&marked).ok());
    EXPECT_LE(marked, 1);
    EXPECT_EQ(QueryOne(store->handle(), "SELECT COUNT(*) FROM cycles WHERE status = 'running'"),
              "0");
    EXPECT_EQ(QueryOne(store->handle(),
                       "SELECT COUNT(*) FROM measurements m WHERE (SELECT COUNT(*) FROM "
                       "observations o WHERE o.measurement_uid = m.uid) != " +
                           std::to_string(kCrashObservations)),
              "0");
    EXPECT_EQ(QueryOne(store->handle(),
                       "SELECT COUNT(*) FROM cycles WHERE status = 'complete' AND "
                       "(SELECT COUNT(*) FROM measurements WHERE cycle_uid = cycles.uid) != " +
                           std::to_string(kCrashMeasurementsPerCycle)),
              "0");
    store.reset();  // no connection may cross the next fork()
  }
  EXPECT_GE(reported.size(), 18u);
}

// --- Disk full --------------------------------------------------------------

// Writes measurements with `raw_size`-byte payloads until a write fails.
// Returns the measurements that were acknowledged and the error.
std::vector<Measurement> FillUp(Store* store, const std::string& cycle, size_t raw_size,
                                Status* error) {
  std::vector<Measurement> written;
  for (int i = 0; i < 10000; ++i) {
    Measurement m = MakeMeasurement(cycle, i);
    m.observations[0].raw = std::string(raw_size, static_cast<char>('a' + i % 26));
    Status s = store->WriteMeasurement(m);
    if (!s.ok()) {
      *error = s;
      return written;
    }
    written.push_back(std::move(m));
  }
  *error = Status::Ok();
  return written;
}

void ExpectLoads(const Store& store, const std::string& cycle,
                 const std::vector<Measurement>& want) {
  std::vector<Measurement> got;
  Status s = store.LoadMeasurements(cycle, &got);
  ASSERT_TRUE(s.ok()) << s.ToString();
  ASSERT_EQ(got.size(), want.size());
  for (size_t i = 0; i < want.size(); ++i) ExpectSame(got[i], want[i]);
}

bool EndsWith(const std::string& s, const std::string& suffix) {
  return s.size() >= suffix.size() &&
         s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

TEST_F(StoreTest, MaxPageCountFullKeepsEarlierData) {
  std::unique_ptr<Store> store;
  ASSERT_TRUE(Store::Open(Path("rasad.db"), &store).ok());
  ASSERT_TRUE(store->BeginCycle(MakeCycle("c", 1)).ok());
  int64_t pages = std::stoll(QueryOne(store->handle(), "PRAGMA page_count"));
  std::string limit = "PRAGMA max_page_count = " + std::to_string(pages + 40);
  QueryOne(store->handle(), limit);

  Status error;
  std::vector<Measurement> written = FillUp(store.get(), "c", 8000, &error);
  ASSERT_FALSE(error.ok());
  EXPECT_TRUE(error.IsIoError()) << error.ToString();
  EXPECT_TRUE(EndsWith(error.message(), ": database or disk is full")) << error.message();
  EXPECT_NE(error.message().find("rasad.db"), std::string::npos) << error.message();
  ASSERT_GT(written.size(), 0u);
  EXPECT_TRUE(sqlite3_get_autocommit(store->handle()));
  ExpectLoads(*store, "c", written);
  EXPECT_TRUE(store->CheckIntegrity().ok());

  // Once there is room again the same Store writes on.
  QueryOne(store->handle(), "PRAGMA max_page_count = 1000000");
  Measurement more = MakeMeasurement("c", 9999);
  ASSERT_TRUE(store->WriteMeasurement(more).ok());
  written.push_back(more);
  ExpectLoads(*store, "c", written);
}

TEST_F(StoreTest, FullTmpfsKeepsEarlierData) {
  const std::string mnt = Path("tmpfs");
  fs::create_directories(mnt);
  if (mount("tmpfs", mnt.c_str(), "tmpfs", 0, "size=512k") != 0) {
    GTEST_SKIP() << "cannot mount a tmpfs (" << strerror(errno)
                 << "); disk-full is covered by MaxPageCountFullKeepsEarlierData";
  }
  struct Unmount {
    std::string dir;
    ~Unmount() { umount2(dir.c_str(), MNT_DETACH); }
  } unmount{mnt};
  const std::string path = mnt + "/data/rasad.db";
  std::vector<Measurement> written;
  {
    std::unique_ptr<Store> store;
    Status s = Store::Open(path, &store);
    ASSERT_TRUE(s.ok()) << s.ToString();
    ASSERT_TRUE(store->BeginCycle(MakeCycle("c", 1)).ok());
    Status error;
    written = FillUp(store.get(), "c", 4 * 1024, &error);
    ASSERT_FALSE(error.ok());
    EXPECT_TRUE(error.IsIoError()) << error.ToString();
    EXPECT_TRUE(EndsWith(error.message(), ": database or disk is full")) << error.message();
    EXPECT_NE(error.message().find(path), std::string::npos) << error.message();
    ASSERT_GT(written.size(), 5u);
    ExpectLoads(*store, "c", written);
    EXPECT_TRUE(store->CheckIntegrity().ok());
    // The Store stays usable: a smaller write may still fit in the space the
    // failed transaction left; either way the stored data stays consistent.
    for (int i = 5000; i < 5100; ++i) {
      Measurement small = MakeMeasurement("c", i);
      Status again = store->WriteMeasurement(small);
      if (!again.ok()) {
        EXPECT_TRUE(again.IsIoError()) << again.ToString();
        break;
      }
      written.push_back(small);
    }
    ExpectLoads(*store, "c", written);
    EXPECT_TRUE(store->CheckIntegrity().ok());
  }
  // After closing (whose checkpoint may itself run out of space) everything
  // acknowledged is still there.
  std::unique_ptr<Store> store;
  Status s = Store::OpenReadOnly(path, &store);
  ASSERT_TRUE(s.ok()) << s.ToString();
  EXPECT_TRUE(store->CheckIntegrity().ok());
  ExpectLoads(*store, "c", written);
  store.reset();
  s = Store::Open(path, &store);
  ASSERT_TRUE(s.ok()) << s.ToString();
  ExpectLoads(*store, "c", written);
}

}  // namespace
}  // namespace rasad

namespace rasad {
namespace {

TEST_F(StoreTest, CertificatesAreStoredOnceAndRestoredOnLoad) {
  std::unique_ptr<Store> store;
  ASSERT_TRUE(Store::Open(Path("certs.db"), &store).ok());
  ASSERT_TRUE(store->BeginCycle(MakeCycle("c", 1700000000000000)).ok());
  const std::string sha(64, 'a');
  const std::string der = std::string(3000, 'Q');  // a leaf's base64 DER, give or take
  for (int i = 0; i < 5; ++i) {
    Measurement m = MakeMeasurement("c", i, 0);
    Observation tls = MakeObservation(m.uid + "-tls", Step::kTls, m.t_start);
    tls.details["chain"] = nlohmann::json::array(
        {{{"subject", "CN=www.example.com"}, {"sha256", sha}, {"der_b64", der}}});
    m.observations.push_back(tls);
    ASSERT_TRUE(store->WriteMeasurement(m).ok());
  }
  sqlite3_stmt* st = nullptr;
  ASSERT_EQ(sqlite3_prepare_v2(store->handle(),
                               "SELECT (SELECT count(*) FROM certificates), "
                               "(SELECT count(*) FROM observations WHERE details LIKE '%QQQQ%')",
                               -1, &st, nullptr),
            SQLITE_OK);
  ASSERT_EQ(sqlite3_step(st), SQLITE_ROW);
  EXPECT_EQ(sqlite3_column_int(st, 0), 1) << "the same certificate five times is stored once";
  EXPECT_EQ(sqlite3_column_int(st, 1), 0) << "no DER inline in observations";
  sqlite3_finalize(st);
  std::vector<Measurement> ms;
  ASSERT_TRUE(store->LoadMeasurements("c", &ms).ok());
  ASSERT_EQ(ms.size(), 5u);
  for (const Measurement& m : ms) {
    ASSERT_EQ(m.observations.size(), 1u);
    EXPECT_EQ(m.observations[0].details["chain"][0]["der_b64"], der);
  }
}

}  // namespace
}  // namespace rasad
