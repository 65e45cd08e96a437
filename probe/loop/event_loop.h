// EventLoop: the one loop that drives every socket and timer of the probe
// (c-ares channels, curl's multi_socket interface, signals). epoll for file
// descriptors; timers kept in an ordered map and folded into the epoll_wait
// timeout. Single-threaded: every callback runs on the thread calling Run*.
// Callbacks may add or remove fds and timers, including their own.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <unordered_map>

#include "probe/core/status.h"

namespace rasad {

class EventLoop {
 public:
  using FdCallback = std::function<void(uint32_t epoll_events)>;
  using TimerCallback = std::function<void()>;
  using TimerId = uint64_t;

  EventLoop();
  ~EventLoop();
  EventLoop(const EventLoop&) = delete;
  EventLoop& operator=(const EventLoop&) = delete;

  Status Init();

  // Adds or changes the watch on fd (EPOLLIN/EPOLLOUT). The callback gets the
  // returned epoll events (EPOLLERR/EPOLLHUP included).
  Status WatchFd(int fd, uint32_t events, FdCallback cb);
  // Stops watching; tolerant of fds already closed by their owner.
  void UnwatchFd(int fd);
  size_t watched_fds() const { return fds_.size(); }

  // Runs cb once after delay_us microseconds (monotonic clock).
  TimerId AddTimer(int64_t delay_us, TimerCallback cb);
  void CancelTimer(TimerId id);  // no-op for unknown or already fired ids

  // Waits at most max_wait_us (-1: until something happens) and dispatches
  // the ready fds and expired timers once.
  void RunOnce(int64_t max_wait_us);
  // Dispatches until done() returns true (checked after every RunOnce).
  void RunUntil(const std::function<bool()>& done);

 private:
  struct Watch {
    uint32_t events;
    std::shared_ptr<FdCallback> cb;
  };
  void FireTimers();
  int epfd_ = -1;
  std::unordered_map<int, Watch> fds_;
  std::multimap<int64_t, TimerId> timers_;  // deadline (monotonic us) -> id
  std::unordered_map<TimerId, std::pair<int64_t, TimerCallback>> timer_cbs_;
  TimerId next_timer_ = 1;
};

}  // namespace rasad
