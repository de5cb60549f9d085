// weft::condition_variable (with std::unique_lock<weft::mutex>) and condition_variable_any (any
// lockable, plus the C++20 std::stop_token overloads), with std's members and semantics. A
// waiting fiber parks; a waiting plain thread blocks itself only; notify may come from any
// fiber or thread. A notify racing a timeout resolves to exactly one outcome per waiter, and a
// notify_one is never lost to a waiter that is timing out: it passes to the next waiter.
#pragma once

#include <weft/detail/cxx20.hpp>

#include <chrono>
#include <condition_variable>
#include <mutex>
#include <stop_token>
#include <utility>

#include <weft/detail/wait_list.hpp>
#include <weft/mutex.hpp>

namespace weft {

namespace detail {
/// The waiter queue shared by both condition variables.
class cv_core {
 public:
  /// Queues the caller, releases the user lock via unlock(arg) once parked, and waits.
  /// Returns how the wait ended. The user lock is NOT re-acquired here.
  wake_reason wait(deadline_t deadline, void (*unlock)(void*), void* arg, const std::stop_token* st = nullptr);
  void notify_one() noexcept;
  void notify_all() noexcept;

 private:
  spinlock lock_;
  wait_list waiters_;  // guarded by lock_
};
}  // namespace detail

/// std::condition_variable for std::unique_lock<weft::mutex>.
class condition_variable {
 public:
  condition_variable() = default;
  condition_variable(const condition_variable&) = delete;
  condition_variable& operator=(const condition_variable&) = delete;

  /// Wakes one waiter (if any). Any fiber or thread; never blocks.
  void notify_one() noexcept { core_.notify_one(); }
  /// Wakes every waiter. Any fiber or thread; never blocks.
  void notify_all() noexcept { core_.notify_all(); }

  /// Atomically releases `lk` and parks until notified (spurious wake-ups are possible, as with
  /// std), then re-locks `lk`. `lk` must be locked by the caller.
  void wait(std::unique_lock<weft::mutex>& lk) { wait_impl(lk, std::nullopt); }
  template <class Pred>
  void wait(std::unique_lock<weft::mutex>& lk, Pred pred) {
    while (!pred()) wait(lk);
  }
  /// As wait(), until `t`: returns std::cv_status::timeout if it passed (never early).
  template <class Clock, class Duration>
  std::cv_status wait_until(std::unique_lock<weft::mutex>& lk, const std::chrono::time_point<Clock, Duration>& t) {
    return wait_impl(lk, detail::to_steady(t)) == wake_reason::timed_out ? std::cv_status::timeout
                                                                          : std::cv_status::no_timeout;
  }
  template <class Clock, class Duration, class Pred>
  bool wait_until(std::unique_lock<weft::mutex>& lk, const std::chrono::time_point<Clock, Duration>& t, Pred pred) {
    while (!pred())
      if (wait_until(lk, t) == std::cv_status::timeout) return pred();
    return true;
  }
  template <class Rep, class Period>
  std::cv_status wait_for(std::unique_lock<weft::mutex>& lk, const std::chrono::duration<Rep, Period>& d) {
    return wait_until(lk, detail::deadline_after(d));
  }
  template <class Rep, class Period, class Pred>
  bool wait_for(std::unique_lock<weft::mutex>& lk, const std::chrono::duration<Rep, Period>& d, Pred pred) {
    return wait_until(lk, detail::deadline_after(d),
                      std::move(pred));
  }

 private:
  wake_reason wait_impl(std::unique_lock<weft::mutex>& lk, detail::deadline_t deadline) {
    weft::mutex* m = lk.mutex();
    try {
      wake_reason r = core_.wait(deadline, [](void* p) { static_cast<weft::mutex*>(p)->unlock(); }, m);
      m->lock();  // the unique_lock still owns it: it was released by the publish step
      return r;
    } catch (const detail::forced_unwind&) {
      // The runtime's shutdown unwinds a fiber parked in the wait (the mutex was released
      // before it parked) or in the relock (the mutex is not ours yet): either way the mutex
      // is not held, and taking it now could wait for a holder that is parked for good. So
      // the unique_lock gives up its ownership: its destructor must not unlock the mutex.
      lk.release();
      throw;
    }
  }
  detail::cv_core core_;
};

/// std::condition_variable_any: works with any lockable (weft or std locks, shared locks), and
/// has the std::stop_token overloads, which return when stop is requested.
class condition_variable_any {
 public:
  condition_variable_any() = default;
  condition_variable_any(const condition_variable_any&) = delete;
  condition_variable_any& operator=(const condition_variable_any&) = delete;

  void notify_one() noexcept { core_.notify_one(); }
  void notify_all() noexcept { core_.notify_all(); }

  template <class Lock>
  void wait(Lock& lk) {
    wait_impl(lk, std::nullopt, nullptr);
  }
  template <class Lock, class Pred>
  void wait(Lock& lk, Pred pred) {
    while (!pred()) wait(lk);
  }
  template <class Lock, class Clock, class Duration>
  std::cv_status wait_until(Lock& lk, const std::chrono::time_point<Clock, Duration>& t) {
    return wait_impl(lk, detail::to_steady(t), nullptr) == wake_reason::timed_out ? std::cv_status::timeout
                                                                                   : std::cv_status::no_timeout;
  }
  template <class Lock, class Clock, class Duration, class Pred>
  bool wait_until(Lock& lk, const std::chrono::time_point<Clock, Duration>& t, Pred pred) {
    while (!pred())
      if (wait_until(lk, t) == std::cv_status::timeout) return pred();
    return true;
  }
  template <class Lock, class Rep, class Period>
  std::cv_status wait_for(Lock& lk, const std::chrono::duration<Rep, Period>& d) {
    return wait_until(lk, detail::deadline_after(d));
  }
  template <class Lock, class Rep, class Period, class Pred>
  bool wait_for(Lock& lk, const std::chrono::duration<Rep, Period>& d, Pred pred) {
    return wait_until(lk, detail::deadline_after(d),
                      std::move(pred));
  }

  /// Waits until `pred()` holds or stop is requested on `st`; returns pred().
  template <class Lock, class Pred>
  bool wait(Lock& lk, std::stop_token st, Pred pred) {
    while (!pred()) {
      if (st.stop_requested()) return pred();
      wait_impl(lk, std::nullopt, &st);
    }
    return true;
  }
  template <class Lock, class Clock, class Duration, class Pred>
  bool wait_until(Lock& lk, std::stop_token st, const std::chrono::time_point<Clock, Duration>& t, Pred pred) {
    auto deadline = detail::to_steady(t);
    while (!pred()) {
      if (st.stop_requested()) return pred();
      if (wait_impl(lk, deadline, &st) == wake_reason::timed_out) return pred();
    }
    return true;
  }
  template <class Lock, class Rep, class Period, class Pred>
  bool wait_for(Lock& lk, std::stop_token st, const std::chrono::duration<Rep, Period>& d, Pred pred) {
    return wait_until(lk, std::move(st),
                      detail::deadline_after(d),
                      std::move(pred));
  }

 private:
  template <class Lock>
  wake_reason wait_impl(Lock& lk, detail::deadline_t deadline, const std::stop_token* st) {
    wake_reason r = core_.wait(deadline, [](void* p) { static_cast<Lock*>(p)->unlock(); }, &lk, st);
    lk.lock();
    return r;
  }
  detail::cv_core core_;
};

}  // namespace weft
