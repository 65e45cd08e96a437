// rasad.toml loading: defaults, durations, ranges, file:line errors.

#include "probe/config/config.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>

namespace rasad {
namespace {

namespace fs = std::filesystem;

class ConfigTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/rasad_config_XXXXXX";
    ASSERT_NE(mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
    file_ = dir_ + "/rasad.toml";
  }
  void TearDown() override { fs::remove_all(dir_); }

  std::string Write(const std::string& name, const std::string& text) {
    const std::string path = dir_ + "/" + name;
    std::ofstream(path) << text;
    return path;
  }
  std::string Error(const std::string& text) {
    Config c;
    Status s = LoadConfig(Write("rasad.toml", text), &c);
    return s.ok() ? "" : s.message();
  }

  std::string dir_, file_;
};

TEST(DurationTest, Accepts) {
  const std::pair<const char*, int64_t> cases[] = {
      {"250ms", 250},   {"90s", 90000}, {"15m", 900000}, {"1h", 3600000},        {"2h30m", 9000000},
      {"1m30s", 90000}, {"500ms", 500}, {"0s", 0},       {"1h1m1s1ms", 3661001}, {"10m0s", 600000}};
  for (const auto& [text, want] : cases) {
    int64_t ms = -1;
    EXPECT_TRUE(ParseDuration(text, &ms)) << text;
    EXPECT_EQ(ms, want) << text;
  }
}

TEST(DurationTest, Rejects) {
  for (const char* text : {"", "5", "-1s", "1x", "s", "1.5s", " 1s", "1s ", "1 s", "1d", "m5",
                           "1hh", "99999999999999999999s", "1S"}) {
    int64_t ms = 42;
    EXPECT_FALSE(ParseDuration(text, &ms)) << text;
    EXPECT_EQ(ms, 42) << text;
  }
}

TEST_F(ConfigTest, EmptyFileGivesDefaults) {
  Config c;
  Status s = LoadConfig(Write("rasad.toml", "# nothing\n"), &c);
  ASSERT_TRUE(s.ok()) << s.ToString();
  const Config d;
  EXPECT_EQ(c.file, file_);
  EXPECT_EQ(c.database, d.database);
  EXPECT_EQ(c.targets, std::vector<std::string>{"targets"});
  EXPECT_EQ(c.interval_ms, 15 * 60 * 1000);
  EXPECT_EQ(c.jitter_ms, 2 * 60 * 1000);
  EXPECT_EQ(c.concurrency, 16);
  EXPECT_EQ(c.max_addresses_per_family, 2);
  EXPECT_TRUE(c.ipv6);
  EXPECT_EQ(c.dns_timeout_ms, 4000);
  EXPECT_EQ(c.dns_tries, 2);
  EXPECT_FALSE(c.dns_tcp);
  EXPECT_EQ(c.tcp_timeout_ms, 10000);
  EXPECT_EQ(c.tls_timeout_ms, 10000);
  EXPECT_EQ(c.http_timeout_ms, 15000);
  EXPECT_EQ(c.body_cap, 65536u);
  EXPECT_EQ(c.body_store, 4096u);
  EXPECT_EQ(c.ca_file, "");
  EXPECT_EQ(c.user_agent, d.user_agent);
  EXPECT_TRUE(c.networks.empty());
  EXPECT_TRUE(c.public_ranges.empty());
}

TEST_F(ConfigTest, FullFile) {
  const std::string ca = Write("ca.pem", "-----BEGIN CERTIFICATE-----\n");
  Config c;
  Status s = LoadConfig(Write("rasad.toml",
                              "database = \"/var/lib/rasad/r.db\"\n"
                              "targets = [\"a\", \"b/c.toml\"]\n"
                              "interval = \"1h\"\n"
                              "jitter = \"90s\"\n"
                              "concurrency = 4\n"
                              "max_addresses_per_family = 1\n"
                              "ipv6 = false\n"
                              "ca_file = \"" +
                                  ca +
                                  "\"\n"
                                  "user_agent = \"ua/1\"\n"
                                  "[dns]\ntimeout = \"500ms\"\ntries = 3\n"
                                  "transport = \"tcp\"\n"
                                  "[timeouts]\ntcp = \"5s\"\ntls = \"6s\"\n"
                                  "http = \"7s\"\n"
                                  "[http]\nbody_cap = 1000\nbody_store = 1000\n"
                                  "[analysis]\npublic_ranges = [\"192.0.2.0/24\", "
                                  "\"2001:db8::/32\"]\n"
                                  "[[network]]\nname = \"mci\"\n"
                                  "operator = \"Hamrah-e-Aval (MCI)\"\n"
                                  "asn = 197207\ninterface = \"wwan1\"\n"
                                  "resolvers = [\"10.0.0.1\", \"1.1.1.1:53\", "
                                  "\"[2001:db8::1]:53\", \"2001:db8::2\", "
                                  "\"fe80::1%wwan1\"]\n"
                                  "[[network]]\nname = \"irancell\"\n"),
                        &c);
  ASSERT_TRUE(s.ok()) << s.ToString();
  EXPECT_EQ(c.database, "/var/lib/rasad/r.db");
  EXPECT_EQ(c.targets, (std::vector<std::string>{"a", "b/c.toml"}));
  EXPECT_EQ(c.interval_ms, 3600000);
  EXPECT_EQ(c.jitter_ms, 90000);
  EXPECT_EQ(c.concurrency, 4);
  EXPECT_EQ(c.max_addresses_per_family, 1);
  EXPECT_FALSE(c.ipv6);
  EXPECT_EQ(c.ca_file, ca);
  EXPECT_EQ(c.user_agent, "ua/1");
  EXPECT_EQ(c.dns_timeout_ms, 500);
  EXPECT_EQ(c.dns_tries, 3);
  EXPECT_TRUE(c.dns_tcp);
  EXPECT_EQ(c.tcp_timeout_ms, 5000);
  EXPECT_EQ(c.tls_timeout_ms, 6000);
  EXPECT_EQ(c.http_timeout_ms, 7000);
  EXPECT_EQ(c.body_cap, 1000u);
  EXPECT_EQ(c.body_store, 1000u);
  EXPECT_EQ(c.public_ranges, (std::vector<std::string>{"192.0.2.0/24", "2001:db8::/32"}));
  ASSERT_EQ(c.networks.size(), 2u);
  EXPECT_EQ(c.networks[0].name, "mci");
  EXPECT_EQ(c.networks[0].operator_label, "Hamrah-e-Aval (MCI)");
  EXPECT_EQ(c.networks[0].asn, 197207);
  EXPECT_EQ(c.networks[0].interface, "wwan1");
  EXPECT_EQ(c.networks[0].resolvers.size(), 5u);
  EXPECT_EQ(c.networks[0].line, 23);
  EXPECT_EQ(c.networks[1].name, "irancell");
  EXPECT_EQ(c.networks[1].asn, 0);
  EXPECT_TRUE(c.networks[1].interface.empty());
  EXPECT_TRUE(c.networks[1].resolvers.empty());
}

TEST_F(ConfigTest, ShippedExampleLoads) {
  Config c;
  Status s = LoadConfig(std::string(RASAD_SOURCE_DIR) + "/rasad.example.toml", &c);
  ASSERT_TRUE(s.ok()) << s.ToString();
  ASSERT_EQ(c.networks.size(), 2u);
  EXPECT_EQ(c.networks[0].asn, 44244);
  EXPECT_EQ(c.networks[0].interface, "wwan0");
  EXPECT_EQ(c.networks[1].asn, 197207);
  EXPECT_EQ(c.networks[1].interface, "wwan1");
}

TEST_F(ConfigTest, Errors) {
  const std::string f = file_;
  EXPECT_EQ(Error("database = \"x\"\n\nintervall = \"1m\"\n"),
            f + ":3: unknown key \"intervall\" (did you mean \"interval\"?)");
  EXPECT_EQ(Error("[dns]\ntimeout = \"4s\"\ntimout = \"1s\"\n"),
            f + ":3: [dns] unknown key \"timout\" (did you mean \"timeout\"?)");
  EXPECT_EQ(Error("concurrency = 0\n"), f + ":1: \"concurrency\" = 0 is out of range (1..1024)");
  EXPECT_EQ(Error("\nconcurrency = 2000\n"),
            f + ":2: \"concurrency\" = 2000 is out of range (1..1024)");
  EXPECT_EQ(Error("concurrency = \"16\"\n"), f + ":1: \"concurrency\" must be an integer");
  EXPECT_EQ(Error("max_addresses_per_family = 17\n"),
            f + ":1: \"max_addresses_per_family\" = 17 is out of range (1..16)");
  EXPECT_EQ(Error("interval = \"15\"\n"),
            f + ":1: \"interval\": bad duration \"15\" (e.g. \"250ms\", \"90s\", \"15m\", "
                "\"2h30m\")");
  EXPECT_EQ(Error("interval = \"1m\"\njitter = \"2m\"\n"),
            f + ":2: \"jitter\" must not exceed \"interval\"");
  EXPECT_EQ(Error("[dns]\ntries = 11\n"), f + ":2: [dns] \"tries\" = 11 is out of range (1..10)");
  EXPECT_EQ(Error("[dns]\ntransport = \"doh\"\n"),
            f + ":2: [dns] unknown transport \"doh\" (expected udp or tcp)");
  EXPECT_EQ(Error("dns = 1\n"), f + ":1: \"dns\" must be a table ([dns])");
  EXPECT_EQ(Error("[http]\nbody_cap = 20000000\n"),
            f + ":2: [http] \"body_cap\" = 20000000 is out of range (1..16777216)");
  EXPECT_EQ(Error("[http]\nbody_cap = 100\nbody_store = 200\n"),
            f + ":3: [http] \"body_store\" must not exceed \"body_cap\"");
  EXPECT_EQ(Error("[http]\nbody_cap = 100\n"),
            f + ":2: [http] \"body_store\" must not exceed \"body_cap\"");
  EXPECT_EQ(Error("[analysis]\npublic_ranges = [\"192.0.2.0/24\",\n \"192.0.2.1/24\"]\n"),
            f + ":3: [analysis] bad CIDR \"192.0.2.1/24\": host bits set after /24");
  EXPECT_EQ(Error("[analysis]\npublic_ranges = [\"192.0.2.0/33\"]\n"),
            f + ":2: [analysis] bad CIDR \"192.0.2.0/33\": bad prefix length (0..32)");
  EXPECT_EQ(Error("[analysis]\npublic_ranges = [\"192.0.2.0\"]\n"),
            f + ":2: [analysis] bad CIDR \"192.0.2.0\": missing \"/prefix\"");
  EXPECT_EQ(Error("[[network]]\nname = \"mci\"\nresolvers = [\"10.0.0.1\", \"10.0.0.300\"]\n"),
            f + ":3: network \"mci\": bad resolver \"10.0.0.300\" (expected IP, IP:port or "
                "[IPv6]:port)");
  EXPECT_EQ(Error("[[network]]\nname = \"mci\"\nresolvers = [\"1.1.1.1:0\"]\n"),
            f + ":3: network \"mci\": bad resolver \"1.1.1.1:0\" (expected IP, IP:port or "
                "[IPv6]:port)");
  EXPECT_EQ(Error("[[network]]\nname = \"mci\"\nresolvers = [\"2001:db8::1:53:x\"]\n"),
            f + ":3: network \"mci\": bad resolver \"2001:db8::1:53:x\" (expected IP, IP:port "
                "or [IPv6]:port)");
  EXPECT_EQ(Error("[[network]]\nname = \"mci\"\nasn = -1\n"),
            f + ":3: network \"mci\": \"asn\" = -1 is out of range (0..2147483647)");
  EXPECT_EQ(Error("[[network]]\nname = \"mci\"\nopertor = \"x\"\n"),
            f + ":3: network \"mci\": unknown key \"opertor\" (did you mean \"operator\"?)");
  EXPECT_EQ(Error("[[network]]\nname = \"MCI.1\"\n"),
            f + ":2: network \"MCI.1\": name must match [A-Za-z0-9_-]+");
  EXPECT_EQ(Error("[[network]]\noperator = \"x\"\n"),
            f + ":1: network #1: missing required key \"name\"");
  EXPECT_EQ(Error("[[network]]\nname = \"a\"\n\n[[network]]\nname = \"a\"\n"),
            f + ":4: network \"a\": duplicate network name");
  EXPECT_EQ(Error("[[network]]\nname = \"a\"\ninterface = \"a very long name\"\n"),
            f + ":3: network \"a\": bad interface name \"a very long name\"");
  EXPECT_EQ(Error("targets = []\n"), f + ":1: \"targets\" is empty (nothing to measure)");
  EXPECT_EQ(Error("ipv6 = 1\n"), f + ":1: \"ipv6\" must be true or false");
  EXPECT_EQ(Error("ca_file = \"/nonexistent/ca.pem\"\n"),
            f + ":1: ca_file \"/nonexistent/ca.pem\": cannot open");
  const std::string syntax = Error("database = \"x\"\nconcurrency = \n");
  EXPECT_EQ(syntax.rfind(f + ":2: ", 0), 0u) << syntax;
}

TEST_F(ConfigTest, MissingFileIsIoError) {
  Config c;
  Status s = LoadConfig(dir_ + "/missing.toml", &c);
  EXPECT_TRUE(s.IsIoError());
  EXPECT_EQ(s.message(), dir_ + "/missing.toml: cannot open: No such file or directory");
}

TEST_F(ConfigTest, SystemResolvers) {
  const std::string path = Write("resolv.conf",
                                 "# generated\n"
                                 "search example.org\n"
                                 "nameserver 192.0.2.53\n"
                                 "  nameserver   2001:db8::53   # comment\n"
                                 "; nameserver 10.0.0.1\n"
                                 "nameserver fe80::1%eth0\n"
                                 "nameserver not-an-ip\n"
                                 "nameserver\n"
                                 "options ndots:2\n"
                                 "nameserver 198.51.100.1;trailing\n");
  EXPECT_EQ(SystemResolvers(path), (std::vector<std::string>{"192.0.2.53", "2001:db8::53",
                                                             "fe80::1%eth0", "198.51.100.1"}));
  EXPECT_TRUE(SystemResolvers(dir_ + "/missing").empty());
}

}  // namespace
}  // namespace rasad
