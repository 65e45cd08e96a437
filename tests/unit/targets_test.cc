// Target files: the shipped ones load, broken ones fail with file:line.

#include "probe/config/targets.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <set>

namespace rasad {
namespace {

namespace fs = std::filesystem;

class TargetsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/rasad_targets_XXXXXX";
    ASSERT_NE(mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
  }
  void TearDown() override { fs::remove_all(dir_); }

  std::string Write(const std::string& name, const std::string& text) {
    const std::string path = dir_ + "/" + name;
    fs::create_directories(fs::path(path).parent_path());
    std::ofstream(path) << text;
    return path;
  }

  // Loads `text` as x.toml and returns the error message ("" when OK).
  std::string Error(const std::string& text) {
    Target t;
    Status s = LoadTargetFile(Write("x.toml", text), &t);
    return s.ok() ? "" : s.message();
  }

  std::string dir_;
};

const char kHead[] = "name = \"x\"\ntitle = \"X\"\nversion = \"1\"\n";  // lines 1-3

TEST_F(TargetsTest, ShippedTargetsLoad) {
  std::vector<Target> targets;
  Status s = LoadTargets({std::string(RASAD_SOURCE_DIR) + "/targets"}, &targets);
  ASSERT_TRUE(s.ok()) << s.ToString();
  std::set<std::string> names;
  int endpoints = 0;
  for (const Target& t : targets) {
    names.insert(t.name);
    endpoints += static_cast<int>(t.endpoints.size());
    EXPECT_FALSE(t.version.empty()) << t.name;
    // Every shipped target round-trips through the serialiser.
    const std::string copy = Write("copy/" + t.name + ".toml", TargetToToml(t));
    Target back;
    ASSERT_TRUE(LoadTargetFile(copy, &back).ok()) << t.name << ":\n" << TargetToToml(t);
    EXPECT_EQ(TargetToToml(back), TargetToToml(t));
  }
  for (const char* want : {"clubhouse", "whatsapp", "telegram", "signal", "instagram", "control-ip",
                           "control-cdn", "control-domestic"}) {
    EXPECT_EQ(names.count(want), 1u) << want;
  }
  EXPECT_LE(endpoints, 40) << "keep the cycle cheap for volunteers on mobile data";
  // Directory order is name order.
  ASSERT_FALSE(targets.empty());
  EXPECT_EQ(targets.front().name, "clubhouse");
}

TEST_F(TargetsTest, ShippedClubhouseContents) {
  Target t;
  Status s = LoadTargetFile(std::string(RASAD_SOURCE_DIR) + "/targets/clubhouse.toml", &t);
  ASSERT_TRUE(s.ok()) << s.ToString();
  std::set<std::string> hosts;
  for (const Endpoint& e : t.endpoints) hosts.insert(e.hosts.begin(), e.hosts.end());
  for (const char* h : {"www.clubhouseapi.com", "clubhouse.com", "www.clubhouse.com",
                        "www.joinclubhouse.com", "clubhouse.pubnub.com", "clubhouse.pubnubapi.com",
                        "ap1.agora.io", "ap5.agora.io", "clubhouseprod.s3.amazonaws.com"}) {
    EXPECT_EQ(hosts.count(h), 1u) << h;
  }
  for (const Endpoint& e : t.endpoints) {
    if (e.name == "audio") {
      EXPECT_EQ(e.last_step, Step::kTcp);
      EXPECT_EQ(e.ports, (std::vector<uint16_t>{443, 8000, 1080, 25000}));
    }
    if (e.name == "realtime") {
      EXPECT_EQ(e.path, "/time/0");
    }
  }
}

TEST_F(TargetsTest, ShippedTelegramUsesPlainHttpPost) {
  Target t;
  ASSERT_TRUE(LoadTargetFile(std::string(RASAD_SOURCE_DIR) + "/targets/telegram.toml", &t).ok());
  const Endpoint& dc = t.endpoints.at(0);
  EXPECT_FALSE(dc.tls);
  EXPECT_EQ(dc.method, "POST");
  EXPECT_EQ(dc.path, "/api");
  EXPECT_EQ(dc.ports, (std::vector<uint16_t>{80, 443}));
}

TEST_F(TargetsTest, DefaultsApplied) {
  Target t;
  const std::string path = Write("d.toml", std::string(kHead) +
                                               "\n"              // 4
                                               "[[endpoint]]\n"  // 5
                                               "name = \"a\"\n"  // 6
                                               "hosts = [\"a.example\"]\n"
                                               "\n"
                                               "[[endpoint]]\n"  // 9
                                               "name = \"b\"\n"
                                               "hosts = [\"192.0.2.1\"]\n"
                                               "tls = false\n");
  Status s = LoadTargetFile(path, &t);
  ASSERT_TRUE(s.ok()) << s.ToString();
  EXPECT_EQ(t.file, path);
  EXPECT_FALSE(t.control);
  EXPECT_EQ(t.category, "");
  ASSERT_EQ(t.endpoints.size(), 2u);
  const Endpoint& a = t.endpoints[0];
  EXPECT_EQ(a.line, 5);
  EXPECT_EQ(a.last_step, Step::kHttp);
  EXPECT_TRUE(a.tls);
  EXPECT_EQ(a.ports, std::vector<uint16_t>{443});
  EXPECT_EQ(a.method, "GET");
  EXPECT_EQ(a.path, "/");
  EXPECT_TRUE(a.sni.empty());
  EXPECT_TRUE(a.expect_status.empty());
  EXPECT_TRUE(a.expect_cert_names.empty());
  EXPECT_EQ(t.endpoints[1].line, 9);
  EXPECT_EQ(t.endpoints[1].ports, std::vector<uint16_t>{80});
}

TEST_F(TargetsTest, FileLineErrors) {
  const std::string f = dir_ + "/x.toml";
  const std::string ep = std::string(kHead) + "[[endpoint]]\nname = \"api\"\n";  // 4, 5
  EXPECT_EQ(Error(ep + "hosts = [\"a.example\"]\nhots = 1\n"),
            f + ":7: endpoint \"api\": unknown key \"hots\" (did you mean \"hosts\"?)");
  EXPECT_EQ(Error(ep + "hosts = [\"a.example\"]\nsteps = \"htp\"\n"),
            f + ":7: endpoint \"api\": unknown step \"htp\" (expected dns, tcp, tls or http)");
  EXPECT_EQ(Error(ep + "hosts = [\"a.example\"]\nports = [443,\n  70000]\n"),
            f + ":8: endpoint \"api\": port 70000 out of range (1..65535)");
  EXPECT_EQ(Error(ep + "hosts = [\"1.2.3.4\"]\nsteps = \"dns\"\n"),
            f + ":7: endpoint \"api\": steps = \"dns\" but host \"1.2.3.4\" is an IP literal "
                "(nothing to resolve)");
  EXPECT_EQ(Error(ep + "hosts = [\"a.example\"]\n\n[[endpoint]]\nname = \"api\"\nhosts = "
                       "[\"b.example\"]\n"),
            f + ":8: endpoint \"api\": duplicate endpoint name (first at line 4)");
  EXPECT_EQ(Error(std::string(kHead) + "colour = \"red\"\n"), f + ":4: unknown key \"colour\"");
  EXPECT_EQ(Error(ep + "hosts = \"a.example\"\n"),
            f + ":6: endpoint \"api\": \"hosts\" must be an array of strings");
  EXPECT_EQ(Error(ep + "hosts = []\n"), f + ":6: endpoint \"api\": \"hosts\" is empty");
  EXPECT_EQ(Error(ep + "hosts = [\"bad host\"]\n"),
            f + ":6: endpoint \"api\": bad host \"bad host\" (expected a DNS name or an IP "
                "literal)");
  EXPECT_EQ(Error(ep + "hosts = [\"a.example\"]\ntls = \"yes\"\n"),
            f + ":7: endpoint \"api\": \"tls\" must be true or false");
  EXPECT_EQ(Error(ep + "hosts = [\"a.example\"]\nmethod = \"PUT\"\n"),
            f + ":7: endpoint \"api\": unknown method \"PUT\" (expected GET, HEAD or POST)");
  EXPECT_EQ(Error(ep + "hosts = [\"a.example\"]\npath = \"x\"\n"),
            f + ":7: endpoint \"api\": bad path \"x\" (must start with \"/\"; printable ASCII, "
                "no spaces or \"#\")");
  EXPECT_EQ(Error(ep + "hosts = [\"a.example\"]\nexpect_status = [200, 99]\n"),
            f + ":7: endpoint \"api\": HTTP status 99 out of range (100..599)");
  EXPECT_EQ(Error(ep + "hosts = [\"a.example\"]\nsteps = \"tcp\"\npath = \"/x\"\n"),
            f + ":8: endpoint \"api\": \"path\" has no effect with steps = \"tcp\"");
  EXPECT_EQ(Error(ep + "hosts = [\"a.example\"]\nsteps = \"tls\"\ntls = false\n"),
            f + ":8: endpoint \"api\": steps = \"tls\" needs tls = true");
  EXPECT_EQ(Error(ep + "hosts = [\"[2001:db8::1]\"]\n"),
            f + ":6: endpoint \"api\": host \"[2001:db8::1]\": write IPv6 literals without "
                "brackets");
  EXPECT_EQ(Error(std::string(kHead) + "[[endpoint]]\nhosts = [\"a.example\"]\n"),
            f + ":4: endpoint #1: missing required key \"name\"");
  EXPECT_EQ(Error("title = \"X\"\nversion = \"1\"\n[[endpoint]]\nname = \"a\"\nhosts = []\n"),
            f + ":1: missing required key \"name\"");
  EXPECT_EQ(Error("name = \"Bad Name\"\n"), f + ":1: name \"Bad Name\" must match [a-z0-9_-]+");
  EXPECT_EQ(Error(kHead), f + ":1: no [[endpoint]] tables");
  EXPECT_EQ(Error(std::string(kHead) + "control = true\n"),
            f + ":4: control = true needs control_kind (\"ip_literal\", \"cdn\" or \"domestic\")");
  EXPECT_EQ(Error(std::string(kHead) + "category = \"COMX\"\n"),
            f + ":4: unknown category \"COMX\" (expected a Citizen Lab category code, e.g. COMT, "
                "GRP, NEWS)");
}

TEST_F(TargetsTest, SyntaxErrorLine) {
  const std::string msg = Error(std::string(kHead) + "\n[[endpoint]]\nname = \"a\"\nhosts = [\n");
  EXPECT_EQ(msg.rfind(dir_ + "/x.toml:7: ", 0), 0u) << msg;
  const std::string dup = Error(std::string(kHead) + "name = \"y\"\n");
  EXPECT_EQ(dup.rfind(dir_ + "/x.toml:4: ", 0), 0u) << dup;
}

TEST_F(TargetsTest, MissingFileIsIoError) {
  Target t;
  Status s = LoadTargetFile(dir_ + "/nope.toml", &t);
  EXPECT_TRUE(s.IsIoError());
  EXPECT_EQ(s.message(), dir_ + "/nope.toml: cannot open: No such file or directory");
  std::vector<Target> all;
  s = LoadTargets({dir_ + "/nope"}, &all);
  EXPECT_TRUE(s.IsIoError());
}

TEST_F(TargetsTest, DuplicateTargetNameAcrossFiles) {
  const std::string body = "\n[[endpoint]]\nname = \"a\"\nhosts = [\"a.example\"]\n";
  Write("dir/a.toml", std::string(kHead) + body);
  Write("dir/b.toml", "# same name\n" + std::string(kHead) + body);
  Write("dir/notes.txt", "not a target");
  std::vector<Target> all;
  Status s = LoadTargets({dir_ + "/dir"}, &all);
  ASSERT_TRUE(s.IsInvalid());
  EXPECT_EQ(s.message(), dir_ + "/dir/b.toml:2: duplicate target name \"x\" (already defined in " +
                             dir_ + "/dir/a.toml)");
}

TEST_F(TargetsTest, LoadTargetsFilesAndDirectoriesInOrder) {
  const std::string body =
      "title = \"T\"\nversion = \"1\"\n[[endpoint]]\nname = \"a\"\n"
      "hosts = [\"a.example\"]\nsteps = \"dns\"\n";
  Write("dir/b.toml", "name = \"b\"\n" + body);
  Write("dir/a.toml", "name = \"a\"\n" + body);
  Write("dir/README.md", "# ignored");
  const std::string c = Write("c.conf", "name = \"c\"\n" + body);
  std::vector<Target> all;
  // The same file twice (directly and through its directory) is loaded once.
  Status s = LoadTargets({dir_ + "/dir", c, dir_ + "/dir/a.toml"}, &all);
  ASSERT_TRUE(s.ok()) << s.ToString();
  ASSERT_EQ(all.size(), 3u);
  EXPECT_EQ(all[0].name, "a");
  EXPECT_EQ(all[1].name, "b");
  EXPECT_EQ(all[2].name, "c");
  EXPECT_EQ(all[0].file, dir_ + "/dir/a.toml");
}

TEST_F(TargetsTest, RoundTripAllFields) {
  Target t;
  t.name = "rt";
  t.title = "Round \"trip\" \\ test";
  t.version = "2026-11-28.2";
  t.category = "CTRL";
  t.control = true;
  t.control_kind = "ip_literal";
  Endpoint e;
  e.name = "full";
  e.hosts = {"192.0.2.7", "2001:db8::7", "x.example"};
  e.last_step = Step::kHttp;
  e.tls = true;
  e.ports = {443, 8443};
  e.sni = "sni.example";
  e.method = "POST";
  e.path = "/api?x=1&y=%20";
  e.expect_status = {200, 204, 301};
  e.expect_cert_names = {"*.example", "sni.example"};
  t.endpoints.push_back(e);
  Endpoint plain;
  plain.name = "plain";
  plain.hosts = {"p.example"};
  plain.tls = false;
  plain.ports = {80};
  plain.method = "HEAD";
  t.endpoints.push_back(plain);
  Endpoint dns;
  dns.name = "dns-only";
  dns.hosts = {"d.example"};
  dns.last_step = Step::kDns;
  dns.ports = {443};
  t.endpoints.push_back(dns);
  Endpoint tcp;
  tcp.name = "tcp";
  tcp.hosts = {"t.example"};
  tcp.last_step = Step::kTcp;
  tcp.ports = {5222};
  t.endpoints.push_back(tcp);

  const std::string path = Write("rt.toml", TargetToToml(t));
  Target back;
  Status s = LoadTargetFile(path, &back);
  ASSERT_TRUE(s.ok()) << s.ToString() << "\n" << TargetToToml(t);
  EXPECT_EQ(back.name, t.name);
  EXPECT_EQ(back.title, t.title);
  EXPECT_EQ(back.version, t.version);
  EXPECT_EQ(back.category, t.category);
  EXPECT_EQ(back.control, t.control);
  EXPECT_EQ(back.control_kind, t.control_kind);
  ASSERT_EQ(back.endpoints.size(), t.endpoints.size());
  for (size_t i = 0; i < t.endpoints.size(); ++i) {
    const Endpoint& a = t.endpoints[i];
    const Endpoint& b = back.endpoints[i];
    EXPECT_EQ(a.name, b.name);
    EXPECT_EQ(a.hosts, b.hosts);
    EXPECT_EQ(a.ports, b.ports) << a.name;
    EXPECT_EQ(a.last_step, b.last_step);
    EXPECT_EQ(a.tls, b.tls);
    EXPECT_EQ(a.sni, b.sni);
    EXPECT_EQ(a.method, b.method);
    EXPECT_EQ(a.path, b.path);
    EXPECT_EQ(a.expect_status, b.expect_status);
    EXPECT_EQ(a.expect_cert_names, b.expect_cert_names);
    EXPECT_GT(b.line, 0);
  }
}

TEST(StepTest, NamesRoundTrip) {
  for (Step s : {Step::kDns, Step::kTcp, Step::kTls, Step::kHttp}) {
    Step back = Step::kDns;
    ASSERT_TRUE(ParseStep(StepName(s), &back));
    EXPECT_EQ(back, s);
  }
  Step s = Step::kTcp;
  EXPECT_FALSE(ParseStep("HTTP", &s));
  EXPECT_FALSE(ParseStep("", &s));
  EXPECT_EQ(s, Step::kTcp);
}

}  // namespace
}  // namespace rasad
