// DnsQuery: one A or AAAA query to one resolver with c-ares, driven by the
// EventLoop, producing one dns Observation with the raw response.
// Each query has its own c-ares channel so that it has its own socket (and
// source port, which the packet capture uses to find its packets), and so a
// bind failure or a slow resolver cannot leak into another measurement.
#pragma once

#include <ares.h>

#include <functional>
#include <string>

#include "probe/loop/event_loop.h"
#include "probe/measure/observation.h"

namespace rasad {

struct DnsQuerySpec {
  std::string name;
  int qtype = 1;  // 1 = A, 28 = AAAA
  std::string resolver_addr;
  int resolver_port = 53;
  std::string interface;      // "" = no bind
  int64_t timeout_ms = 4000;  // per try
  int tries = 2;
  bool tcp = false;
};

class DnsQuery {
 public:
  using Done = std::function<void(Observation)>;
  // `done` runs exactly once, from the loop, never from inside Start(). It
  // may destroy this object.
  DnsQuery(EventLoop* loop, DnsQuerySpec spec, Done done);
  ~DnsQuery();  // abandons a query still in flight (done is not called)
  DnsQuery(const DnsQuery&) = delete;
  DnsQuery& operator=(const DnsQuery&) = delete;

  void Start();

 private:
  static void OnSockState(void* data, ares_socket_t fd, int readable, int writable);
  static int OnSockConfigure(ares_socket_t fd, int type, void* data);
  static int OnSockCreate(ares_socket_t fd, int type, void* data);
  // Socket functions: the real syscalls, observed (exact bytes on the wire,
  // datagrams received, the errno of a failed connect).
  static ares_socket_t SockOpen(int domain, int type, int protocol, void* data);
  static int SockClose(ares_socket_t fd, void* data);
  static int SockConnect(ares_socket_t fd, const struct sockaddr* addr, ares_socklen_t len,
                         void* data);
  static ares_ssize_t SockRecvFrom(ares_socket_t fd, void* buf, size_t len, int flags,
                                   struct sockaddr* from, ares_socklen_t* from_len, void* data);
  static ares_ssize_t SockSendv(ares_socket_t fd, const struct iovec* vec, int n, void* data);
  static void OnAnswer(void* arg, int status, int timeouts, unsigned char* abuf, int alen);
  void ArmTimer();
  void Finish(int status, int timeouts, const unsigned char* abuf, int alen);
  void Complete();

  EventLoop* loop_;
  DnsQuerySpec spec_;
  Done done_;
  ares_channel channel_ = nullptr;
  EventLoop::TimerId timer_ = 0;
  EventLoop::TimerId finish_timer_ = 0;
  bool finished_ = false;
  int bind_errno_ = 0;
  int query_len_ = 0;
  int connect_errno_ = 0;
  int recv_errno_ = 0;
  int64_t wire_sent_ = 0, wire_received_ = 0;
  int datagrams_received_ = 0;
  int query_id_ = 0;
  Observation obs_;
};

const char* QueryTypeName(int qtype);

}  // namespace rasad
