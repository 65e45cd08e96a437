// A small database with a scripted history, written through the real Store
// API and analysis' WriteVerdicts, for the report/ tests.
//
// Two operators measure clubhouse/api every 15 minutes from 2026-04-08
// 16:00 UTC. On "mci" the verdicts are: ok, ok, dns.bogon x3 (confirmed),
// tls.reset x2 (probable), ok. On "irancell" every cycle is ok. A canary
// (control target) is ok everywhere. Observations carry the volunteer's
// local addresses (kLocalV4, kLocalV6), also echoed inside text fields, so
// the privacy scan has something to find.
#pragma once

#include <gtest/gtest.h>
#include <unistd.h>

#include <memory>
#include <string>
#include <vector>

#include "analysis/analyzer.h"
#include "analysis/verdict.h"
#include "probe/store/store.h"
#include "report/timeline.h"

namespace rasad {
namespace testing_report {

inline constexpr const char* kLocalV4 = "192.0.2.77";
inline constexpr const char* kLocalV6 = "2001:db8:77::5";
inline constexpr int64_t kStart = 1775664000LL * 1000000;  // 2026-04-08T16:00:00Z
inline constexpr int64_t kStep = 15LL * 60 * 1000000;      // 15 minutes

inline std::string TempDir() {
  char tmpl[] = "/tmp/rasad-report-XXXXXX";
  const char* d = mkdtemp(tmpl);
  return d ? d : "/tmp";
}

inline const std::vector<std::string>& MciScript() {
  static const std::vector<std::string> k = {"ok",        "ok",        "dns.bogon", "dns.bogon",
                                             "dns.bogon", "tls.reset", "tls.reset", "ok"};
  return k;
}

inline std::string Uid(const std::string& kind, int cycle, int n) {
  char buf[40];
  snprintf(buf, sizeof buf, "%012llx%s%02d%02d", static_cast<unsigned long long>(cycle + 1),
           kind.c_str(), cycle, n);
  std::string s = buf;
  s.resize(32, '0');
  return s;
}

inline Observation Obs(const std::string& uid, Step step, int64_t t, const std::string& local) {
  Observation o;
  o.uid = uid;
  o.flow_uid = uid.substr(0, 20) + "f";
  o.step = step;
  o.hostname = "www.clubhouseapi.com";
  o.transport = step == Step::kDns ? "udp" : "tcp";
  o.local_addr = local;
  o.local_port = 40000 + static_cast<int>(t % 1000);
  o.t_start = t;
  o.t_end = t + 20000;
  return o;
}

// One measurement whose observations tell the story of `verdict`.
inline Measurement MakeMeasurement(const std::string& cycle_uid, int cycle, int idx,
                                   const std::string& network, const std::string& target,
                                   const std::string& endpoint, bool control,
                                   const std::string& verdict, int64_t t) {
  Measurement m;
  m.uid = Uid("m", cycle, idx);
  m.cycle_uid = cycle_uid;
  m.network = network;
  m.target = target;
  m.target_version = "1";
  m.endpoint = endpoint;
  m.control = control;
  if (control) m.control_kind = "cdn";
  m.t_start = t;
  m.t_end = t + 400000;
  const std::string local = (idx % 2) ? kLocalV6 : kLocalV4;
  int seq = 0;
  auto uid = [&] { return Uid("o", cycle, idx * 10 + seq++); };
  Observation dns = Obs(uid(), Step::kDns, t, local);
  dns.query_type = "A";
  dns.resolver = "9.9.9.9:53";
  std::string answer = verdict == "dns.bogon" ? "10.10.34.36" : "93.184.216.34";
  dns.details = {{"rcode", 0},
                 {"rcode_name", "NOERROR"},
                 {"answers", {{{"type", "A"}, {"value", answer}, {"ttl", 300}}}}};
  dns.raw = std::string("\x12\x34\x81\x80", 4);
  m.observations.push_back(dns);
  m.furthest_step = Step::kDns;
  Observation tcp = Obs(uid(), Step::kTcp, t + 30000, local);
  tcp.remote_addr = answer;
  tcp.remote_port = 443;
  tcp.flow_uid = m.uid.substr(0, 20) + "c1";
  if (verdict == "dns.bogon") {
    tcp.failure = "generic_timeout_error";
    m.observations.push_back(tcp);
    m.failed_step = Step::kTcp;
    m.failure = "generic_timeout_error";
    return m;
  }
  tcp.details = {{"segs_out", 3}, {"segs_in", 2}};
  m.observations.push_back(tcp);
  m.furthest_step = Step::kTcp;
  Observation tls = Obs(uid(), Step::kTls, t + 60000, local);
  tls.remote_addr = answer;
  tls.remote_port = 443;
  tls.flow_uid = tcp.flow_uid;
  tls.details = {{"sni", "www.clubhouseapi.com"},
                 // A middlebox that logs the client address into the
                 // handshake timeline: must be scrubbed on export.
                 {"events", {{{"t", 10}, {"event", std::string("connect from ") + local}}}}};
  if (verdict == "tls.reset") {
    tls.failure = "connection_reset";
    tls.details["os_errno"] = 104;
    m.observations.push_back(tls);
    m.failed_step = Step::kTls;
    m.failure = "connection_reset";
    return m;
  }
  tls.details["version"] = "TLSv1.3";
  tls.details["cipher"] = "TLS_AES_256_GCM_SHA384";
  tls.details["trusted"] = true;
  tls.details["hostname_ok"] = true;
  tls.details["chain"] = {{{"subject", "CN=www.clubhouseapi.com"},
                           {"issuer", "CN=Test CA"},
                           {"sha256", std::string(64, 'a')},
                           {"der_b64", "MIIBdGVzdA=="}}};
  m.observations.push_back(tls);
  m.furthest_step = Step::kTls;
  Observation http = Obs(uid(), Step::kHttp, t + 90000, local);
  http.remote_addr = answer;
  http.remote_port = 443;
  http.flow_uid = tcp.flow_uid;
  http.details = {
      {"url", "https://www.clubhouseapi.com/"},
      {"method", "GET"},
      {"status", 200},
      {"status_line", "HTTP/1.1 200 OK"},
      {"http_version", "1.1"},
      {"headers_list", nlohmann::json::array({nlohmann::json::array({"Content-Type", "text/html"}),
                                              nlohmann::json::array({"X-Client-Ip", local})})},
      {"title", std::string("Clubhouse - your address is ") + local},
      {"body_length", 15},
      {"body_prefix_b64", "PGh0bWw+aGk8L2h0bWw+"}};
  m.observations.push_back(http);
  m.furthest_step = Step::kHttp;
  return m;
}

struct Fixture {
  std::string dir;
  std::string db;
  std::vector<std::string> cycles;

  // Writes the scripted history. `update_timeline`: call UpdateTimeline
  // after each cycle's WriteVerdicts, as the daemon will.
  void Build(bool update_timeline = true) {
    dir = TempDir();
    db = dir + "/rasad.db";
    std::unique_ptr<Store> store;
    ASSERT_TRUE(Store::Open(db, &store).ok());
    const auto& script = MciScript();
    for (int c = 0; c < static_cast<int>(script.size()); ++c) {
      int64_t t0 = kStart + c * kStep;
      CycleInfo info;
      info.uid = Uid("c", c, 0);
      info.started_at = t0;
      info.rasad_version = "0.1.0";
      info.config_file = "/home/volunteer/rasad.toml";
      info.target_versions = {{"clubhouse", "1"}, {"canary", "1"}};
      ASSERT_TRUE(store->BeginCycle(info).ok());
      cycles.push_back(info.uid);
      struct Net {
        const char* name;
        const char* label;
        int asn;
      };
      const Net nets[] = {{"mci", "Hamrah-e-Aval (MCI)", 197207}, {"irancell", "Irancell", 44244}};
      std::vector<Verdict> verdicts;
      int idx = 0;
      for (const Net& n : nets) {
        CycleNetwork cn;
        cn.cycle_uid = info.uid;
        cn.config.name = n.name;
        cn.config.operator_label = n.label;
        cn.config.asn = n.asn;
        cn.config.interface = "wwan0";
        cn.resolvers = {"9.9.9.9"};
        ASSERT_TRUE(store->RecordNetwork(cn).ok());
        std::string v = std::string(n.name) == "mci" ? script[c] : "ok";
        struct Ep {
          const char* target;
          const char* endpoint;
          bool control;
        };
        const Ep eps[] = {{"clubhouse", "api", false}, {"canary", "cdn", true}};
        for (const Ep& e : eps) {
          std::string verdict = e.control ? "ok" : v;
          int64_t t = t0 + idx * 1000000;
          Measurement m = MakeMeasurement(info.uid, c, idx++, n.name, e.target, e.endpoint,
                                          e.control, verdict, t);
          Status st = store->WriteMeasurement(m);
          ASSERT_TRUE(st.ok()) << st.ToString();
          Verdict vd;
          vd.cycle_uid = info.uid;
          vd.network = n.name;
          vd.target = e.target;
          vd.endpoint = e.endpoint;
          vd.measurement_uid = m.uid;
          vd.t_start = t;
          vd.verdict = verdict;
          vd.rule = verdict == "ok" ? "reached" : "scripted";
          if (verdict == "dns.bogon") vd.confidence = "confirmed";
          if (verdict == "tls.reset") vd.confidence = "probable";
          vd.evidence = {{"observations", {m.observations.front().uid}}};
          if (verdict == "ok") {
            vd.ooni_blocking = false;
            vd.ooni_accessible = true;
          } else {
            vd.ooni_blocking = verdict == "dns.bogon" ? "dns" : "http-failure";
            vd.ooni_accessible = false;
          }
          verdicts.push_back(vd);
        }
      }
      Status st = WriteVerdicts(store.get(), info.uid, verdicts);
      ASSERT_TRUE(st.ok()) << st.ToString();
      if (update_timeline) {
        st = UpdateTimeline(store.get(), info.uid);
        ASSERT_TRUE(st.ok()) << st.ToString();
      }
      CycleTotals tot;
      tot.finished_at = t0 + 60 * 1000000;
      tot.measurements = idx;
      ASSERT_TRUE(store->FinishCycle(info.uid, tot).ok());
    }
  }
};

}  // namespace testing_report
}  // namespace rasad
