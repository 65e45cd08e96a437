#include "probe/net/flow.h"

#include <linux/tcp.h>
#include <netinet/in.h>
#include <openssl/evp.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cstring>

#include "probe/core/clock.h"
#include "probe/core/encoding.h"
#include "probe/measure/failure.h"
#include "probe/net/bind.h"

namespace rasad {

namespace {

std::string Trim(std::string s) {
  while (!s.empty() && isspace(static_cast<unsigned char>(s.back()))) s.pop_back();
  size_t i = 0;
  while (i < s.size() && isspace(static_cast<unsigned char>(s[i]))) ++i;
  return s.substr(i);
}

std::string UrlHost(const std::string& host) {
  bool v6 = false;
  return IsIpLiteral(host, &v6) && v6 ? "[" + host + "]" : host;
}

}  // namespace

Flow::Flow(EventLoop* loop, CurlMulti* multi, FlowSpec spec, Done done)
    : loop_(loop), multi_(multi), spec_(std::move(spec)), done_(std::move(done)) {}

Flow::~Flow() {
  if (deadline_) loop_->CancelTimer(deadline_);
  if (easy_) {
    if (running_) multi_->Remove(easy_);
    curl_easy_cleanup(easy_);
  }
  curl_slist_free_all(connect_to_);
  curl_slist_free_all(req_headers_);
  if (sha_) EVP_MD_CTX_free(static_cast<EVP_MD_CTX*>(sha_));
}

void Flow::Start() {
  flow_uid_ = NewUid();
  t_start_ = WallMicros();
  remote_addr_ = spec_.address;
  remote_port_ = spec_.port;
  sha_ = EVP_MD_CTX_new();
  EVP_DigestInit_ex(static_cast<EVP_MD_CTX*>(sha_), EVP_sha256(), nullptr);

  easy_ = curl_easy_init();
  url_ = std::string(spec_.tls ? "https" : "http") + "://" + UrlHost(spec_.host) + ":" +
         std::to_string(spec_.port) + spec_.path;
  curl_easy_setopt(easy_, CURLOPT_URL, url_.c_str());
  if (spec_.host != spec_.address) {
    // rasad resolved the name itself; curl must never resolve (its threaded
    // getaddrinfo ignores our interface and resolvers).
    std::string ct = UrlHost(spec_.host) + ":" + std::to_string(spec_.port) + ":" +
                     UrlHost(spec_.address) + ":" + std::to_string(spec_.port);
    connect_to_ = curl_slist_append(nullptr, ct.c_str());
    curl_easy_setopt(easy_, CURLOPT_CONNECT_TO, connect_to_);
  }
  curl_easy_setopt(easy_, CURLOPT_PRIVATE, this);
  curl_easy_setopt(easy_, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(easy_, CURLOPT_PROTOCOLS_STR, "http,https");
  // Measurement hygiene: a new connection per flow, no TLS resumption (it
  // would hide the certificate), a stable HTTP/1.1 fingerprint.
  curl_easy_setopt(easy_, CURLOPT_FRESH_CONNECT, 1L);
  curl_easy_setopt(easy_, CURLOPT_FORBID_REUSE, 1L);
  curl_easy_setopt(easy_, CURLOPT_SSL_SESSIONID_CACHE, 0L);
  curl_easy_setopt(easy_, CURLOPT_HTTP_VERSION, CURL_HTTP_VERSION_1_1);
  // Verification is rasad's own (tls_inspect), so an untrusted chain is still
  // recorded rather than lost in a curl error.
  curl_easy_setopt(easy_, CURLOPT_SSL_VERIFYPEER, 0L);
  curl_easy_setopt(easy_, CURLOPT_SSL_VERIFYHOST, 0L);
  curl_easy_setopt(easy_, CURLOPT_FOLLOWLOCATION, 0L);  // a redirect is an observation
  if (spec_.last_step < Step::kHttp) curl_easy_setopt(easy_, CURLOPT_CONNECT_ONLY, 1L);
  long total = spec_.tcp_timeout_ms + spec_.tls_timeout_ms + spec_.http_timeout_ms + 1000;
  curl_easy_setopt(easy_, CURLOPT_TIMEOUT_MS, total);  // backstop; steps have own deadlines
  curl_easy_setopt(easy_, CURLOPT_CONNECTTIMEOUT_MS, total);

  curl_easy_setopt(easy_, CURLOPT_OPENSOCKETFUNCTION, &Flow::OnOpenSocket);
  curl_easy_setopt(easy_, CURLOPT_OPENSOCKETDATA, this);
  curl_easy_setopt(easy_, CURLOPT_SOCKOPTFUNCTION, &Flow::OnSockopt);
  curl_easy_setopt(easy_, CURLOPT_SOCKOPTDATA, this);
  curl_easy_setopt(easy_, CURLOPT_CLOSESOCKETFUNCTION, &Flow::OnCloseSocket);
  curl_easy_setopt(easy_, CURLOPT_CLOSESOCKETDATA, this);
  curl_easy_setopt(easy_, CURLOPT_VERBOSE, 1L);  // feeds OnDebug, not stderr
  curl_easy_setopt(easy_, CURLOPT_DEBUGFUNCTION, &Flow::OnDebug);
  curl_easy_setopt(easy_, CURLOPT_DEBUGDATA, this);
  curl_easy_setopt(easy_, CURLOPT_PREREQFUNCTION, &Flow::OnPrereq);
  curl_easy_setopt(easy_, CURLOPT_PREREQDATA, this);
  curl_easy_setopt(easy_, CURLOPT_HEADERFUNCTION, &Flow::OnHeader);
  curl_easy_setopt(easy_, CURLOPT_HEADERDATA, this);
  curl_easy_setopt(easy_, CURLOPT_WRITEFUNCTION, &Flow::OnWrite);
  curl_easy_setopt(easy_, CURLOPT_WRITEDATA, this);

  if (!spec_.user_agent.empty())
    curl_easy_setopt(easy_, CURLOPT_USERAGENT, spec_.user_agent.c_str());
  req_headers_ = curl_slist_append(nullptr, "Accept: */*");
  curl_easy_setopt(easy_, CURLOPT_HTTPHEADER, req_headers_);
  if (spec_.method == "HEAD") {
    curl_easy_setopt(easy_, CURLOPT_NOBODY, 1L);
  } else if (spec_.method == "POST") {
    curl_easy_setopt(easy_, CURLOPT_POST, 1L);
    curl_easy_setopt(easy_, CURLOPT_POSTFIELDS, "");
  }

  ArmDeadline(spec_.tcp_timeout_ms);
  Status st = multi_->Add(easy_, [this](CURLcode rc) {
    running_ = false;
    Finish(rc, false);
  });
  running_ = st.ok();
  if (!st.ok()) {
    // Report from the loop, never synchronously from Start().
    loop_->AddTimer(0, [this] { Finish(CURLE_FAILED_INIT, false); });
  }
}

void Flow::ArmDeadline(int64_t ms) {
  if (deadline_) loop_->CancelTimer(deadline_);
  deadline_ = loop_->AddTimer(ms * 1000, [this] {
    deadline_ = 0;
    OnDeadline();
  });
}

void Flow::OnDeadline() {
  if (running_) {
    multi_->Remove(easy_);
    running_ = false;
  }
  Finish(CURLE_OPERATION_TIMEDOUT, true);
}

curl_socket_t Flow::OnOpenSocket(void* p, curlsocktype, curl_sockaddr* addr) {
  auto* self = static_cast<Flow*>(p);
  int fd = socket(addr->family, addr->socktype | SOCK_CLOEXEC, addr->protocol);
  self->fd_ = fd;
  return fd < 0 ? CURL_SOCKET_BAD : fd;
}

// Before connect: pin the socket to the operator's uplink or abort the
// transfer (CURLE_ABORTED_BY_CALLBACK, a probe error, never a network one).
int Flow::OnSockopt(void* p, curl_socket_t fd, curlsocktype) {
  auto* self = static_cast<Flow*>(p);
  int err = BindToInterface(fd, self->spec_.interface);
  if (err != 0) {
    self->bind_errno_ = err;
    return CURL_SOCKOPT_ERROR;
  }
  return CURL_SOCKOPT_OK;
}

int Flow::OnCloseSocket(void* p, curl_socket_t fd) {
  auto* self = static_cast<Flow*>(p);
  self->SnapshotTcpInfo(fd, true);
  if (fd == self->fd_) self->fd_ = -1;
  return close(fd);
}

void Flow::SnapshotTcpInfo(int fd, bool at_close) {
  if (fd < 0) return;
  if (local_port_ == 0) SocketLocal(fd, &local_addr_, &local_port_);
  tcp_info info{};
  socklen_t len = sizeof info;
  if (getsockopt(fd, IPPROTO_TCP, TCP_INFO, &info, &len) != 0) return;
  // bytes_sent counts retransmissions too: it is what the volunteer pays for.
  if (at_close) {
    sent_total_ = static_cast<int64_t>(info.tcpi_bytes_sent);
    recv_total_ = static_cast<int64_t>(info.tcpi_bytes_received);
    segs_out_ = info.tcpi_segs_out;
    segs_in_ = info.tcpi_segs_in;
  } else {
    sent_at_tls_ = static_cast<int64_t>(info.tcpi_bytes_sent);
    recv_at_tls_ = static_cast<int64_t>(info.tcpi_bytes_received);
  }
}

void Flow::MarkConnected() {
  if (phase_ != Phase::kTcp) return;
  t_connected_ = WallMicros();
  if (fd_ >= 0) {
    SocketLocal(fd_, &local_addr_, &local_port_);
    SocketPeer(fd_, &remote_addr_, &remote_port_);
  }
  bool tls = spec_.tls && spec_.last_step >= Step::kTls;
  phase_ = tls ? Phase::kTls : Phase::kHttp;
  if (spec_.last_step > Step::kTcp) ArmDeadline(tls ? spec_.tls_timeout_ms : spec_.http_timeout_ms);
}

void Flow::MarkTlsDone() {
  if (phase_ != Phase::kTls) return;
  t_tls_done_ = WallMicros();
  SnapshotTcpInfo(fd_, false);
}

int Flow::OnDebug(CURL*, curl_infotype type, char* data, size_t size, void* p) {
  auto* self = static_cast<Flow*>(p);
  switch (type) {
    case CURLINFO_TEXT: {
      std::string text(data, size);
      // TLS handshake messages, e.g. "TLSv1.3 (OUT), TLS handshake, Client hello (1):".
      // The timeline shows where a handshake died (ClientHello sent, nothing back).
      if (text.rfind("TLSv", 0) == 0 || text.rfind("SSLv", 0) == 0) {
        if (text.find("(OUT)") != std::string::npos) self->MarkConnected();
        if (self->tls_events_.size() < 32)
          self->tls_events_.push_back(
              {{"t", WallMicros() - self->t_start_}, {"event", Trim(text)}});
      } else if (text.rfind("Connected to ", 0) == 0) {
        self->MarkConnected();
      }
      break;
    }
    case CURLINFO_HEADER_OUT:
    case CURLINFO_DATA_OUT:
    case CURLINFO_SSL_DATA_OUT:
      self->MarkConnected();
      break;
    default:
      break;
  }
  return 0;
}

// Runs once the connection (and TLS) is up, before the request is sent.
int Flow::OnPrereq(void* p, char*, char*, int, int) {
  auto* self = static_cast<Flow*>(p);
  self->MarkConnected();
  if (self->phase_ == Phase::kTls) {
    self->MarkTlsDone();
    curl_tlssessioninfo* info = nullptr;
    if (curl_easy_getinfo(self->easy_, CURLINFO_TLS_SSL_PTR, &info) == CURLE_OK && info &&
        info->backend == CURLSSLBACKEND_OPENSSL && info->internals) {
      self->tls_ = InspectTls(static_cast<SSL*>(info->internals), *self->spec_.trust,
                              self->spec_.host, self->spec_.expect_cert_names);
      if (self->tls_->failure) {
        // Never send HTTP over a connection we could not authenticate.
        self->prereq_abort_ = true;
        return CURL_PREREQFUNC_ABORT;
      }
    }
    self->phase_ = Phase::kHttp;
    self->ArmDeadline(self->spec_.http_timeout_ms);
  }
  return CURL_PREREQFUNC_OK;
}

size_t Flow::OnHeader(char* data, size_t size, size_t n, void* p) {
  auto* self = static_cast<Flow*>(p);
  std::string line = Trim(std::string(data, size * n));
  if (line.rfind("HTTP/", 0) == 0) {
    self->status_line_ = line;  // a new response (after 1xx): start over
    self->headers_.clear();
  } else if (size_t colon = line.find(':'); colon != std::string::npos) {
    if (self->headers_.size() < 100)
      self->headers_.emplace_back(line.substr(0, colon), Trim(line.substr(colon + 1)));
  }
  return size * n;
}

size_t Flow::OnWrite(char* data, size_t size, size_t n, void* p) {
  auto* self = static_cast<Flow*>(p);
  size_t len = size * n;
  size_t room = self->spec_.body_cap > self->body_len_ ? self->spec_.body_cap - self->body_len_ : 0;
  size_t take = std::min(len, room);
  EVP_DigestUpdate(static_cast<EVP_MD_CTX*>(self->sha_), data, take);
  if (self->body_prefix_.size() < self->spec_.body_store)
    self->body_prefix_.append(data,
                              std::min(take, self->spec_.body_store - self->body_prefix_.size()));
  self->body_len_ += take;
  if (take < len) {
    self->body_truncated_ = true;
    return 0;  // stop downloading: mobile data costs the volunteer money
  }
  return len;
}

void Flow::Finish(CURLcode rc, bool timed_out) {
  t_end_ = WallMicros();
  if (deadline_) loop_->CancelTimer(deadline_);
  deadline_ = 0;
  long os_errno = 0;
  curl_easy_getinfo(easy_, CURLINFO_OS_ERRNO, &os_errno);
  if (rc == CURLE_OK && spec_.last_step < Step::kHttp) {
    // CONNECT_ONLY transfer: connected, and the TLS handshake (if any) done.
    MarkConnected();
    if (phase_ == Phase::kTls) {
      MarkTlsDone();
      curl_tlssessioninfo* info = nullptr;
      if (curl_easy_getinfo(easy_, CURLINFO_TLS_SSL_PTR, &info) == CURLE_OK && info &&
          info->internals)
        tls_ = InspectTls(static_cast<SSL*>(info->internals), *spec_.trust, spec_.host,
                          spec_.expect_cert_names);
    }
  }
  long status = 0, http_version = 0;
  curl_easy_getinfo(easy_, CURLINFO_RESPONSE_CODE, &status);
  curl_easy_getinfo(easy_, CURLINFO_HTTP_VERSION, &http_version);
  curl_easy_cleanup(easy_);  // closes the socket: final TCP_INFO via OnCloseSocket
  easy_ = nullptr;

  // The failure of the step in progress when the flow ended.
  std::optional<std::string> failure;
  std::string probe_error;
  if (timed_out) {
    failure = "generic_timeout_error";
  } else if (bind_errno_ != 0) {
    probe_error = "cannot bind to interface " + spec_.interface + ": " + strerror(bind_errno_);
  } else if (prereq_abort_ && tls_) {
    failure = tls_->failure;
  } else if (rc == CURLE_WRITE_ERROR && body_truncated_) {
    failure = std::nullopt;  // we stopped reading at body_cap
  } else {
    failure = FailureFromCurl(rc, static_cast<int>(os_errno), &probe_error);
  }
  bool ended_ok = !failure && probe_error.empty();

  std::vector<Observation> out;
  auto make = [&](Step step, int64_t t0, int64_t t1) {
    Observation o;
    o.uid = NewUid();
    o.flow_uid = flow_uid_;
    o.step = step;
    o.hostname = spec_.host;
    o.transport = "tcp";
    o.local_addr = local_addr_;
    o.local_port = local_port_;
    o.remote_addr = remote_addr_;
    o.remote_port = remote_port_;
    o.t_start = t0;
    o.t_end = t1 ? t1 : t_end_;
    return o;
  };
  auto fail_here = [&](Observation* o) {
    o->failure = failure;
    o->probe_error = probe_error;
    if (os_errno && failure) o->details["os_errno"] = os_errno;
  };

  // tcp
  Observation tcp = make(Step::kTcp, t_start_, t_connected_);
  tcp.details["segs_out"] = segs_out_;
  tcp.details["segs_in"] = segs_in_;
  tcp.details["payload_bytes_sent"] = sent_total_;
  tcp.details["payload_bytes_received"] = recv_total_;
  if (phase_ == Phase::kTcp && !ended_ok) {
    fail_here(&tcp);
  }
  bool tcp_ok = phase_ != Phase::kTcp || ended_ok;
  out.push_back(std::move(tcp));

  // tls
  bool want_tls = spec_.tls && spec_.last_step >= Step::kTls;
  bool tls_ok = false;
  if (want_tls && tcp_ok) {
    Observation tls = make(Step::kTls, t_connected_, t_tls_done_);
    tls.bytes_sent = t_tls_done_ ? sent_at_tls_ : sent_total_;
    tls.bytes_received = t_tls_done_ ? recv_at_tls_ : recv_total_;
    if (tls_) tls.details = tls_->details;
    tls.details["events"] = tls_events_;
    if (phase_ == Phase::kTls) {
      if (ended_ok)
        tls.failure = tls_ ? tls_->failure : std::nullopt;  // CONNECT_ONLY: chain verdict
      else
        fail_here(&tls);
    }
    tls_ok = !tls.failure && tls.probe_error.empty();
    out.push_back(std::move(tls));
  }

  // http
  if (spec_.last_step == Step::kHttp && tcp_ok && (!want_tls || tls_ok)) {
    int64_t t0 = t_tls_done_ ? t_tls_done_ : t_connected_;
    Observation http = make(Step::kHttp, t0, t_end_);
    http.bytes_sent = sent_total_ - sent_at_tls_;
    http.bytes_received = recv_total_ - recv_at_tls_;
    nlohmann::json& d = http.details;
    d["url"] = url_;
    d["method"] = spec_.method;
    if (!ended_ok) fail_here(&http);
    if (status > 0) {
      d["status"] = status;
      d["status_line"] = status_line_;
      d["http_version"] = http_version == CURL_HTTP_VERSION_1_0 ? "1.0" : "1.1";
      nlohmann::json hl = nlohmann::json::array();
      for (auto& [k, v] : headers_) hl.push_back({k, v});
      d["headers_list"] = hl;
      unsigned char md[EVP_MAX_MD_SIZE];
      unsigned int mdlen = 0;
      EVP_DigestFinal_ex(static_cast<EVP_MD_CTX*>(sha_), md, &mdlen);
      static const char* kHex = "0123456789abcdef";
      std::string hex;
      for (unsigned i = 0; i < mdlen; ++i) {
        hex += kHex[md[i] >> 4];
        hex += kHex[md[i] & 15];
      }
      d["body_length"] = body_len_;
      d["body_sha256"] = hex;
      d["body_truncated"] = body_truncated_;
      d["title"] = HtmlTitle(body_prefix_);
      d["body_prefix_b64"] = Base64Encode(body_prefix_);
    }
    if (!spec_.expect_status.empty()) d["expect_status"] = spec_.expect_status;
    out.push_back(std::move(http));
  }

  Done done = std::move(done_);
  if (done) done(std::move(out));  // may delete this
}

}  // namespace rasad
