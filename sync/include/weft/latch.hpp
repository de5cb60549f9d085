// weft::latch: a single-use countdown with std::latch's members. wait parks a fiber (blocks a
// plain thread) until the count reaches zero; count_down may come from any fiber or thread.
#pragma once

#include <weft/detail/cxx20.hpp>

#include <cstddef>
#include <limits>

#include <weft/detail/wait_list.hpp>

namespace weft {

class latch {
 public:
  static constexpr std::ptrdiff_t max() noexcept { return std::numeric_limits<std::ptrdiff_t>::max(); }
  constexpr explicit latch(std::ptrdiff_t expected) noexcept : count_(expected) {}
  latch(const latch&) = delete;
  latch& operator=(const latch&) = delete;

  /// Decrements the count by `n`; at zero wakes every waiter. Throws std::system_error
  /// (invalid_argument) if that would make the count negative.
  void count_down(std::ptrdiff_t n = 1);
  /// True if the count is zero. Never blocks.
  bool try_wait() const noexcept;
  /// Parks until the count is zero.
  void wait() const;
  /// count_down(n), then wait().
  void arrive_and_wait(std::ptrdiff_t n = 1) {
    count_down(n);
    wait();
  }

 private:
  mutable detail::spinlock lock_;
  std::ptrdiff_t count_;               // guarded by lock_
  mutable detail::wait_list waiters_;  // guarded by lock_
};

}  // namespace weft
