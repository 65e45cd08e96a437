#include "tests/support/servers.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <poll.h>
#include <signal.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cctype>
#include <cerrno>
#include <chrono>
#include <condition_variable>
#include <cstring>
#include <deque>
#include <mutex>
#include <stdexcept>
#include <thread>

namespace rasad::testing {
namespace {

using Clock = std::chrono::steady_clock;

// Level-triggered stop flag: once Signal()ed, fd() stays readable forever, so every poll() that
// includes it returns at once.
class StopSignal {
 public:
  StopSignal() : fd_(eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK)) {
    if (fd_ < 0) throw std::runtime_error("eventfd failed");
  }
  ~StopSignal() { close(fd_); }
  void Signal() {
    uint64_t one = 1;
    ssize_t n = write(fd_, &one, sizeof one);
    (void)n;
  }
  int fd() const { return fd_; }

 private:
  int fd_;
};

void BlockSigpipe() {
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGPIPE);
  pthread_sigmask(SIG_BLOCK, &set, nullptr);
}

// Abortive close: the kernel sends RST instead of FIN.
void ResetClose(int fd) {
  linger l{1, 0};
  setsockopt(fd, SOL_SOCKET, SO_LINGER, &l, sizeof l);
  close(fd);
}

int ListenOn(int family, uint16_t port, int backlog) {
  int fd = socket(family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
  if (fd < 0) return -1;
  int one = 1;
  setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  int rc;
  if (family == AF_INET6) {
    setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof one);
    sockaddr_in6 a{};
    a.sin6_family = AF_INET6;
    a.sin6_addr = in6addr_loopback;
    a.sin6_port = htons(port);
    rc = bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a);
  } else {
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    a.sin_port = htons(port);
    rc = bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a);
  }
  if (rc != 0 || listen(fd, backlog) != 0) {
    close(fd);
    return -1;
  }
  return fd;
}

uint16_t LocalPort(int fd) {
  sockaddr_storage ss{};
  socklen_t len = sizeof ss;
  if (getsockname(fd, reinterpret_cast<sockaddr*>(&ss), &len) != 0) return 0;
  if (ss.ss_family == AF_INET6) return ntohs(reinterpret_cast<sockaddr_in6*>(&ss)->sin6_port);
  return ntohs(reinterpret_cast<sockaddr_in*>(&ss)->sin_port);
}

// 127.0.0.1:P and, if ipv6, [::1]:P on the same ephemeral port.
std::vector<int> ListenLoopback(bool ipv6, uint16_t* port) {
  for (int attempt = 0; attempt < 50; ++attempt) {
    int v4 = ListenOn(AF_INET, 0, 1024);
    if (v4 < 0)
      throw std::runtime_error(std::string("listen 127.0.0.1 failed: ") + strerror(errno));
    uint16_t p = LocalPort(v4);
    if (!ipv6) {
      *port = p;
      return {v4};
    }
    int v6 = ListenOn(AF_INET6, p, 1024);
    if (v6 >= 0) {
      *port = p;
      return {v4, v6};
    }
    int err = errno;
    close(v4);
    if (err != EADDRINUSE) {
      throw std::runtime_error(std::string("listen [::1] failed: ") + strerror(err));
    }
  }
  throw std::runtime_error("cannot listen on 127.0.0.1 and ::1 with the same port");
}

// Waits for `events` on fd, or stop, or timeout. Returns 1 ready, 0 timeout, -1 stop/error.
int WaitFd(int fd, short events, int stop_fd, int timeout_ms) {
  pollfd p[2] = {{stop_fd, POLLIN, 0}, {fd, events, 0}};
  int n = fd >= 0 ? 2 : 1;
  while (true) {
    int rc = poll(p, n, timeout_ms);
    if (rc < 0 && errno == EINTR) continue;
    if (rc < 0) return -1;
    if (rc == 0) return 0;
    if (p[0].revents != 0) return -1;
    return 1;
  }
}

int MsLeft(Clock::time_point deadline) {
  auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now());
  return static_cast<int>(std::max<int64_t>(0, left.count()));
}

std::string Lower(std::string s) {
  for (auto& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

std::string Trim(const std::string& s) {
  size_t b = s.find_first_not_of(" \t");
  if (b == std::string::npos) return "";
  size_t e = s.find_last_not_of(" \t\r");
  return s.substr(b, e - b + 1);
}

}  // namespace

// ---------------------------------------------------------------------------------------------
// ScriptedTcpServer

struct ScriptedTcpServer::Impl {
  enum class State { kOpen, kDraining };  // kDraining: FIN sent, reading until the peer's EOF
  struct Conn {
    int fd;
    State state;
  };

  TcpBehaviour behaviour;
  std::vector<int> listen_fds;
  uint16_t port = 0;
  StopSignal stop;
  std::atomic<int> connections{0};
  std::vector<Conn> conns;
  std::thread thread;

  void Run() {
    BlockSigpipe();
    std::vector<pollfd> pfds;
    while (true) {
      pfds.clear();
      pfds.push_back({stop.fd(), POLLIN, 0});
      for (int fd : listen_fds) pfds.push_back({fd, POLLIN, 0});
      for (const auto& c : conns) pfds.push_back({c.fd, POLLIN, 0});
      int rc = poll(pfds.data(), pfds.size(), -1);
      if (rc < 0 && errno == EINTR) continue;
      if (rc < 0 || pfds[0].revents != 0) return;
      size_t i = 1;
      for (; i <= listen_fds.size(); ++i) {
        if (pfds[i].revents & POLLIN) AcceptAll(pfds[i].fd);
      }
      std::vector<Conn> keep;
      size_t n_old = pfds.size() - i;
      for (size_t k = 0; k < n_old; ++k) {
        Conn c = conns[k];
        if (pfds[i + k].revents == 0 || !Serve(c)) keep.push_back(c);
      }
      // Connections accepted during this round were appended after the polled ones.
      for (size_t k = n_old; k < conns.size(); ++k) keep.push_back(conns[k]);
      conns.swap(keep);
    }
  }

  void AcceptAll(int lfd) {
    while (true) {
      int fd = accept4(lfd, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
      if (fd < 0) return;
      connections.fetch_add(1);
      if (behaviour == TcpBehaviour::kResetOnAccept) {
        ResetClose(fd);
      } else {
        conns.push_back({fd, State::kOpen});
      }
    }
  }

  // Returns true when the connection is finished (fd closed).
  bool Serve(Conn& c) {
    char buf[16384];
    size_t got = 0;
    bool eof = false;
    while (true) {
      ssize_t n = recv(c.fd, buf, sizeof buf, 0);
      if (n > 0) {
        got += static_cast<size_t>(n);
        continue;
      }
      if (n < 0 && errno == EINTR) continue;
      if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) break;
      eof = true;  // 0 or a hard error
      break;
    }
    if (c.state == State::kDraining || behaviour == TcpBehaviour::kSilent) {
      if (eof) close(c.fd);
      return eof;
    }
    if (got > 0 && behaviour == TcpBehaviour::kResetOnFirstData) {
      ResetClose(c.fd);
      return true;
    }
    if (eof) {
      close(c.fd);
      return true;
    }
    if (got > 0 && behaviour == TcpBehaviour::kFinOnFirstData) {
      shutdown(c.fd, SHUT_WR);  // FIN now; keep reading so late data does not turn into RST
      c.state = State::kDraining;
    }
    return false;
  }
};

ScriptedTcpServer::ScriptedTcpServer(TcpBehaviour b, bool ipv6) : impl_(new Impl) {
  impl_->behaviour = b;
  impl_->listen_fds = ListenLoopback(ipv6, &impl_->port);
  impl_->thread = std::thread([this] { impl_->Run(); });
}

ScriptedTcpServer::~ScriptedTcpServer() {
  impl_->stop.Signal();
  impl_->thread.join();
  for (const auto& c : impl_->conns) close(c.fd);
  for (int fd : impl_->listen_fds) close(fd);
}

uint16_t ScriptedTcpServer::port() const { return impl_->port; }
int ScriptedTcpServer::connections() const { return impl_->connections.load(); }

// ---------------------------------------------------------------------------------------------
// HttpServer

namespace {

constexpr int kMaxWorkers = 256;
constexpr int kIoTimeoutMs = 10000;  // per connection, for reading the request / writing
constexpr int kDrainMs = 2000;       // after the answer, wait this long for the client's EOF
constexpr size_t kMaxHeader = 64 * 1024;

}  // namespace

struct HttpServer::Impl {
  std::vector<int> listen_fds;
  uint16_t port = 0;
  SSL_CTX* ctx = nullptr;
  StopSignal stop;
  std::thread acceptor;

  mutable std::mutex mu;  // guards everything below
  HttpResponse response;
  std::vector<std::string> request_lines, hosts, snis;
  std::atomic<int> requests{0};

  std::mutex pool_mu;
  std::condition_variable pool_cv;
  std::deque<int> queue;
  std::vector<std::thread> workers;
  size_t idle = 0;
  bool stopping = false;

  void AcceptLoop();
  void Worker();
  void Handle(int fd);
};

namespace {

struct ConnInfo {
  std::mutex* mu;
  std::vector<std::string>* snis;
  bool sni_recorded = false;
};

std::string ParseSni(SSL* ssl) {
  const unsigned char* p = nullptr;
  size_t len = 0;
  if (SSL_client_hello_get0_ext(ssl, TLSEXT_TYPE_server_name, &p, &len) != 1 || len < 2) return "";
  size_t list_len = (size_t{p[0]} << 8) | p[1];
  size_t pos = 2, end = std::min(len, 2 + list_len);
  while (pos + 3 <= end) {
    unsigned type = p[pos];
    size_t n = (size_t{p[pos + 1]} << 8) | p[pos + 2];
    pos += 3;
    if (pos + n > end) break;
    if (type == 0) return std::string(reinterpret_cast<const char*>(p + pos), n);
    pos += n;
  }
  return "";
}

int ClientHelloCb(SSL* ssl, int* /*al*/, void* /*arg*/) {
  auto* info = static_cast<ConnInfo*>(SSL_get_app_data(ssl));
  if (info != nullptr && !info->sni_recorded) {
    info->sni_recorded = true;
    std::string sni = ParseSni(ssl);
    std::lock_guard<std::mutex> lock(*info->mu);
    info->snis->push_back(sni);
  }
  return SSL_CLIENT_HELLO_SUCCESS;
}

int AlpnCb(SSL* /*ssl*/, const unsigned char** out, unsigned char* outlen, const unsigned char* in,
           unsigned int inlen, void* /*arg*/) {
  static const unsigned char kProtos[] = "\x08http/1.1";
  unsigned char* sel = nullptr;
  if (SSL_select_next_proto(&sel, outlen, kProtos, sizeof kProtos - 1, in, inlen) ==
      OPENSSL_NPN_NEGOTIATED) {
    *out = sel;
    return SSL_TLSEXT_ERR_OK;
  }
  return SSL_TLSEXT_ERR_NOACK;
}

[[noreturn]] void TlsFail(const std::string& what) {
  char buf[256] = {0};
  unsigned long e = ERR_get_error();
  if (e != 0) ERR_error_string_n(e, buf, sizeof buf);
  ERR_clear_error();
  throw std::runtime_error("HttpServer TLS: " + what + " " + buf);
}

SSL_CTX* MakeServerCtx(const Pem& pem) {
  SSL_CTX* ctx = SSL_CTX_new(TLS_server_method());
  if (ctx == nullptr) TlsFail("SSL_CTX_new");
  SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
  BIO* bio = BIO_new_mem_buf(pem.cert_pem.data(), static_cast<int>(pem.cert_pem.size()));
  X509* leaf = PEM_read_bio_X509(bio, nullptr, nullptr, nullptr);
  if (leaf == nullptr || SSL_CTX_use_certificate(ctx, leaf) != 1) {
    X509_free(leaf);
    BIO_free(bio);
    SSL_CTX_free(ctx);
    TlsFail("certificate");
  }
  X509_free(leaf);
  while (X509* extra = PEM_read_bio_X509(bio, nullptr, nullptr, nullptr)) {
    SSL_CTX_add0_chain_cert(ctx, extra);  // takes ownership
  }
  ERR_clear_error();  // the loop above ends with a "no start line" error
  BIO_free(bio);
  bio = BIO_new_mem_buf(pem.key_pem.data(), static_cast<int>(pem.key_pem.size()));
  EVP_PKEY* key = PEM_read_bio_PrivateKey(bio, nullptr, nullptr, nullptr);
  BIO_free(bio);
  if (key == nullptr || SSL_CTX_use_PrivateKey(ctx, key) != 1 ||
      SSL_CTX_check_private_key(ctx) != 1) {
    EVP_PKEY_free(key);
    SSL_CTX_free(ctx);
    TlsFail("private key");
  }
  EVP_PKEY_free(key);
  SSL_CTX_set_client_hello_cb(ctx, ClientHelloCb, nullptr);
  SSL_CTX_set_alpn_select_cb(ctx, AlpnCb, nullptr);
  return ctx;
}

// A connection, plain or TLS, with deadline- and stop-aware blocking I/O over a non-blocking fd.
class Stream {
 public:
  Stream(int fd, SSL* ssl, int stop_fd) : fd_(fd), ssl_(ssl), stop_fd_(stop_fd) {}

  bool Handshake(Clock::time_point deadline) {
    while (true) {
      ERR_clear_error();
      int r = SSL_accept(ssl_);
      if (r == 1) return true;
      if (!WaitSsl(SSL_get_error(ssl_, r), deadline)) return false;
    }
  }

  // >0 bytes, 0 EOF, -1 error/timeout/stop.
  ssize_t Read(char* buf, size_t cap, Clock::time_point deadline) {
    while (true) {
      if (ssl_ != nullptr) {
        ERR_clear_error();
        size_t n = 0;
        int r = SSL_read_ex(ssl_, buf, cap, &n);
        if (r == 1) return static_cast<ssize_t>(n);
        int err = SSL_get_error(ssl_, r);
        if (err == SSL_ERROR_ZERO_RETURN) return 0;
        if (err == SSL_ERROR_SYSCALL && ERR_peek_error() == 0) return 0;  // EOF w/o close_notify
        if (!WaitSsl(err, deadline)) return -1;
      } else {
        ssize_t n = recv(fd_, buf, cap, 0);
        if (n >= 0) return n;
        if (errno == EINTR) continue;
        if (errno != EAGAIN && errno != EWOULDBLOCK) return -1;
        if (WaitFd(fd_, POLLIN, stop_fd_, MsLeft(deadline)) != 1) return -1;
      }
    }
  }

  bool WriteAll(const std::string& data, Clock::time_point deadline) {
    size_t off = 0;
    while (off < data.size()) {
      if (ssl_ != nullptr) {
        ERR_clear_error();
        size_t n = 0;
        int r = SSL_write_ex(ssl_, data.data() + off, data.size() - off, &n);
        if (r == 1) {
          off += n;
          continue;
        }
        if (!WaitSsl(SSL_get_error(ssl_, r), deadline)) return false;
      } else {
        ssize_t n = send(fd_, data.data() + off, data.size() - off, MSG_NOSIGNAL);
        if (n > 0) {
          off += static_cast<size_t>(n);
          continue;
        }
        if (n < 0 && errno == EINTR) continue;
        if (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK) return false;
        if (WaitFd(fd_, POLLOUT, stop_fd_, MsLeft(deadline)) != 1) return false;
      }
    }
    return true;
  }

 private:
  bool WaitSsl(int err, Clock::time_point deadline) {
    short ev;
    if (err == SSL_ERROR_WANT_READ) {
      ev = POLLIN;
    } else if (err == SSL_ERROR_WANT_WRITE) {
      ev = POLLOUT;
    } else {
      ERR_clear_error();
      return false;
    }
    return WaitFd(fd_, ev, stop_fd_, MsLeft(deadline)) == 1;
  }

  int fd_;
  SSL* ssl_;
  int stop_fd_;
};

}  // namespace

void HttpServer::Impl::AcceptLoop() {
  BlockSigpipe();
  std::vector<pollfd> pfds;
  pfds.push_back({stop.fd(), POLLIN, 0});
  for (int fd : listen_fds) pfds.push_back({fd, POLLIN, 0});
  while (true) {
    int rc = poll(pfds.data(), pfds.size(), -1);
    if (rc < 0 && errno == EINTR) continue;
    if (rc < 0 || pfds[0].revents != 0) return;
    for (size_t i = 1; i < pfds.size(); ++i) {
      if (!(pfds[i].revents & POLLIN)) continue;
      while (true) {
        int fd = accept4(pfds[i].fd, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0) break;
        int one = 1;
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        std::lock_guard<std::mutex> lock(pool_mu);
        queue.push_back(fd);
        if (queue.size() > idle && workers.size() < static_cast<size_t>(kMaxWorkers)) {
          ++idle;  // the new worker starts idle
          workers.emplace_back([this] { Worker(); });
        }
        pool_cv.notify_one();
      }
    }
  }
}

void HttpServer::Impl::Worker() {
  BlockSigpipe();
  std::unique_lock<std::mutex> lock(pool_mu);
  while (true) {
    pool_cv.wait(lock, [this] { return stopping || !queue.empty(); });
    if (stopping) return;
    int fd = queue.front();
    queue.pop_front();
    --idle;
    lock.unlock();
    Handle(fd);
    lock.lock();
    ++idle;
  }
}

void HttpServer::Impl::Handle(int fd) {
  auto deadline = Clock::now() + std::chrono::milliseconds(kIoTimeoutMs);
  ConnInfo info{&mu, &snis};
  SSL* ssl = nullptr;
  auto finish = [&](bool reset) {
    if (ssl != nullptr) SSL_free(ssl);  // the socket BIO does not own fd
    ERR_clear_error();
    if (reset) {
      ResetClose(fd);
    } else {
      close(fd);
    }
  };
  if (ctx != nullptr) {
    ssl = SSL_new(ctx);
    if (ssl == nullptr) return finish(false);
    SSL_set_fd(ssl, fd);
    SSL_set_app_data(ssl, &info);
  }
  Stream stream(fd, ssl, stop.fd());
  if (ssl != nullptr && !stream.Handshake(deadline)) return finish(false);

  // Read the request head (and any Content-Length body, so closing does not RST).
  std::string data;
  char buf[16384];
  size_t head_end = std::string::npos;
  while (head_end == std::string::npos) {
    if (data.size() > kMaxHeader) return finish(false);
    ssize_t n = stream.Read(buf, sizeof buf, deadline);
    if (n <= 0) return finish(false);
    data.append(buf, static_cast<size_t>(n));
    head_end = data.find("\r\n\r\n");
  }
  std::string head = data.substr(0, head_end);
  size_t eol = head.find("\r\n");
  std::string request_line = head.substr(0, eol);
  std::string host, method = request_line.substr(0, request_line.find(' '));
  size_t content_length = 0;
  bool expect_continue = false;
  size_t pos = eol;
  while (pos != std::string::npos && pos < head.size()) {
    size_t start = pos + 2;
    size_t next = head.find("\r\n", start);
    std::string line = head.substr(start, next == std::string::npos ? next : next - start);
    size_t colon = line.find(':');
    if (colon != std::string::npos) {
      std::string name = Lower(Trim(line.substr(0, colon)));
      std::string value = Trim(line.substr(colon + 1));
      if (name == "host") host = value;
      if (name == "content-length") content_length = std::strtoul(value.c_str(), nullptr, 10);
      if (name == "expect" && Lower(value) == "100-continue") expect_continue = true;
    }
    pos = next;
  }
  size_t have_body = data.size() - head_end - 4;
  if (expect_continue && have_body < content_length &&
      !stream.WriteAll("HTTP/1.1 100 Continue\r\n\r\n", deadline)) {
    return finish(false);
  }
  while (have_body < content_length && have_body < (1u << 24)) {
    ssize_t n = stream.Read(buf, sizeof buf, deadline);
    if (n <= 0) break;
    have_body += static_cast<size_t>(n);
  }

  HttpResponse resp;
  {
    std::lock_guard<std::mutex> lock(mu);
    request_lines.push_back(request_line);
    hosts.push_back(host);
    resp = response;
  }
  requests.fetch_add(1);

  if (resp.delay_ms > 0 && WaitFd(-1, 0, stop.fd(), resp.delay_ms) != 0) return finish(false);
  if (resp.reset_instead) return finish(true);

  std::string out = "HTTP/1.1 " + std::to_string(resp.status) + " " + resp.reason + "\r\n";
  bool has_length = false, has_connection = false;
  for (const auto& h : resp.headers) {
    std::string n = Lower(h.first);
    has_length |= n == "content-length" || n == "transfer-encoding";
    has_connection |= n == "connection";
    out += h.first + ": " + h.second + "\r\n";
  }
  bool no_body_status =
      (resp.status >= 100 && resp.status < 200) || resp.status == 204 || resp.status == 304;
  if (!has_length && !no_body_status) {
    out += "Content-Length: " + std::to_string(resp.body.size()) + "\r\n";
  }
  if (!has_connection) out += "Connection: close\r\n";
  out += "\r\n";
  if (method != "HEAD" && !no_body_status) out += resp.body;
  auto write_deadline = Clock::now() + std::chrono::milliseconds(kIoTimeoutMs);
  if (!stream.WriteAll(out, write_deadline)) return finish(false);

  if (ssl != nullptr) {
    ERR_clear_error();
    SSL_shutdown(ssl);  // sends close_notify; we do not wait for the peer's
  }
  shutdown(fd, SHUT_WR);
  // Drain until the client closes, so unread bytes never turn our close into an RST.
  auto drain_deadline = Clock::now() + std::chrono::milliseconds(kDrainMs);
  while (true) {
    ssize_t n = recv(fd, buf, sizeof buf, 0);
    if (n > 0) continue;
    if (n == 0) break;
    if (errno == EINTR) continue;
    if (errno != EAGAIN && errno != EWOULDBLOCK) break;
    if (WaitFd(fd, POLLIN, stop.fd(), MsLeft(drain_deadline)) != 1) break;
  }
  finish(false);
}

HttpServer::HttpServer(HttpResponse response, const Pem* tls, bool ipv6) : impl_(new Impl) {
  impl_->response = std::move(response);
  if (tls != nullptr) impl_->ctx = MakeServerCtx(*tls);
  try {
    impl_->listen_fds = ListenLoopback(ipv6, &impl_->port);
  } catch (...) {
    SSL_CTX_free(impl_->ctx);
    throw;
  }
  impl_->acceptor = std::thread([this] { impl_->AcceptLoop(); });
}

HttpServer::~HttpServer() {
  impl_->stop.Signal();
  impl_->acceptor.join();
  {
    std::lock_guard<std::mutex> lock(impl_->pool_mu);
    impl_->stopping = true;
  }
  impl_->pool_cv.notify_all();
  for (auto& t : impl_->workers) t.join();
  for (int fd : impl_->queue) close(fd);
  for (int fd : impl_->listen_fds) close(fd);
  SSL_CTX_free(impl_->ctx);
}

void HttpServer::SetResponse(HttpResponse r) {
  std::lock_guard<std::mutex> lock(impl_->mu);
  impl_->response = std::move(r);
}

uint16_t HttpServer::port() const { return impl_->port; }
int HttpServer::requests() const { return impl_->requests.load(); }

std::vector<std::string> HttpServer::request_lines() const {
  std::lock_guard<std::mutex> lock(impl_->mu);
  return impl_->request_lines;
}

std::vector<std::string> HttpServer::hosts() const {
  std::lock_guard<std::mutex> lock(impl_->mu);
  return impl_->hosts;
}

std::vector<std::string> HttpServer::snis() const {
  std::lock_guard<std::mutex> lock(impl_->mu);
  return impl_->snis;
}

// ---------------------------------------------------------------------------------------------
// BlackholeEndpoint

BlackholeEndpoint::BlackholeEndpoint() {
  listen_fd_ = ListenOn(AF_INET, 0, 0);
  if (listen_fd_ < 0) throw std::runtime_error("BlackholeEndpoint: listen failed");
  port_ = LocalPort(listen_fd_);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  a.sin_port = htons(port_);
  // Fill the accept queue with held connections until a probe's SYN goes unanswered.
  for (int i = 0; i < 16; ++i) {
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (fd < 0) break;
    int rc = connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a);
    bool connected = rc == 0;
    if (!connected && errno == EINPROGRESS) {
      pollfd p{fd, POLLOUT, 0};
      if (poll(&p, 1, i == 0 ? 1000 : 30) == 1) {
        int err = 0;
        socklen_t len = sizeof err;
        getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len);
        connected = err == 0;
      }
    }
    if (!connected) {
      close(fd);  // the queue is full: SYNs are dropped
      if (i > 0) return;
      break;
    }
    held_.push_back(fd);
  }
  for (int fd : held_) close(fd);
  close(listen_fd_);
  throw std::runtime_error("BlackholeEndpoint: could not make SYNs be dropped");
}

BlackholeEndpoint::~BlackholeEndpoint() {
  for (int fd : held_) close(fd);
  if (listen_fd_ >= 0) close(listen_fd_);
}

uint16_t UnusedTcpPort() {
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return 0;
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  a.sin_port = 0;
  uint16_t port = 0;
  if (bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0) port = LocalPort(fd);
  close(fd);
  return port;
}

}  // namespace rasad::testing
