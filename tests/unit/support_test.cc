// Proves the scripted servers in tests/support do what they claim, with plain socket and
// OpenSSL client code (no probe code involved).
#include <arpa/inet.h>
#include <fcntl.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509_vfy.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstring>
#include <filesystem>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "tests/support/certs.h"
#include "tests/support/dns_server.h"
#include "tests/support/dnsmasq.h"
#include "tests/support/servers.h"

namespace rasad::testing {
namespace {

using Clock = std::chrono::steady_clock;

int64_t MsSince(Clock::time_point t) {
  return std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - t).count();
}

// ----- plain socket helpers -----

int Connect(uint16_t port, bool v6 = false) {
  int fd = socket(v6 ? AF_INET6 : AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  int rc;
  if (v6) {
    sockaddr_in6 a{};
    a.sin6_family = AF_INET6;
    a.sin6_addr = in6addr_loopback;
    a.sin6_port = htons(port);
    rc = connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a);
  } else {
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    a.sin_port = htons(port);
    rc = connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a);
  }
  if (rc != 0) {
    int e = errno;
    close(fd);
    errno = e;
    return -1;
  }
  timeval tv{3, 0};
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  return fd;
}

bool Ipv6LoopbackUsable() {
  int fd = socket(AF_INET6, SOCK_STREAM, 0);
  if (fd < 0) return false;
  sockaddr_in6 a{};
  a.sin6_family = AF_INET6;
  a.sin6_addr = in6addr_loopback;
  bool ok = bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0;
  close(fd);
  return ok;
}

// Reads until EOF; returns what was read, errno of a failure in *err (0 if clean EOF).
std::string ReadAll(int fd, int* err) {
  std::string out;
  char buf[4096];
  *err = 0;
  while (true) {
    ssize_t n = recv(fd, buf, sizeof buf, 0);
    if (n > 0) {
      out.append(buf, static_cast<size_t>(n));
    } else if (n == 0) {
      return out;
    } else if (errno != EINTR) {
      *err = errno;
      return out;
    }
  }
}

std::string HttpExchange(uint16_t port, const std::string& request, int* err, bool v6 = false) {
  int fd = Connect(port, v6);
  if (fd < 0) {
    *err = errno;
    return "";
  }
  send(fd, request.data(), request.size(), MSG_NOSIGNAL);
  std::string out = ReadAll(fd, err);
  close(fd);
  return out;
}

std::string Get(uint16_t port, const std::string& path, const std::string& host, bool v6 = false) {
  int err = 0;
  return HttpExchange(port, "GET " + path + " HTTP/1.1\r\nHost: " + host + "\r\n\r\n", &err, v6);
}

// ----- TLS client -----

struct TlsResult {
  bool handshake = false;
  long verify = -1;
  std::string alpn, response;
};

// verify_name: a host name (checked against dNSName SANs) or an IP literal (iPAddress SANs).
TlsResult TlsGet(uint16_t port, const std::string& ca_file, const std::string& sni,
                 const std::string& verify_name) {
  TlsResult r;
  SSL_CTX* ctx = SSL_CTX_new(TLS_client_method());
  SSL_CTX_load_verify_locations(ctx, ca_file.c_str(), nullptr);
  SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, nullptr);
  static const unsigned char kAlpn[] = "\x02h2\x08http/1.1";
  SSL_CTX_set_alpn_protos(ctx, kAlpn, sizeof kAlpn - 1);
  SSL* ssl = SSL_new(ctx);
  if (!sni.empty()) SSL_set_tlsext_host_name(ssl, sni.c_str());
  X509_VERIFY_PARAM* param = SSL_get0_param(ssl);
  unsigned char ip[16];
  if (inet_pton(AF_INET, verify_name.c_str(), ip) == 1 ||
      inet_pton(AF_INET6, verify_name.c_str(), ip) == 1) {
    X509_VERIFY_PARAM_set1_ip_asc(param, verify_name.c_str());
  } else {
    X509_VERIFY_PARAM_set1_host(param, verify_name.c_str(), 0);
  }
  int fd = Connect(port);
  SSL_set_fd(ssl, fd);
  if (SSL_connect(ssl) == 1) {
    r.handshake = true;
    const unsigned char* proto = nullptr;
    unsigned len = 0;
    SSL_get0_alpn_selected(ssl, &proto, &len);
    r.alpn.assign(reinterpret_cast<const char*>(proto), len);
    std::string req = "GET /tls HTTP/1.1\r\nHost: " + verify_name + "\r\n\r\n";
    SSL_write(ssl, req.data(), static_cast<int>(req.size()));
    char buf[4096];
    int n;
    while ((n = SSL_read(ssl, buf, sizeof buf)) > 0) r.response.append(buf, n);
  }
  r.verify = SSL_get_verify_result(ssl);
  SSL_free(ssl);
  SSL_CTX_free(ctx);
  close(fd);
  ERR_clear_error();
  return r;
}

class TempDir {
 public:
  TempDir() {
    char tmpl[] = "/tmp/rasad-support-test-XXXXXX";
    path_ = mkdtemp(tmpl);
  }
  ~TempDir() { std::filesystem::remove_all(path_); }
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

// ----- DNS client -----

std::string BuildQuery(uint16_t id, const std::string& name, uint16_t qtype, bool edns = false) {
  std::string q = {
      static_cast<char>(id >> 8),     static_cast<char>(id & 0xff), 0x01, 0x00, 0, 1, 0, 0, 0, 0, 0,
      static_cast<char>(edns ? 1 : 0)};
  size_t start = 0;
  while (start < name.size()) {
    size_t dot = name.find('.', start);
    if (dot == std::string::npos) dot = name.size();
    q.push_back(static_cast<char>(dot - start));
    q += name.substr(start, dot - start);
    start = dot + 1;
  }
  q.push_back(0);
  q += {static_cast<char>(qtype >> 8), static_cast<char>(qtype & 0xff), 0, 1};
  if (edns) q += std::string("\0\0\x29\x10\x00\0\0\0\0\0\0", 11);  // OPT, 4096 bytes
  return q;
}

struct DnsReply {
  uint16_t id = 0, flags = 0;
  int rcode = -1, qd = 0, an = 0, ns = 0, ar = 0;
  std::string qname;  // as echoed (dotted, original case)
  struct Rr {
    uint16_t type;
    uint32_t ttl;
    std::string rdata;
  };
  std::vector<Rr> answers;
};

uint16_t U16(const std::string& s, size_t p) {
  return static_cast<uint16_t>((static_cast<uint8_t>(s[p]) << 8) | static_cast<uint8_t>(s[p + 1]));
}

bool SkipName(const std::string& m, size_t* p, std::string* dotted) {
  while (*p < m.size()) {
    uint8_t l = static_cast<uint8_t>(m[*p]);
    if ((l & 0xC0) == 0xC0) {
      *p += 2;
      return *p <= m.size();
    }
    if (l == 0) {
      ++*p;
      return true;
    }
    if (dotted != nullptr) {
      if (!dotted->empty()) *dotted += ".";
      *dotted += m.substr(*p + 1, l);
    }
    *p += 1 + l;
  }
  return false;
}

std::optional<DnsReply> Parse(const std::string& m) {
  if (m.size() < 12) return std::nullopt;
  DnsReply r;
  r.id = U16(m, 0);
  r.flags = U16(m, 2);
  r.rcode = r.flags & 0xF;
  r.qd = U16(m, 4);
  r.an = U16(m, 6);
  r.ns = U16(m, 8);
  r.ar = U16(m, 10);
  size_t p = 12;
  for (int i = 0; i < r.qd; ++i) {
    if (!SkipName(m, &p, i == 0 ? &r.qname : nullptr)) return std::nullopt;
    p += 4;
  }
  for (int i = 0; i < r.an; ++i) {
    if (!SkipName(m, &p, nullptr) || p + 10 > m.size()) return std::nullopt;
    DnsReply::Rr rr;
    rr.type = U16(m, p);
    rr.ttl = (uint32_t{U16(m, p + 4)} << 16) | U16(m, p + 6);
    size_t len = U16(m, p + 8);
    p += 10;
    if (p + len > m.size()) return std::nullopt;
    rr.rdata = m.substr(p, len);
    p += len;
    r.answers.push_back(rr);
  }
  return r;
}

std::optional<std::string> UdpExchange(uint16_t port, const std::string& pkt, int timeout_ms) {
  int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  a.sin_port = htons(port);
  connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a);
  send(fd, pkt.data(), pkt.size(), 0);
  std::optional<std::string> out;
  pollfd p{fd, POLLIN, 0};
  if (poll(&p, 1, timeout_ms) == 1) {
    char buf[65536];
    ssize_t n = recv(fd, buf, sizeof buf, 0);
    if (n >= 0) out = std::string(buf, static_cast<size_t>(n));
  }
  close(fd);
  return out;
}

std::optional<DnsReply> Udp(uint16_t port, const std::string& name, uint16_t qtype,
                            int timeout_ms = 2000) {
  auto raw = UdpExchange(port, BuildQuery(0xBEEF, name, qtype), timeout_ms);
  if (!raw) return std::nullopt;
  return Parse(*raw);
}

std::optional<DnsReply> Tcp(uint16_t port, const std::string& name, uint16_t qtype) {
  int fd = Connect(port);
  if (fd < 0) return std::nullopt;
  std::string q = BuildQuery(0x1234, name, qtype);
  std::string framed = {static_cast<char>(q.size() >> 8), static_cast<char>(q.size() & 0xff)};
  framed += q;
  send(fd, framed.data(), framed.size(), MSG_NOSIGNAL);
  std::string in;
  char buf[4096];
  while (in.size() < 2 || in.size() < 2u + U16(in, 0)) {
    ssize_t n = recv(fd, buf, sizeof buf, 0);
    if (n <= 0) break;
    in.append(buf, static_cast<size_t>(n));
  }
  close(fd);
  if (in.size() < 2 || in.size() < 2u + U16(in, 0)) return std::nullopt;
  return Parse(in.substr(2, U16(in, 0)));
}

std::string Ip4(const std::string& rdata) {
  char buf[INET_ADDRSTRLEN] = {0};
  if (rdata.size() == 4) inet_ntop(AF_INET, rdata.data(), buf, sizeof buf);
  return buf;
}

std::string Ip6(const std::string& rdata) {
  char buf[INET6_ADDRSTRLEN] = {0};
  if (rdata.size() == 16) inet_ntop(AF_INET6, rdata.data(), buf, sizeof buf);
  return buf;
}

// =============================================================================================
// CertKit + TLS HttpServer

class TlsTest : public ::testing::Test {
 protected:
  TempDir tmp_;
  CertKit kit_{tmp_.path() + "/pki"};
};

TEST_F(TlsTest, LeafVerifiesAgainstCaWithSniAlpnAndIpSan) {
  Pem leaf = kit_.Leaf({"a.test", "127.0.0.1"});
  HttpServer srv({200, "OK", {{"X-Test", "1"}}, "hello tls"}, &leaf);

  TlsResult r = TlsGet(srv.port(), kit_.ca_file(), "a.test", "a.test");
  EXPECT_TRUE(r.handshake);
  EXPECT_EQ(r.verify, X509_V_OK);
  EXPECT_EQ(r.alpn, "http/1.1");
  EXPECT_EQ(r.response.rfind("HTTP/1.1 200 OK\r\n", 0), 0u) << r.response;
  EXPECT_NE(r.response.find("X-Test: 1\r\n"), std::string::npos);
  EXPECT_NE(r.response.find("\r\n\r\nhello tls"), std::string::npos);

  // No SNI (IP literal): the iPAddress SAN verifies; the server records "" as SNI.
  TlsResult ip = TlsGet(srv.port(), kit_.ca_file(), "", "127.0.0.1");
  EXPECT_TRUE(ip.handshake);
  EXPECT_EQ(ip.verify, X509_V_OK);

  EXPECT_EQ(srv.snis(), (std::vector<std::string>{"a.test", ""}));
  EXPECT_EQ(srv.hosts(), (std::vector<std::string>{"a.test", "127.0.0.1"}));
  EXPECT_EQ(srv.request_lines(),
            (std::vector<std::string>{"GET /tls HTTP/1.1", "GET /tls HTTP/1.1"}));
  EXPECT_EQ(srv.requests(), 2);
}

TEST_F(TlsTest, BadCertificatesFailVerification) {
  Pem self = kit_.SelfSigned({"a.test"});
  Pem expired = kit_.Expired({"a.test"});
  Pem other = kit_.Leaf({"other.test"});
  HttpServer s1({}, &self), s2({}, &expired), s3({}, &other);

  TlsResult r1 = TlsGet(s1.port(), kit_.ca_file(), "a.test", "a.test");
  EXPECT_FALSE(r1.handshake);
  EXPECT_EQ(r1.verify, X509_V_ERR_DEPTH_ZERO_SELF_SIGNED_CERT);
  TlsResult r2 = TlsGet(s2.port(), kit_.ca_file(), "a.test", "a.test");
  EXPECT_FALSE(r2.handshake);
  EXPECT_EQ(r2.verify, X509_V_ERR_CERT_HAS_EXPIRED);
  TlsResult r3 = TlsGet(s3.port(), kit_.ca_file(), "a.test", "a.test");
  EXPECT_FALSE(r3.handshake);
  EXPECT_EQ(r3.verify, X509_V_ERR_HOSTNAME_MISMATCH);
  // The ClientHello was seen even though the handshake failed.
  EXPECT_EQ(s1.snis(), std::vector<std::string>{"a.test"});
  EXPECT_EQ(s1.requests(), 0);
}

TEST_F(TlsTest, WriteFilesAndCa) {
  Pem ca = kit_.Ca();
  EXPECT_NE(ca.cert_pem.find("BEGIN CERTIFICATE"), std::string::npos);
  EXPECT_TRUE(std::filesystem::exists(kit_.ca_file()));
  std::string stem = kit_.WriteFiles(kit_.Leaf({"f.test"}), "f");
  EXPECT_EQ(stem, tmp_.path() + "/pki/f");
  SSL_CTX* ctx = SSL_CTX_new(TLS_server_method());
  EXPECT_EQ(SSL_CTX_use_certificate_file(ctx, (stem + ".crt").c_str(), SSL_FILETYPE_PEM), 1);
  EXPECT_EQ(SSL_CTX_use_PrivateKey_file(ctx, (stem + ".key").c_str(), SSL_FILETYPE_PEM), 1);
  EXPECT_EQ(SSL_CTX_check_private_key(ctx), 1);
  SSL_CTX_free(ctx);
}

// =============================================================================================
// HttpServer (plain)

TEST(HttpServerTest, AnswersAndRecords) {
  HttpServer srv({200, "OK", {{"Content-Type", "text/plain"}}, "body!"});
  std::string r = Get(srv.port(), "/a?b=1", "example.test");
  EXPECT_EQ(r,
            "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 5\r\n"
            "Connection: close\r\n\r\nbody!");
  srv.SetResponse({404, "Not Found", {}, "nope"});
  r = Get(srv.port(), "/missing", "other.test");
  EXPECT_EQ(r.rfind("HTTP/1.1 404 Not Found\r\n", 0), 0u) << r;
  int err = 0;
  r = HttpExchange(srv.port(), "HEAD / HTTP/1.1\r\nHost: h\r\n\r\n", &err);
  EXPECT_EQ(r, "HTTP/1.1 404 Not Found\r\nContent-Length: 4\r\nConnection: close\r\n\r\n");
  r = HttpExchange(srv.port(), "POST /p HTTP/1.1\r\nHost: h\r\nContent-Length: 3\r\n\r\nabc", &err);
  EXPECT_EQ(err, 0);  // the body was read: closing did not RST
  EXPECT_EQ(srv.requests(), 4);
  EXPECT_EQ(srv.request_lines(),
            (std::vector<std::string>{"GET /a?b=1 HTTP/1.1", "GET /missing HTTP/1.1",
                                      "HEAD / HTTP/1.1", "POST /p HTTP/1.1"}));
  EXPECT_EQ(srv.hosts(), (std::vector<std::string>{"example.test", "other.test", "h", "h"}));
  EXPECT_TRUE(srv.snis().empty());
}

TEST(HttpServerTest, DelayAndReset) {
  HttpResponse slow;
  slow.delay_ms = 150;
  slow.body = "late";
  HttpServer srv(slow);
  auto t0 = Clock::now();
  std::string r = Get(srv.port(), "/", "h");
  EXPECT_GE(MsSince(t0), 140);
  EXPECT_NE(r.find("late"), std::string::npos);

  HttpResponse reset;
  reset.reset_instead = true;
  srv.SetResponse(reset);
  int err = 0;
  r = HttpExchange(srv.port(), "GET / HTTP/1.1\r\nHost: h\r\n\r\n", &err);
  EXPECT_EQ(r, "");
  EXPECT_EQ(err, ECONNRESET);
  EXPECT_EQ(srv.requests(), 2);
}

TEST(HttpServerTest, ConcurrentClientsAndIpv6) {
  HttpServer srv({200, "OK", {}, "x"}, nullptr, Ipv6LoopbackUsable());
  std::atomic<int> ok{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 64; ++t) {
    threads.emplace_back([&] {
      for (int i = 0; i < 4; ++i) {
        if (Get(srv.port(), "/c", "h").find("\r\n\r\nx") != std::string::npos) ++ok;
      }
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(ok.load(), 256);
  EXPECT_EQ(srv.requests(), 256);
  if (Ipv6LoopbackUsable()) {
    EXPECT_NE(Get(srv.port(), "/v6", "[::1]", true).find("200 OK"), std::string::npos);
  }
}

TEST(HttpServerTest, DestructorDoesNotHangOnIdleClient) {
  auto t0 = Clock::now();
  int fd;
  {
    HttpServer srv({});
    fd = Connect(srv.port());  // never sends a request
    send(fd, "GET", 3, MSG_NOSIGNAL);
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  EXPECT_LT(MsSince(t0), 1000);
  close(fd);
}

// =============================================================================================
// ScriptedTcpServer, BlackholeEndpoint, UnusedTcpPort

TEST(ScriptedTcpServerTest, Silent) {
  ScriptedTcpServer srv(TcpBehaviour::kSilent);
  int fd = Connect(srv.port());
  ASSERT_GE(fd, 0);
  send(fd, "\x16\x03\x01", 3, MSG_NOSIGNAL);
  pollfd p{fd, POLLIN, 0};
  EXPECT_EQ(poll(&p, 1, 150), 0);  // nothing, not even EOF
  close(fd);
  EXPECT_EQ(srv.connections(), 1);
}

TEST(ScriptedTcpServerTest, ResetOnFirstData) {
  ScriptedTcpServer srv(TcpBehaviour::kResetOnFirstData);
  int fd = Connect(srv.port());
  send(fd, "\x16\x03\x01hello", 8, MSG_NOSIGNAL);
  char c;
  EXPECT_EQ(recv(fd, &c, 1, 0), -1);
  EXPECT_EQ(errno, ECONNRESET);
  close(fd);
}

TEST(ScriptedTcpServerTest, FinOnFirstData) {
  ScriptedTcpServer srv(TcpBehaviour::kFinOnFirstData);
  int fd = Connect(srv.port());
  send(fd, "hello", 5, MSG_NOSIGNAL);
  char c;
  EXPECT_EQ(recv(fd, &c, 1, 0), 0);  // clean EOF
  // Writing more after the FIN still does not make the server reset us.
  send(fd, "more", 4, MSG_NOSIGNAL);
  std::this_thread::sleep_for(std::chrono::milliseconds(20));
  EXPECT_EQ(recv(fd, &c, 1, MSG_DONTWAIT), 0);
  close(fd);
}

TEST(ScriptedTcpServerTest, ResetOnAcceptManyConnectionsAndIpv6) {
  bool v6 = Ipv6LoopbackUsable();
  ScriptedTcpServer srv(TcpBehaviour::kResetOnAccept, v6);
  for (int i = 0; i < 5; ++i) {
    int fd = Connect(srv.port(), v6 && i % 2 == 1);
    ASSERT_GE(fd, 0);
    char c;
    EXPECT_EQ(recv(fd, &c, 1, 0), -1);
    EXPECT_EQ(errno, ECONNRESET);
    close(fd);
  }
  EXPECT_EQ(srv.connections(), 5);
}

TEST(ScriptedTcpServerTest, ConcurrentSilentConnections) {
  ScriptedTcpServer srv(TcpBehaviour::kSilent);
  std::vector<int> fds;
  for (int i = 0; i < 20; ++i) fds.push_back(Connect(srv.port()));
  auto t0 = Clock::now();
  while (srv.connections() < 20 && MsSince(t0) < 2000) {
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
  }
  EXPECT_EQ(srv.connections(), 20);
  for (int fd : fds) close(fd);
}

TEST(BlackholeTest, ConnectTimesOut) {
  BlackholeEndpoint hole;
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  a.sin_port = htons(hole.port());
  ASSERT_EQ(connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a), -1);
  ASSERT_EQ(errno, EINPROGRESS);
  pollfd p{fd, POLLOUT, 0};
  EXPECT_EQ(poll(&p, 1, 300), 0);  // no SYN-ACK, no RST
  close(fd);
}

TEST(UnusedTcpPortTest, Refused) {
  uint16_t port = UnusedTcpPort();
  ASSERT_NE(port, 0);
  EXPECT_EQ(Connect(port), -1);
  EXPECT_EQ(errno, ECONNREFUSED);
}

// =============================================================================================
// DnsServer

TEST(DnsServerTest, AnswersAWithTtlAndEchoesQuestion) {
  DnsServer dns;
  DnsRule rule;
  rule.a = {"192.0.2.1", "192.0.2.2"};
  rule.aaaa = {"2001:db8::1"};
  rule.ttl = 123;
  dns.Set("Ok.Test.", rule);

  auto r = Udp(dns.port(), "oK.tEST", 1);
  ASSERT_TRUE(r);
  EXPECT_EQ(r->id, 0xBEEF);
  EXPECT_EQ(r->flags, 0x8580);  // QR AA RD RA, NOERROR
  EXPECT_EQ(r->qname, "oK.tEST");
  EXPECT_EQ(r->qd, 1);
  ASSERT_EQ(r->answers.size(), 2u);
  EXPECT_EQ(r->answers[0].type, 1);
  EXPECT_EQ(r->answers[0].ttl, 123u);
  EXPECT_EQ(Ip4(r->answers[0].rdata), "192.0.2.1");
  EXPECT_EQ(Ip4(r->answers[1].rdata), "192.0.2.2");

  r = Udp(dns.port(), "ok.test", 28);
  ASSERT_TRUE(r);
  ASSERT_EQ(r->answers.size(), 1u);
  EXPECT_EQ(r->answers[0].type, 28);
  EXPECT_EQ(Ip6(r->answers[0].rdata), "2001:db8::1");

  r = Udp(dns.port(), "ok.test", 16);  // TXT: NODATA
  ASSERT_TRUE(r);
  EXPECT_EQ(r->rcode, 0);
  EXPECT_EQ(r->an, 0);

  EXPECT_EQ(dns.queries(), 3);
  EXPECT_EQ(dns.qnames(), (std::vector<std::string>{"ok.test", "ok.test", "ok.test"}));
}

TEST(DnsServerTest, Rcodes) {
  DnsServer dns;
  DnsRule r;
  r.kind = DnsRule::kServfail;
  dns.Set("sf.test", r);
  r.kind = DnsRule::kRefused;
  dns.Set("ref.test", r);
  r.kind = DnsRule::kNxdomain;
  dns.Set("nx.test", r);
  r.kind = DnsRule::kNoData;
  dns.Set("nodata.test", r);
  r.kind = DnsRule::kDrop;
  dns.Set("drop.test", r);

  EXPECT_EQ(Udp(dns.port(), "sf.test", 1)->rcode, 2);
  EXPECT_EQ(Udp(dns.port(), "ref.test", 1)->rcode, 5);
  EXPECT_EQ(Udp(dns.port(), "nx.test", 1)->rcode, 3);
  EXPECT_EQ(Udp(dns.port(), "unknown.test", 1)->rcode, 3);  // default
  auto nodata = Udp(dns.port(), "nodata.test", 1);
  EXPECT_EQ(nodata->rcode, 0);
  EXPECT_EQ(nodata->an, 0);
  EXPECT_FALSE(Udp(dns.port(), "drop.test", 1, 300));
  EXPECT_EQ(dns.queries(), 6);
}

TEST(DnsServerTest, TcpEdnsTruncationAndDelay) {
  DnsServer dns;
  DnsRule big;
  for (int i = 1; i <= 40; ++i) big.a.push_back("10.0.0." + std::to_string(i));
  dns.Set("big.test", big);
  DnsRule one;
  one.a = {"127.0.0.1"};
  dns.Set("one.test", one);
  DnsRule slow = one;
  slow.delay_ms = 150;
  dns.Set("slow.test", slow);

  auto tcp = Tcp(dns.port(), "one.test", 1);
  ASSERT_TRUE(tcp);
  EXPECT_EQ(tcp->id, 0x1234);
  ASSERT_EQ(tcp->answers.size(), 1u);
  EXPECT_EQ(Ip4(tcp->answers[0].rdata), "127.0.0.1");

  // 40 A records do not fit in 512 bytes: TC over UDP, everything over TCP or with EDNS.
  auto udp = Udp(dns.port(), "big.test", 1);
  ASSERT_TRUE(udp);
  EXPECT_TRUE(udp->flags & 0x0200);
  EXPECT_EQ(udp->an, 0);
  EXPECT_EQ(Tcp(dns.port(), "big.test", 1)->answers.size(), 40u);
  auto edns = UdpExchange(dns.port(), BuildQuery(7, "big.test", 1, true), 2000);
  ASSERT_TRUE(edns);
  auto er = Parse(*edns);
  ASSERT_TRUE(er);
  EXPECT_FALSE(er->flags & 0x0200);
  EXPECT_EQ(er->answers.size(), 40u);
  EXPECT_EQ(er->ar, 0);

  // A delayed answer does not hold up other queries.
  auto t0 = Clock::now();
  std::optional<DnsReply> slow_reply;
  std::thread th([&] { slow_reply = Udp(dns.port(), "slow.test", 1); });
  std::this_thread::sleep_for(std::chrono::milliseconds(20));
  EXPECT_TRUE(Udp(dns.port(), "one.test", 1));
  EXPECT_LT(MsSince(t0), 140);
  th.join();
  EXPECT_GE(MsSince(t0), 145);
  ASSERT_TRUE(slow_reply);
  EXPECT_EQ(slow_reply->answers.size(), 1u);
}

TEST(DnsServerTest, MalformedPacketsGetNoAnswerAndDoNotCrash) {
  DnsServer dns;
  DnsRule rule;
  rule.a = {"127.0.0.1"};
  dns.Set("ok.test", rule);
  std::string good = BuildQuery(1, "ok.test", 1);
  std::vector<std::string> bad = {
      "",
      std::string("\x00\x01", 2),
      good.substr(0, 12),               // header only
      good.substr(0, good.size() - 2),  // truncated qtype
      std::string("\x00\x01\x01\x00\x00\x01\x00\x00\x00\x00\x00\x00\xc0\x0c\x00\x01\x00\x01",
                  18),  // pointer loop in the question
      std::string("\x00\x01\x01\x00\x00\x01\x00\x00\x00\x00\x00\x00\x3f\x61\x00\x00\x01", 17),
      std::string("\x00\x01\x81\x00\x00\x01\x00\x00\x00\x00\x00\x00\x00\x00\x01\x00\x01",
                  17),  // QR set
      std::string("\x00\x01\x01\x00\x00\x02\x00\x00\x00\x00\x00\x00\x00\x00\x01\x00\x01",
                  17),  // qdcount 2
  };
  for (const auto& b : bad) EXPECT_FALSE(UdpExchange(dns.port(), b, 30)) << b.size();
  // Garbage over TCP, then a good query on a fresh connection.
  int fd = Connect(dns.port());
  send(fd, "\x00\x05\xff\xff\xff\xff\xff\x00", 8, MSG_NOSIGNAL);
  close(fd);
  EXPECT_EQ(dns.queries(), 0);
  auto r = Udp(dns.port(), "ok.test", 1);
  ASSERT_TRUE(r);
  EXPECT_EQ(r->answers.size(), 1u);
  // A compression pointer in the question (to a name later in the packet) is followed.
  std::string ptr(
      "\x00\x02\x01\x00\x00\x01\x00\x00\x00\x00\x00\x00\xc0\x12\x00\x01\x00\x01"
      "\x02ok\x04test\x00",
      27);
  auto raw = UdpExchange(dns.port(), ptr, 1000);
  ASSERT_TRUE(raw);
  EXPECT_EQ(Parse(*raw)->answers.size(), 1u);
}

// =============================================================================================
// Dnsmasq

TEST(DnsmasqTest, AnswersLikeDocumented) {
  if (!Dnsmasq::Available()) GTEST_SKIP() << "dnsmasq not installed";
  DnsServer upstream;
  DnsRule sf;
  sf.kind = DnsRule::kServfail;
  upstream.Set("sf.test", sf);
  Dnsmasq dm({"address=/ok.test/127.0.0.1", "address=/v6.test/::1", "address=/nx.test/",
              "address=/both.test/127.0.0.2", "local=/both.test/",
              "server=/sf.test/127.0.0.1#" + std::to_string(upstream.port())});
  ASSERT_TRUE(dm.ok()) << dm.error();
  ASSERT_NE(dm.port(), 0);

  auto a = Udp(dm.port(), "ok.test", 1);
  ASSERT_TRUE(a);
  EXPECT_EQ(a->rcode, 0);
  ASSERT_EQ(a->answers.size(), 1u);
  EXPECT_EQ(Ip4(a->answers[0].rdata), "127.0.0.1");
  EXPECT_EQ(Ip4(Udp(dm.port(), "sub.ok.test", 1)->answers.at(0).rdata), "127.0.0.1");
  EXPECT_EQ(Udp(dm.port(), "ok.test", 28)->rcode, 5);  // AAAA forwarded, no server: REFUSED
  auto v6 = Udp(dm.port(), "v6.test", 28);
  ASSERT_TRUE(v6);
  EXPECT_EQ(Ip6(v6->answers.at(0).rdata), "::1");
  EXPECT_EQ(Udp(dm.port(), "nx.test", 1)->rcode, 3);
  EXPECT_EQ(Udp(dm.port(), "nx.test", 28)->rcode, 3);
  auto nodata = Udp(dm.port(), "both.test", 28);
  EXPECT_EQ(nodata->rcode, 0);
  EXPECT_EQ(nodata->an, 0);
  EXPECT_EQ(Udp(dm.port(), "unknown.test", 1)->rcode, 5);
  EXPECT_EQ(Udp(dm.port(), "sf.test", 1)->rcode, 2);
  EXPECT_EQ(upstream.qnames(), std::vector<std::string>{"sf.test"});
  auto tcp = Tcp(dm.port(), "ok.test", 1);
  ASSERT_TRUE(tcp);
  EXPECT_EQ(tcp->answers.size(), 1u);
}

TEST(DnsmasqTest, LocalHashMakesUnknownNamesNxdomain) {
  if (!Dnsmasq::Available()) GTEST_SKIP() << "dnsmasq not installed";
  DnsServer upstream;
  DnsRule sf;
  sf.kind = DnsRule::kServfail;
  upstream.Set("sf.test", sf);
  Dnsmasq dm({"local=/#/", "host-record=hr.test,127.0.0.1",
              "server=/sf.test/127.0.0.1#" + std::to_string(upstream.port())});
  ASSERT_TRUE(dm.ok()) << dm.error();
  EXPECT_EQ(Udp(dm.port(), "unknown.test", 1)->rcode, 3);
  EXPECT_EQ(Ip4(Udp(dm.port(), "hr.test", 1)->answers.at(0).rdata), "127.0.0.1");
  auto nodata = Udp(dm.port(), "hr.test", 28);
  EXPECT_EQ(nodata->rcode, 0);
  EXPECT_EQ(nodata->an, 0);
  EXPECT_EQ(Udp(dm.port(), "sf.test", 1)->rcode, 2);
}

TEST(DnsmasqTest, BadConfigIsReported) {
  if (!Dnsmasq::Available()) GTEST_SKIP() << "dnsmasq not installed";
  Dnsmasq dm({"this-is-not-an-option=1"});
  EXPECT_FALSE(dm.ok());
  EXPECT_NE(dm.error(), "");
}

}  // namespace
}  // namespace rasad::testing
