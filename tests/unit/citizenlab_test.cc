// Citizen Lab importer: the real Iran list and small hand-written CSVs.

#include "probe/config/citizenlab.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdlib>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>

namespace rasad {
namespace {

namespace fs = std::filesystem;

const char kHeader[] = "url,category_code,category_description,date_added,source,notes\n";

class CitizenLabTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/rasad_citizenlab_XXXXXX";
    ASSERT_NE(mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
  }
  void TearDown() override { fs::remove_all(dir_); }

  std::string Write(const std::string& name, const std::string& text) {
    const std::string path = dir_ + "/" + name;
    std::ofstream(path, std::ios::binary) << text;
    return path;
  }
  std::string Error(const std::string& csv) {
    Target t;
    Status s = ImportCitizenLab(Write("l.csv", csv), "list", &t);
    return s.ok() ? "" : s.message();
  }

  std::string dir_;
};

std::string Today() {
  std::time_t now = std::time(nullptr);
  std::tm tm{};
  gmtime_r(&now, &tm);
  char buf[16];
  std::strftime(buf, sizeof buf, "%Y-%m-%d", &tm);
  return buf;
}

TEST_F(CitizenLabTest, RealIranList) {
  const std::string path = std::string(RASAD_SHARED_DIR) + "/data/test-lists/ir.csv";
  if (!fs::exists(path)) GTEST_SKIP() << "reference list not present: " << path;

  // Count unique URLs independently: first column of each line after the
  // header (the list's URLs contain no commas or quotes).
  std::ifstream in(path);
  std::string line;
  std::getline(in, line);
  std::set<std::string> urls;
  while (std::getline(in, line)) {
    if (!line.empty()) urls.insert(line.substr(0, line.find(',')));
  }
  ASSERT_GT(urls.size(), 100u);

  Target t;
  Status s = ImportCitizenLab(path, "citizenlab-ir", &t);
  ASSERT_TRUE(s.ok()) << s.ToString();
  EXPECT_EQ(t.endpoints.size(), urls.size());
  EXPECT_EQ(t.name, "citizenlab-ir");
  EXPECT_EQ(t.title, "Citizen Lab list ir.csv");
  EXPECT_EQ(t.version, Today());
  std::set<std::string> names;
  for (const Endpoint& e : t.endpoints) {
    EXPECT_TRUE(names.insert(e.name).second) << "duplicate endpoint name " << e.name;
    ASSERT_EQ(e.hosts.size(), 1u);
    EXPECT_EQ(e.last_step, Step::kHttp);
    EXPECT_EQ(e.path.front(), '/');
  }

  // The serialised target loads back with the same endpoints.
  const std::string toml = Write("ir.toml", TargetToToml(t));
  Target back;
  s = LoadTargetFile(toml, &back);
  ASSERT_TRUE(s.ok()) << s.ToString();
  ASSERT_EQ(back.endpoints.size(), t.endpoints.size());
  for (size_t i = 0; i < t.endpoints.size(); ++i) {
    EXPECT_EQ(back.endpoints[i].name, t.endpoints[i].name);
    EXPECT_EQ(back.endpoints[i].hosts, t.endpoints[i].hosts);
    EXPECT_EQ(back.endpoints[i].tls, t.endpoints[i].tls);
    EXPECT_EQ(back.endpoints[i].ports, t.endpoints[i].ports);
    EXPECT_EQ(back.endpoints[i].path, t.endpoints[i].path);
  }
}

TEST_F(CitizenLabTest, SmallListWithQuotesPortsAndDuplicates) {
  const std::string csv = std::string(kHeader) +
                          "https://www.example.com/,NEWS,News Media,2020-01-01,cl,\n"        // 2
                          "http://www.example.com:8080/a?b=1#frag,NEWS,News,2020-01-01,cl,"  // 3
                          "\"notes, with \"\"quotes\"\"\nand a newline\"\n"
                          "https://www.example.com/,NEWS,News Media,2020-01-01,cl,dup\r\n"  // 5
                          "\n"
                          "HTTPS://Other.Example.ORG,NEWS,\"News, Media\",2020-01-01,cl,\n"  // 7
                          "https://www.example.com/other,NEWS,News,2020-01-01,cl,\n"         // 8
                          "https://[2001:db8::1]:8443/x y,NEWS,News,2020-01-01,cl,\n";       // 9
  Target t;
  Status s = ImportCitizenLab(Write("small.csv", csv), "small", &t);
  ASSERT_TRUE(s.ok()) << s.ToString();
  EXPECT_EQ(t.category, "NEWS");
  EXPECT_EQ(t.title, "Citizen Lab list small.csv");
  ASSERT_EQ(t.endpoints.size(), 5u);

  const Endpoint& a = t.endpoints[0];
  EXPECT_EQ(a.name, "www.example.com");
  EXPECT_EQ(a.hosts, std::vector<std::string>{"www.example.com"});
  EXPECT_TRUE(a.tls);
  EXPECT_EQ(a.ports, std::vector<uint16_t>{443});
  EXPECT_EQ(a.path, "/");
  EXPECT_EQ(a.line, 2);

  const Endpoint& b = t.endpoints[1];
  EXPECT_EQ(b.name, "www.example.com-2");
  EXPECT_FALSE(b.tls);
  EXPECT_EQ(b.ports, std::vector<uint16_t>{8080});
  EXPECT_EQ(b.path, "/a?b=1");
  EXPECT_EQ(b.line, 3);

  const Endpoint& c = t.endpoints[2];
  EXPECT_EQ(c.name, "other.example.org");
  EXPECT_EQ(c.hosts, std::vector<std::string>{"other.example.org"});
  EXPECT_EQ(c.path, "/");
  EXPECT_EQ(c.line, 7);

  EXPECT_EQ(t.endpoints[3].name, "www.example.com-3");
  EXPECT_EQ(t.endpoints[3].path, "/other");

  const Endpoint& v6 = t.endpoints[4];
  EXPECT_EQ(v6.hosts, std::vector<std::string>{"2001:db8::1"});
  EXPECT_EQ(v6.name, "2001-db8--1");
  EXPECT_EQ(v6.ports, std::vector<uint16_t>{8443});
  EXPECT_EQ(v6.path, "/x%20y");

  // What the importer builds is a valid target file.
  Target back;
  s = LoadTargetFile(Write("small.toml", TargetToToml(t)), &back);
  ASSERT_TRUE(s.ok()) << s.ToString() << "\n" << TargetToToml(t);
  EXPECT_EQ(back.endpoints.size(), 5u);
}

TEST_F(CitizenLabTest, MixedCategoriesLeaveTargetCategoryEmpty) {
  Target t;
  Status s = ImportCitizenLab(
      Write("m.csv", std::string(kHeader) + "https://a.example/,NEWS,News,2020-01-01,cl,\n"
                                            "https://b.example/,HUMR,Hum,2020-01-01,cl,\n"),
      "m", &t);
  ASSERT_TRUE(s.ok()) << s.ToString();
  EXPECT_EQ(t.category, "");
}

TEST_F(CitizenLabTest, Errors) {
  const std::string f = dir_ + "/l.csv";
  EXPECT_EQ(Error(std::string(kHeader) + "https://a.example/,NEWS,News,2020-01-01,cl,\n"
                                         "ftp://b.example/,NEWS,News,2020-01-01,cl,\n"),
            f + ":3: bad URL \"ftp://b.example/\": scheme must be http or https");
  EXPECT_EQ(
      Error(std::string(kHeader) + "https://a.example/,NEWS,News,2020-01-01,cl,\"multi\nline\"\n"
                                   "https://bad host/,NEWS,News,2020-01-01,cl,\n"),
      f + ":4: bad URL \"https://bad host/\": bad host \"bad host\"");
  EXPECT_EQ(Error(std::string(kHeader) + "https://a.example:99999/,NEWS,News,2020-01-01,cl,\n"),
            f + ":2: bad URL \"https://a.example:99999/\": port 99999 out of range (1..65535)");
  EXPECT_EQ(Error(std::string(kHeader) + "a.example,NEWS,News,2020-01-01,cl,\n"),
            f + ":2: bad URL \"a.example\": no scheme");
  EXPECT_EQ(Error(std::string(kHeader) + "https://a.example/,NEWS,News,2020-01-01,cl\n"),
            f + ":2: expected 6 columns, got 5");
  EXPECT_EQ(Error(std::string(kHeader) + "https://a.example/,NEWS,\"News, more\",x,cl,n,extra\n"),
            f + ":2: expected 6 columns, got 7");
  EXPECT_EQ(Error(std::string(kHeader) + "https://a.example/,NEWS,\"unterminated,x,cl,\n"),
            f + ":2: unterminated quoted field");
  EXPECT_EQ(Error("url,category,notes\nhttps://a.example/,NEWS,\n"),
            f + ":1: bad header: expected "
                "url,category_code,category_description,date_added,source,notes");
  EXPECT_EQ(Error(kHeader), f + ":1: no URLs after the header");

  Target t;
  Status s = ImportCitizenLab(dir_ + "/missing.csv", "x", &t);
  EXPECT_TRUE(s.IsIoError());
  EXPECT_EQ(s.message(), dir_ + "/missing.csv: cannot open: No such file or directory");
  s = ImportCitizenLab(Write("ok.csv", std::string(kHeader) + "https://a.example/,N,N,d,s,\n"),
                       "Bad Name", &t);
  EXPECT_TRUE(s.IsInvalid());
}

TEST_F(CitizenLabTest, ByteOrderMarkAndCrlf) {
  Target t;
  Status s =
      ImportCitizenLab(Write("bom.csv",
                             "\xEF\xBB\xBFurl,category_code,category_description,date_added,source,"
                             "notes\r\nhttps://a.example/p,NEWS,News,2020-01-01,cl,\r\n"),
                       "bom", &t);
  ASSERT_TRUE(s.ok()) << s.ToString();
  ASSERT_EQ(t.endpoints.size(), 1u);
  EXPECT_EQ(t.endpoints[0].path, "/p");
}

}  // namespace
}  // namespace rasad
