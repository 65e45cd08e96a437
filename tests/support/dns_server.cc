#include "tests/support/dns_server.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
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
#include <cstring>
#include <map>
#include <mutex>
#include <stdexcept>
#include <thread>
#include <unordered_map>

namespace rasad::testing {
namespace {

using Clock = std::chrono::steady_clock;
using Bytes = std::string;  // raw wire bytes

constexpr uint16_t kTypeA = 1, kTypeAAAA = 28, kTypeOpt = 41, kTypeAny = 255;
constexpr int kRcodeNoError = 0, kRcodeServfail = 2, kRcodeNxdomain = 3, kRcodeNotImp = 4,
              kRcodeRefused = 5;
constexpr size_t kMaxTcpConns = 256;

struct Rule {
  DnsRule::Kind kind = DnsRule::kAnswer;
  std::vector<Bytes> a, aaaa;  // 4- and 16-byte addresses
  uint32_t ttl = 300;
  int delay_ms = 0;
};

std::string NormalizeName(std::string s) {
  for (auto& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  while (!s.empty() && s.back() == '.') s.pop_back();
  return s;
}

uint16_t Get16(const uint8_t* p) { return static_cast<uint16_t>((p[0] << 8) | p[1]); }
void Put16(Bytes* out, uint16_t v) {
  out->push_back(static_cast<char>(v >> 8));
  out->push_back(static_cast<char>(v & 0xff));
}
void Put32(Bytes* out, uint32_t v) {
  Put16(out, static_cast<uint16_t>(v >> 16));
  Put16(out, static_cast<uint16_t>(v & 0xffff));
}

// Parses the (possibly compressed) name at *pos. On success appends the uncompressed wire form
// (original case) to *wire, the dotted form to *dotted, and moves *pos past the name.
bool ParseName(const uint8_t* msg, size_t len, size_t* pos, Bytes* wire, std::string* dotted) {
  size_t p = *pos, end_pos = 0;
  bool jumped = false;
  int hops = 0;
  while (true) {
    if (p >= len) return false;
    uint8_t l = msg[p];
    if ((l & 0xC0) == 0xC0) {
      if (p + 1 >= len || ++hops > 64) return false;
      size_t off = static_cast<size_t>(((l & 0x3F) << 8) | msg[p + 1]);
      if (!jumped) end_pos = p + 2;
      jumped = true;
      if (off >= len) return false;
      p = off;
      continue;
    }
    if ((l & 0xC0) != 0) return false;  // reserved label types
    if (l == 0) {
      if (wire != nullptr) wire->push_back('\0');
      if (!jumped) end_pos = p + 1;
      break;
    }
    if (p + 1 + l > len) return false;
    if (wire != nullptr) {
      wire->append(reinterpret_cast<const char*>(msg + p), 1 + l);
      if (wire->size() > 255) return false;
    }
    if (dotted != nullptr) {
      if (!dotted->empty()) dotted->push_back('.');
      dotted->append(reinterpret_cast<const char*>(msg + p + 1), l);
    }
    p += 1 + l;
  }
  *pos = end_pos;
  return true;
}

struct Query {
  uint16_t id = 0, flags = 0, qtype = 0, qclass = 0;
  Bytes qname_wire;
  std::string name;  // lowercased, dotted
  size_t udp_limit = 512;
};

bool ParseQuery(const uint8_t* msg, size_t len, Query* q) {
  if (len < 12) return false;
  q->id = Get16(msg);
  q->flags = Get16(msg + 2);
  if (q->flags & 0x8000) return false;  // a response, not a query
  if (Get16(msg + 4) != 1) return false;
  size_t pos = 12;
  std::string dotted;
  if (!ParseName(msg, len, &pos, &q->qname_wire, &dotted)) return false;
  if (pos + 4 > len) return false;
  q->qtype = Get16(msg + pos);
  q->qclass = Get16(msg + pos + 2);
  pos += 4;
  q->name = NormalizeName(dotted);
  // Look through the other sections for an EDNS OPT record (its class is the UDP size).
  // A malformed tail is ignored: the question alone is enough to answer.
  size_t records = size_t{Get16(msg + 6)} + Get16(msg + 8) + Get16(msg + 10);
  for (size_t i = 0; i < records; ++i) {
    if (!ParseName(msg, len, &pos, nullptr, nullptr) || pos + 10 > len) break;
    uint16_t type = Get16(msg + pos), klass = Get16(msg + pos + 2);
    size_t rdlen = Get16(msg + pos + 8);
    pos += 10 + rdlen;
    if (pos > len) break;
    if (type == kTypeOpt) q->udp_limit = std::max<size_t>(512, klass);
  }
  return true;
}

Bytes BuildResponse(const Query& q, int rcode, const std::vector<std::pair<uint16_t, Bytes>>& rrs,
                    uint32_t ttl, bool truncated) {
  Bytes out;
  Put16(&out, q.id);
  uint16_t flags = 0x8000 | (q.flags & 0x7800) /* opcode */ | 0x0400 /* AA */ |
                   (q.flags & 0x0100) /* RD */ | 0x0080 /* RA */ | static_cast<uint16_t>(rcode);
  if (truncated) flags |= 0x0200;
  Put16(&out, flags);
  Put16(&out, 1);
  Put16(&out, truncated ? 0 : static_cast<uint16_t>(rrs.size()));
  Put16(&out, 0);
  Put16(&out, 0);
  out += q.qname_wire;
  Put16(&out, q.qtype);
  Put16(&out, q.qclass);
  if (truncated) return out;
  for (const auto& rr : rrs) {
    Put16(&out, 0xC00C);  // pointer to the question name
    Put16(&out, rr.first);
    Put16(&out, 1);  // IN
    Put32(&out, ttl);
    Put16(&out, static_cast<uint16_t>(rr.second.size()));
    out += rr.second;
  }
  return out;
}

int ListenSocket(int type, uint16_t port) {
  int fd = socket(AF_INET, type | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
  if (fd < 0) return -1;
  int one = 1;
  if (type == SOCK_STREAM) setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  a.sin_port = htons(port);
  if (bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0 ||
      (type == SOCK_STREAM && listen(fd, 256) != 0)) {
    close(fd);
    return -1;
  }
  return fd;
}

}  // namespace

struct DnsServer::Impl {
  int stop_fd = -1, udp_fd = -1, tcp_fd = -1;
  uint16_t port = 0;
  std::thread thread;

  mutable std::mutex mu;  // rules, names
  std::unordered_map<std::string, Rule> rules;
  std::vector<std::string> names;
  std::atomic<int> queries{0};

  // Owned by the server thread.
  struct Conn {
    int fd;
    Bytes in, out;
    bool closing = false;  // peer sent EOF: close once `out` is flushed
  };
  std::map<uint64_t, Conn> conns;
  uint64_t next_conn_id = 1;
  struct Pending {
    Clock::time_point due;
    uint64_t conn_id;  // 0 = UDP
    sockaddr_storage peer;
    socklen_t peer_len;
    Bytes msg;
  };
  std::vector<Pending> pending;

  // Returns false when there is nothing to send now (dropped, malformed or delayed).
  bool Answer(const uint8_t* msg, size_t len, bool tcp, uint64_t conn_id,
              const sockaddr_storage* peer, socklen_t peer_len, Bytes* out) {
    Query q;
    if (!ParseQuery(msg, len, &q)) return false;
    Rule rule;
    rule.kind = DnsRule::kNxdomain;
    {
      std::lock_guard<std::mutex> lock(mu);
      names.push_back(q.name);
      auto it = rules.find(q.name);
      if (it != rules.end()) rule = it->second;
    }
    queries.fetch_add(1);
    int opcode = (q.flags >> 11) & 0xF;
    std::vector<std::pair<uint16_t, Bytes>> rrs;
    int rcode = kRcodeNoError;
    if (opcode != 0) {
      rcode = kRcodeNotImp;
    } else {
      switch (rule.kind) {
        case DnsRule::kDrop:
          return false;
        case DnsRule::kNxdomain:
          rcode = kRcodeNxdomain;
          break;
        case DnsRule::kServfail:
          rcode = kRcodeServfail;
          break;
        case DnsRule::kRefused:
          rcode = kRcodeRefused;
          break;
        case DnsRule::kNoData:
          break;
        case DnsRule::kAnswer:
          if (q.qtype == kTypeA || q.qtype == kTypeAny) {
            for (const auto& a : rule.a) rrs.emplace_back(kTypeA, a);
          }
          if (q.qtype == kTypeAAAA || q.qtype == kTypeAny) {
            for (const auto& a : rule.aaaa) rrs.emplace_back(kTypeAAAA, a);
          }
          break;
      }
    }
    Bytes resp = BuildResponse(q, rcode, rrs, rule.ttl, false);
    if (!tcp && resp.size() > q.udp_limit) resp = BuildResponse(q, rcode, rrs, rule.ttl, true);
    if (rule.delay_ms > 0) {
      Pending p{
          Clock::now() + std::chrono::milliseconds(rule.delay_ms), conn_id, {}, 0, std::move(resp)};
      if (peer != nullptr) {
        p.peer = *peer;
        p.peer_len = peer_len;
      }
      pending.push_back(std::move(p));
      return false;
    }
    *out = std::move(resp);
    return true;
  }

  void QueueTcp(uint64_t conn_id, const Bytes& msg) {
    auto it = conns.find(conn_id);
    if (it == conns.end()) return;
    Put16(&it->second.out, static_cast<uint16_t>(msg.size()));
    it->second.out += msg;
    Flush(it->second);
  }

  // Sends what it can; returns false on a write error.
  bool Flush(Conn& c) {
    while (!c.out.empty()) {
      ssize_t n = send(c.fd, c.out.data(), c.out.size(), MSG_NOSIGNAL);
      if (n > 0) {
        c.out.erase(0, static_cast<size_t>(n));
        continue;
      }
      if (n < 0 && errno == EINTR) continue;
      if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) return true;
      return false;
    }
    return true;
  }

  void OnUdp() {
    uint8_t buf[65536];
    for (int i = 0; i < 64; ++i) {
      sockaddr_storage peer{};
      socklen_t peer_len = sizeof peer;
      ssize_t n =
          recvfrom(udp_fd, buf, sizeof buf, 0, reinterpret_cast<sockaddr*>(&peer), &peer_len);
      if (n < 0) return;
      Bytes out;
      if (Answer(buf, static_cast<size_t>(n), false, 0, &peer, peer_len, &out)) {
        sendto(udp_fd, out.data(), out.size(), MSG_NOSIGNAL, reinterpret_cast<sockaddr*>(&peer),
               peer_len);
      }
    }
  }

  void OnAccept() {
    while (true) {
      int fd = accept4(tcp_fd, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
      if (fd < 0) return;
      if (conns.size() >= kMaxTcpConns) {
        close(fd);
        continue;
      }
      conns.emplace(next_conn_id++, Conn{fd, {}, {}, false});
    }
  }

  // Returns false when the connection must be closed.
  bool OnTcp(uint64_t id, Conn& c, short revents) {
    if (revents & POLLOUT) {
      if (!Flush(c)) return false;
    }
    if (revents & (POLLIN | POLLHUP | POLLERR)) {
      char buf[16384];
      while (!c.closing) {
        ssize_t n = recv(c.fd, buf, sizeof buf, 0);
        if (n > 0) {
          c.in.append(buf, static_cast<size_t>(n));
          continue;
        }
        if (n < 0 && errno == EINTR) continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) break;
        if (n < 0) return false;
        c.closing = true;
      }
      while (c.in.size() >= 2) {
        size_t mlen = Get16(reinterpret_cast<const uint8_t*>(c.in.data()));
        if (c.in.size() < 2 + mlen) break;
        Bytes out;
        if (Answer(reinterpret_cast<const uint8_t*>(c.in.data()) + 2, mlen, true, id, nullptr, 0,
                   &out)) {
          Put16(&c.out, static_cast<uint16_t>(out.size()));
          c.out += out;
        }
        c.in.erase(0, 2 + mlen);
      }
      if (!Flush(c)) return false;
    }
    return !(c.closing && c.out.empty());
  }

  void FirePending() {
    auto now = Clock::now();
    std::vector<Pending> due;
    for (auto it = pending.begin(); it != pending.end();) {
      if (it->due <= now) {
        due.push_back(std::move(*it));
        it = pending.erase(it);
      } else {
        ++it;
      }
    }
    for (auto& p : due) {
      if (p.conn_id == 0) {
        sendto(udp_fd, p.msg.data(), p.msg.size(), MSG_NOSIGNAL,
               reinterpret_cast<sockaddr*>(&p.peer), p.peer_len);
      } else {
        QueueTcp(p.conn_id, p.msg);
      }
    }
  }

  void Run() {
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGPIPE);
    pthread_sigmask(SIG_BLOCK, &set, nullptr);
    std::vector<pollfd> pfds;
    std::vector<uint64_t> ids;
    while (true) {
      pfds.clear();
      ids.clear();
      pfds.push_back({stop_fd, POLLIN, 0});
      pfds.push_back({udp_fd, POLLIN, 0});
      pfds.push_back({tcp_fd, POLLIN, 0});
      for (auto& [id, c] : conns) {
        short ev = c.closing ? 0 : POLLIN;
        if (!c.out.empty()) ev |= POLLOUT;
        pfds.push_back({c.fd, ev, 0});
        ids.push_back(id);
      }
      int timeout = -1;
      if (!pending.empty()) {
        auto first = std::min_element(pending.begin(), pending.end(), [](auto& x, auto& y) {
                       return x.due < y.due;
                     })->due;
        auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(first - Clock::now());
        timeout = static_cast<int>(std::max<int64_t>(0, ms.count() + 1));
      }
      int rc = poll(pfds.data(), pfds.size(), timeout);
      if (rc < 0 && errno == EINTR) continue;
      if (rc < 0 || pfds[0].revents != 0) return;
      if (pfds[1].revents & POLLIN) OnUdp();
      for (size_t i = 0; i < ids.size(); ++i) {
        if (pfds[3 + i].revents == 0) continue;
        auto it = conns.find(ids[i]);
        if (!OnTcp(ids[i], it->second, pfds[3 + i].revents)) {
          close(it->second.fd);
          conns.erase(it);
        }
      }
      if (pfds[2].revents & POLLIN) OnAccept();
      FirePending();
    }
  }
};

DnsServer::DnsServer() : impl_(new Impl) {
  impl_->stop_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  if (impl_->stop_fd < 0) throw std::runtime_error("DnsServer: eventfd failed");
  for (int attempt = 0; attempt < 50 && impl_->tcp_fd < 0; ++attempt) {
    int udp = ListenSocket(SOCK_DGRAM, 0);
    if (udp < 0) break;
    sockaddr_in a{};
    socklen_t len = sizeof a;
    getsockname(udp, reinterpret_cast<sockaddr*>(&a), &len);
    uint16_t port = ntohs(a.sin_port);
    int tcp = ListenSocket(SOCK_STREAM, port);
    if (tcp < 0) {
      close(udp);
      continue;
    }
    impl_->udp_fd = udp;
    impl_->tcp_fd = tcp;
    impl_->port = port;
  }
  if (impl_->tcp_fd < 0) {
    close(impl_->stop_fd);
    throw std::runtime_error("DnsServer: cannot bind UDP+TCP on one port of 127.0.0.1");
  }
  impl_->thread = std::thread([this] { impl_->Run(); });
}

DnsServer::~DnsServer() {
  uint64_t one = 1;
  ssize_t n = write(impl_->stop_fd, &one, sizeof one);
  (void)n;
  impl_->thread.join();
  for (auto& [id, c] : impl_->conns) close(c.fd);
  close(impl_->udp_fd);
  close(impl_->tcp_fd);
  close(impl_->stop_fd);
}

void DnsServer::Set(const std::string& name, DnsRule rule) {
  Rule r;
  r.kind = rule.kind;
  r.ttl = rule.ttl;
  r.delay_ms = rule.delay_ms;
  for (const auto& s : rule.a) {
    unsigned char b[4];
    if (inet_pton(AF_INET, s.c_str(), b) == 1) r.a.emplace_back(reinterpret_cast<char*>(b), 4);
  }
  for (const auto& s : rule.aaaa) {
    unsigned char b[16];
    if (inet_pton(AF_INET6, s.c_str(), b) == 1) {
      r.aaaa.emplace_back(reinterpret_cast<char*>(b), 16);
    }
  }
  std::lock_guard<std::mutex> lock(impl_->mu);
  impl_->rules[NormalizeName(name)] = std::move(r);
}

uint16_t DnsServer::port() const { return impl_->port; }
int DnsServer::queries() const { return impl_->queries.load(); }

std::vector<std::string> DnsServer::qnames() const {
  std::lock_guard<std::mutex> lock(impl_->mu);
  return impl_->names;
}

}  // namespace rasad::testing
