// Flow: one connection to one address and port, taken as far as the endpoint
// asks: tcp connect, then TLS handshake, then one HTTP request. It yields one
// Observation per step attempted (a failed step ends the flow), all sharing a
// flow_uid and the connection's 4-tuple, so packet capture can find them.
//
// libcurl does the work (multi interface, never its own resolver: the
// address is handed over with CURLOPT_CONNECT_TO). Step boundaries come from
// curl callbacks: the first bytes written mark "TCP connected", the
// PREREQ callback (or the end of a CONNECT_ONLY transfer) marks "TLS done".
// Each step has its own deadline, enforced by a loop timer.
#pragma once

#include <curl/curl.h>

#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "probe/loop/event_loop.h"
#include "probe/measure/observation.h"
#include "probe/net/curl_multi.h"
#include "probe/net/tls_inspect.h"

namespace rasad {

struct FlowSpec {
  std::string host;     // URL host: SNI and Host header (may be an IP literal)
  std::string address;  // IP literal to connect to
  int port = 443;
  bool tls = true;
  Step last_step = Step::kHttp;  // kTcp, kTls or kHttp
  std::string method = "GET";
  std::string path = "/";
  std::string interface;  // SO_BINDTODEVICE; "" = default route
  std::shared_ptr<TrustStore> trust;
  std::vector<std::string> expect_cert_names;
  std::vector<int> expect_status;
  int64_t tcp_timeout_ms = 10000;
  int64_t tls_timeout_ms = 10000;
  int64_t http_timeout_ms = 15000;
  size_t body_cap = 64 * 1024;
  size_t body_store = 4 * 1024;
  std::string user_agent;
};

class Flow {
 public:
  using Done = std::function<void(std::vector<Observation>)>;
  Flow(EventLoop* loop, CurlMulti* multi, FlowSpec spec, Done done);
  ~Flow();  // abandons a running transfer (done is not called)
  Flow(const Flow&) = delete;
  Flow& operator=(const Flow&) = delete;

  void Start();

 private:
  enum class Phase { kTcp, kTls, kHttp };
  static curl_socket_t OnOpenSocket(void* p, curlsocktype purpose, curl_sockaddr* addr);
  static int OnSockopt(void* p, curl_socket_t fd, curlsocktype purpose);
  static int OnCloseSocket(void* p, curl_socket_t fd);
  static int OnDebug(CURL* h, curl_infotype type, char* data, size_t size, void* p);
  static int OnPrereq(void* p, char* conn_primary_ip, char* conn_local_ip, int conn_primary_port,
                      int conn_local_port);
  static size_t OnHeader(char* data, size_t size, size_t n, void* p);
  static size_t OnWrite(char* data, size_t size, size_t n, void* p);

  void MarkConnected();
  void MarkTlsDone();
  void ArmDeadline(int64_t ms);
  void OnDeadline();
  void SnapshotTcpInfo(int fd, bool at_close);
  void Finish(CURLcode rc, bool timed_out);

  EventLoop* loop_;
  CurlMulti* multi_;
  FlowSpec spec_;
  Done done_;
  CURL* easy_ = nullptr;
  curl_slist* connect_to_ = nullptr;
  curl_slist* req_headers_ = nullptr;
  std::string url_;
  EventLoop::TimerId deadline_ = 0;
  bool running_ = false;

  Phase phase_ = Phase::kTcp;
  std::string flow_uid_;
  int fd_ = -1;
  int bind_errno_ = 0;
  int64_t t_start_ = 0, t_connected_ = 0, t_tls_done_ = 0, t_end_ = 0;
  std::string local_addr_, remote_addr_;
  int local_port_ = 0, remote_port_ = 0;
  // TCP_INFO payload counters: at TLS done (handshake cost) and at close.
  int64_t sent_at_tls_ = 0, recv_at_tls_ = 0, sent_total_ = 0, recv_total_ = 0;
  int64_t segs_out_ = 0, segs_in_ = 0;
  bool prereq_abort_ = false;
  std::optional<TlsInspection> tls_;
  nlohmann::json tls_events_ = nlohmann::json::array();
  // HTTP response
  std::vector<std::pair<std::string, std::string>> headers_;
  std::string status_line_;
  std::string body_prefix_;
  size_t body_len_ = 0;
  bool body_truncated_ = false;
  void* sha_ = nullptr;  // EVP_MD_CTX*
};

}  // namespace rasad
