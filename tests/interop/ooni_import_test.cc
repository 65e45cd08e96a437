// OONI import tests: the real measurements in $RASAD_SHARED_DIR/data/ooni-measurements
// (skipped when absent), imported into real SQLite files in a temporary directory.
#include "interop/ooni_import.h"

#include <gtest/gtest.h>
#include <sqlite3.h>
#include <stdlib.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <map>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "probe/store/store.h"

#ifndef RASAD_SHARED_DIR
#define RASAD_SHARED_DIR "../shared"
#endif

namespace rasad {
namespace {

namespace fs = std::filesystem;
using json = nlohmann::json;

std::string DataDir() { return std::string(RASAD_SHARED_DIR) + "/data/ooni-measurements"; }

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

// First column of the first row, "" if none.
std::string Query(Store* store, const std::string& sql) {
  sqlite3_stmt* s = nullptr;
  std::string out;
  int rc = sqlite3_prepare_v2(store->handle(), sql.c_str(), -1, &s, nullptr);
  EXPECT_EQ(rc, SQLITE_OK) << sqlite3_errmsg(store->handle()) << " in " << sql;
  if (rc == SQLITE_OK && sqlite3_step(s) == SQLITE_ROW && sqlite3_column_text(s, 0))
    out = reinterpret_cast<const char*>(sqlite3_column_text(s, 0));
  sqlite3_finalize(s);
  return out;
}

// Every measurement file (not the index.csv label files), in name order.
std::vector<std::string> MeasurementFiles() {
  std::vector<std::string> out;
  for (const auto& e : fs::recursive_directory_iterator(DataDir())) {
    if (!e.is_regular_file()) continue;
    std::string ext = e.path().extension().string();
    if (ext == ".json" || ext == ".jsonc" || ext == ".jsonl") out.push_back(e.path().string());
  }
  std::sort(out.begin(), out.end());
  return out;
}

class OoniImportTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!fs::is_directory(DataDir()))
      GTEST_SKIP() << "OONI measurements not found at " << DataDir()
                   << " (set RASAD_SHARED_DIR to the shared directory)";
    char tmpl[] = "/tmp/rasad_ooni_XXXXXX";
    ASSERT_NE(mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
    ASSERT_TRUE(Store::Open(dir_ + "/rasad.db", &store_).ok());
  }
  void TearDown() override {
    store_.reset();
    if (!dir_.empty()) fs::remove_all(dir_);
  }

  // Imports one file of the data set; returns its only measurement.
  OoniMeasurement ImportOne(const std::string& rel, OoniImportStats* stats_out = nullptr) {
    OoniImportStats stats;
    std::vector<OoniMeasurement> parsed;
    Status s = ImportOoniFile(DataDir() + "/" + rel, store_.get(), &stats, &parsed);
    EXPECT_TRUE(s.ok()) << s.ToString();
    EXPECT_EQ(parsed.size(), 1u) << rel;
    if (stats_out) *stats_out = stats;
    return parsed.empty() ? OoniMeasurement() : parsed.front();
  }

  std::vector<Measurement> Stored(const std::string& cycle_uid) {
    std::vector<Measurement> ms;
    Status s = store_->LoadMeasurements(cycle_uid, &ms);
    EXPECT_TRUE(s.ok()) << s.ToString();
    return ms;
  }

  std::string dir_;
  std::unique_ptr<Store> store_;
};

// The details keys the classifier reads (docs/SCHEMA.md §4) are present.
void CheckShape(const Measurement& m, const std::string& file) {
  std::set<std::string> uids;
  for (const Observation& o : m.observations) {
    SCOPED_TRACE(file + " " + o.uid + " " + StepName(o.step));
    EXPECT_EQ(o.uid.size(), 32u);
    EXPECT_TRUE(uids.insert(o.uid).second);
    EXPECT_FALSE(o.flow_uid.empty());
    EXPECT_GE(o.t_end, o.t_start);
    switch (o.step) {
      case Step::kDns:
        EXPECT_TRUE(o.details.contains("rcode"));
        ASSERT_TRUE(o.details.contains("answers"));
        for (const auto& a : o.details["answers"]) {
          EXPECT_TRUE(a["type"] == "A" || a["type"] == "AAAA");
          EXPECT_FALSE(a["value"].get<std::string>().empty());
        }
        break;
      case Step::kTcp:
        EXPECT_FALSE(o.remote_addr.empty());
        EXPECT_GT(o.remote_port, 0);
        break;
      case Step::kTls:
        EXPECT_TRUE(o.details.contains("version"));
        EXPECT_TRUE(o.details.contains("cipher"));
        ASSERT_TRUE(o.details["chain"].is_array());
        for (const auto& c : o.details["chain"]) {
          EXPECT_EQ(c["sha256"].get<std::string>().size(), 64u);
          EXPECT_FALSE(c["der_b64"].get<std::string>().empty());
        }
        break;
      case Step::kHttp:
        if (o.details.contains("status")) {
          EXPECT_TRUE(o.details["headers_list"].is_array());
          EXPECT_TRUE(o.details.contains("body_length"));
          EXPECT_TRUE(o.details.contains("title"));
          EXPECT_EQ(o.details["body_sha256"].get<std::string>().size(), 64u);
          EXPECT_TRUE(o.details.contains("body_prefix_b64"));
        }
        break;
    }
  }
}

TEST_F(OoniImportTest, EveryFileImports) {
  int total = 0, controls = 0;
  for (const std::string& file : MeasurementFiles()) {
    SCOPED_TRACE(file);
    OoniImportStats stats;
    std::vector<OoniMeasurement> parsed;
    Status s = ImportOoniFile(file, store_.get(), &stats, &parsed);
    ASSERT_TRUE(s.ok()) << s.ToString();
    EXPECT_GE(stats.measurements, 1)
        << "nothing imported; warnings: " << (stats.warnings.empty() ? "" : stats.warnings[0]);
    EXPECT_EQ(stats.skipped, 0);
    size_t obs = 0;
    for (const OoniMeasurement& om : parsed) {
      CheckShape(om.m, file);
      obs += om.m.observations.size();
      EXPECT_EQ(om.m.target, "ooni");
      EXPECT_EQ(om.m.network.rfind("ooni:AS", 0), 0u) << om.m.network;
      EXPECT_TRUE(om.ooni_verdict.contains("test_name"));
      // A control-ooni measurement exactly when OONI had a usable control.
      bool usable = om.control.is_object() && om.ooni_verdict.value("control_failure", json()).is_null();
      EXPECT_EQ(om.control_m.has_value(), usable);
      if (om.control_m) {
        EXPECT_EQ(om.control_m->network, kOoniControlNetwork);
        EXPECT_EQ(om.control_m->endpoint, om.m.endpoint);
        EXPECT_EQ(om.control_m->target, om.m.target);
        EXPECT_EQ(om.control_m->cycle_uid, om.m.cycle_uid);
        for (const Observation& o : om.control_m->observations)
          EXPECT_EQ(o.details.value("source", ""), "control");
      }
    }
    std::cout << "[ import   ] " << fs::path(file).parent_path().filename().string() << "/"
              << fs::path(file).filename().string() << ": " << stats.measurements
              << " measurement(s), " << obs << " observation(s)";
    for (const std::string& w : stats.warnings) std::cout << "\n             warning: " << w;
    std::cout << "\n";
    total += stats.measurements;
    controls += stats.controls;
  }
  // 73 OONI measurements; 57 of the 59 web_connectivity ones carry a usable
  // control (the two others: control_failure set).
  EXPECT_EQ(total, 73);
  EXPECT_EQ(controls, 57);
  EXPECT_EQ(std::to_string(total + controls),
            Query(store_.get(), "SELECT count(*) FROM measurements"));
  EXPECT_EQ(std::to_string(controls),
            Query(store_.get(), "SELECT count(*) FROM measurements WHERE network = 'control-ooni'"));
  EXPECT_EQ(std::to_string(total), Query(store_.get(), "SELECT count(*) FROM ooni_imports"));
  EXPECT_TRUE(store_->CheckIntegrity().ok());
  // Volunteer safety: probe_ip is nowhere.
  EXPECT_EQ("0", Query(store_.get(),
                       "SELECT count(*) FROM ooni_imports WHERE "
                       "ooni_verdict LIKE '%probe_ip%' OR control LIKE '%probe_ip%'"));
}

TEST_F(OoniImportTest, IranDnsBlockpageAnswer) {
  OoniImportStats stats;
  OoniMeasurement om = ImportOne("backend-fastpath/web_connectivity_ir_fp.json", &stats);
  EXPECT_EQ(stats.measurements, 1);
  EXPECT_EQ(om.m.network, "ooni:AS197207");
  EXPECT_EQ(om.net.operator_label, "IR AS197207");
  EXPECT_EQ(om.net.asn, 197207);
  EXPECT_EQ(om.m.endpoint, "https://www.facebook.com/");
  EXPECT_EQ(om.m.target_version, "web_connectivity 0.4.1");
  EXPECT_EQ(om.ooni_verdict["blocking"], "dns");
  EXPECT_EQ(om.ooni_verdict["accessible"], false);
  EXPECT_EQ(om.ooni_verdict["dns_consistency"], "inconsistent");
  EXPECT_TRUE(om.control.is_object());
  EXPECT_FALSE(om.ooni_verdict.contains("queries"));

  // Read back from the database, as the classifier will.
  // The probe's measurement and the test helper's (control-ooni).
  EXPECT_EQ(stats.controls, 1);
  std::vector<Measurement> all = Stored(stats.cycle_uid), ms, ctl;
  for (const Measurement& x : all) (x.network == kOoniControlNetwork ? ctl : ms).push_back(x);
  ASSERT_EQ(ms.size(), 1u);
  ASSERT_EQ(ctl.size(), 1u);
  EXPECT_EQ(ctl[0].endpoint, "https://www.facebook.com/");
  EXPECT_FALSE(ctl[0].failure) << *ctl[0].failure;
  EXPECT_EQ(ctl[0].furthest_step, Step::kHttp);
  bool ctl_dns = false;
  for (const Observation& o : ctl[0].observations)
    if (o.step == Step::kDns) {
      ctl_dns = true;
      EXPECT_FALSE(o.details["answers"].empty());
      for (const auto& a : o.details["answers"]) EXPECT_NE(a["value"], "10.10.34.36");
    }
  EXPECT_TRUE(ctl_dns);
  const Measurement& m = ms[0];
  const Observation* dns = nullptr;
  for (const Observation& o : m.observations)
    if (o.step == Step::kDns) dns = &o;
  ASSERT_NE(dns, nullptr);
  EXPECT_EQ(dns->hostname, "www.facebook.com");
  EXPECT_EQ(dns->query_type, "A");
  EXPECT_FALSE(dns->failure);
  ASSERT_EQ(dns->details["answers"].size(), 1u);
  EXPECT_EQ(dns->details["answers"][0]["type"], "A");
  EXPECT_EQ(dns->details["answers"][0]["value"], "10.10.34.36");
  EXPECT_EQ(dns->details["rcode"], 0);
  // 2022-08-15 19:01:30 UTC + t.
  EXPECT_EQ(m.t_start / 1000000, 1660590090);
  // The connect to the blockpage address timed out.
  EXPECT_EQ(m.furthest_step, Step::kDns);
  EXPECT_EQ(m.failed_step, Step::kTcp);
  EXPECT_EQ(m.failure, "generic_timeout_error");
  bool tcp = false;
  for (const Observation& o : m.observations)
    if (o.step == Step::kTcp) {
      tcp = true;
      EXPECT_EQ(o.remote_addr, "10.10.34.36");
      EXPECT_EQ(o.remote_port, 443);
      EXPECT_EQ(o.hostname, "www.facebook.com");  // from the DNS answer
    }
  EXPECT_TRUE(tcp);
  EXPECT_EQ("dns", Query(store_.get(), "SELECT ooni_verdict ->> 'blocking' FROM ooni_imports"));
  EXPECT_EQ("AS197207", Query(store_.get(), "SELECT probe_asn FROM ooni_imports"));
  EXPECT_EQ("IR AS197207",
            Query(store_.get(), "SELECT operator FROM cycle_networks WHERE name = 'ooni:AS197207'"));
  EXPECT_EQ("197207",
            Query(store_.get(), "SELECT asn FROM cycle_networks WHERE name = 'ooni:AS197207'"));
  EXPECT_EQ("OONI test helper",
            Query(store_.get(), "SELECT operator FROM cycle_networks WHERE name = 'control-ooni'"));
}

TEST_F(OoniImportTest, Bug351KnownFalsePositive) {
  OoniMeasurement om = ImportOne("backend-fastpath/bug_351.json");
  EXPECT_EQ(om.m.network, "ooni:AS5390");
  EXPECT_EQ(om.ooni_verdict["blocking"], "http-failure");
  EXPECT_EQ(om.ooni_verdict["dns_consistency"], "consistent");
  // The failure is a probe-side decode bug, kept verbatim for the classifier.
  EXPECT_NE(om.ooni_verdict["http_experiment_failure"].get<std::string>().find("ascii"),
            std::string::npos);
  // On the wire everything that was recorded worked: DNS with a CNAME, a TCP connect.
  EXPECT_EQ(om.m.furthest_step, Step::kTcp);
  EXPECT_FALSE(om.m.failure);
  ASSERT_GE(om.m.observations.size(), 2u);
  const Observation& dns = om.m.observations[0];
  EXPECT_EQ(dns.step, Step::kDns);
  EXPECT_EQ(dns.details["answers"][0]["value"], "91.198.174.192");
  EXPECT_EQ(dns.details["cnames"][0], "dyna.wikimedia.org");
  EXPECT_TRUE(dns.details.value("rcode_inferred", false));
}

TEST_F(OoniImportTest, SignalUnknownAuthorityChain) {
  OoniImportStats stats;
  OoniMeasurement om = ImportOne("backend-fastpath/signal_2627.json", &stats);
  EXPECT_EQ(om.m.endpoint, "signal");
  EXPECT_EQ(om.m.network, "ooni:AS44395");
  EXPECT_EQ(om.ooni_verdict["signal_backend_status"], "blocked");
  EXPECT_EQ(om.ooni_verdict["signal_backend_failure"], "ssl_unknown_authority");
  std::vector<Measurement> ms = Stored(stats.cycle_uid);
  ASSERT_EQ(ms.size(), 1u);
  int unknown = 0;
  for (const Observation& o : ms[0].observations) {
    if (o.step != Step::kTls || o.failure != std::optional<std::string>("ssl_unknown_authority"))
      continue;
    ++unknown;
    const json& chain = o.details["chain"];
    ASSERT_FALSE(chain.empty());
    const json& leaf = chain[0];
    EXPECT_NE(leaf["issuer"].get<std::string>().find("Signal Messenger"), std::string::npos)
        << leaf.dump();
    EXPECT_EQ(leaf["sha256"].get<std::string>().size(), 64u);
    EXPECT_FALSE(leaf["der_b64"].get<std::string>().empty());  // restored from certificates
    EXPECT_EQ(o.details["trusted"], false);
    EXPECT_FALSE(o.hostname.empty());
    EXPECT_EQ(o.remote_port, 443);
  }
  EXPECT_EQ(unknown, 5);
  // One measurement covers every Signal host; as in the engine, its summary is
  // the flow that got furthest (api.directory.signal.org answered 404).
  EXPECT_EQ(ms[0].furthest_step, Step::kHttp);
  EXPECT_FALSE(ms[0].failure);
  // The requests that died in the TLS handshake add no http step (the engine
  // records none after a failed step); their URL stays on the tls observation.
  int http = 0;
  for (const Observation& o : ms[0].observations) {
    if (o.step == Step::kHttp) ++http;
    if (o.step == Step::kTls && o.failure) {
      EXPECT_TRUE(o.details.contains("request_url"));
    }
  }
  EXPECT_EQ(http, 1);
  EXPECT_NE("0", Query(store_.get(), "SELECT count(*) FROM certificates"));
}

TEST_F(OoniImportTest, WhatsappImStatusKeys) {
  OoniMeasurement om = ImportOne("backend-fastpath/whatsapp.json");
  EXPECT_EQ(om.m.endpoint, "whatsapp");
  EXPECT_EQ(om.m.network, "ooni:AS6830");
  EXPECT_EQ(om.ooni_verdict["whatsapp_web_status"], "blocked");
  EXPECT_EQ(om.ooni_verdict["whatsapp_endpoints_status"], "ok");
  EXPECT_TRUE(om.ooni_verdict.contains("registration_server_status"));
  int tcp = 0, http = 0;
  for (const Observation& o : om.m.observations) {
    if (o.step == Step::kTcp) ++tcp;
    if (o.step == Step::kHttp) {
      ++http;
      EXPECT_FALSE(o.flow_uid.empty());
    }
  }
  EXPECT_EQ(tcp, 35);
  EXPECT_EQ(http, 3);
  // Some endpoint got a complete HTTP response.
  EXPECT_EQ(om.m.furthest_step, Step::kHttp);
}

TEST_F(OoniImportTest, Base64HeadersAndLegacyFormat) {
  OoniMeasurement om = ImportOne("backend-fastpath/web_connectivity_b64_hdr.json");
  const Observation* http = nullptr;
  for (const Observation& o : om.m.observations)
    if (o.step == Step::kHttp) http = &o;
  ASSERT_NE(http, nullptr);
  EXPECT_EQ(http->details["status"], 307);
  EXPECT_EQ(http->details["status_line"], "HTTP/1.1 307 Temporary Redirect");
  EXPECT_EQ(http->details["http_version"], "1.1");
  bool location = false;
  for (const auto& h : http->details["headers_list"])
    if (h[0] == "Location") {
      location = true;
      EXPECT_EQ(h[1].get<std::string>().rfind("http://192.168.22.1/UserCheck/PortalMain", 0), 0u);
    }
  EXPECT_TRUE(location);
  // The request ran on the recorded TCP connection (same address, port 80).
  EXPECT_EQ(http->remote_addr, "192.124.249.6");
  EXPECT_EQ(http->remote_port, 80);
}

TEST_F(OoniImportTest, ReimportIsIdempotent) {
  const std::string file = DataDir() + "/backend-fastpath/signal_2627.json";
  OoniImportStats first, second;
  ASSERT_TRUE(ImportOoniFile(file, store_.get(), &first).ok());
  EXPECT_EQ(first.measurements, 1);
  std::string obs = Query(store_.get(), "SELECT count(*) FROM observations");
  ASSERT_TRUE(ImportOoniFile(file, store_.get(), &second).ok());
  EXPECT_EQ(second.measurements, 0);
  EXPECT_EQ(second.skipped, 1);
  EXPECT_EQ(first.cycle_uid, second.cycle_uid);
  EXPECT_EQ("1", Query(store_.get(), "SELECT count(*) FROM measurements"));
  EXPECT_EQ("1", Query(store_.get(), "SELECT count(*) FROM cycles"));
  EXPECT_EQ(obs, Query(store_.get(), "SELECT count(*) FROM observations"));
  std::string status;
  ASSERT_TRUE(store_->CycleStatus(first.cycle_uid, &status).ok());
  EXPECT_EQ(status, "complete");

  // The same measurement inside another file (JSONL with one more) is not duplicated.
  std::string jsonl = json::parse(ReadFile(file)).dump() + "\n" +
                      json::parse(ReadFile(DataDir() + "/backend-fastpath/bug_352.json")).dump() +
                      "\n";
  WriteFile(dir_ + "/two.jsonl", jsonl);
  OoniImportStats third;
  ASSERT_TRUE(ImportOoniFile(dir_ + "/two.jsonl", store_.get(), &third).ok());
  EXPECT_EQ(third.measurements, 1);
  EXPECT_EQ(third.controls, 1);  // bug_352 is web_connectivity with a control
  EXPECT_EQ(third.skipped, 1);
  EXPECT_EQ("3", Query(store_.get(), "SELECT count(*) FROM measurements"));
  // Importing that file again adds nothing (the control's uids are derived too).
  std::string obs3 = Query(store_.get(), "SELECT count(*) FROM observations");
  OoniImportStats fourth;
  ASSERT_TRUE(ImportOoniFile(dir_ + "/two.jsonl", store_.get(), &fourth).ok());
  EXPECT_EQ(fourth.measurements + fourth.controls, 0);
  EXPECT_EQ("3", Query(store_.get(), "SELECT count(*) FROM measurements"));
  EXPECT_EQ(obs3, Query(store_.get(), "SELECT count(*) FROM observations"));
}

TEST_F(OoniImportTest, MalformedJsonlNamesFileAndLineAndKeepsEarlierRecords) {
  std::string a = json::parse(ReadFile(DataDir() + "/backend-fastpath/bug_351.json")).dump();
  std::string b = json::parse(ReadFile(DataDir() + "/backend-fastpath/bug_352.json")).dump();
  const std::string path = dir_ + "/broken.jsonl";
  WriteFile(path, a + "\n\n" + b + "\n{\"test_name\": \"web_connectivity\", oops}\n" + a + "\n");
  OoniImportStats stats;
  Status s = ImportOoniFile(path, store_.get(), &stats);
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.message().rfind(path + ":4: ", 0), 0u) << s.ToString();
  EXPECT_EQ(stats.measurements, 2);
  EXPECT_EQ(stats.controls, 2);  // bug_351 and bug_352 each carry a control
  EXPECT_EQ("4", Query(store_.get(), "SELECT count(*) FROM measurements"));
  std::string status;
  ASSERT_TRUE(store_->CycleStatus(stats.cycle_uid, &status).ok());
  EXPECT_EQ(status, "aborted");

  // A pretty-printed single object with an error: the line of the error.
  WriteFile(dir_ + "/broken.json", "{\n  \"test_name\": \"x\",\n  \"test_keys\": {,}\n}\n");
  s = ImportOoniFile(dir_ + "/broken.json", store_.get(), &stats);
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.message().rfind(dir_ + "/broken.json:3: ", 0), 0u) << s.ToString();

  // Valid JSON that is not a measurement: skipped with a reason, not an error.
  WriteFile(dir_ + "/other.jsonl", "{\"hello\": 1}\n" + a + "\n");
  OoniImportStats other;
  s = ImportOoniFile(dir_ + "/other.jsonl", store_.get(), &other);
  EXPECT_TRUE(s.ok()) << s.ToString();
  EXPECT_EQ(other.skipped, 2);  // the non-measurement, and bug_351 already imported
  ASSERT_FALSE(other.warnings.empty());
  EXPECT_NE(other.warnings[0].find("other.jsonl:1: skipped: not an OONI measurement"),
            std::string::npos)
      << other.warnings[0];

  // A missing file.
  s = ImportOoniFile(dir_ + "/nope.json", store_.get(), &stats);
  EXPECT_TRUE(s.IsIoError());
}

TEST_F(OoniImportTest, ApiWrapperAndArray) {
  json raw = json::parse(ReadFile(DataDir() + "/backend-fastpath/bug_352.json"));
  json wrapped = {{"measurement_uid", "x"}, {"raw_measurement", raw.dump()}};
  json arr =
      json::array({wrapped, json::parse(ReadFile(DataDir() + "/backend-fastpath/bug_351.json"))});
  WriteFile(dir_ + "/arr.json", arr.dump(1));
  OoniImportStats stats;
  ASSERT_TRUE(ImportOoniFile(dir_ + "/arr.json", store_.get(), &stats).ok());
  EXPECT_EQ(stats.measurements, 2);
}

TEST_F(OoniImportTest, ProbeIpIsNeverStored) {
  json j = json::parse(ReadFile(DataDir() + "/backend-fastpath/web_connectivity_b64_hdr.json"));
  j["probe_ip"] = "198.51.100.77";
  j["test_keys"]["client_resolver"] = "198.51.100.77";
  j["test_keys"]["requests"][0]["response"]["body"] = "<p>your address is 198.51.100.77</p>";
  j["test_keys"]["requests"][0]["response"]["code"] = 200;
  j["test_keys"]["http_experiment_failure"] = "unknown_failure: dial 198.51.100.77 failed";
  WriteFile(dir_ + "/ip.json", j.dump());
  OoniImportStats stats;
  ASSERT_TRUE(ImportOoniFile(dir_ + "/ip.json", store_.get(), &stats).ok());
  ASSERT_EQ(stats.measurements, 1);
  store_.reset();
  std::string db;
  for (const char* f : {"/rasad.db", "/rasad.db-wal"}) db += ReadFile(dir_ + f);
  EXPECT_EQ(db.find("198.51.100.77"), std::string::npos);
  EXPECT_NE(db.find("[scrubbed]"), std::string::npos);
}

TEST_F(OoniImportTest, BareTestKeysWithExplorerComment) {
  OoniImportStats stats;
  std::vector<OoniMeasurement> parsed;
  Status s = ImportOoniFile(
      DataDir() +
          "/probe-cli-real/"
          "PK_webconnectivity_20230706183840.201925_19f5e0d803cbaea7.test_keys.jsonc",
      store_.get(), &stats, &parsed);
  ASSERT_TRUE(s.ok()) << s.ToString();
  ASSERT_EQ(parsed.size(), 1u);
  EXPECT_EQ(parsed[0].probe_cc, "PK");
  EXPECT_EQ(parsed[0].m.network, "ooni:AS0");
  EXPECT_EQ(parsed[0].test_name, "web_connectivity");
  EXPECT_EQ(parsed[0].m.endpoint, "https://mask.icloud.com/");
  EXPECT_EQ(parsed[0].ooni_verdict["blocking"], "dns");
  EXPECT_FALSE(stats.warnings.empty());

  // Without the comment there is nothing to attribute it to: skipped, with the reason.
  std::string text = ReadFile(
      DataDir() +
      "/probe-cli-real/PK_webconnectivity_20230706183840.201925_19f5e0d803cbaea7.test_keys.jsonc");
  text = text.substr(text.find('{'));
  WriteFile(dir_ + "/bare.json", text);
  OoniImportStats bare;
  ASSERT_TRUE(ImportOoniFile(dir_ + "/bare.json", store_.get(), &bare).ok());
  EXPECT_EQ(bare.measurements, 0);
  EXPECT_EQ(bare.skipped, 1);
  ASSERT_FALSE(bare.warnings.empty());
  EXPECT_NE(bare.warnings[0].find("test_keys only"), std::string::npos);
}

TEST_F(OoniImportTest, NetemScenariosKeepOoniVerdict) {
  // The netem ground truth (index.csv) is preserved in ooni_verdict.
  std::ifstream idx(DataDir() + "/probe-cli-netem/index.csv");
  std::string line;
  std::getline(idx, line);  // header
  int n = 0;
  while (std::getline(idx, line)) {
    std::string scenario = line.substr(0, line.find(','));
    std::vector<OoniMeasurement> parsed;
    OoniImportStats stats;
    ASSERT_TRUE(ImportOoniFile(DataDir() + "/probe-cli-netem/" + scenario + ".json", store_.get(),
                               &stats, &parsed)
                    .ok());
    ASSERT_EQ(parsed.size(), 1u);
    const json& v = parsed[0].ooni_verdict;
    EXPECT_TRUE(v.contains("blocking")) << scenario;
    EXPECT_TRUE(v.contains("x_blocking_flags")) << scenario;
    EXPECT_EQ(parsed[0].m.target_version, "web_connectivity 0.5.28");
    ++n;
  }
  EXPECT_EQ(n, 50);
  // dnsBlockingBOGON: the bogon answer from the system resolver, and DoH's real one.
  std::vector<OoniMeasurement> parsed;
  OoniImportStats stats;
  ASSERT_TRUE(ImportOoniFile(DataDir() + "/probe-cli-netem/dnsBlockingBOGON.json", store_.get(),
                             &stats, &parsed)
                  .ok());
  std::set<std::string> transports, answers;
  for (const Observation& o : parsed[0].m.observations)
    if (o.step == Step::kDns) {
      transports.insert(o.transport);
      for (const auto& a : o.details["answers"]) answers.insert(a["value"].get<std::string>());
    }
  EXPECT_TRUE(answers.count("10.10.34.35"));
  EXPECT_TRUE(transports.count("doh"));
  EXPECT_TRUE(transports.count("getaddrinfo"));
}

}  // namespace
}  // namespace rasad
