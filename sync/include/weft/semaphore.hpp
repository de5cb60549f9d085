// weft::counting_semaphore<N> and binary_semaphore with std's members. acquire parks a fiber
// (blocks a plain thread) while the count is zero; release may come from any fiber or thread and
// hands permits directly to waiters in FIFO order.
#pragma once

#include <weft/detail/cxx20.hpp>

#include <chrono>
#include <cstddef>
#include <limits>

#include <weft/detail/wait_list.hpp>

namespace weft {

namespace detail {
class semaphore_core {
 public:
  constexpr explicit semaphore_core(std::ptrdiff_t initial) noexcept : count_(initial) {}
  /// Adds `n` permits; throws std::system_error(invalid_argument) if n < 0 or the count would
  /// pass `max`.
  void release(std::ptrdiff_t n, std::ptrdiff_t max);
  bool try_acquire() noexcept;
  bool acquire_until(deadline_t deadline);

 private:
  spinlock lock_;
  std::ptrdiff_t count_;  // guarded by lock_
  wait_list waiters_;     // guarded by lock_
};
}  // namespace detail

template <std::ptrdiff_t LeastMaxValue = std::numeric_limits<std::ptrdiff_t>::max()>
class counting_semaphore {
  static_assert(LeastMaxValue >= 0);

 public:
  static constexpr std::ptrdiff_t max() noexcept { return LeastMaxValue; }

  /// Starts with `desired` permits (0 <= desired <= max()).
  constexpr explicit counting_semaphore(std::ptrdiff_t desired) noexcept : core_(desired) {}
  counting_semaphore(const counting_semaphore&) = delete;
  counting_semaphore& operator=(const counting_semaphore&) = delete;

  /// Adds `update` permits, waking up to that many waiters. Never blocks. Throws
  /// std::system_error(invalid_argument) if update < 0 or the count would pass max() (std's
  /// preconditions: a binary_semaphore released twice is a bug, not two permits).
  void release(std::ptrdiff_t update = 1) { core_.release(update, max()); }
  /// Takes a permit, parking while none is available.
  void acquire() { core_.acquire_until(std::nullopt); }
  /// Takes a permit if one is available; never blocks.
  bool try_acquire() noexcept { return core_.try_acquire(); }
  template <class Rep, class Period>
  bool try_acquire_for(const std::chrono::duration<Rep, Period>& d) {
    return core_.acquire_until(detail::deadline_after(d));
  }
  template <class Clock, class Duration>
  bool try_acquire_until(const std::chrono::time_point<Clock, Duration>& t) {
    return core_.acquire_until(detail::to_steady(t));
  }

 private:
  detail::semaphore_core core_;
};

using binary_semaphore = counting_semaphore<1>;

}  // namespace weft
