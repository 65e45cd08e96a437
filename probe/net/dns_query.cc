#include "probe/net/dns_query.h"

#include <arpa/inet.h>
#include <arpa/nameser.h>
#include <netdb.h>
#include <sys/epoll.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#include <cstring>

#include "probe/core/clock.h"
#include "probe/measure/failure.h"
#include "probe/net/bind.h"

namespace rasad {

const char* QueryTypeName(int qtype) { return qtype == 28 ? "AAAA" : "A"; }

DnsQuery::DnsQuery(EventLoop* loop, DnsQuerySpec spec, Done done)
    : loop_(loop), spec_(std::move(spec)), done_(std::move(done)) {}

DnsQuery::~DnsQuery() {
  finished_ = true;  // OnAnswer(ARES_EDESTRUCTION) from ares_destroy is ignored
  if (timer_) loop_->CancelTimer(timer_);
  if (finish_timer_) loop_->CancelTimer(finish_timer_);
  if (channel_) ares_destroy(channel_);  // closes sockets via OnSockState(0,0)
}

void DnsQuery::Start() {
  obs_.uid = NewUid();
  obs_.flow_uid = obs_.uid;
  obs_.step = Step::kDns;
  obs_.hostname = spec_.name;
  obs_.query_type = QueryTypeName(spec_.qtype);
  obs_.resolver = JoinHostPort(spec_.resolver_addr, spec_.resolver_port);
  obs_.transport = spec_.tcp ? "tcp" : "udp";
  obs_.remote_addr = spec_.resolver_addr;
  obs_.remote_port = spec_.resolver_port;
  obs_.t_start = WallMicros();

  ares_options opts{};
  int mask = ARES_OPT_FLAGS | ARES_OPT_TIMEOUTMS | ARES_OPT_TRIES | ARES_OPT_LOOKUPS |
             ARES_OPT_SOCK_STATE_CB | ARES_OPT_EDNSPSZ;
  // NOCHECKRESP: let SERVFAIL/REFUSED reach us instead of "could not contact
  // DNS servers"; also stops c-ares from silently dropping odd responses.
  opts.flags = ARES_FLAG_NOCHECKRESP | ARES_FLAG_EDNS | ARES_FLAG_NOSEARCH |
               (spec_.tcp ? ARES_FLAG_USEVC : 0);
  opts.timeout = static_cast<int>(spec_.timeout_ms);
  opts.tries = spec_.tries;
  char lookups[] = "b";  // DNS only, never /etc/hosts
  opts.lookups = lookups;
  opts.sock_state_cb = &DnsQuery::OnSockState;
  opts.sock_state_cb_data = this;
  opts.ednspsz = 1232;
  int rc = ares_init_options(&channel_, &opts, mask);
  if (rc != ARES_SUCCESS) {
    obs_.probe_error = std::string("c-ares init: ") + ares_strerror(rc);
    Finish(rc, 0, nullptr, 0);
    return;
  }
  std::string server = JoinHostPort(spec_.resolver_addr, spec_.resolver_port);
  rc = ares_set_servers_ports_csv(channel_, server.c_str());
  if (rc != ARES_SUCCESS) {
    obs_.probe_error = "bad resolver address " + server;
    Finish(rc, 0, nullptr, 0);
    return;
  }
  ares_set_socket_configure_callback(channel_, &DnsQuery::OnSockConfigure, this);
  ares_set_socket_callback(channel_, &DnsQuery::OnSockCreate, this);
  static const ares_socket_functions kFuncs = {&DnsQuery::SockOpen, &DnsQuery::SockClose,
                                               &DnsQuery::SockConnect, &DnsQuery::SockRecvFrom,
                                               &DnsQuery::SockSendv};
  ares_set_socket_functions(channel_, &kFuncs, this);

  unsigned short id = 0;
  getrandom(&id, sizeof id, 0);
  unsigned char* qbuf = nullptr;
  int qlen = 0;
  rc = ares_create_query(spec_.name.c_str(), ns_c_in, spec_.qtype, id, 1, &qbuf, &qlen, 1232);
  if (rc != ARES_SUCCESS) {
    obs_.probe_error = std::string("cannot encode query: ") + ares_strerror(rc);
    Finish(rc, 0, nullptr, 0);
    return;
  }
  query_len_ = qlen;
  query_id_ = id;
  ares_send(channel_, qbuf, qlen, &DnsQuery::OnAnswer, this);
  ares_free_string(qbuf);
  ArmTimer();
}

void DnsQuery::ArmTimer() {
  if (finished_ || !channel_) return;
  if (timer_) loop_->CancelTimer(timer_);
  timer_ = 0;
  timeval tv{};
  if (ares_timeout(channel_, nullptr, &tv) == nullptr) return;  // nothing pending
  int64_t us = static_cast<int64_t>(tv.tv_sec) * 1000000 + tv.tv_usec;
  timer_ = loop_->AddTimer(us, [this] {
    timer_ = 0;
    ares_process_fd(channel_, ARES_SOCKET_BAD, ARES_SOCKET_BAD);
    ArmTimer();
  });
}

void DnsQuery::OnSockState(void* data, ares_socket_t fd, int readable, int writable) {
  auto* self = static_cast<DnsQuery*>(data);
  if (!readable && !writable) {
    self->loop_->UnwatchFd(fd);
    return;
  }
  uint32_t ev = (readable ? uint32_t{EPOLLIN} : 0u) | (writable ? uint32_t{EPOLLOUT} : 0u);
  self->loop_->WatchFd(fd, ev, [self, fd](uint32_t events) {
    bool r = events & (EPOLLIN | EPOLLERR | EPOLLHUP);
    bool w = events & EPOLLOUT;
    ares_process_fd(self->channel_, r ? fd : ARES_SOCKET_BAD, w ? fd : ARES_SOCKET_BAD);
    self->ArmTimer();
  });
}

// Before connect: pin to the operator's interface, or refuse the socket.
int DnsQuery::OnSockConfigure(ares_socket_t fd, int, void* data) {
  auto* self = static_cast<DnsQuery*>(data);
  int err = BindToInterface(fd, self->spec_.interface);
  if (err != 0) {
    self->bind_errno_ = err;
    return -1;
  }
  return 0;
}

// After connect: the local address and port identify this query's packets.
int DnsQuery::OnSockCreate(ares_socket_t fd, int, void* data) {
  auto* self = static_cast<DnsQuery*>(data);
  SocketLocal(fd, &self->obs_.local_addr, &self->obs_.local_port);
  return 0;
}

ares_socket_t DnsQuery::SockOpen(int domain, int type, int protocol, void*) {
  return socket(domain, type | SOCK_CLOEXEC, protocol);
}

int DnsQuery::SockClose(ares_socket_t fd, void*) { return close(fd); }

int DnsQuery::SockConnect(ares_socket_t fd, const struct sockaddr* addr, ares_socklen_t len,
                          void* data) {
  int rc = connect(fd, addr, len);
  if (rc != 0 && errno != EINPROGRESS) static_cast<DnsQuery*>(data)->connect_errno_ = errno;
  return rc;
}

ares_ssize_t DnsQuery::SockRecvFrom(ares_socket_t fd, void* buf, size_t len, int flags,
                                    struct sockaddr* from, ares_socklen_t* from_len, void* data) {
  auto* self = static_cast<DnsQuery*>(data);
  ares_ssize_t n = recvfrom(fd, buf, len, flags, from, from_len);
  if (n > 0) {
    self->wire_received_ += n;
    ++self->datagrams_received_;
  } else if (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK) {
    self->recv_errno_ = errno;  // e.g. ECONNREFUSED from an ICMP port unreachable
  }
  return n;
}

ares_ssize_t DnsQuery::SockSendv(ares_socket_t fd, const struct iovec* vec, int n, void* data) {
  ares_ssize_t sent = writev(fd, vec, n);
  if (sent > 0) static_cast<DnsQuery*>(data)->wire_sent_ += sent;
  return sent;
}

void DnsQuery::OnAnswer(void* arg, int status, int timeouts, unsigned char* abuf, int alen) {
  auto* self = static_cast<DnsQuery*>(arg);
  if (self->finished_) return;
  self->Finish(status, timeouts, abuf, alen);
}

void DnsQuery::Finish(int status, int timeouts, const unsigned char* abuf, int alen) {
  finished_ = true;
  obs_.t_end = WallMicros();
  int rcode = -1;
  nlohmann::json answers = nlohmann::json::array();
  if (abuf && alen >= 12) {
    obs_.raw.assign(reinterpret_cast<const char*>(abuf), alen);
    rcode = abuf[3] & 0x0f;
    if (spec_.qtype == 1) {
      ares_addrttl ttls[32];
      int n = 32;
      if (ares_parse_a_reply(abuf, alen, nullptr, ttls, &n) == ARES_SUCCESS) {
        for (int i = 0; i < n; ++i) {
          char buf[INET_ADDRSTRLEN];
          inet_ntop(AF_INET, &ttls[i].ipaddr, buf, sizeof buf);
          answers.push_back({{"type", "A"}, {"value", buf}, {"ttl", ttls[i].ttl}});
        }
      }
    } else {
      ares_addr6ttl ttls[32];
      int n = 32;
      if (ares_parse_aaaa_reply(abuf, alen, nullptr, ttls, &n) == ARES_SUCCESS) {
        for (int i = 0; i < n; ++i) {
          char buf[INET6_ADDRSTRLEN];
          inet_ntop(AF_INET6, &ttls[i].ip6addr, buf, sizeof buf);
          answers.push_back({{"type", "AAAA"}, {"value", buf}, {"ttl", ttls[i].ttl}});
        }
      }
    }
  }
  // What crossed the socket: every try, TCP length prefixes included.
  obs_.bytes_sent = wire_sent_;
  obs_.bytes_received = wire_received_;
  obs_.details["datagrams_received"] = datagrams_received_;
  obs_.details["query_id"] = query_id_;
  obs_.details["rcode"] = rcode;
  obs_.details["timeouts"] = timeouts;
  obs_.details["answers"] = answers;
  obs_.details["ares_status"] = ares_strerror(status);

  if (bind_errno_ != 0) {
    // c-ares turns our refusal into ECONNREFUSED: never record that as the
    // network refusing us.
    obs_.probe_error = "cannot bind to interface " + spec_.interface + ": " + strerror(bind_errno_);
  } else if (obs_.probe_error.empty()) {
    // ares_send hands back any response as ARES_SUCCESS: the rcode is ours to
    // read (ares_query would map it, but hides the raw bytes we keep).
    if (status == ARES_SUCCESS) {
      switch (rcode) {
        case 1:
          status = ARES_EFORMERR;
          break;
        case 2:
          status = ARES_ESERVFAIL;
          break;
        case 3:
          status = ARES_ENOTFOUND;
          break;
        case 4:
          status = ARES_ENOTIMP;
          break;
        case 5:
          status = ARES_EREFUSED;
          break;
        default:
          break;
      }
    }
    obs_.failure = FailureFromAres(status, rcode);
    // c-ares folds every send/connect error into ECONNREFUSED; the syscall
    // knows better (network_unreachable, host_unreachable, ...).
    int sys_errno = connect_errno_ ? connect_errno_ : recv_errno_;
    if (status == ARES_ECONNREFUSED && sys_errno) {
      obs_.failure = FailureFromErrno(sys_errno);
      obs_.details["os_errno"] = sys_errno;
    }
    // A NOERROR reply without a record of the asked type.
    if (!obs_.failure && answers.empty()) obs_.failure = "dns_no_answer";
  }
  // Deliver from the loop, not from inside c-ares, so done_ may delete us.
  finish_timer_ = loop_->AddTimer(0, [this] {
    finish_timer_ = 0;
    Complete();
  });
}

void DnsQuery::Complete() {
  if (timer_) loop_->CancelTimer(timer_);
  timer_ = 0;
  Done done = std::move(done_);
  done(std::move(obs_));
}

}  // namespace rasad
