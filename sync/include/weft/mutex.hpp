// Fiber-aware mutexes with the std names and members: weft::mutex, timed_mutex,
// recursive_mutex, recursive_timed_mutex, plus once_flag and call_once. They satisfy the std
// Lockable / TimedLockable concepts, so std::lock_guard, unique_lock and scoped_lock work
// unchanged. A fiber that waits parks (its worker runs other fibers); a plain thread that waits
// blocks itself only. Any fiber or thread may contend with any other.
#pragma once

#include <weft/detail/cxx20.hpp>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <exception>
#include <functional>
#include <type_traits>
#include <utility>

#include <weft/detail/wait_list.hpp>

namespace weft {

/// A mutual-exclusion lock (std::mutex). Uncontended lock and unlock are one atomic operation
/// each. Under contention waiters park in FIFO order; a newly arriving locker may still take
/// the lock first (barging, for throughput), but a waiter that has waited longer than 1 ms is
/// handed the lock directly on the next unlock, so none starves (Go's starvation mode).
class mutex {
 public:
  constexpr mutex() noexcept = default;
  mutex(const mutex&) = delete;
  mutex& operator=(const mutex&) = delete;
  ~mutex() = default;

  /// Locks, parking the calling fiber (blocking a plain thread) while another holds it.
  /// Relocking a mutex the caller holds deadlocks, as with std::mutex.
  void lock() {
    std::uint32_t expected = 0;
    // Ordering: acquire pairs with the release in unlock().
    if (state_.compare_exchange_strong(expected, locked, std::memory_order_acquire, std::memory_order_relaxed)) return;
    lock_slow(std::nullopt);
  }
  /// Takes the lock if it is free; never blocks.
  bool try_lock() noexcept {
    std::uint32_t s = state_.load(std::memory_order_relaxed);
    while ((s & locked) == 0) {
      // Ordering: acquire pairs with the release in unlock().
      if (state_.compare_exchange_weak(s, s | locked, std::memory_order_acquire, std::memory_order_relaxed)) return true;
    }
    return false;
  }
  /// Releases the lock. Unlocking a mutex that is not locked ends the process with a message
  /// (std leaves it undefined).
  void unlock() {
    std::uint32_t expected = locked;
    // Ordering: release publishes the critical section to the next acquire.
    if (state_.compare_exchange_strong(expected, 0, std::memory_order_release, std::memory_order_relaxed)) return;
    unlock_slow();
  }

 protected:
  /// Locks with an optional deadline; false on timeout.
  bool lock_slow(detail::deadline_t deadline);

 private:
  void unlock_slow();
  void forget_woken(detail::waiter& w) noexcept;

  static constexpr std::uint32_t locked = 1;
  static constexpr std::uint32_t has_waiters = 2;  // set and cleared under lock_
  static constexpr std::uintptr_t woken_by_unlock = 1;  // waiter::tag: unlock woke it (set under lock_)
  std::atomic<std::uint32_t> state_{0};
  detail::spinlock lock_;
  detail::wait_list waiters_;  // guarded by lock_
  // Guarded by lock_. True from the moment unlock wakes a waiter (without handing it the lock)
  // until that waiter runs again: meanwhile unlock wakes nobody else (Go's mutexWoken), so a
  // holder that locks and unlocks repeatedly does not wake the whole queue, one waiter per
  // unlock, only for each of them to find the mutex taken again and park once more.
  bool woken_ = false;
};

/// std::timed_mutex: a mutex whose lock can time out.
class timed_mutex : public mutex {
 public:
  /// Tries to lock until `d` has passed; parks meanwhile. True if locked.
  template <class Rep, class Period>
  bool try_lock_for(const std::chrono::duration<Rep, Period>& d) {
    return try_lock_until(detail::deadline_after(d));
  }
  /// Tries to lock until `t`; parks meanwhile. True if locked.
  template <class Clock, class Duration>
  bool try_lock_until(const std::chrono::time_point<Clock, Duration>& t) {
    if (try_lock()) return true;
    return lock_slow(detail::to_steady(t));
  }
};

namespace detail {
/// Recursion on top of a (timed) mutex: the owner is a task id (current_task_id()).
template <class Base>
class recursive_base {
 public:
  void lock() {
    if (owned_by_me()) {
      ++depth_;
      return;
    }
    m_.lock();
    take();
  }
  bool try_lock() noexcept {
    if (owned_by_me()) {
      ++depth_;
      return true;
    }
    if (!m_.try_lock()) return false;
    take();
    return true;
  }
  void unlock() {
    if (!owned_by_me()) detail::fatal_unlock("weft::recursive_mutex::unlock: the caller does not hold the mutex");
    if (--depth_ == 0) {
      // Ordering: relaxed; only the owner compares against its own id, and m_'s release
      // orders this store before the next owner's store.
      owner_.store(0, std::memory_order_relaxed);
      m_.unlock();
    }
  }

 protected:
  bool owned_by_me() const noexcept { return owner_.load(std::memory_order_relaxed) == detail::current_task_id(); }
  void take() noexcept {
    owner_.store(detail::current_task_id(), std::memory_order_relaxed);
    depth_ = 1;
  }
  Base m_;
  std::atomic<std::uint64_t> owner_{0};
  unsigned depth_ = 0;  // Ownership: the owner only
};
}  // namespace detail

/// std::recursive_mutex: the owner may lock again; it unlocks as often as it locked.
class recursive_mutex : public detail::recursive_base<mutex> {};

/// std::recursive_timed_mutex.
class recursive_timed_mutex : public detail::recursive_base<timed_mutex> {
 public:
  template <class Rep, class Period>
  bool try_lock_for(const std::chrono::duration<Rep, Period>& d) {
    return try_lock_until(detail::deadline_after(d));
  }
  template <class Clock, class Duration>
  bool try_lock_until(const std::chrono::time_point<Clock, Duration>& t) {
    if (owned_by_me()) {
      ++depth_;
      return true;
    }
    if (!m_.try_lock_until(t)) return false;
    take();
    return true;
  }
};

/// std::once_flag.
class once_flag {
 public:
  constexpr once_flag() noexcept = default;
  once_flag(const once_flag&) = delete;
  once_flag& operator=(const once_flag&) = delete;

 private:
  template <class F, class... Args>
  friend void call_once(once_flag& flag, F&& f, Args&&... args);
  bool begin();               // true: the caller runs the function
  void end(bool succeeded);   // wakes every waiter; on failure one of them runs it next
  static constexpr std::uint32_t idle = 0, running = 1, done = 2;
  std::atomic<std::uint32_t> state_{idle};
  detail::spinlock lock_;
  detail::wait_list waiters_;  // guarded by lock_
};

/// std::call_once: runs `f(args...)` once per flag. Callers that arrive while another runs it
/// park until it finishes. If it throws, the exception reaches its caller and the flag stays
/// unset: the next caller (a waiting one, or a later one) runs it.
template <class F, class... Args>
void call_once(once_flag& flag, F&& f, Args&&... args) {
  // Ordering: acquire pairs with end()'s release: the initialisation is visible.
  if (flag.state_.load(std::memory_order_acquire) == once_flag::done) return;
  if (!flag.begin()) return;
  try {
    std::invoke(std::forward<F>(f), std::forward<Args>(args)...);
  } catch (...) {
    flag.end(false);
    throw;
  }
  flag.end(true);
}

}  // namespace weft
