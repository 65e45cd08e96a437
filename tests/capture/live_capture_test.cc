// Live capture: flow rings and slices (replayed frames, no privileges), the
// unavailable path (CAP_NET_RAW dropped in a child), and, as root, real
// measurements on `lo` against scripted servers: the packets are captured,
// sliced to the right observation, judged, and kept as evidence.
#include "probe/capture/live_capture.h"

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <linux/capability.h>
#include <netinet/in.h>
#include <pcap/pcap.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstring>
#include <filesystem>
#include <thread>

#include "probe/capture/evidence.h"
#include "probe/capture/pcap_file.h"
#include "probe/core/clock.h"
#include "probe/measure/cycle.h"
#include "probe/measure/endpoint_job.h"
#include "probe/net/curl_multi.h"
#include "probe/net/tls_inspect.h"
#include "tests/support/servers.h"

namespace rasad::capture {
namespace {

// ---------------------------------------------------------------- helpers

uint16_t Sum16(const std::vector<uint8_t>& b) {  // independent of export.cc
  uint64_t s = 0;
  for (size_t i = 0; i < b.size(); i += 2) s += (b[i] << 8) | (i + 1 < b.size() ? b[i + 1] : 0);
  while (s >> 16) s = (s & 0xffff) + (s >> 16);
  return static_cast<uint16_t>(~s);
}

// A raw IPv4/TCP packet (DLT_RAW) with correct checksums.
std::vector<uint8_t> Tcp4(const char* src, uint16_t sport, const char* dst, uint16_t dport,
                          uint8_t flags, uint32_t seq, uint32_t ack, uint8_t ttl, uint16_t ip_id,
                          const std::string& payload = "") {
  std::vector<uint8_t> p(40 + payload.size());
  p[0] = 0x45;
  p[2] = static_cast<uint8_t>(p.size() >> 8);
  p[3] = static_cast<uint8_t>(p.size());
  p[4] = static_cast<uint8_t>(ip_id >> 8);
  p[5] = static_cast<uint8_t>(ip_id);
  p[6] = 0x40;
  p[8] = ttl;
  p[9] = 6;
  inet_pton(AF_INET, src, &p[12]);
  inet_pton(AF_INET, dst, &p[16]);
  uint16_t c = Sum16(std::vector<uint8_t>(p.begin(), p.begin() + 20));
  p[10] = c >> 8, p[11] = c & 0xff;
  uint8_t* t = &p[20];
  t[0] = sport >> 8, t[1] = sport & 0xff, t[2] = dport >> 8, t[3] = dport & 0xff;
  for (int i = 0; i < 4; ++i) t[4 + i] = (seq >> (24 - 8 * i)) & 0xff;
  for (int i = 0; i < 4; ++i) t[8 + i] = (ack >> (24 - 8 * i)) & 0xff;
  t[12] = 0x50;
  t[13] = flags;
  t[14] = 0xff, t[15] = 0xff;
  std::memcpy(t + 20, payload.data(), payload.size());
  std::vector<uint8_t> ph(&p[12], &p[20]);
  ph.push_back(0), ph.push_back(6);
  size_t tl = 20 + payload.size();
  ph.push_back(tl >> 8), ph.push_back(tl & 0xff);
  ph.insert(ph.end(), t, t + tl);
  c = Sum16(ph);
  t[16] = c >> 8, t[17] = c & 0xff;
  return p;
}

std::vector<uint8_t> Udp4(const char* src, uint16_t sport, const char* dst, uint16_t dport,
                          uint16_t dns_id, bool response = false) {
  std::vector<uint8_t> p(20 + 8 + 12);
  p[0] = 0x45;
  p[3] = static_cast<uint8_t>(p.size());
  p[8] = 64;
  p[9] = 17;
  inet_pton(AF_INET, src, &p[12]);
  inet_pton(AF_INET, dst, &p[16]);
  p[20] = sport >> 8, p[21] = sport & 0xff, p[22] = dport >> 8, p[23] = dport & 0xff;
  p[25] = 20;
  p[28] = dns_id >> 8, p[29] = dns_id & 0xff;
  if (response)
    p[30] = 0x81, p[31] = 0x80;  // QR RD RA
  else
    p[30] = 0x01;  // RD
  return p;
}

Observation Obs(Step step, const char* transport, const char* local, int lport, const char* remote,
                int rport, int64_t t0_us, int64_t t1_us) {
  Observation o;
  o.uid = NewUid();
  o.flow_uid = "f";
  o.step = step;
  o.transport = transport;
  o.local_addr = local;
  o.local_port = lport;
  o.remote_addr = remote;
  o.remote_port = rport;
  o.t_start = t0_us;
  o.t_end = t1_us;
  return o;
}

// ---------------------------------------------------------------- no privileges

TEST(LiveCaptureFilter, DefaultFilterCompiles) {
  std::string f = DefaultFilter({{"10.0.0.1", 53}, {"127.0.0.1", 5353}}, {443, 80});
  EXPECT_NE(f.find("port 5353"), std::string::npos) << f;
  EXPECT_NE(f.find("port 443"), std::string::npos) << f;
  for (const std::string& filter : {f, DefaultFilter({}, {})}) {
    pcap_t* dead = pcap_open_dead(DLT_EN10MB, 65535);
    bpf_program prog{};
    EXPECT_EQ(pcap_compile(dead, &prog, filter.c_str(), 1, PCAP_NETMASK_UNKNOWN), 0)
        << filter << ": " << pcap_geterr(dead);
    pcap_freecode(&prog);
    pcap_close(dead);
  }
}

TEST(LiveCaptureReplay, SlicesTcpFlowAndDnsQueryId) {
  LiveCapture cap("replay", CaptureOptions{});
  cap.SetLinkTypeForReplay(kLinkRaw);
  int64_t t0 = WallMicros() * 1000;
  auto add = [&](const std::vector<uint8_t>& p, int64_t dt_ms) {
    cap.AddFrame(t0 + dt_ms * 1000000, p.data(), p.size(), p.size());
  };
  const char* me = "10.1.1.2";
  const char* srv = "198.51.100.7";
  add(Tcp4(me, 40000, srv, 443, kSyn, 100, 0, 64, 1), 0);
  add(Tcp4(srv, 443, me, 40000, kSyn | kAck, 500, 101, 50, 7), 30);
  add(Tcp4(me, 40000, srv, 443, kAck, 101, 501, 64, 2), 31);
  add(Tcp4(me, 40000, srv, 443, kAck | kPsh, 101, 501, 64, 3, "hello"), 32);
  add(Tcp4(srv, 443, me, 40000, kRst | kAck, 501, 106, 20, 3), 34);  // forged: TTL 20
  add(Tcp4(srv, 443, me, 40000, kRst | kAck, 9999, 106, 50, 8), 62);
  add(Tcp4(me, 40001, srv, 443, kSyn, 1, 0, 64, 9), 40);  // another connection
  add(Udp4(me, 33000, "10.1.1.1", 53, 0x1111), 1);
  add(Udp4("10.1.1.1", 53, me, 33000, 0x1111, true), 5);
  add(Udp4("203.0.113.9", 53, me, 33000, 0x1111, true), 3);  // unexpected source: same slice
  add(Udp4(me, 33000, "10.1.1.1", 53, 0x2222), 6);           // other query id, same socket

  int64_t t0_us = t0 / 1000;
  Observation tcp = Obs(Step::kTcp, "tcp", me, 40000, srv, 443, t0_us, t0_us + 31000);
  Observation tls = Obs(Step::kTls, "tcp", me, 40000, srv, 443, t0_us + 31000, t0_us + 35000);
  PacketSlice s = cap.SliceFlow({&tcp, &tls});
  ASSERT_EQ(s.packets.size(), 6u);
  for (const Packet& p : s.packets) EXPECT_TRUE(p.tcp.sport == 40000 || p.tcp.dport == 40000);
  EXPECT_TRUE(s.packets[4].tcp.Has(kRst));
  EXPECT_EQ(s.packets[4].ttl, 20);

  Detector d;
  for (const Packet& p : s.packets) d.Add(p);
  std::vector<Finding> findings = d.Finish();
  ASSERT_FALSE(findings.empty());
  std::vector<Observation> fo = FindingsToObservations(findings, {&tcp, &tls}, "x.pcap");
  bool proven = false;
  for (const Observation& o : fo) {
    EXPECT_EQ(o.step, Step::kTls) << o.details.dump();  // the reset came during TLS
    EXPECT_EQ(o.details["observation_uid"], tls.uid);
    EXPECT_EQ(o.details["evidence_pcap"], "x.pcap");
    if (o.details["finding"] == "tcp.injection") proven = o.details["proven"].get<bool>();
  }
  EXPECT_TRUE(proven);

  Observation dns = Obs(Step::kDns, "udp", me, 33000, "10.1.1.1", 53, t0_us, t0_us + 5000);
  dns.details["query_id"] = 0x1111;
  PacketSlice ds = cap.Slice(dns);
  ASSERT_EQ(ds.packets.size(), 3u);
  Detector dd;
  for (const Packet& p : ds.packets) dd.Add(p);
  bool unexpected = false;
  for (const Finding& f : dd.Finish()) unexpected |= f.kind == "dns.unexpected_source";
  EXPECT_TRUE(unexpected);

  // Outside the observation's window: nothing.
  Observation late = tcp;
  late.t_start = late.t_end = t0_us + 60LL * 1000000;
  EXPECT_TRUE(cap.Slice(late).empty());

  cap.Release(tcp);
  EXPECT_TRUE(cap.Slice(tcp).empty());
  CaptureStats st = cap.Stats();
  EXPECT_EQ(st.received, 11u);
  EXPECT_EQ(st.flows, 2u);  // the other TCP connection and the DNS socket
  EXPECT_EQ(st.flows_evicted, 1u);
}

TEST(LiveCaptureReplay, MemoryBoundsKeepHandshakeAndCountDrops) {
  CaptureOptions o;
  o.keep_head = 3;
  o.max_packets_per_flow = 10;
  o.max_flows = 2;
  LiveCapture cap("replay", o);
  cap.SetLinkTypeForReplay(kLinkRaw);
  int64_t t0 = WallMicros() * 1000;
  for (uint32_t i = 0; i < 50; ++i) {
    auto p = Tcp4("10.0.0.2", 40000, "10.0.0.3", 80, kAck, i, 0, 64, static_cast<uint16_t>(i));
    cap.AddFrame(t0 + i * 1000, p.data(), p.size(), p.size());
  }
  for (uint16_t port = 1; port <= 3; ++port) {  // the third new flow is over max_flows
    auto p = Tcp4("10.0.0.2", port, "10.0.0.3", 80, kSyn, 0, 0, 64, 0);
    cap.AddFrame(t0, p.data(), p.size(), p.size());
  }
  Observation obs =
      Obs(Step::kTcp, "tcp", "10.0.0.2", 40000, "10.0.0.3", 80, t0 / 1000, t0 / 1000 + 1000);
  PacketSlice s = cap.Slice(obs);
  ASSERT_EQ(s.packets.size(), 10u);
  EXPECT_EQ(s.packets[0].tcp.seq, 0u);  // the head stays
  EXPECT_EQ(s.packets[2].tcp.seq, 2u);
  EXPECT_EQ(s.packets[3].tcp.seq, 43u);  // then the most recent
  EXPECT_EQ(s.packets[9].tcp.seq, 49u);
  CaptureStats st = cap.Stats();
  EXPECT_EQ(st.rasad_dropped, 40u + 2u);  // 40 rotated out, 2 flows refused
  // Idle flows go.
  cap.EvictIdle(t0 + 1000LL * 1000000000);
  EXPECT_EQ(cap.Stats().flows, 0u);
  EXPECT_EQ(cap.Stats().bytes_held, 0u);
}

TEST(EvidenceFiles, WritePcapReadsBack) {
  std::string dir = ::testing::TempDir() + "/rasad-evidence-" + NewUid();
  std::vector<CapturedFrame> frames;
  int64_t t0 = 1700000000123456789LL;
  for (int i = 0; i < 3; ++i) {
    auto p = Tcp4("10.0.0.2", 40000, "10.0.0.3", 80, kAck, i, 0, 64, 1);
    frames.push_back(
        {t0 + i, static_cast<uint32_t>(p.size()), std::make_shared<const std::vector<uint8_t>>(p)});
  }
  std::string path = dir + "/cycle/m.pcap";
  ASSERT_TRUE(WritePcap(path, kLinkRaw, frames).ok());
  std::vector<int64_t> ts;
  PcapReadStats st;
  std::string err;
  ASSERT_TRUE(ReadPcapFile(
      path, [&](const Packet& p) { ts.push_back(p.ts_ns); }, &st, &err))
      << err;
  ASSERT_EQ(ts.size(), 3u);
  EXPECT_EQ(ts[0], t0);  // nanoseconds survive
  EXPECT_EQ(ts[2], t0 + 2);
  std::filesystem::remove_all(dir);
}

// Without CAP_NET_RAW: the capture says why, the collector measures on and
// marks every observation.
TEST(LiveCaptureUnprivileged, UnavailableWithoutCapNetRaw) {
  pid_t pid = fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    __user_cap_header_struct h{_LINUX_CAPABILITY_VERSION_3, 0};
    __user_cap_data_struct d[2]{};
    if (syscall(SYS_capget, &h, d) != 0) _exit(10);
    for (auto& x : d) {
      x.effective &= ~(1u << CAP_NET_RAW) & ~(1u << CAP_NET_ADMIN);
      x.permitted &= ~(1u << CAP_NET_RAW) & ~(1u << CAP_NET_ADMIN);
      x.inheritable = 0;
    }
    if (syscall(SYS_capset, &h, d) != 0) _exit(11);
    LiveCapture cap("lo", CaptureOptions{});
    Status st = cap.Open(nullptr);
    if (st.ok()) _exit(12);
    if (cap.unavailable_reason().find("CAP_NET_RAW") == std::string::npos) _exit(13);
    NetworkRuntime net;
    net.config.name = "lo";
    net.config.interface = "lo";
    net.resolvers = {{"127.0.0.1", 53}};
    EvidenceCollector ev;
    std::string warned;
    ev.SetLogger([&](const std::string& s) { warned += s; });
    if (!ev.Open(nullptr, {net}, "/tmp/unused").ok()) _exit(14);
    Measurement m;
    m.network = "lo";
    m.observations.push_back(Obs(Step::kTcp, "tcp", "127.0.0.1", 1, "127.0.0.1", 2, 0, 1));
    ev.OnMeasurementDone(&m);
    std::string cap_status = m.observations[0].details.value("capture", "");
    if (cap_status.rfind("unavailable: no permission", 0) != 0) _exit(15);
    if (warned.find("CAP_NET_RAW") == std::string::npos) _exit(16);
    _exit(0);
  }
  int status = 0;
  waitpid(pid, &status, 0);
  ASSERT_TRUE(WIFEXITED(status));
  EXPECT_EQ(WEXITSTATUS(status), 0) << "see the _exit codes in the child";
}

// ---------------------------------------------------------------- live, as root

bool CanCapture(std::string* why) {
  LiveCapture probe("lo", CaptureOptions{});
  Status st = probe.Open(nullptr);
  if (!st.ok()) *why = st.ToString();
  return st.ok();
}

#define SKIP_WITHOUT_CAPTURE()                                                               \
  do {                                                                                       \
    std::string why;                                                                         \
    if (!CanCapture(&why)) {                                                                 \
      std::fprintf(stderr, "\n*** SKIPPING live capture test: %s ***\n\n", why.c_str());     \
      GTEST_SKIP() << "live capture unavailable (run as root or with CAP_NET_RAW): " << why; \
    }                                                                                        \
  } while (0)

// A TLS server that, once the ClientHello is in, injects a RST with TTL 20
// and a wrong sequence number through a raw socket, then resets for real.
class ForgedResetServer {
 public:
  ForgedResetServer() {
    fd_ = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    int one = 1;
    setsockopt(fd_, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    bind(fd_, reinterpret_cast<sockaddr*>(&a), sizeof a);
    listen(fd_, 8);
    socklen_t len = sizeof a;
    getsockname(fd_, reinterpret_cast<sockaddr*>(&a), &len);
    port_ = ntohs(a.sin_port);
    thread_ = std::thread([this] { Run(); });
  }
  ~ForgedResetServer() {
    stop_ = true;
    thread_.join();
    close(fd_);
  }
  uint16_t port() const { return port_; }
  bool injected() const { return injected_; }

 private:
  void Run() {
    pollfd p{fd_, POLLIN, 0};
    while (!stop_ && poll(&p, 1, 50) == 0) {
    }
    if (stop_) return;
    int c = accept(fd_, nullptr, nullptr);
    if (c < 0) return;
    pollfd pc{c, POLLIN, 0};
    char buf[4096];
    if (poll(&pc, 1, 3000) <= 0 || read(c, buf, sizeof buf) <= 0) {
      close(c);
      return;
    }
    sockaddr_in peer{};
    socklen_t len = sizeof peer;
    getpeername(c, reinterpret_cast<sockaddr*>(&peer), &len);
    int raw = socket(AF_INET, SOCK_RAW, IPPROTO_RAW);
    if (raw >= 0) {
      auto pkt = Tcp4("127.0.0.1", port_, "127.0.0.1", ntohs(peer.sin_port), kRst | kAck,
                      0x0badf00d, 0, 20, 0x4242);
      sockaddr_in dst{};
      dst.sin_family = AF_INET;
      dst.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
      injected_ = sendto(raw, pkt.data(), pkt.size(), 0, reinterpret_cast<sockaddr*>(&dst),
                         sizeof dst) == static_cast<ssize_t>(pkt.size());
      close(raw);
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
    linger l{1, 0};
    setsockopt(c, SOL_SOCKET, SO_LINGER, &l, sizeof l);
    close(c);  // the genuine RST
  }
  int fd_ = -1;
  uint16_t port_ = 0;
  std::atomic<bool> stop_{false};
  std::atomic<bool> injected_{false};
  std::thread thread_;
};

class LiveOnLo : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = ::testing::TempDir() + "/rasad-live-" + NewUid();
    cfg_.dns_timeout_ms = 400;
    cfg_.dns_tries = 1;
    cfg_.tcp_timeout_ms = 800;
    cfg_.tls_timeout_ms = 800;
    cfg_.http_timeout_ms = 1500;
    cfg_.ipv6 = false;
    cfg_.retry_count = 0;
    NetworkConfig lo;
    lo.name = "lo";
    lo.interface = "lo";
    lo.resolvers = {"127.0.0.1:1"};
    cfg_.networks = {lo};
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }

  // Measures one endpoint with capture on, judges it, returns it.
  Measurement Measure(uint16_t port, Step last, bool tls, std::vector<std::string>* files) {
    EventLoop loop;
    EXPECT_TRUE(loop.Init().ok());
    CurlMulti multi(&loop);
    EXPECT_TRUE(multi.Init().ok());
    std::shared_ptr<TrustStore> trust;
    EXPECT_TRUE(TrustStore::Create(cfg_.ca_file, &trust).ok());
    MeasureContext ctx{&loop, &multi, &cfg_, trust};
    std::vector<NetworkRuntime> nets = ResolveNetworks(cfg_);
    EvidenceCollector ev;
    EXPECT_TRUE(ev.Open(&loop, nets, dir_ + "/evidence").ok());
    EXPECT_EQ(ev.CaptureStatus("lo"), "ok");
    target_.name = "t";
    target_.version = "1";
    Endpoint e;
    e.name = "e";
    e.hosts = {"127.0.0.1"};
    e.ports = {port};
    e.last_step = last;
    e.tls = tls;
    e.sni = "www.example.com";
    target_.endpoints = {e};
    Measurement out;
    bool done = false;
    EndpointJob job(ctx, nets[0], target_, target_.endpoints[0], "cycle-1", [&](Measurement m) {
      out = std::move(m);
      done = true;
    });
    job.Start();
    loop.RunUntil([&] { return done; });
    // Let the genuine reset 20 ms behind an injected one reach the capture.
    bool waited = false;
    loop.AddTimer(200000, [&] { waited = true; });
    loop.RunUntil([&] { return waited; });
    *files = ev.OnMeasurementDone(&out);
    stats_ = ev.StatsJson();
    return out;
  }

  std::string dir_;
  Config cfg_;
  Target target_;
  nlohmann::json stats_;
};

TEST_F(LiveOnLo, ResetIsCapturedAndSlicedToTheTlsStep) {
  SKIP_WITHOUT_CAPTURE();
  testing::ScriptedTcpServer server(testing::TcpBehaviour::kResetOnFirstData);
  std::vector<std::string> files;
  Measurement m = Measure(server.port(), Step::kTls, true, &files);
  ASSERT_TRUE(m.failure);
  EXPECT_EQ(*m.failure, "connection_reset");
  const Observation* tls = nullptr;
  for (const Observation& o : m.observations)
    if (o.step == Step::kTls && !IsFindingObservation(o)) tls = &o;
  ASSERT_NE(tls, nullptr);
  EXPECT_EQ(tls->details.value("capture", ""), "ok");
  EXPECT_GE(tls->details.value("capture_packets", 0), 5) << tls->details.dump();
  // Slice again from a fresh capture is not possible (released): check the
  // counters instead, and that a genuine reset is no finding.
  for (const Observation& o : m.observations)
    EXPECT_FALSE(IsFindingObservation(o)) << "false finding: " << o.details.dump();
  EXPECT_TRUE(files.empty());
  EXPECT_GE(stats_["total"]["received"].get<int>(), 5) << stats_.dump();
  EXPECT_EQ(stats_["total"]["kernel_dropped"].get<int>(), 0) << stats_.dump();
}

TEST_F(LiveOnLo, SliceHoldsTheRstOfThisConnection) {
  SKIP_WITHOUT_CAPTURE();
  testing::ScriptedTcpServer server(testing::TcpBehaviour::kResetOnFirstData);
  EventLoop loop;
  ASSERT_TRUE(loop.Init().ok());
  CurlMulti multi(&loop);
  ASSERT_TRUE(multi.Init().ok());
  std::shared_ptr<TrustStore> trust;
  ASSERT_TRUE(TrustStore::Create(cfg_.ca_file, &trust).ok());
  MeasureContext ctx{&loop, &multi, &cfg_, trust};
  std::vector<NetworkRuntime> nets = ResolveNetworks(cfg_);
  CaptureOptions co;
  co.dns_servers = nets[0].resolvers;
  LiveCapture cap("lo", co);
  ASSERT_TRUE(cap.Open(&loop).ok()) << cap.unavailable_reason();
  Target t;
  t.name = "t";
  Endpoint e;
  e.name = "e";
  e.hosts = {"127.0.0.1"};
  e.ports = {server.port()};
  e.last_step = Step::kTls;
  e.tls = true;
  t.endpoints = {e};
  Measurement m;
  bool done = false;
  EndpointJob job(ctx, nets[0], t, t.endpoints[0], "c", [&](Measurement r) {
    m = std::move(r);
    done = true;
  });
  job.Start();
  loop.RunUntil([&] { return done; });
  cap.Poll();
  const Observation* tcp = nullptr;
  const Observation* tls = nullptr;
  for (const Observation& o : m.observations) {
    if (o.step == Step::kTcp) tcp = &o;
    if (o.step == Step::kTls) tls = &o;
  }
  ASSERT_NE(tcp, nullptr);
  ASSERT_NE(tls, nullptr);
  PacketSlice s = cap.SliceFlow({tcp, tls});
  ASSERT_FALSE(s.empty());
  int rst = 0, syn = 0;
  for (const Packet& p : s.packets) {
    ASSERT_EQ(p.transport, Transport::kTcp);
    // Every packet is this connection's, in either direction.
    bool out = p.tcp.sport == tcp->local_port && p.tcp.dport == server.port();
    bool in = p.tcp.dport == tcp->local_port && p.tcp.sport == server.port();
    EXPECT_TRUE(out || in);
    if (p.tcp.Has(kRst)) {
      ++rst;
      EXPECT_TRUE(in) << "the reset comes from the server";
    }
    if (p.tcp.Has(kSyn) && !p.tcp.Has(kAck)) ++syn;
  }
  EXPECT_EQ(syn, 1);
  EXPECT_GE(rst, 1);
  // The RST is inside the TLS step, not the TCP one.
  PacketSlice tls_only = cap.Slice(*tls);
  bool rst_in_tls = false;
  for (const Packet& p : tls_only.packets) rst_in_tls |= p.tcp.Has(kRst);
  EXPECT_TRUE(rst_in_tls);
}

TEST_F(LiveOnLo, InjectedResetIsProvenAndKeptAsEvidence) {
  SKIP_WITHOUT_CAPTURE();
  ForgedResetServer server;
  std::vector<std::string> files;
  Measurement m = Measure(server.port(), Step::kTls, true, &files);
  ASSERT_TRUE(server.injected()) << "raw socket send failed";
  ASSERT_TRUE(m.failure);
  std::vector<const Observation*> findings;
  for (const Observation& o : m.observations)
    if (IsFindingObservation(o)) findings.push_back(&o);
  ASSERT_FALSE(findings.empty()) << "no finding";
  bool proven = false, ttl = false;
  for (const Observation* f : findings) {
    EXPECT_EQ(f->step, Step::kTls) << f->details.dump();
    std::string kind = f->details["finding"];
    ttl |= kind == "tcp.rst_ttl_anomaly";
    if (kind == "tcp.injection") proven = f->details["proven"].get<bool>();
    ASSERT_EQ(files.size(), 1u);
    EXPECT_EQ(f->details["evidence_pcap"], files[0]);
  }
  EXPECT_TRUE(ttl);
  EXPECT_TRUE(proven);
  ASSERT_EQ(files.size(), 1u);
  EXPECT_EQ(files[0], dir_ + "/evidence/cycle-1/" + m.uid + ".pcap");
  // The file opens and shows the same finding to `rasad pcap analyze`.
  std::ostringstream out, err;
  EXPECT_EQ(AnalyzePcapFile(files[0], out, err), 0) << err.str();
  EXPECT_NE(out.str().find("tcp.rst_ttl_anomaly"), std::string::npos) << out.str();
}

}  // namespace
}  // namespace rasad::capture
