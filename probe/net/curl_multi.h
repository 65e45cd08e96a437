// CurlMulti: libcurl's multi_socket interface on the EventLoop. curl tells us
// which sockets and timeout to watch; we tell curl when they are ready.
#pragma once

#include <curl/curl.h>

#include <functional>
#include <unordered_map>

#include "probe/core/status.h"
#include "probe/loop/event_loop.h"

namespace rasad {

class CurlMulti {
 public:
  using Done = std::function<void(CURLcode)>;
  explicit CurlMulti(EventLoop* loop);
  ~CurlMulti();
  CurlMulti(const CurlMulti&) = delete;
  CurlMulti& operator=(const CurlMulti&) = delete;

  Status Init();
  // Starts a transfer; `done` runs once from the loop when it ends. The easy
  // handle stays owned by the caller (and is removed from the multi before
  // `done` is called).
  Status Add(CURL* easy, Done done);
  // Abandons a transfer; `done` is not called.
  void Remove(CURL* easy);
  size_t running() const { return done_.size(); }

 private:
  static int OnSocket(CURL* easy, curl_socket_t fd, int what, void* userp, void* socketp);
  static int OnTimer(CURLM* multi, long timeout_ms, void* userp);
  void Action(curl_socket_t fd, int flags);
  void ReapDone();

  EventLoop* loop_;
  CURLM* multi_ = nullptr;
  EventLoop::TimerId timer_ = 0;
  std::unordered_map<CURL*, Done> done_;
};

}  // namespace rasad
