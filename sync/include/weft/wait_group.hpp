// weft::wait_group: Go's sync.WaitGroup. A counter that add() raises and done() lowers; wait()
// parks a fiber (blocks a plain thread) until it reaches zero. Any fiber or thread may call any
// member concurrently. A counter that would go negative is an error (std::system_error), not
// undefined behaviour, and leaves the counter unchanged.
// Invariant: the counter changes only under lock_, and a waiter returns only after taking
// lock_ once the counter reached zero, so the last done() has left the object by then: a
// wait_group may be destroyed as soon as wait() returns.
#pragma once

#include <weft/detail/cxx20.hpp>

#include <chrono>
#include <cstdint>

#include <weft/detail/wait_list.hpp>

namespace weft {

/// Waits for a collection of fibers (or threads, or anything else) to finish.
class wait_group {
 public:
  /// Constructs a wait_group with a counter of zero.
  wait_group() noexcept = default;
  wait_group(const wait_group&) = delete;
  wait_group& operator=(const wait_group&) = delete;
  /// Destroys the wait_group; nothing may still wait on it.
  ~wait_group() = default;

  /// Adds `delta` (which may be negative) to the counter; at zero, wakes every waiter. Never
  /// blocks. Throws std::system_error(std::errc::invalid_argument) if the counter would become
  /// negative; the counter is then unchanged. As in Go, call add(n) before starting what will
  /// call done(), not from inside it.
  void add(std::int64_t delta = 1);
  /// Lowers the counter by one (add(-1)); same errors.
  void done() { add(-1); }
  /// Parks the calling fiber (blocks a plain thread) until the counter is zero; returns at once
  /// if it is. Returns early only while the runtime unwinds the calling fiber at shutdown.
  void wait();
  /// Parks until the counter is zero or `d` has passed (never earlier). Returns true if the
  /// counter reached zero.
  template <class Rep, class Period>
  bool wait_for(const std::chrono::duration<Rep, Period>& d) {
    return wait_impl(detail::deadline_after(d));
  }
  /// Parks until the counter is zero or `t` (of any clock) has passed. Returns true if the
  /// counter reached zero.
  template <class Clock, class Duration>
  bool wait_until(const std::chrono::time_point<Clock, Duration>& t) {
    return wait_impl(detail::to_steady(t));
  }

 private:
  bool wait_impl(detail::deadline_t deadline);

  detail::spinlock lock_;
  std::int64_t count_ = 0;     // guarded by lock_
  detail::wait_list waiters_;  // guarded by lock_; `granted` = the counter reached zero
};

}  // namespace weft
