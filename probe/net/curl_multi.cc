#include "probe/net/curl_multi.h"

#include <sys/epoll.h>

#include <vector>

namespace rasad {

CurlMulti::CurlMulti(EventLoop* loop) : loop_(loop) {}

CurlMulti::~CurlMulti() {
  if (timer_) loop_->CancelTimer(timer_);
  for (auto& kv : done_) curl_multi_remove_handle(multi_, kv.first);
  if (multi_) curl_multi_cleanup(multi_);
}

Status CurlMulti::Init() {
  multi_ = curl_multi_init();
  if (!multi_) return Status::Internal("curl_multi_init failed");
  curl_multi_setopt(multi_, CURLMOPT_SOCKETFUNCTION, &CurlMulti::OnSocket);
  curl_multi_setopt(multi_, CURLMOPT_SOCKETDATA, this);
  curl_multi_setopt(multi_, CURLMOPT_TIMERFUNCTION, &CurlMulti::OnTimer);
  curl_multi_setopt(multi_, CURLMOPT_TIMERDATA, this);
  return Status::Ok();
}

Status CurlMulti::Add(CURL* easy, Done done) {
  done_[easy] = std::move(done);
  CURLMcode rc = curl_multi_add_handle(multi_, easy);
  if (rc != CURLM_OK) {
    done_.erase(easy);
    return Status::Internal(std::string("curl_multi_add_handle: ") + curl_multi_strerror(rc));
  }
  return Status::Ok();
}

void CurlMulti::Remove(CURL* easy) {
  if (done_.erase(easy)) curl_multi_remove_handle(multi_, easy);
}

int CurlMulti::OnSocket(CURL*, curl_socket_t fd, int what, void* userp, void*) {
  auto* self = static_cast<CurlMulti*>(userp);
  if (what == CURL_POLL_REMOVE) {
    self->loop_->UnwatchFd(fd);
    return 0;
  }
  uint32_t ev = 0;
  if (what == CURL_POLL_IN || what == CURL_POLL_INOUT) ev |= EPOLLIN;
  if (what == CURL_POLL_OUT || what == CURL_POLL_INOUT) ev |= EPOLLOUT;
  self->loop_->WatchFd(fd, ev, [self, fd](uint32_t events) {
    int flags = 0;
    if (events & EPOLLIN) flags |= CURL_CSELECT_IN;
    if (events & EPOLLOUT) flags |= CURL_CSELECT_OUT;
    if (events & (EPOLLERR | EPOLLHUP)) flags |= CURL_CSELECT_ERR;
    self->Action(fd, flags);
  });
  return 0;
}

int CurlMulti::OnTimer(CURLM*, long timeout_ms, void* userp) {
  auto* self = static_cast<CurlMulti*>(userp);
  if (self->timer_) self->loop_->CancelTimer(self->timer_);
  self->timer_ = 0;
  if (timeout_ms < 0) return 0;
  // Never call curl from inside its own callback: the loop fires this later.
  self->timer_ = self->loop_->AddTimer(timeout_ms * 1000, [self] {
    self->timer_ = 0;
    self->Action(CURL_SOCKET_TIMEOUT, 0);
  });
  return 0;
}

void CurlMulti::Action(curl_socket_t fd, int flags) {
  int running = 0;
  curl_multi_socket_action(multi_, fd, flags, &running);
  ReapDone();
}

void CurlMulti::ReapDone() {
  std::vector<std::pair<CURL*, CURLcode>> finished;
  int left = 0;
  while (CURLMsg* msg = curl_multi_info_read(multi_, &left)) {
    if (msg->msg == CURLMSG_DONE) finished.emplace_back(msg->easy_handle, msg->data.result);
  }
  for (auto& [easy, rc] : finished) {
    auto it = done_.find(easy);
    if (it == done_.end()) continue;
    Done done = std::move(it->second);
    done_.erase(it);
    curl_multi_remove_handle(multi_, easy);
    done(rc);
  }
}

}  // namespace rasad
