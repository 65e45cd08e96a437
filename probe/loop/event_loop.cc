#include "probe/loop/event_loop.h"

#include <sys/epoll.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <vector>

#include "probe/core/clock.h"

namespace rasad {

EventLoop::EventLoop() = default;

EventLoop::~EventLoop() {
  if (epfd_ >= 0) close(epfd_);
}

Status EventLoop::Init() {
  epfd_ = epoll_create1(EPOLL_CLOEXEC);
  if (epfd_ < 0) return Status::IoError(std::string("epoll_create1: ") + strerror(errno));
  return Status::Ok();
}

Status EventLoop::WatchFd(int fd, uint32_t events, FdCallback cb) {
  epoll_event ev{};
  ev.events = events;
  ev.data.fd = fd;
  auto it = fds_.find(fd);
  int op = it == fds_.end() ? EPOLL_CTL_ADD : EPOLL_CTL_MOD;
  if (epoll_ctl(epfd_, op, fd, &ev) != 0) {
    // The fd may have been closed and reused behind our back: re-add it.
    if (op == EPOLL_CTL_MOD && errno == ENOENT) {
      if (epoll_ctl(epfd_, EPOLL_CTL_ADD, fd, &ev) != 0)
        return Status::IoError(std::string("epoll_ctl: ") + strerror(errno));
    } else if (op == EPOLL_CTL_ADD && errno == EEXIST) {
      if (epoll_ctl(epfd_, EPOLL_CTL_MOD, fd, &ev) != 0)
        return Status::IoError(std::string("epoll_ctl: ") + strerror(errno));
    } else {
      return Status::IoError(std::string("epoll_ctl: ") + strerror(errno));
    }
  }
  fds_[fd] = Watch{events, std::make_shared<FdCallback>(std::move(cb))};
  return Status::Ok();
}

void EventLoop::UnwatchFd(int fd) {
  if (fds_.erase(fd) == 0) return;
  // EBADF/ENOENT are expected when the owner closed the fd first.
  epoll_ctl(epfd_, EPOLL_CTL_DEL, fd, nullptr);
}

EventLoop::TimerId EventLoop::AddTimer(int64_t delay_us, TimerCallback cb) {
  TimerId id = next_timer_++;
  int64_t deadline = MonotonicMicros() + (delay_us > 0 ? delay_us : 0);
  timers_.emplace(deadline, id);
  timer_cbs_.emplace(id, std::make_pair(deadline, std::move(cb)));
  return id;
}

void EventLoop::CancelTimer(TimerId id) {
  auto it = timer_cbs_.find(id);
  if (it == timer_cbs_.end()) return;
  auto range = timers_.equal_range(it->second.first);
  for (auto t = range.first; t != range.second; ++t) {
    if (t->second == id) {
      timers_.erase(t);
      break;
    }
  }
  timer_cbs_.erase(it);
}

void EventLoop::FireTimers() {
  int64_t now = MonotonicMicros();
  // Collect first: callbacks may add timers that are already due, which then
  // run on the next turn instead of starving fd dispatch.
  std::vector<TimerId> due;
  for (auto it = timers_.begin(); it != timers_.end() && it->first <= now;) {
    due.push_back(it->second);
    it = timers_.erase(it);
  }
  for (TimerId id : due) {
    auto it = timer_cbs_.find(id);
    if (it == timer_cbs_.end()) continue;  // cancelled by an earlier callback
    TimerCallback cb = std::move(it->second.second);
    timer_cbs_.erase(it);
    cb();
  }
}

void EventLoop::RunOnce(int64_t max_wait_us) {
  int64_t wait_us = max_wait_us;
  if (!timers_.empty()) {
    int64_t until = timers_.begin()->first - MonotonicMicros();
    if (until < 0) until = 0;
    if (wait_us < 0 || until < wait_us) wait_us = until;
  }
  // Round up so a timer 0.3 ms away does not spin with a 0 ms wait.
  int timeout_ms = wait_us < 0 ? -1 : static_cast<int>((wait_us + 999) / 1000);
  epoll_event events[64];
  int n = epoll_wait(epfd_, events, 64, timeout_ms);
  for (int i = 0; i < n; ++i) {
    auto it = fds_.find(events[i].data.fd);
    if (it == fds_.end()) continue;                  // unwatched by an earlier callback
    std::shared_ptr<FdCallback> cb = it->second.cb;  // keep alive during the call
    (*cb)(events[i].events);
  }
  FireTimers();
}

void EventLoop::RunUntil(const std::function<bool()>& done) {
  while (!done()) RunOnce(-1);
}

}  // namespace rasad
