#include "control/helper_server.h"

#include <ares.h>
#include <arpa/inet.h>
#include <curl/curl.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <cstdio>
#include <cstring>
#include <mutex>

#include "control/ssrf.h"
#include "probe/core/clock.h"
#include "probe/net/bind.h"

namespace rasad {

namespace {

const char kHello[] = "{\"message\":\"Hello OONItarian!\"}";

void LogLine(const std::string& line) {
  static std::mutex mu;
  std::lock_guard<std::mutex> lock(mu);
  std::string out = "rasad helper: " + line + "\n";
  fwrite(out.data(), 1, out.size(), stderr);
  fflush(stderr);
}

// MHD's own diagnostics (bind errors, ...). They carry no client address
// for the conditions we hit, but be safe: never more than the format text
// when the message would include one.
void MhdLogger(void*, const char* fmt, va_list ap) {
  char buf[512];
  vsnprintf(buf, sizeof buf, fmt, ap);
  std::string msg(buf);
  while (!msg.empty() && (msg.back() == '\n' || msg.back() == '\r')) msg.pop_back();
  LogLine("mhd: " + msg);
}

struct Request {
  std::string method;
  std::string body;
  bool too_large = false;
  bool responded = false;
  bool measured = false;  // counted in Impl::unsent until its response is sent
  int64_t t0 = 0;
};

std::string ErrorJson(const std::string& msg) { return DumpJson(nlohmann::json{{"error", msg}}); }

// "1.2.3.4:8080" or "[::]:8080"; port 0 (ephemeral) allowed, unlike SplitHostPort.
bool ParseListen(const std::string& in, std::string* addr, int* port) {
  size_t colon = in.rfind(':');
  if (colon == std::string::npos || colon + 1 >= in.size()) return false;
  std::string host = in.substr(0, colon), p = in.substr(colon + 1);
  if (host.size() >= 2 && host.front() == '[' && host.back() == ']')
    host = host.substr(1, host.size() - 2);
  else if (host.find(':') != std::string::npos)
    return false;  // IPv6 needs brackets
  if (p.size() > 5 || p.find_first_not_of("0123456789") != std::string::npos) return false;
  int n = atoi(p.c_str());
  if (n > 65535 || !IsIpLiteral(host)) return false;
  *addr = host;
  *port = n;
  return true;
}

}  // namespace

struct HelperServer::Impl {
  HelperOptions opts;
  MHD_Daemon* daemon = nullptr;
  uint16_t port = 0;
  std::atomic<size_t> in_flight{0};
  std::atomic<uint64_t> requests{0};
  std::atomic<bool> cancel{false};
  std::atomic<int> unsent{0};  // measurements whose response is not yet sent
  bool globals = false;

  MHD_Result Respond(MHD_Connection* c, Request* r, unsigned status, const std::string& body,
                     bool head = false) {
    MHD_Response* resp = MHD_create_response_from_buffer(
        head ? 0 : body.size(), const_cast<char*>(body.data()), MHD_RESPMEM_MUST_COPY);
    if (!resp) return MHD_NO;
    MHD_add_response_header(resp, "Content-Type", "application/json");
    MHD_add_response_header(resp, "Cache-Control", "no-store");
    if (status == 405) MHD_add_response_header(resp, "Allow", "GET, HEAD, POST");
    if (status == 413 || status == 503) MHD_add_response_header(resp, "Connection", "close");
    MHD_Result ok = MHD_queue_response(c, status, resp);
    MHD_destroy_response(resp);
    r->responded = true;
    requests.fetch_add(1);
    if (opts.log_requests) {
      int64_t ms = (MonotonicMicros() - r->t0) / 1000;
      LogLine(r->method + " " + std::to_string(status) + " in=" + std::to_string(r->body.size()) +
              "B out=" + std::to_string(body.size()) + "B " + std::to_string(ms) + "ms");
    }
    return ok;
  }

  MHD_Result Handle(MHD_Connection* c, const char* method, const char* upload_data,
                    size_t* upload_data_size, void** con_cls) {
    auto* r = static_cast<Request*>(*con_cls);
    if (!r) {
      r = new Request;
      r->t0 = MonotonicMicros();
      r->method = method;
      if (r->method.size() > 16) r->method = r->method.substr(0, 16);  // log hygiene
      *con_cls = r;
      if (r->method == "GET" || r->method == "HEAD")
        return Respond(c, r, 200, kHello, r->method == "HEAD");
      if (r->method != "POST") return Respond(c, r, 405, ErrorJson("method not allowed"));
      const char* cl = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Content-Length");
      if (cl && strtoull(cl, nullptr, 10) > opts.limits.max_body_bytes)
        return Respond(c, r, 413, ErrorJson("request body too large"));
      return MHD_YES;  // the body follows
    }
    if (r->responded) {  // e.g. a body after an early answer: discard it
      *upload_data_size = 0;
      return MHD_YES;
    }
    if (*upload_data_size > 0) {
      if (r->body.size() + *upload_data_size > opts.limits.max_body_bytes) {
        // A chunked body over the limit: a response cannot be queued while
        // the body is being read, so close the connection.
        r->too_large = true;
        return MHD_NO;
      }
      r->body.append(upload_data, *upload_data_size);
      *upload_data_size = 0;
      return MHD_YES;
    }
    // The whole body has arrived.
    THRequest req;
    Status st = ParseThRequest(r->body, opts.limits, &req);
    if (!st.ok()) return Respond(c, r, 400, ErrorJson(st.message()));
    if (in_flight.fetch_add(1) >= opts.max_in_flight) {
      in_flight.fetch_sub(1);
      return Respond(c, r, 503, ErrorJson("too many requests in flight; retry later"));
    }
    r->measured = true;
    unsent.fetch_add(1);
    THResponse resp = MeasureForTh(req, opts.th);
    in_flight.fetch_sub(1);
    return Respond(c, r, 200, DumpJson(ThResponseToJson(resp)));
  }

  static MHD_Result OnRequest(void* cls, MHD_Connection* c, const char*, const char* method,
                              const char*, const char* upload_data, size_t* upload_data_size,
                              void** con_cls) {
    return static_cast<Impl*>(cls)->Handle(c, method, upload_data, upload_data_size, con_cls);
  }

  static void OnCompleted(void* cls, MHD_Connection*, void** con_cls, MHD_RequestTerminationCode) {
    auto* r = static_cast<Request*>(*con_cls);
    if (r && r->measured) static_cast<Impl*>(cls)->unsent.fetch_sub(1);
    delete r;
    *con_cls = nullptr;
  }
};

Status PrepareHelperOptions(HelperOptions* o) {
  std::string addr;
  int port = 0;
  if (!ParseListen(o->listen, &addr, &port))
    return Status::Invalid("listen address must be ip:port, e.g. 0.0.0.0:8080 or [::]:8080");
  DestinationPolicy policy;
  Status st = DestinationPolicy::Create(o->th.allow_ranges, &policy);
  if (!st.ok()) return st;
  for (const std::string& r : o->th.resolvers) {
    std::string a;
    int p = 0;
    if (!SplitHostPort(r, 53, &a, &p) || !IsIpLiteral(a) || p <= 0 || p > 65535)
      return Status::Invalid("resolver must be ip or ip:port: " + r);
  }
  if (o->max_in_flight == 0) return Status::Invalid("max_in_flight must be at least 1");
  if (!o->th.trust) {
    st = TrustStore::Create(o->th.ca_file, &o->th.trust);
    if (!st.ok()) return st;
  }
  return Status::Ok();
}

HelperServer::HelperServer(HelperOptions opts) : impl_(new Impl) { impl_->opts = std::move(opts); }

HelperServer::~HelperServer() { Stop(); }

Status HelperServer::Start() {
  if (impl_->daemon) return Status::Invalid("already started");
  Status st = PrepareHelperOptions(&impl_->opts);
  if (!st.ok()) return st;
  impl_->opts.th.cancel = &impl_->cancel;
  impl_->cancel = false;

  std::string addr;
  int port = 0;
  ParseListen(impl_->opts.listen, &addr, &port);
  sockaddr_storage ss{};
  bool v6 = false;
  IsIpLiteral(addr, &v6);
  if (v6) {
    auto* s6 = reinterpret_cast<sockaddr_in6*>(&ss);
    s6->sin6_family = AF_INET6;
    s6->sin6_port = htons(static_cast<uint16_t>(port));
    inet_pton(AF_INET6, addr.c_str(), &s6->sin6_addr);
  } else {
    auto* s4 = reinterpret_cast<sockaddr_in*>(&ss);
    s4->sin_family = AF_INET;
    s4->sin_port = htons(static_cast<uint16_t>(port));
    inet_pton(AF_INET, addr.c_str(), &s4->sin_addr);
  }
  curl_global_init(CURL_GLOBAL_DEFAULT);  // reference counted
  ares_library_init(ARES_LIB_INIT_ALL);
  impl_->globals = true;

  unsigned flags = MHD_USE_THREAD_PER_CONNECTION | MHD_USE_INTERNAL_POLLING_THREAD |
                   MHD_USE_ERROR_LOG | MHD_USE_ITC | (v6 ? MHD_USE_DUAL_STACK : 0);
  impl_->daemon = MHD_start_daemon(
      flags, static_cast<uint16_t>(port), nullptr, nullptr, &Impl::OnRequest, impl_.get(),
      MHD_OPTION_EXTERNAL_LOGGER, &MhdLogger, nullptr, MHD_OPTION_SOCK_ADDR,
      reinterpret_cast<sockaddr*>(&ss), MHD_OPTION_CONNECTION_LIMIT, impl_->opts.max_connections,
      MHD_OPTION_CONNECTION_TIMEOUT, impl_->opts.connection_timeout_s, MHD_OPTION_NOTIFY_COMPLETED,
      &Impl::OnCompleted, impl_.get(), MHD_OPTION_END);
  if (!impl_->daemon) {
    Stop();
    return Status::IoError("cannot listen on " + impl_->opts.listen);
  }
  const MHD_DaemonInfo* info = MHD_get_daemon_info(impl_->daemon, MHD_DAEMON_INFO_BIND_PORT);
  impl_->port = info ? info->port : static_cast<uint16_t>(port);
  return Status::Ok();
}

uint16_t HelperServer::port() const { return impl_->port; }
size_t HelperServer::in_flight() const { return impl_->in_flight.load(); }
uint64_t HelperServer::requests() const { return impl_->requests.load(); }

void HelperServer::Stop() {
  impl_->cancel = true;
  if (impl_->daemon) {
    // Stop accepting, let measurements in flight (now cancelled) send their
    // answers, then close everything.
    MHD_socket listen_fd = MHD_quiesce_daemon(impl_->daemon);
    for (int i = 0; i < 300 && impl_->unsent.load() > 0; ++i) {
      timespec ts{0, 10 * 1000 * 1000};
      nanosleep(&ts, nullptr);
    }
    MHD_stop_daemon(impl_->daemon);
    impl_->daemon = nullptr;
    if (listen_fd != MHD_INVALID_SOCKET) close(listen_fd);
  }
  if (impl_->globals) {
    ares_library_cleanup();
    curl_global_cleanup();
    impl_->globals = false;
  }
}

namespace {
volatile sig_atomic_t g_stop = 0;
void OnStopSignal(int) { g_stop = 1; }
}  // namespace

int RunHelper(const HelperOptions& opts) {
  // A proxy from the environment would make curl connect on our behalf to
  // wherever it likes; the policy only governs the addresses we hand it.
  for (const char* v : {"http_proxy", "https_proxy", "HTTPS_PROXY", "all_proxy", "ALL_PROXY",
                        "HTTP_PROXY", "no_proxy", "NO_PROXY"})
    unsetenv(v);
  HelperServer server(opts);
  struct sigaction sa {
  }, old_term{}, old_int{};
  sa.sa_handler = &OnStopSignal;
  sigemptyset(&sa.sa_mask);
  g_stop = 0;
  sigaction(SIGTERM, &sa, &old_term);
  sigaction(SIGINT, &sa, &old_int);
  Status st = server.Start();
  int rc = 0;
  if (!st.ok()) {
    LogLine("cannot start: " + st.message());
    rc = 1;
  } else {
    LogLine("listening on " + opts.listen + " (port " + std::to_string(server.port()) +
            "), at most " + std::to_string(opts.max_in_flight) + " measurements in flight");
    while (!g_stop) {
      timespec ts{0, 200 * 1000 * 1000};
      nanosleep(&ts, nullptr);
    }
    LogLine("stopping");
    server.Stop();
    LogLine("stopped after " + std::to_string(server.requests()) + " requests");
  }
  sigaction(SIGTERM, &old_term, nullptr);
  sigaction(SIGINT, &old_int, nullptr);
  return rc;
}

}  // namespace rasad
