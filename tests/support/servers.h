// Scripted servers on loopback for the probe's tests: real sockets, no mocks.
//
// Every server binds 127.0.0.1 on an ephemeral port (and, when ipv6 is true, also [::1] on the
// same port), serves from its own thread(s), handles many concurrent connections, and stops
// cleanly in its destructor (an eventfd wakes every poll(); all threads are joined).
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "tests/support/certs.h"

namespace rasad::testing {

enum class TcpBehaviour {
  kSilent,            // accept, read, never answer (TLS handshake / HTTP timeout)
  kResetOnFirstData,  // accept, read the first bytes (e.g. ClientHello), then RST
  kFinOnFirstData,    // read the first bytes then close normally (FIN)
  kResetOnAccept,     // RST immediately after accept
};

class ScriptedTcpServer {
 public:
  explicit ScriptedTcpServer(TcpBehaviour b, bool ipv6 = false);
  ~ScriptedTcpServer();
  ScriptedTcpServer(const ScriptedTcpServer&) = delete;
  ScriptedTcpServer& operator=(const ScriptedTcpServer&) = delete;

  uint16_t port() const;
  int connections() const;  // connections accepted so far

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

struct HttpResponse {
  int status = 200;
  std::string reason = "OK";
  std::vector<std::pair<std::string, std::string>> headers;  // Content-Length/Connection added
  std::string body;                                          // unless given here
  int delay_ms = 0;            // before answering (after the request was read)
  bool reset_instead = false;  // RST after reading the request, no answer
};

// HTTP/1.1 server, optionally over TLS (OpenSSL; ALPN http/1.1 selected when offered; TLS 1.2
// and 1.3). One request per connection, answered with "Connection: close". HEAD gets no body.
class HttpServer {
 public:
  explicit HttpServer(HttpResponse response, const Pem* tls = nullptr, bool ipv6 = false);
  ~HttpServer();
  HttpServer(const HttpServer&) = delete;
  HttpServer& operator=(const HttpServer&) = delete;

  void SetResponse(HttpResponse r);  // thread-safe; applies to requests read afterwards
  uint16_t port() const;
  int requests() const;                            // requests read (headers complete)
  std::vector<std::string> request_lines() const;  // e.g. "GET /path HTTP/1.1", in order
  std::vector<std::string> hosts() const;          // Host header of each request ("" if none)
  std::vector<std::string> snis() const;           // SNI of each TLS ClientHello ("" if none)

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// A TCP address on 127.0.0.1 whose SYNs are silently dropped, for connect-timeout tests
// without root: a listener with backlog 0 whose accept queue is filled by a held connection that
// is never accepted. Linux drops further SYNs while the accept queue is full
// (net.ipv4.tcp_abort_on_overflow=0, the default; also with syncookies on). The constructor
// checks this (a probe connect must not complete within 30 ms) and adds holders if needed.
class BlackholeEndpoint {
 public:
  BlackholeEndpoint();
  ~BlackholeEndpoint();
  BlackholeEndpoint(const BlackholeEndpoint&) = delete;
  BlackholeEndpoint& operator=(const BlackholeEndpoint&) = delete;
  uint16_t port() const { return port_; }

 private:
  int listen_fd_ = -1;
  std::vector<int> held_;
  uint16_t port_ = 0;
};

// Binds 127.0.0.1 port 0, reads the port, closes: connecting there gets connection refused.
uint16_t UnusedTcpPort();

}  // namespace rasad::testing
