// What the weft::posix sources share (posix.cpp: the descriptor table and the calls;
// posix_poll.cpp: poll): the errno discipline (see posix.cpp's opening comment), a call's
// {value, error} outcome, keeping a fiber on its thread for one call, and the hook by which a
// close reaches fibers polling the number.
#pragma once

#include <poll.h>

#include <cerrno>
#include <chrono>
#include <mutex>

#include <weft/detail/core.hpp>
#include <weft/fiber.hpp>

#include "io_desc.hpp"

namespace weft::posix::impl {

using steady = std::chrono::steady_clock;

// Out of line with an empty asm so the compiler can neither inline them nor infer them pure:
// each call computes errno's address on the thread running it now.
[[gnu::noinline]] inline int last_errno() noexcept {
  asm volatile("");
  return errno;
}
[[gnu::noinline]] inline void set_errno(int e) noexcept {
  asm volatile("");
  errno = e;
}

// A call's outcome: `value` < 0 means failure with `error`.
struct io_result {
  long value;
  int error;
};

inline io_result ok(long v) noexcept { return {v, 0}; }
inline io_result fail(int e) noexcept { return {-1, e}; }
inline io_result from_syscall(long r) noexcept { return r < 0 ? fail(last_errno()) : ok(r); }

inline bool on_fiber() noexcept { return detail::current_fiber() != nullptr; }

// Keeps the calling fiber on its worker thread for one weft::posix call (unless it is pinned
// already). Thread code clears errno, calls, and reads errno; __errno_location() is declared
// const, so the compiler computes errno's address once, before the call, and reads through it
// afterwards. A fiber that resumed on another worker inside the call would set that thread's
// errno and read the first one's. Pinned, it parks and resumes on one thread, whose errno the
// call sets (finish) before the scope ends.
// It also keeps errno as the caller left it when the call succeeds, as libc's calls do (a
// parked call's first try failed with EAGAIN, and `errno = 0; read(...); if (errno)` must not
// see that): every call ends with its finish().
class stay_on_thread {
 public:
  stay_on_thread() noexcept : saved_errno_(last_errno()) {
    if (on_fiber() && !this_fiber::is_pinned()) {
      this_fiber::pin();
      armed_ = true;
    }
  }
  ~stay_on_thread() {
    if (armed_) this_fiber::unpin();
  }
  stay_on_thread(const stay_on_thread&) = delete;
  stay_on_thread& operator=(const stay_on_thread&) = delete;

  /// The call's return value: -1 with errno set on failure; on success errno as on entry.
  long finish(io_result r) noexcept {
    set_errno(r.value < 0 ? r.error : saved_errno_);
    return r.value;
  }

 private:
  int saved_errno_;
  bool armed_ = false;
};

/// True if `d` is registered with a runtime's poller (so a fiber can park on it).
inline bool registered_with_poller(weft::detail::io_desc* d) noexcept {
  std::lock_guard lk(d->lock);
  return d->poller != nullptr;
}

/// Waits for `fds` on a fiber as poll(2) does, until `deadline` (time_point::max(): forever;
/// one already passed: a check without waiting) (posix_poll.cpp).
io_result poll_on_fiber(::pollfd* fds, ::nfds_t nfds, steady::time_point deadline);
/// Wakes the fibers polling `fd`, which was just closed (posix_poll.cpp).
void wake_pollers(int fd) noexcept;
/// The hook a record calls after it closed its number `fd` (detail::io_on_fd_closed): clears
/// weft::posix::close's mark on the number's entry, then wake_pollers (posix.cpp).
void number_closed(int fd) noexcept;

}  // namespace weft::posix::impl
