// The report and export commands end to end on the scripted history
// (tests/report/fixture.h): readable tables, the --tz shift, export columns
// against docs/EXPORTS.md, the OONI export, the HTML report in headless
// Chromium, and a privacy scan of every format.
#include "report/commands.h"

#include <gtest/gtest.h>
#include <sys/wait.h>

#include <fstream>
#include <iostream>
#include <nlohmann/json.hpp>
#include <regex>
#include <sstream>

#include "interop/ooni_import.h"
#include "report/export.h"
#include "tests/report/fixture.h"

#ifndef RASAD_SOURCE_DIR
#define RASAD_SOURCE_DIR "."
#endif

namespace rasad {
namespace {

using namespace testing_report;
using json = nlohmann::json;

std::string ReadFile(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  std::stringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

std::vector<std::string> Lines(const std::string& s) {
  std::vector<std::string> out;
  std::stringstream ss(s);
  std::string l;
  while (std::getline(ss, l)) out.push_back(l);
  return out;
}

class Commands : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    fx_ = new Fixture();
    fx_->Build();
  }
  static void TearDownTestSuite() { delete fx_; }

  // Runs a report with stdout captured.
  std::string Report(const std::string& kind, ReportOptions o, int* rc = nullptr) {
    o.database = fx_->db;
    std::stringstream out;
    std::streambuf* old = std::cout.rdbuf(out.rdbuf());
    int r = RunReport(kind, o);
    std::cout.rdbuf(old);
    if (rc) *rc = r;
    EXPECT_EQ(r, 0) << kind;
    return out.str();
  }
  std::string Export(const std::string& format, const std::string& what) {
    ExportOptions o;
    o.database = fx_->db;
    o.what = what;
    o.output = fx_->dir + "/export-" + format + "-" + what;
    EXPECT_EQ(RunExport(format, o), 0) << format << " " << what;
    return ReadFile(o.output);
  }
  static Fixture* fx_;
};
Fixture* Commands::fx_ = nullptr;

TEST_F(Commands, EventsShowOneEventOnMciWithOnsetWindow) {
  std::string out = Report("events", {});
  EXPECT_NE(out.find("1 event"), std::string::npos) << out;
  EXPECT_NE(out.find("clubhouse/api"), std::string::npos) << out;
  EXPECT_NE(out.find("dns.bogon > tls.reset"), std::string::npos) << out;
  // UTC: last ok 16:15, first bogon 16:30; last reset 17:30, first ok 17:45.
  EXPECT_NE(out.find("2026-04-08 16:15 .. 16:30"), std::string::npos) << out;
  EXPECT_NE(out.find("2026-04-08 17:30 .. 17:45"), std::string::npos) << out;
  EXPECT_NE(out.find("confirmed"), std::string::npos);
  // Who blocked first: mci, by the sinkhole.
  EXPECT_NE(out.find("Who blocked first"), std::string::npos);
  EXPECT_NE(out.find("Hamrah-e-Aval (MCI), AS197207"), std::string::npos) << out;
  // Nothing on irancell.
  EXPECT_EQ(out.find("irancell"), std::string::npos) << out;
  ReportOptions o;
  o.network = "irancell";
  out = Report("events", o);
  EXPECT_NE(out.find(": 0 events"), std::string::npos) << out;
}

TEST_F(Commands, TehranTimezoneShiftsDisplayByThreeThirty) {
  ReportOptions o;
  o.tz = "Asia/Tehran";
  std::string out = Report("events", o);
  EXPECT_NE(out.find("2026-04-08 19:45 .. 20:00"), std::string::npos) << out;
  EXPECT_NE(out.find("2026-04-08 21:00 .. 21:15"), std::string::npos) << out;
  EXPECT_NE(out.find("UTC+03:30"), std::string::npos) << out;
  o.tz = "Nowhere/Atlantis";
  int rc = 0;
  o.database = fx_->db;
  EXPECT_EQ(RunReport("events", o), 2);
  (void)rc;
}

TEST_F(Commands, TimelineAndCompareTables) {
  ReportOptions o;
  o.since = "2026-04-08T16:00Z";
  o.until = "2026-04-08T18:00Z";
  o.target = "clubhouse";
  std::string out = Report("timeline", o);
  EXPECT_NE(out.find("Timeline per hour"), std::string::npos) << out;
  // 16:00 on mci: 4 verdicts, 2 ok, 2 blocking by dns.bogon.
  EXPECT_TRUE(std::regex_search(
      out, std::regex("2026-04-08 16:00 +clubhouse +mci +4 +2 +2 +0 +dns\\.bogon +blocked")))
      << out;
  EXPECT_TRUE(std::regex_search(out, std::regex("2026-04-08 17:00 +clubhouse +irancell +4 +4 +0")))
      << out;
  o.tz = "Asia/Tehran";
  out = Report("timeline", o);
  EXPECT_NE(out.find("2026-04-08 19:30"), std::string::npos) << out;

  o = ReportOptions();
  o.since = "2026-04-08T16:00Z";
  o.until = "2026-04-08T17:40Z";  // ends inside the event
  out = Report("compare", o);
  EXPECT_NE(out.find("BLOCKED dns.bogon > tls.reset since 2026-04-08 16:30 [confirmed]"),
            std::string::npos)
      << out;
  EXPECT_NE(out.find("Per app"), std::string::npos);
  EXPECT_TRUE(std::regex_search(out, std::regex("clubhouse +ok +blocked: api tls.reset"))) << out;
}

// The columns documented in docs/EXPORTS.md, section "### <what>": rows of
// the first column of its table, "| `name` |".
std::vector<std::string> DocumentedColumns(const std::string& what) {
  std::string doc = ReadFile(std::string(RASAD_SOURCE_DIR) + "/docs/EXPORTS.md");
  std::vector<std::string> cols;
  bool in = false;
  std::regex row("^\\| `([a-z_0-9]+)` \\|");
  for (const std::string& l : Lines(doc)) {
    if (l.rfind("### ", 0) == 0) {
      in = l == "### " + what;
      continue;
    }
    std::smatch mm;
    if (in && std::regex_search(l, mm, row)) cols.push_back(mm[1]);
  }
  return cols;
}

TEST_F(Commands, CsvAndJsonColumnsMatchTheDocs) {
  for (const std::string what : {"observations", "verdicts", "events"}) {
    SCOPED_TRACE(what);
    std::vector<std::string> doc = DocumentedColumns(what);
    ASSERT_FALSE(doc.empty()) << "docs/EXPORTS.md has no ### " << what << " table";
    EXPECT_EQ(doc, ExportColumns(what));
    std::vector<std::string> csv = Lines(Export("csv", what));
    ASSERT_GE(csv.size(), 2u);
    std::string header;
    for (const std::string& c : doc) header += (header.empty() ? "" : ",") + c;
    EXPECT_EQ(csv[0], header);
    std::vector<std::string> js = Lines(Export("json", what));
    ASSERT_EQ(js.size(), csv.size() - 1);
    for (const std::string& l : js) {
      json j = json::parse(l, nullptr, false);
      ASSERT_TRUE(j.is_object()) << l;
      std::vector<std::string> keys;
      for (auto it = j.begin(); it != j.end(); ++it) keys.push_back(it.key());
      std::vector<std::string> sorted_doc = doc;
      std::sort(sorted_doc.begin(), sorted_doc.end());
      EXPECT_EQ(keys, sorted_doc);  // nlohmann::json sorts keys
    }
  }
  // Shapes: 8 cycles x 2 networks x 2 endpoints.
  EXPECT_EQ(Lines(Export("json", "verdicts")).size(), 32u);
  std::vector<std::string> ev = Lines(Export("json", "events"));
  ASSERT_EQ(ev.size(), 1u);
  json e = json::parse(ev[0]);
  EXPECT_EQ(e["techniques"], "dns.bogon>tls.reset");
  EXPECT_EQ(e["onset_after_utc"], "2026-04-08T16:15:00.000Z");
  EXPECT_EQ(e["onset_by_utc"], "2026-04-08T16:30:00.000Z");
  EXPECT_EQ(e["asn"], 197207);
  EXPECT_EQ(e["ongoing"], false);
}

TEST_F(Commands, OoniExportParsesAsOoniMeasurements) {
  std::vector<std::string> lines = Lines(Export("ooni", ""));
  ASSERT_EQ(lines.size(), 32u);  // every operator measurement
  int web = 0, blocked = 0;
  for (const std::string& l : lines) {
    json j = json::parse(l, nullptr, false);
    ASSERT_TRUE(j.is_object()) << l;
    for (const char* k : {"annotations",
                          "data_format_version",
                          "extensions",
                          "input",
                          "measurement_start_time",
                          "options",
                          "probe_asn",
                          "probe_cc",
                          "probe_ip",
                          "probe_network_name",
                          "report_id",
                          "resolver_asn",
                          "resolver_ip",
                          "software_name",
                          "software_version",
                          "test_helpers",
                          "test_keys",
                          "test_name",
                          "test_runtime",
                          "test_start_time",
                          "test_version"})
      EXPECT_TRUE(j.contains(k)) << k;
    EXPECT_EQ(j["probe_ip"], "127.0.0.1");
    EXPECT_EQ(j["probe_cc"], "ZZ");
    EXPECT_TRUE(j["probe_asn"] == "AS197207" || j["probe_asn"] == "AS44244") << j["probe_asn"];
    EXPECT_TRUE(std::regex_match(j["measurement_start_time"].get<std::string>(),
                                 std::regex("\\d{4}-\\d\\d-\\d\\d \\d\\d:\\d\\d:\\d\\d")));
    const json& tk = j["test_keys"];
    for (const char* k : {"queries", "tcp_connect", "tls_handshakes", "requests"})
      EXPECT_TRUE(tk[k].is_array()) << k;
    EXPECT_FALSE(tk["queries"].empty());
    if (j["test_name"] == "web_connectivity") {
      ++web;
      EXPECT_EQ(j["input"], "https://www.clubhouseapi.com/");
      EXPECT_EQ(tk["requests"][0]["response"]["code"], 200);
    }
    if (tk["blocking"].is_string()) ++blocked;
    // rasad's own importer reads it back.
    OoniMeasurement om;
    Status st = ParseOoniMeasurement(j, &om);
    EXPECT_TRUE(st.ok()) << st.ToString();
  }
  EXPECT_GT(web, 0);
  EXPECT_EQ(blocked, 5);  // bogon x3 (dns), reset x2 (http-failure)
}

bool RunCommand(const std::string& cmd) {
  int rc = system(cmd.c_str());
  return rc != -1 && WIFEXITED(rc) && WEXITSTATUS(rc) == 0;
}

TEST_F(Commands, HtmlReportRendersInHeadlessChromium) {
  ReportOptions o;
  o.tz = "Asia/Tehran";
  o.since = "2026-04-08T12:00Z";
  o.until = "2026-04-08T20:00Z";
  o.output = fx_->dir + "/report.html";
  Report("html", o);
  std::string html = ReadFile(o.output);
  ASSERT_FALSE(html.empty());
  // Self-contained: no external resource, no script.
  EXPECT_EQ(html.find("http://"), html.find("http://www.w3.org/2000/svg"));
  EXPECT_EQ(html.find("<script"), std::string::npos);
  EXPECT_EQ(html.find("src="), std::string::npos);
  EXPECT_EQ(html.find("<link"), std::string::npos);
  EXPECT_NE(html.find("data:text/csv;charset=utf-8;base64,"), std::string::npos);

  if (!RunCommand("command -v chromium >/dev/null 2>&1")) {
    std::cerr << "\n**********************************************************************\n"
                 "* SKIPPED: chromium is not installed (apt-get install -y chromium);   *\n"
                 "* the HTML report was NOT rendered in a browser.                      *\n"
                 "**********************************************************************\n";
    GTEST_SKIP() << "chromium not installed";
  }
  std::string profile = fx_->dir + "/chromium-profile";
  std::string flags =
      "--headless --no-sandbox --disable-gpu --no-first-run --disable-background-networking "
      "--disable-component-update --disable-sync --user-data-dir=" +
      profile + " ";
  std::string png = fx_->dir + "/report.png";
  std::string dom = fx_->dir + "/report.dom";
  ASSERT_TRUE(RunCommand("timeout 120 chromium " + flags + "--screenshot=" + png +
                         " --window-size=1400,1800 file://" + o.output + " >/dev/null 2>&1"));
  std::string shot = ReadFile(png);
  ASSERT_GT(shot.size(), 10000u);
  EXPECT_EQ(shot.substr(1, 3), "PNG");
  ASSERT_TRUE(RunCommand("timeout 120 chromium " + flags + "--dump-dom file://" + o.output + " > " +
                         dom + " 2>/dev/null"));
  std::string d = ReadFile(dom);
  EXPECT_NE(d.find("<svg id=\"heatmap-mci\""), std::string::npos);
  EXPECT_NE(d.find("<svg id=\"heatmap-irancell\""), std::string::npos);
  EXPECT_NE(d.find("class=\"cell c-blocked-confirmed\""), std::string::npos);
  EXPECT_NE(d.find("<tr class=\"event\""), std::string::npos);
  EXPECT_NE(d.find("id=\"compare-table\""), std::string::npos);
  EXPECT_NE(d.find("id=\"methodology\""), std::string::npos);
  EXPECT_NE(d.find("download=\"events.csv\""), std::string::npos);
  std::cerr << "screenshot: " << png << "\n";
}

// No export or report contains the volunteer's addresses.
TEST_F(Commands, PrivacyScanOfEveryFormat) {
  // The database does hold them (so this test can fail).
  std::string raw = ReadFile(fx_->db) + ReadFile(fx_->db + "-wal");
  ASSERT_NE(raw.find(kLocalV4), std::string::npos);

  std::vector<std::pair<std::string, std::string>> outputs;
  for (const std::string f : {"csv", "json"})
    for (const std::string w : {"observations", "verdicts", "events"})
      outputs.push_back({f + " " + w, Export(f, w)});
  outputs.push_back({"ooni", Export("ooni", "")});
  for (const std::string k : {"events", "timeline", "compare"}) {
    ReportOptions o;
    o.since = "2026-04-01";
    outputs.push_back({"report " + k, Report(k, o)});
  }
  ReportOptions o;
  o.output = fx_->dir + "/privacy.html";
  o.since = "2026-04-08";
  Report("html", o);
  std::string html = ReadFile(o.output);
  outputs.push_back({"html", html});
  // The CSVs embedded in the page, decoded.
  std::regex uri("base64,([A-Za-z0-9+/=]+)\"");
  for (auto it = std::sregex_iterator(html.begin(), html.end(), uri); it != std::sregex_iterator();
       ++it) {
    std::string b64 = (*it)[1];
    std::string cmd = "echo " + b64 + " | base64 -d";
    FILE* p = popen(cmd.c_str(), "r");
    std::string dec;
    char buf[4096];
    size_t n;
    while ((n = fread(buf, 1, sizeof buf, p)) > 0) dec.append(buf, n);
    pclose(p);
    EXPECT_FALSE(dec.empty());
    outputs.push_back({"html embedded csv", dec});
  }
  for (const auto& [name, text] : outputs) {
    SCOPED_TRACE(name);
    EXPECT_FALSE(text.empty());
    EXPECT_EQ(text.find(kLocalV4), std::string::npos);
    EXPECT_EQ(text.find(kLocalV6), std::string::npos);
    EXPECT_EQ(text.find("local_addr"), std::string::npos);
    EXPECT_EQ(text.find("wwan0"), std::string::npos);            // the interface
    EXPECT_EQ(text.find("/home/volunteer"), std::string::npos);  // the config path
  }
  // Where an address was echoed in text, it was replaced, not dropped silently.
  std::string ooni;
  for (const auto& [name, text] : outputs)
    if (name == "ooni") ooni = text;
  EXPECT_NE(ooni.find("X-Client-Ip\",\"[scrubbed]\""), std::string::npos);
  EXPECT_NE(outputs[0].second.find("your address is [scrubbed]"), std::string::npos);
}

TEST(Scrubber, WholeAddressesOnly) {
  Scrubber s;
  s.Add("10.0.0.1");
  s.Add("2001:db8::1");
  s.Add("127.0.0.1");  // never: it is OONI's probe_ip
  EXPECT_EQ(s.Scrub("from 10.0.0.1:5353 and 10.0.0.12, 110.0.0.1"),
            "from [scrubbed]:5353 and 10.0.0.12, 110.0.0.1");
  EXPECT_EQ(s.Scrub("ip 10.0.0.1."), "ip [scrubbed].");
  EXPECT_EQ(s.Scrub("[2001:db8::1]:443 2001:db8::12"), "[[scrubbed]]:443 2001:db8::12");
  EXPECT_EQ(s.Scrub("127.0.0.1"), "127.0.0.1");
}

}  // namespace
}  // namespace rasad
