// weft::shared_mutex and shared_timed_mutex: readers-writer locks with std's members (so
// std::shared_lock and std::unique_lock work). Fair: waiters are served in arrival order and a
// reader never overtakes a queued writer, so neither side starves. Waiting parks a fiber
// (blocks a plain thread). Uncontended lock and unlock take a short spinlock each.
#pragma once

#include <weft/detail/cxx20.hpp>

#include <chrono>
#include <cstdint>

#include <weft/detail/wait_list.hpp>

namespace weft {

class shared_mutex {
 public:
  shared_mutex() = default;
  shared_mutex(const shared_mutex&) = delete;
  shared_mutex& operator=(const shared_mutex&) = delete;

  /// Locks exclusively; parks while readers or a writer hold it or others queue first.
  void lock() { lock_until(std::nullopt, false); }
  bool try_lock() noexcept;
  /// Releases an exclusive lock; ends the process with a message if not locked exclusively.
  void unlock();
  /// Locks shared; parks while a writer holds it or a waiter queued before.
  void lock_shared() { lock_until(std::nullopt, true); }
  bool try_lock_shared() noexcept;
  /// Releases a shared lock; ends the process with a message if no shared lock is held.
  void unlock_shared();

 protected:
  bool lock_until(detail::deadline_t deadline, bool shared);
  bool lock_once(detail::deadline_t deadline, bool shared);

 private:
  // Hands the lock to the head of the queue, if it can (claims into `wakes`).
  void grant_locked(detail::pending_wakes& wakes) noexcept;
  detail::spinlock lock_;
  struct synced {
    std::uint32_t readers = 0;
    bool writer = false;
    detail::wait_list waiters;
  } synced_;  // guarded by lock_
};

class shared_timed_mutex : public shared_mutex {
 public:
  template <class Rep, class Period>
  bool try_lock_for(const std::chrono::duration<Rep, Period>& d) {
    return lock_until(detail::deadline_after(d), false);
  }
  template <class Clock, class Duration>
  bool try_lock_until(const std::chrono::time_point<Clock, Duration>& t) {
    return lock_until(detail::to_steady(t), false);
  }
  template <class Rep, class Period>
  bool try_lock_shared_for(const std::chrono::duration<Rep, Period>& d) {
    return lock_until(detail::deadline_after(d), true);
  }
  template <class Clock, class Duration>
  bool try_lock_shared_until(const std::chrono::time_point<Clock, Duration>& t) {
    return lock_until(detail::to_steady(t), true);
  }
};

}  // namespace weft
