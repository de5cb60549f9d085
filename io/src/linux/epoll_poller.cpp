// epoll(7) + eventfd(2) implementation of the runtime's io_driver (see epoll_poller.hpp).
// Descriptors are added once, edge-triggered for both directions; an event carries the record's
// index and generation, so an event for a closed and reused descriptor is recognised and dropped.
#include "../epoll_poller.hpp"

#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>

#include "../io_desc.hpp"
#include "scheduler.hpp"

namespace weft::detail {

namespace {
constexpr std::uint64_t wake_token = ~std::uint64_t{0};
}

epoll_poller::epoll_poller() {
  epfd_ = ::epoll_create1(EPOLL_CLOEXEC);
  if (epfd_ < 0) throw std::system_error(errno, std::system_category(), "weft: epoll_create1 for the I/O poller");
  wakefd_ = ::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
  if (wakefd_ < 0) {
    int err = errno;
    ::close(epfd_);
    throw std::system_error(err, std::system_category(), "weft: eventfd for the I/O poller");
  }
  // Level-triggered: a wake() stays pending until the poll that sees it reads the counter.
  epoll_event ev{};
  ev.events = EPOLLIN;
  ev.data.u64 = wake_token;
  if (::epoll_ctl(epfd_, EPOLL_CTL_ADD, wakefd_, &ev) != 0) {
    int err = errno;
    ::close(wakefd_);
    ::close(epfd_);
    throw std::system_error(err, std::system_category(), "weft: epoll_ctl(ADD) of the poller's eventfd");
  }
}

epoll_poller::~epoll_poller() {
  // Sockets may outlive their runtime: they must not keep a pointer to this poller.
  io_detach_poller(this);
  ::close(wakefd_);
  ::close(epfd_);
}

std::uint32_t epoll_poller::poll(std::int64_t timeout_ns) noexcept {
  int timeout_ms = 0;
  if (timeout_ns < 0) {
    timeout_ms = -1;
  } else if (timeout_ns > 0) {
    // Round up: waking before the timer is due would only spin the caller once more.
    std::int64_t ms = (timeout_ns + 999'999) / 1'000'000;
    timeout_ms = ms > 1'000'000'000 ? 1'000'000'000 : static_cast<int>(ms);
  }
  epoll_event events[128];
  int n = ::epoll_wait(epfd_, events, 128, timeout_ms);
  if (n <= 0) return 0;  // EINTR or timeout: the caller's loop looks again
  std::uint32_t woken = 0;
  for (int i = 0; i < n; ++i) {
    std::uint64_t data = events[i].data.u64;
    if (data == wake_token) {
      std::uint64_t drained;
      while (::read(wakefd_, &drained, sizeof drained) > 0) {}
      continue;
    }
    std::uint32_t e = events[i].events;
    bool rd = (e & (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR | EPOLLPRI)) != 0;
    bool wr = (e & (EPOLLOUT | EPOLLHUP | EPOLLERR)) != 0;
    // Something a short read may have left queued with no edge to come (io_desc::read_hint_off).
    bool hint_off = (e & (EPOLLRDHUP | EPOLLHUP | EPOLLERR | EPOLLPRI)) != 0;
    io_ready(static_cast<std::uint32_t>(data), static_cast<std::uint32_t>(data >> 32), rd, wr, hint_off);
    ++woken;
  }
  return woken;
}

void epoll_poller::wake() noexcept {
  std::uint64_t one = 1;
  // EAGAIN means the counter is already non-zero: a wake-up is pending anyway.
  [[maybe_unused]] ssize_t r = ::write(wakefd_, &one, sizeof one);
}

std::error_code epoll_poller::add(int fd, std::uint64_t data) noexcept {
  epoll_event ev{};
  // EPOLLPRI: TCP urgent data ends a read at its mark with bytes behind it, so the event must
  // reach io_ready (it turns off the short-read hint, io_desc::read_hint_off).
  ev.events = EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLPRI | EPOLLET;
  ev.data.u64 = data;
  if (::epoll_ctl(epfd_, EPOLL_CTL_ADD, fd, &ev) == 0) return {};
  if (errno == EEXIST) {
    // The same number registered under an older record (a descriptor closed behind weft's
    // back, or dup2 over it): take it over.
    if (::epoll_ctl(epfd_, EPOLL_CTL_MOD, fd, &ev) == 0) return {};
  }
  return {errno, std::system_category()};
}

void epoll_poller::remove(int fd) noexcept {
  epoll_event ev{};
  ::epoll_ctl(epfd_, EPOLL_CTL_DEL, fd, &ev);
}

epoll_poller* epoll_poller::of(runtime_impl* rt) {
  return static_cast<epoll_poller*>(rt->driver([](runtime_impl*) -> io_driver* { return new epoll_poller(); }));
}

epoll_poller* epoll_poller::current() noexcept {
  worker* w = this_worker();
  if (w == nullptr) return nullptr;
  try {
    return of(w->rt);
  } catch (const std::system_error& e) {
    std::fprintf(stderr, "weft: cannot create the I/O poller (%s); waits fall back to poll(2)\n", e.what());
    return nullptr;
  }
}

}  // namespace weft::detail
