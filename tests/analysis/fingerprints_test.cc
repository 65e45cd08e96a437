// Fingerprints: the real third-party files load completely, Iran's filter is
// recognised with rasad's own file alone and with OONI's, false positives win,
// malformed files fail with FILE:LINE, ordinary pages match nothing.
//
// Third-party files are read from RASAD_SHARED_DIR (never copied into the
// repository); tests that need them are skipped when they are absent.

#include "analysis/fingerprints.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <sstream>

#ifndef RASAD_SHARED_DIR
#define RASAD_SHARED_DIR "/work/shared"
#endif
#ifndef RASAD_SOURCE_DIR
#define RASAD_SOURCE_DIR "."
#endif

namespace rasad {
namespace {

namespace fs = std::filesystem;
using Headers = std::vector<std::pair<std::string, std::string>>;

const std::string kFpDir = std::string(RASAD_SHARED_DIR) + "/data/fingerprints/";
const std::string kOoniDns = kFpDir + "ooni_fingerprints_dns.csv";
const std::string kOoniHttp = kFpDir + "ooni_fingerprints_http.csv";
const std::string kCpBlock = kFpDir + "censoredplanet_blockpage_signatures.jsonl";
const std::string kCpFp = kFpDir + "censoredplanet_false_positive_signatures.jsonl";
const std::string kRuPage =
    std::string(RASAD_SHARED_DIR) +
    "/data/blockpages/RU_AS42668_rutor.org_isp_blockpage_89.223.47.135.html";
const std::string kRasad = std::string(RASAD_SOURCE_DIR) + "/targets/fingerprints/rasad.toml";

#define SKIP_WITHOUT(path)                                                              \
  do {                                                                                  \
    if (!fs::exists(path)) {                                                            \
      GTEST_SKIP() << "shared data not found: " << (path) << " (set RASAD_SHARED_DIR)"; \
    }                                                                                   \
  } while (0)

std::string ReadFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// Records in a CSV file, header excluded, counted independently of the loader:
// newlines outside quotes, blank lines skipped.
size_t CountCsvRecords(const std::string& text) {
  size_t records = 0;
  bool quoted = false, content = false;
  for (char c : text) {
    if (c == '"') quoted = !quoted;
    if (!quoted && c == '\n') {
      records += content ? 1 : 0;
      content = false;
    } else if (c != '\r') {
      content = true;
    }
  }
  records += content ? 1 : 0;
  return records - 1;
}

size_t CountNonBlankLines(const std::string& text) {
  size_t n = 0;
  std::istringstream in(text);
  std::string line;
  while (std::getline(in, line)) {
    if (line.find_first_not_of(" \t\r") != std::string::npos) ++n;
  }
  return n;
}

std::string Iframe(const std::string& url) {
  return "<html><head><meta http-equiv=\"Content-Type\" content=\"text/html; "
         "charset=windows-1256\"><title>M1-2</title></head><body><iframe src=\"" +
         url +
         "\" style=\"width: 100%; height: 100%\" scrolling=\"no\" marginwidth=\"0\" "
         "marginheight=\"0\" frameborder=\"0\" vspace=\"0\" hspace=\"0\"></iframe></body></html>";
}

const Headers kBlockHeaders = {{"Connection", "close"}};

const std::string kOrdinaryPage =
    "<!doctype html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
    "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n"
    "<title>Clubhouse: the social audio app</title>\n"
    "<link rel=\"stylesheet\" href=\"/static/site.css\">\n</head>\n<body>\n"
    "<header><nav><a href=\"/\">Home</a> <a href=\"/download\">Download</a></nav></header>\n"
    "<main><h1>Drop in to conversations</h1>\n"
    "<p>Listen to live rooms about technology, culture and music, and talk with friends.</p>\n"
    "<div class=\"cta\"><a class=\"button\" href=\"https://apps.apple.com/app/id1503133294\">"
    "Get the app</a></div></main>\n"
    "<footer><p>&copy; 2026 Alpha Exploration Co.</p></footer>\n"
    "<script src=\"/static/app.js\"></script>\n</body>\n</html>\n";

const Headers kOrdinaryHeaders = {{"Content-Type", "text/html; charset=utf-8"},
                                  {"Server", "nginx"},
                                  {"Cache-Control", "max-age=600"},
                                  {"Date", "Sat, 28 Nov 2026 10:00:00 GMT"}};

class FingerprintsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/rasad_fp_XXXXXX";
    ASSERT_NE(mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
  }
  void TearDown() override { fs::remove_all(dir_); }

  std::string Write(const std::string& name, const std::string& text) {
    const std::string path = dir_ + "/" + name;
    std::ofstream(path, std::ios::binary) << text;
    return path;
  }

  // Loads everything available; the third-party files are required.
  void LoadAll(Fingerprints* f, bool rasad) {
    if (rasad) {
      ASSERT_TRUE(f->LoadRasad(kRasad).ok());
    }
    for (const std::string& p : {kOoniDns, kOoniHttp, kCpBlock, kCpFp}) ASSERT_TRUE(fs::exists(p));
    ASSERT_TRUE(f->LoadOoniDns(kOoniDns).ok());
    ASSERT_TRUE(f->LoadOoniHttp(kOoniHttp).ok());
    ASSERT_TRUE(f->LoadCensoredPlanetBlockpages(kCpBlock).ok());
    ASSERT_TRUE(f->LoadCensoredPlanetFalsePositives(kCpFp).ok());
  }

  std::string dir_;
};

// --- rasad's own file ------------------------------------------------------

TEST_F(FingerprintsTest, RasadFileLoads) {
  Fingerprints f;
  Status s = f.LoadRasad(kRasad);
  ASSERT_TRUE(s.ok()) << s.message();
  ASSERT_EQ(f.files().size(), 1u);
  EXPECT_EQ(f.files()[0].kind, "rasad");
  EXPECT_EQ(f.files()[0].loaded, f.size());
  EXPECT_EQ(f.dns_size(), 4u);
  EXPECT_GE(f.http_size(), 10u);
}

TEST_F(FingerprintsTest, IranDnsWithRasadFileOnly) {
  Fingerprints f;
  ASSERT_TRUE(f.LoadRasad(kRasad).ok());
  for (const char* ip : {"10.10.34.34", "10.10.34.35", "10.10.34.36", "d0::11", "d0:0:0:0:0:0:0:11",
                         "00d0::0011", "::ffff:10.10.34.34", " 10.10.34.36 "}) {
    auto m = f.MatchDnsAnswer(ip);
    ASSERT_TRUE(m.has_value()) << ip;
    EXPECT_EQ(m->source, "rasad") << ip;
    EXPECT_EQ(m->location, "dns");
    EXPECT_EQ(m->countries, std::vector<std::string>{"IR"});
    EXPECT_EQ(m->scope, "nat");
    EXPECT_FALSE(m->false_positive);
  }
  EXPECT_EQ(f.MatchDnsAnswer("10.10.34.34")->name, "ir_sinkhole_10_10_34_34");
  EXPECT_EQ(f.MatchDnsAnswer("d0::11")->name, "ir_sinkhole_d0_11");
  for (const char* ip : {"10.10.34.37", "8.8.8.8", "2001:4860:4860::8888", "d0::12", "", "x"}) {
    EXPECT_FALSE(f.MatchDnsAnswer(ip).has_value()) << ip;
  }
}

TEST_F(FingerprintsTest, IranHttpWithRasadFileOnly) {
  Fingerprints f;
  ASSERT_TRUE(f.LoadRasad(kRasad).ok());
  struct Case {
    std::string body;
    std::string name;
  } cases[] = {
      {Iframe("http://10.10.34.34"), "ir_iframe_10_10_34_34"},
      {Iframe("http://10.10.34.35"), "ir_iframe_10_10_34_35"},
      {Iframe("http://10.10.34.36"), "ir_iframe_10_10_34_36"},
      {Iframe("http://[d0:0:0:0:0:0:0:11:80]"), "ir_iframe_d0_11"},
      {Iframe("http://10.10.34.36/?type=Invalid Keyword&policy=MainPolicy"),
       "ir_iframe_2023_invalid_keyword"},
      // Another address, single quotes, attributes in another order.
      {"<iframe width='100%' src='http://10.10.34.33/'></iframe>", "ir_iframe_10_10_34"},
      {"<html><body><script>window.location.replace('http://peyvandha.ir/1-2.html');"
       "</script></body></html>",
       "ir_landing_peyvandha"},
      {"<html><body><a href=\"http://internet.ir/1-2.html\">internet.ir</a></body></html>",
       "ir_landing_internet_ir"},
  };
  for (const Case& c : cases) {
    auto m = f.MatchHttp(403, kBlockHeaders, c.body);
    ASSERT_TRUE(m.has_value()) << c.body;
    EXPECT_EQ(m->name, c.name) << c.body;
    EXPECT_EQ(m->source, "rasad");
    EXPECT_EQ(m->location, "body");
    EXPECT_FALSE(m->false_positive);
    EXPECT_EQ(m->countries, std::vector<std::string>{"IR"});
  }

  // MCI's 301 to the sinkhole (empty body).
  auto m = f.MatchHttp(301, {{"Location", "http://10.10.34.34"}, {"Content-Length", "0"}}, "");
  ASSERT_TRUE(m.has_value());
  EXPECT_EQ(m->name, "ir_redirect_10_10_34");
  EXPECT_EQ(m->location, "header.location");
  // Header names are case-insensitive; values are trimmed.
  m = f.MatchHttp(302, {{"location", " http://10.10.34.35/index.html "}}, "");
  ASSERT_TRUE(m.has_value());
  EXPECT_EQ(m->name, "ir_redirect_10_10_34");
  m = f.MatchHttp(302, {{"Location", "https://peyvandha.ir/1-2.html"}}, "");
  ASSERT_TRUE(m.has_value());
  EXPECT_EQ(m->name, "ir_redirect_landing");
  // Not a redirect to the sinkhole: a public host whose name starts alike, and
  // a non-redirect status.
  EXPECT_FALSE(f.MatchHttp(301, {{"Location", "http://10.10.34.34.example.com/"}}, ""));
  EXPECT_FALSE(f.MatchHttp(200, {{"Location", "http://10.10.34.34"}}, ""));
  EXPECT_FALSE(f.MatchHttp(302, {{"Location", "https://notpeyvandha.ir/"}}, ""));
}

TEST_F(FingerprintsTest, OrdinaryPageMatchesNothing) {
  Fingerprints f;
  ASSERT_TRUE(f.LoadRasad(kRasad).ok());
  EXPECT_FALSE(f.MatchHttp(200, kOrdinaryHeaders, kOrdinaryPage).has_value());
  EXPECT_FALSE(f.MatchHttp(200, {}, "").has_value());
  EXPECT_FALSE(f.MatchHttp(404, {{"Server", "nginx"}}, "not found").has_value());
  // A news article that merely mentions the filter is not a blockpage.
  EXPECT_FALSE(f.MatchHttp(200, kOrdinaryHeaders,
                           "<p>Iran's filter sends users to peyvandha.ir and answers "
                           "10.10.34.34 for blocked names.</p>")
                   .has_value());

  SKIP_WITHOUT(kOoniHttp);
  Fingerprints all;
  LoadAll(&all, true);
  auto m = all.MatchHttp(200, kOrdinaryHeaders, kOrdinaryPage);
  EXPECT_FALSE(m.has_value()) << m->source << ":" << m->name;
  EXPECT_TRUE(all.MatchHttpAll(200, kOrdinaryHeaders, kOrdinaryPage).empty());
  EXPECT_FALSE(all.MatchDnsAnswer("93.184.215.14").has_value());
}

// --- third-party files -----------------------------------------------------

TEST_F(FingerprintsTest, RealFilesLoadCompletely) {
  SKIP_WITHOUT(kOoniDns);
  Fingerprints f;
  LoadAll(&f, false);
  ASSERT_EQ(f.files().size(), 4u);
  const std::string texts[] = {ReadFile(kOoniDns), ReadFile(kOoniHttp), ReadFile(kCpBlock),
                               ReadFile(kCpFp)};
  // Every OONI row loads.
  EXPECT_EQ(f.files()[0].loaded, CountCsvRecords(texts[0]));
  EXPECT_EQ(f.files()[0].unsupported, 0u);
  EXPECT_EQ(f.files()[1].loaded, CountCsvRecords(texts[1]));
  EXPECT_EQ(f.files()[1].unsupported, 0u);
  // Censored Planet: every non-blank line loads or is listed as unsupported.
  EXPECT_EQ(f.files()[2].loaded + f.files()[2].unsupported, CountNonBlankLines(texts[2]));
  EXPECT_EQ(f.files()[3].loaded + f.files()[3].unsupported, CountNonBlankLines(texts[3]));
  EXPECT_EQ(f.unsupported().size(), f.files()[2].unsupported + f.files()[3].unsupported);
  for (const std::string& u : f.unsupported()) ADD_FAILURE() << "unsupported: " << u;
  size_t total = 0;
  for (const FingerprintFileStats& st : f.files()) {
    std::cout << "[ loaded   ] " << st.kind << ": " << st.loaded << " (" << st.regex
              << " via std::regex, " << st.unsupported << " unsupported) from " << st.path << "\n";
    total += st.loaded;
  }
  EXPECT_EQ(f.size(), total);
  // The copies as of SOURCES.md's commits.
  EXPECT_EQ(f.files()[0].loaded, 226u);
  EXPECT_EQ(f.files()[1].loaded, 1729u);
}

TEST_F(FingerprintsTest, IranWithOoniFiles) {
  SKIP_WITHOUT(kOoniDns);
  Fingerprints f;
  ASSERT_TRUE(f.LoadOoniDns(kOoniDns).ok());
  ASSERT_TRUE(f.LoadOoniHttp(kOoniHttp).ok());
  const std::pair<const char*, const char*> dns[] = {{"10.10.34.34", "ooni.ir_4"},
                                                     {"10.10.34.35", "ooni.ir_5"},
                                                     {"10.10.34.36", "ooni.ir_10dot10_ipv4_1"},
                                                     {"d0:0:0:0:0:0:0:11", "ooni.ir_ipv6_1"}};
  for (const auto& [ip, name] : dns) {
    auto m = f.MatchDnsAnswer(ip);
    ASSERT_TRUE(m.has_value()) << ip;
    EXPECT_EQ(m->name, name);
    EXPECT_EQ(m->source, "ooni");
    EXPECT_EQ(m->countries, std::vector<std::string>{"IR"});
  }
  EXPECT_EQ(f.MatchDnsAnswer("10.10.34.34")->confidence, "5");
  for (const char* url : {"http://10.10.34.34", "http://10.10.34.35", "http://10.10.34.36",
                          "http://10.10.34.36/?type=Invalid Keyword&policy=MainPolicy"}) {
    auto m = f.MatchHttp(403, kBlockHeaders, Iframe(url));
    ASSERT_TRUE(m.has_value()) << url;
    EXPECT_EQ(m->name, "ooni.ir_0") << url;  // first in file order
  }
  auto m = f.MatchHttp(403, kBlockHeaders, Iframe("http://[d0:0:0:0:0:0:0:11:80]"));
  ASSERT_TRUE(m.has_value());
  EXPECT_EQ(m->name, "ooni.ir_1");
  m = f.MatchHttp(200, {}, "<a href=\"http://peyvandha.ir/1-2.html\">");
  ASSERT_TRUE(m.has_value());
  EXPECT_EQ(m->name, "ooni.ir_3");
  m = f.MatchHttp(200, {}, "<a href=\"http://internet.ir/1-2.html\">");
  ASSERT_TRUE(m.has_value());
  EXPECT_EQ(m->name, "ooni.ir_2");

  // With rasad's own file too, rasad's entries come first.
  ASSERT_TRUE(f.LoadRasad(kRasad).ok());
  EXPECT_EQ(f.MatchDnsAnswer("10.10.34.34")->source, "rasad");
  EXPECT_EQ(f.MatchHttp(403, kBlockHeaders, Iframe("http://10.10.34.34"))->source, "rasad");
  // Other OONI entries still answer.
  EXPECT_EQ(f.MatchDnsAnswer("internet-positif.org.")->name, "ooni.id_44");
}

TEST_F(FingerprintsTest, RussianBlockpage) {
  SKIP_WITHOUT(kRuPage);
  SKIP_WITHOUT(kOoniHttp);
  const std::string body = ReadFile(kRuPage);
  ASSERT_GT(body.size(), 30000u);
  const Headers headers = {{"Content-Type", "text/html"}, {"Server", "nginx"}};
  Fingerprints f;
  LoadAll(&f, true);
  auto m = f.MatchHttp(200, headers, body);
  ASSERT_TRUE(m.has_value());
  EXPECT_FALSE(m->false_positive) << m->source << ":" << m->name;
  EXPECT_EQ(m->name, "ooni.ru_5");  // http://eais.rkn.gov.ru/ (Roskomnadzor's registry)
  EXPECT_EQ(m->location, "body");
  EXPECT_EQ(m->countries, std::vector<std::string>{"RU"});
  bool cp = false;
  for (const FingerprintMatch& x : f.MatchHttpAll(200, headers, body)) {
    cp |= x.source == "censoredplanet" && x.name == "b_nat_ru_12_satellite";
  }
  EXPECT_TRUE(cp);

  // Why rasad.toml disables Censored Planet's U+FFFD "false positive": this
  // page was stored by OONI as UTF-8 with U+FFFD for its windows-1251 bytes,
  // and without the disable list that signature dismisses it.
  Fingerprints third_party_only;
  LoadAll(&third_party_only, false);
  m = third_party_only.MatchHttp(200, headers, body);
  ASSERT_TRUE(m.has_value());
  EXPECT_TRUE(m->false_positive);
  EXPECT_EQ(m->name.rfind("cp.fp_x_\xEF\xBF\xBD", 0), 0u) << m->name;
}

// --- false positives first ---------------------------------------------------

TEST_F(FingerprintsTest, FalsePositiveWinsOverBlockpage) {
  // rasad's own format, no third-party files needed.
  const std::string path = Write("fp.toml", R"(
[[http]]
name = "ir_iframe"
pattern = 'iframe src="http://10.10.34.34'

[[http]]
name = "our_test_page"
pattern = "This page intentionally mimics a blockpage"
false_positive = true
)");
  Fingerprints f;
  Status s = f.LoadRasad(path);
  ASSERT_TRUE(s.ok()) << s.message();
  const std::string both =
      Iframe("http://10.10.34.34") + "<p>This page intentionally mimics a blockpage</p>";
  auto m = f.MatchHttp(403, {}, both);
  ASSERT_TRUE(m.has_value());
  EXPECT_EQ(m->name, "our_test_page");
  EXPECT_TRUE(m->false_positive);
  EXPECT_EQ(m->scope, "fp");
  auto all = f.MatchHttpAll(403, {}, both);
  ASSERT_EQ(all.size(), 2u);
  EXPECT_TRUE(all[0].false_positive);
  EXPECT_EQ(all[1].name, "ir_iframe");
  EXPECT_FALSE(all[1].false_positive);
  // Without the false-positive text the blockpage is reported.
  EXPECT_EQ(f.MatchHttp(403, {}, Iframe("http://10.10.34.34"))->name, "ir_iframe");
}

TEST_F(FingerprintsTest, CensoredPlanetFalsePositiveWins) {
  SKIP_WITHOUT(kCpFp);
  Fingerprints f;
  LoadAll(&f, true);
  // Iran's iframe plus nginx's default page text (Censored Planet x_fpru_nginx).
  const std::string both =
      Iframe("http://10.10.34.34") + "<p><em>Thank you for using nginx.</em></p>";
  auto m = f.MatchHttp(403, {}, both);
  ASSERT_TRUE(m.has_value());
  EXPECT_TRUE(m->false_positive);
  EXPECT_EQ(m->scope, "fp");
  EXPECT_TRUE(m->name == "cp.fp_x_fpru_nginx" || m->name == "x_fpru_nginx") << m->name;
  auto all = f.MatchHttpAll(403, {}, both);
  ASSERT_GE(all.size(), 2u);
  bool saw_blockpage = false;
  for (size_t k = 0; k < all.size(); ++k) {
    if (!all[k].false_positive) saw_blockpage = true;
    if (saw_blockpage) {
      EXPECT_FALSE(all[k].false_positive) << "false positives come first";
    }
  }
  EXPECT_TRUE(saw_blockpage);
}

TEST_F(FingerprintsTest, CensoredPlanetMatchesHeadersOfTheWholeResponse) {
  SKIP_WITHOUT(kCpBlock);
  Fingerprints f;
  ASSERT_TRUE(f.LoadCensoredPlanetBlockpages(kCpBlock).ok());
  // "Server: Barracuda/NGFirewall" (a_prod_barracuda_2) is a header line.
  auto m = f.MatchHttp(200, {{"server", "Barracuda/NGFirewall"}}, "<html></html>");
  ASSERT_TRUE(m.has_value());
  EXPECT_EQ(m->name, "a_prod_barracuda_2");
  EXPECT_EQ(m->location, "header.server");
  EXPECT_EQ(m->scope, "prod");
  EXPECT_EQ(f.MatchHttp(200, {}, "<html></html>"), std::nullopt);
}

// --- patterns ---------------------------------------------------------------

TEST_F(FingerprintsTest, PythonRegexTranslation) {
  const std::string path = Write("re.toml", R"(
[[http]]
name = "icase"
type = "regexp"
pattern = "(?i)access to this site is blocked"

[[http]]
name = "no_dotall"
type = "regexp"
pattern = "alpha.*omega"

[[http]]
name = "dotall"
type = "regexp"
pattern = "(?s)first.+last"

[[http]]
name = "brace_and_quote"
type = "regexp"
pattern = "{\"error\":.*\"blocked\"}.*it\\'s"

[[http]]
name = "group"
type = "regexp"
pattern = "Page moved permanently to (http|https)://blocked\\.example/"

[[http]]
name = "title"
location = "title"
type = "full"
pattern = "Access Denied"

[[http]]
name = "status"
location = "status"
type = "full"
pattern = "451"
)");
  Fingerprints f;
  Status s = f.LoadRasad(path);
  ASSERT_TRUE(s.ok()) << s.message();
  auto name = [&](int status, const std::string& body) {
    auto m = f.MatchHttp(status, {}, body);
    return m ? m->name : std::string("none");
  };
  EXPECT_EQ(name(200, "<h1>ACCESS TO THIS SITE IS BLOCKED</h1>"), "icase");
  EXPECT_EQ(name(200, "alpha and omega"), "no_dotall");
  EXPECT_EQ(name(200, "alpha\nomega"), "none");  // '.' does not match '\n' without (?s)
  EXPECT_EQ(name(200, "first\n\nlast"), "dotall");
  EXPECT_EQ(name(200, "firstlast"), "none");  // .+ needs one character
  EXPECT_EQ(name(200, "{\"error\": \"blocked\"} and it's"), "brace_and_quote");
  EXPECT_EQ(name(200, "Page moved permanently to https://blocked.example/"), "group");
  EXPECT_EQ(name(200, "Page moved permanently to ftp://blocked.example/"), "none");
  EXPECT_EQ(name(200, "<html><TITLE>Access Denied</TITLE></html>"), "title");
  EXPECT_EQ(name(200, "<title>Access Denied here</title>"), "none");
  EXPECT_EQ(name(451, ""), "status");
  EXPECT_EQ(f.files()[0].regex, 2u);  // only these two need std::regex
}

TEST_F(FingerprintsTest, DnsCidrAndNames) {
  const std::string path = Write("dns.toml", R"(
[[dns]]
name = "sinkhole_net"
type = "cidr"
pattern = "10.10.34.0/24"

[[dns]]
name = "sinkhole_v6"
type = "cidr"
pattern = "d0::/64"

[[dns]]
name = "cname_blockpage"
pattern = "Block.Example.NET."
)");
  Fingerprints f;
  Status s = f.LoadRasad(path);
  ASSERT_TRUE(s.ok()) << s.message();
  EXPECT_EQ(f.MatchDnsAnswer("10.10.34.200")->name, "sinkhole_net");
  EXPECT_EQ(f.MatchDnsAnswer("::ffff:10.10.34.1")->name, "sinkhole_net");
  EXPECT_FALSE(f.MatchDnsAnswer("10.10.35.1").has_value());
  EXPECT_EQ(f.MatchDnsAnswer("d0::abcd")->name, "sinkhole_v6");
  EXPECT_FALSE(f.MatchDnsAnswer("d0:0:0:1::1").has_value());
  EXPECT_EQ(f.MatchDnsAnswer("block.example.net")->name, "cname_blockpage");
}

TEST_F(FingerprintsTest, BodyScanIsCapped) {
  const std::string path = Write("cap.toml", "[[http]]\nname = \"marker\"\npattern = \"MARKER\"\n");
  Fingerprints f;
  ASSERT_TRUE(f.LoadRasad(path).ok());
  std::string body(Fingerprints::kMaxScanBytes - 6, 'a');
  EXPECT_TRUE(f.MatchHttp(200, {}, body + "MARKER").has_value());
  EXPECT_FALSE(f.MatchHttp(200, {}, body + "xMARKER").has_value());
}

// --- malformed files --------------------------------------------------------

TEST_F(FingerprintsTest, MalformedOoniCsv) {
  const std::string header =
      "name,scope,other_names,location_found,pattern_type,pattern,confidence_no_fp,"
      "expected_countries,source,exp_url,notes\r\n";
  const std::string good = "x.ok,nat,,body,contains,blocked,5,IR,,,\r\n";
  struct Case {
    std::string text;
    int line;
    std::string msg;
  } cases[] = {
      {header + good + "x.short,nat,,body,contains\r\n", 3, "expected 11 fields"},
      {header + good + "x.q,nat,,body,contains,\"never closed,5,,,,\r\n" + good, 3,
       "unterminated quoted field"},
      {header + good + good + "x.t,nat,,body,glob,a*,5,,,,\r\n", 4, "pattern_type \"glob\""},
      {header + "x.loc,nat,,cookie,contains,a,5,,,,\r\n", 2, "location_found \"cookie\""},
      {header + good + "x.re,nat,,body,regexp,\"a[bc\",5,,,,\r\n", 3, "x.re:"},
      {header + good + "x.re2,nat,,body,regexp,\"a{2,1}\",5,,,,\r\n", 3,
       "std::regex cannot compile"},
      {header + "x.cc,nat,,body,contains,a,5,Iran,,,\r\n", 2, "two-letter country code"},
      {header + "x.conf,nat,,body,contains,a,high,,,,\r\n", 2, "confidence_no_fp"},
      {header + "x.empty,nat,,body,contains,,5,,,,\r\n", 2, "empty pattern"},
      {"name,pattern\r\nx,y\r\n", 1, "missing column \"location_found\""},
      // A quoted field spanning lines: the error is reported at the row's first line.
      {header + "x.multi,nat,,body,contains,\"two\r\nlines\",5,,,,\r\n" +
           "x.bad,nat,,body,contains,a,5,,,\r\n",
       4, "expected 11 fields"},
  };
  for (const Case& c : cases) {
    const std::string path = Write("bad.csv", c.text);
    Fingerprints f;
    Status s = f.LoadOoniHttp(path);
    ASSERT_FALSE(s.ok()) << c.text;
    EXPECT_TRUE(s.IsInvalid());
    const std::string where = path + ":" + std::to_string(c.line) + ": ";
    EXPECT_EQ(s.message().rfind(where, 0), 0u) << s.message() << " / expected " << where;
    EXPECT_NE(s.message().find(c.msg), std::string::npos) << s.message();
    EXPECT_EQ(f.size(), 0u);  // nothing half-loaded
  }
  // DNS: location must be dns, a full pattern must be an address or a name.
  Fingerprints f;
  Status s = f.LoadOoniDns(Write("dns.csv", header + "x.d,nat,,body,full,1.2.3.4,5,,,,\r\n"));
  EXPECT_EQ(s.message().rfind(dir_ + "/dns.csv:2: ", 0), 0u) << s.message();
  s = f.LoadOoniDns(Write("dns.csv", header + "x.d,nat,,dns,full,not an address!,5,,,,\r\n"));
  EXPECT_EQ(s.message().rfind(dir_ + "/dns.csv:2: ", 0), 0u) << s.message();
  // A missing file names the path.
  s = f.LoadOoniDns(dir_ + "/absent.csv");
  EXPECT_TRUE(s.IsIoError());
  EXPECT_NE(s.message().find(dir_ + "/absent.csv"), std::string::npos);
}

TEST_F(FingerprintsTest, MalformedCensoredPlanetJsonl) {
  const std::string good = "{\"fingerprint\":\"b_nat_x\",\"pattern\":\"blocked\\\\.\"}\n";
  struct Case {
    std::string text;
    int line;
    std::string msg;
  } cases[] = {
      {good + "{\"fingerprint\":\"x\",\"pattern\":\n", 2, "invalid JSON"},
      {good + "\n" + "[1,2]\n", 3, "expected a JSON object"},
      {good + "{\"fingerprint\":\"x\"}\n", 2, "x: missing or empty \"pattern\""},
      {good + "{\"pattern\":\"a\"}\n", 2, "\"fingerprint\""},
      {good + good + "{\"fingerprint\":\"bad_re\",\"pattern\":\"(unclosed\"}\n", 3, "bad_re:"},
      {good + "{\"fingerprint\":\"bad_class\",\"pattern\":\"[abc\"}\n", 2,
       "unterminated character set"},
  };
  for (const Case& c : cases) {
    const std::string path = Write("bad.jsonl", c.text);
    Fingerprints f;
    Status s = f.LoadCensoredPlanetBlockpages(path);
    ASSERT_FALSE(s.ok()) << c.text;
    const std::string where = path + ":" + std::to_string(c.line) + ": ";
    EXPECT_EQ(s.message().rfind(where, 0), 0u) << s.message() << " / expected " << where;
    EXPECT_NE(s.message().find(c.msg), std::string::npos) << s.message();
    EXPECT_EQ(f.size(), 0u);
  }
  // Python constructs std::regex lacks are skipped and listed, not fatal.
  const std::string path =
      Write("unsup.jsonl", good + "\n{\"fingerprint\":\"lookbehind\",\"pattern\":\"(?<=a)b\"}\n" +
                               "{\"fingerprint\":\"scoped\",\"pattern\":\"(?i:a)b\"}\n");
  Fingerprints f;
  Status s = f.LoadCensoredPlanetFalsePositives(path);
  ASSERT_TRUE(s.ok()) << s.message();
  EXPECT_EQ(f.size(), 1u);
  ASSERT_EQ(f.unsupported().size(), 2u);
  EXPECT_EQ(f.unsupported()[0].rfind(path + ":3: lookbehind: ", 0), 0u) << f.unsupported()[0];
  EXPECT_EQ(f.unsupported()[1].rfind(path + ":4: scoped: ", 0), 0u) << f.unsupported()[1];
  EXPECT_EQ(f.files()[0].unsupported, 2u);
}

TEST_F(FingerprintsTest, MalformedRasadToml) {
  struct Case {
    std::string text;
    int line;
    std::string msg;
  } cases[] = {
      {"[[http]]\nname = \"a\"\npattern = \"x\"\nlocaton = \"body\"\n", 4,
       "unknown key \"locaton\" (did you mean \"location\"?)"},
      {"[[http]]\nname = \"a\"\npattern = \"x\"\ntype = \"glob\"\n", 4, "\"type\" must be"},
      {"[[http]]\nname = \"a\"\npattern = \"x\"\n\n[[http]]\nname = \"a\"\npattern = \"y\"\n", 6,
       "duplicate name \"a\""},
      {"[[dns]]\nname = \"a\"\npattern = \"1.2.3.4\"\ncountries = [\"IR\", \"iran\"]\n", 4,
       "\"iran\" is not a two-letter country code"},
      {"[[dns]]\nname = \"a\"\ntype = \"cidr\"\npattern = \"10.0.0.0/33\"\n", 4,
       "bad prefix length"},
      {"[[http]]\nname = \"a\"\ntype = \"regexp\"\npattern = \"(?<=x)y\"\n", 4,
       "unsupported regex: lookbehind"},
      {"[[http]]\nname = \"a\"\ntype = \"regexp\"\npattern = \"x{3,1}\"\n", 4,
       "std::regex cannot compile"},
      {"[[http]]\nname = \"a\"\npattern = \"x\"\nstatus = [99]\n", 4, "not an HTTP status"},
      {"[[http]]\nname = \"a\"\npattern = \"x\"\nlocation = \"cookie\"\n", 4, "\"location\" must"},
      {"[[http]]\nname = \"a\"\n", 1, "missing or empty \"pattern\""},
      {"disable = [\"cp:x\"]\n", 1, "must be \"ooni:NAME\""},
      {"[http]\nname = \"a\"\n", 1, "array of tables"},
      {"[[http]]\nname = \"a\"\npattern = \"x\n", 3, ""},  // TOML syntax error
  };
  for (const Case& c : cases) {
    const std::string path = Write("bad.toml", c.text);
    Fingerprints f;
    Status s = f.LoadRasad(path);
    ASSERT_FALSE(s.ok()) << c.text;
    const std::string where = path + ":" + std::to_string(c.line) + ": ";
    EXPECT_EQ(s.message().rfind(where, 0), 0u) << s.message() << " / expected " << where;
    EXPECT_NE(s.message().find(c.msg), std::string::npos) << s.message();
    EXPECT_EQ(f.size(), 0u);
  }
}

TEST_F(FingerprintsTest, FailedLoadLeavesSetUnchanged) {
  Fingerprints f;
  ASSERT_TRUE(f.LoadRasad(kRasad).ok());
  const size_t before = f.size();
  EXPECT_FALSE(f.LoadCensoredPlanetBlockpages(
                    Write("b.jsonl", "{\"fingerprint\":\"a\",\"pattern\":\"b\"}\nnot json\n"))
                   .ok());
  EXPECT_EQ(f.size(), before);
  EXPECT_EQ(f.files().size(), 1u);
  EXPECT_TRUE(f.MatchDnsAnswer("10.10.34.34").has_value());
}

}  // namespace
}  // namespace rasad
