// The `rasad` binary as a user runs it: help, target checks, one cycle,
// the daemon with SIGHUP and SIGTERM, and kill -9.
#include <gtest/gtest.h>
#include <signal.h>
#include <sqlite3.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <sstream>
#include <thread>

#include "probe/store/store.h"
#include "tests/engine/engine_fixture.h"
#include "tests/support/dns_server.h"
#include "tests/support/servers.h"

namespace rasad::testing {
namespace {

struct Result {
  int code = -1;
  std::string out, err;
};

std::string Slurp(const std::string& path) {
  std::ifstream f(path);
  std::stringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

void Write(const std::string& path, const std::string& text) { std::ofstream(path) << text; }

class CliTest : public ::testing::Test {
 protected:
  void SetUp() override { dir_ = MakeTempDir(); }
  void TearDown() override { std::system(("rm -rf " + dir_).c_str()); }

  Result Run(const std::string& args) {
    std::string cmd =
        std::string(RASAD_BINARY) + " " + args + " >" + dir_ + "/out 2>" + dir_ + "/err";
    int st = std::system(cmd.c_str());
    Result r;
    r.code = WIFEXITED(st) ? WEXITSTATUS(st) : -1;
    r.out = Slurp(dir_ + "/out");
    r.err = Slurp(dir_ + "/err");
    return r;
  }

  // A config measuring a local HTTP server by name through a local resolver.
  std::string WriteConfig(uint16_t dns_port, const std::string& interval = "15m") {
    std::string targets = dir_ + "/targets";
    std::system(("mkdir -p " + targets).c_str());
    Write(targets + "/app.toml",
          "name = \"app\"\ntitle = \"App\"\nversion = \"v7\"\n\n[[endpoint]]\nname = \"web\"\n"
          "hosts = [\"app.test\"]\nsteps = \"http\"\ntls = false\nports = [" +
              std::to_string(http_.port()) +
              "]\n\n[[endpoint]]\nname = \"gone\"\n"
              "hosts = [\"gone.test\"]\nsteps = \"dns\"\n");
    std::string cfg = dir_ + "/rasad.toml";
    Write(cfg,
          "database = \"" + dir_ + "/rasad.db\"\ntargets = [\"" + targets + "\"]\ninterval = \"" +
              interval +
              "\"\njitter = \"0s\"\nipv6 = false\n"
              "[dns]\ntimeout = \"500ms\"\ntries = 1\n[retries]\ncount = "
              "0\n[analysis]\npublic_ranges = [\"127.0.0.0/8\"]\n\n[[network]]\nname = \"opA\"\n"
              "operator = \"Operator A\"\ninterface = \"lo\"\nresolvers = [\"127.0.0.1:" +
              std::to_string(dns_port) + "\"]\n");
    return cfg;
  }

  void ServeNames() {
    DnsRule ok;
    ok.a = {"127.0.0.1"};
    dns_.Set("app.test", ok);
    DnsRule nx;
    nx.kind = DnsRule::kNxdomain;
    dns_.Set("gone.test", nx);
  }

  int CountCycles(const std::string& db, const std::string& status) {
    std::unique_ptr<Store> store;
    if (!Store::OpenReadOnly(db, &store).ok()) return -1;
    sqlite3_stmt* st = nullptr;
    sqlite3_prepare_v2(store->handle(), "SELECT count(*) FROM cycles WHERE status = ?", -1, &st,
                       nullptr);
    sqlite3_bind_text(st, 1, status.c_str(), -1, SQLITE_TRANSIENT);
    int n = sqlite3_step(st) == SQLITE_ROW ? sqlite3_column_int(st, 0) : -1;
    sqlite3_finalize(st);
    return n;
  }

  pid_t Spawn(const std::string& cfg) {
    pid_t pid = fork();
    if (pid == 0) {
      prctl(PR_SET_PDEATHSIG, SIGKILL);  // never outlive a killed test run
      freopen((dir_ + "/daemon.out").c_str(), "w", stdout);
      freopen((dir_ + "/daemon.err").c_str(), "w", stderr);
      execl(RASAD_BINARY, RASAD_BINARY, "probe", "--config", cfg.c_str(), nullptr);
      _exit(127);
    }
    return pid;
  }

  bool WaitFor(const std::function<bool()>& cond, int ms) {
    for (int i = 0; i < ms / 50; ++i) {
      if (cond()) return true;
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    return cond();
  }

  std::string dir_;
  DnsServer dns_;
  HttpServer http_{HttpResponse{}};
};

TEST_F(CliTest, HelpAndVersionDescribeTheCommands) {
  Result r = Run("--help");
  EXPECT_EQ(r.code, 0);
  for (const char* word : {"probe", "targets"}) EXPECT_NE(r.out.find(word), std::string::npos);
  r = Run("probe --help");
  for (const char* word : {"--once", "--config", "--summary-json", "SIGHUP", "SIGTERM"})
    EXPECT_NE(r.out.find(word), std::string::npos) << word;
  r = Run("targets import citizenlab --help");
  EXPECT_NE(r.out.find("--output"), std::string::npos);
  r = Run("--version");
  EXPECT_EQ(r.code, 0);
  EXPECT_NE(r.out.find("rasad " RASAD_VERSION), std::string::npos) << r.out;
  r = Run("frobnicate");
  EXPECT_NE(r.code, 0);
}

TEST_F(CliTest, ShippedTargetsPassTheCheck) {
  Result r = Run(std::string("targets check ") + RASAD_SOURCE_DIR + "/targets");
  EXPECT_EQ(r.code, 0) << r.err;
  EXPECT_NE(r.out.find("clubhouse"), std::string::npos);
  EXPECT_NE(r.out.find("ok: "), std::string::npos);
}

TEST_F(CliTest, BrokenTargetFileIsReportedAsFileAndLine) {
  std::string f = dir_ + "/bad.toml";
  Write(f,
        "name = \"bad\"\ntitle = \"Bad\"\nversion = \"1\"\n\n[[endpoint]]\nname = \"x\"\n"
        "hosts = [\"x.test\"]\nsteps = \"htp\"\n");
  Result r = Run("targets check " + f);
  EXPECT_EQ(r.code, 1);
  EXPECT_NE(r.err.find(f + ":8: "), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("htp"), std::string::npos) << r.err;
}

TEST_F(CliTest, OneCyclePrintsATableStoresItAndExitsZero) {
  ServeNames();
  std::string cfg = WriteConfig(dns_.port());
  Result r = Run("probe --once --config " + cfg + " --summary-json " + dir_ + "/s.json");
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_NE(r.out.find("network opA (Operator A)"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("dns_nxdomain_error"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("HTTP 200"), std::string::npos) << r.out;
  auto j = nlohmann::json::parse(Slurp(dir_ + "/s.json"));
  ASSERT_EQ(j["networks"].size(), 1u);
  auto eps = j["networks"][0]["endpoints"];
  ASSERT_EQ(eps.size(), 2u);
  EXPECT_EQ(eps[0]["endpoint"], "gone");
  EXPECT_EQ(eps[0]["failure"], "dns_nxdomain_error");
  EXPECT_EQ(eps[1]["furthest_step"], "http");
  EXPECT_EQ(eps[1]["flows"][0]["http_status"], 200);
  EXPECT_EQ(j.dump().find("local"), std::string::npos) << "no local address in the summary";
  EXPECT_EQ(CountCycles(dir_ + "/rasad.db", "complete"), 1);
  // Every observation carries the target file's version.
  std::unique_ptr<Store> store;
  ASSERT_TRUE(Store::OpenReadOnly(dir_ + "/rasad.db", &store).ok());
  std::string uid;
  ASSERT_TRUE(store->LatestCycleUid(&uid).ok());
  std::vector<Measurement> ms;
  ASSERT_TRUE(store->LoadMeasurements(uid, &ms).ok());
  ASSERT_EQ(ms.size(), 2u);
  for (const Measurement& m : ms) EXPECT_EQ(m.target_version, "v7");
}

TEST_F(CliTest, BrokenConfigNamesFileAndLine) {
  std::string cfg = dir_ + "/rasad.toml";
  Write(cfg, "concurrency = 16\nintervall = \"5m\"\n");
  Result r = Run("probe --once --config " + cfg);
  EXPECT_EQ(r.code, 2);
  EXPECT_NE(r.err.find(cfg + ":2: "), std::string::npos) << r.err;
}

TEST_F(CliTest, DaemonReloadsOnSighupKeepsOldOnBrokenFileAndStopsOnSigterm) {
  ServeNames();
  std::string cfg = WriteConfig(dns_.port(), "1s");
  std::string db = dir_ + "/rasad.db";
  pid_t pid = Spawn(cfg);
  ASSERT_TRUE(WaitFor([&] { return CountCycles(db, "complete") >= 1; }, 10000))
      << Slurp(dir_ + "/daemon.err");

  // A broken target file: the daemon says why and keeps measuring.
  Write(dir_ + "/targets/broken.toml", "name = \"broken\"\n[[endpoint\n");
  kill(pid, SIGHUP);
  ASSERT_TRUE(WaitFor(
      [&] { return Slurp(dir_ + "/daemon.err").find("reload failed") != std::string::npos; },
      5000));
  EXPECT_NE(Slurp(dir_ + "/daemon.err").find("broken.toml:2"), std::string::npos)
      << Slurp(dir_ + "/daemon.err");
  int before = CountCycles(db, "complete");
  ASSERT_TRUE(WaitFor([&] { return CountCycles(db, "complete") > before; }, 10000));

  // Fixed: the reload takes effect.
  std::remove((dir_ + "/targets/broken.toml").c_str());
  kill(pid, SIGHUP);
  ASSERT_TRUE(WaitFor(
      [&] { return Slurp(dir_ + "/daemon.err").find("reloaded") != std::string::npos; }, 5000));

  kill(pid, SIGTERM);
  int status = 0;
  ASSERT_TRUE(WaitFor([&] { return waitpid(pid, &status, WNOHANG) == pid; }, 10000));
  ASSERT_TRUE(WIFEXITED(status));
  EXPECT_EQ(WEXITSTATUS(status), 0);
  std::unique_ptr<Store> store;
  ASSERT_TRUE(Store::Open(db, &store).ok());
  EXPECT_TRUE(store->CheckIntegrity().ok());
  EXPECT_EQ(CountCycles(db, "running"), 0);
}

TEST_F(CliTest, KillNineKeepsEveryCompletedCycle) {
  ServeNames();
  std::string cfg = WriteConfig(dns_.port(), "1s");
  std::string db = dir_ + "/rasad.db";
  pid_t pid = Spawn(cfg);
  ASSERT_TRUE(WaitFor([&] { return CountCycles(db, "complete") >= 2; }, 15000));
  int complete = CountCycles(db, "complete");
  kill(pid, SIGKILL);
  waitpid(pid, nullptr, 0);
  std::unique_ptr<Store> store;
  ASSERT_TRUE(Store::Open(db, &store).ok());
  EXPECT_TRUE(store->CheckIntegrity().ok());
  EXPECT_GE(CountCycles(db, "complete"), complete);
}

}  // namespace
}  // namespace rasad::testing

namespace rasad::testing {
namespace {

TEST_F(CliTest, ClassifyReproducesTheVerdictsStoredByTheProbe) {
  ServeNames();
  std::string cfg = WriteConfig(dns_.port());
  Result r = Run("probe --once --config " + cfg + " --summary-json " + dir_ + "/s.json");
  ASSERT_EQ(r.code, 0) << r.err;
  auto summary = nlohmann::json::parse(Slurp(dir_ + "/s.json"));
  std::map<std::string, std::string> by_probe;
  for (const auto& e : summary["networks"][0]["endpoints"])
    by_probe[e["endpoint"].get<std::string>()] = e.value("verdict", "");
  ASSERT_EQ(by_probe.size(), 2u);
  EXPECT_EQ(by_probe["web"], "ok");
  // NXDOMAIN on the only operator, no control: not enough to call it blocking.
  EXPECT_EQ(by_probe["gone"], "inconclusive");

  // Stored verdicts, before and after recomputation, are the same.
  auto stored = [&] {
    std::unique_ptr<Store> store;
    EXPECT_TRUE(Store::OpenReadOnly(dir_ + "/rasad.db", &store).ok());
    sqlite3_stmt* st = nullptr;
    sqlite3_prepare_v2(store->handle(),
                       "SELECT endpoint || '=' || verdict || '/' || rule FROM verdicts "
                       "ORDER BY endpoint",
                       -1, &st, nullptr);
    std::vector<std::string> rows;
    while (sqlite3_step(st) == SQLITE_ROW)
      rows.push_back(reinterpret_cast<const char*>(sqlite3_column_text(st, 0)));
    sqlite3_finalize(st);
    return rows;
  };
  std::vector<std::string> before = stored();
  ASSERT_EQ(before.size(), 2u);
  r = Run("classify --config " + cfg);
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_NE(r.out.find("apps per network"), std::string::npos) << r.out;
  EXPECT_EQ(stored(), before);
  for (const auto& [endpoint, verdict] : by_probe)
    EXPECT_NE(r.out.find(verdict), std::string::npos) << endpoint;
}

}  // namespace
}  // namespace rasad::testing
