// weft::barrier<CompletionFunction>: std::barrier's members and phases. The last participant to
// arrive runs the completion function (on its own fiber, before anyone is released), then every
// waiter of the phase wakes. Waiting parks a fiber (blocks a plain thread).
#pragma once

#include <weft/detail/cxx20.hpp>

#include <cstddef>
#include <cstdint>
#include <limits>
#include <type_traits>
#include <string>
#include <system_error>
#include <utility>

#include <weft/detail/wait_list.hpp>

namespace weft {

namespace detail {
struct noop_completion {
  void operator()() noexcept {}
};
}  // namespace detail

template <class CompletionFunction = detail::noop_completion>
class barrier {
  // As std::barrier: a completion that threw would leave the phase half done and every later
  // arrival waiting for ever.
  static_assert(std::is_nothrow_invocable_v<CompletionFunction&>,
                "weft::barrier: the completion function must be noexcept (as for std::barrier)");

 public:
  /// Names a phase; returned by arrive() and passed to wait().
  class arrival_token {
   public:
    arrival_token() = default;

   private:
    friend class barrier;
    explicit arrival_token(std::uint64_t p) : phase_(p) {}
    std::uint64_t phase_ = 0;
  };

  static constexpr std::ptrdiff_t max() noexcept { return std::numeric_limits<std::ptrdiff_t>::max(); }

  constexpr explicit barrier(std::ptrdiff_t expected, CompletionFunction f = CompletionFunction())
      : expected_(expected), remaining_(expected), completion_(std::move(f)) {}
  barrier(const barrier&) = delete;
  barrier& operator=(const barrier&) = delete;

  /// Arrives `n` times at the current phase without waiting. Throws std::system_error
  /// (invalid_argument) if more arrive than are expected.
  [[nodiscard]] arrival_token arrive(std::ptrdiff_t n = 1) {
    lock_.lock();
    wait_while_completing_locked();
    if (n <= 0 || n > remaining_) {
      const std::ptrdiff_t left = remaining_;
      lock_.unlock();
      throw std::system_error(std::make_error_code(std::errc::invalid_argument),
                              "weft::barrier::arrive(" + std::to_string(n) + ") with " + std::to_string(left) +
                                  " arrivals left in this phase: wants 1 to that many");
    }
    std::uint64_t phase = phase_;
    remaining_ -= n;
    if (remaining_ == 0) {
      complete_and_unlock();
    } else {
      lock_.unlock();
    }
    return arrival_token(phase);
  }
  /// Parks until the phase named by `t` has completed.
  void wait(arrival_token&& t) const {
    lock_.lock();
    detail::wait_locked_until(lock_, waiters_, "barrier", [&] { return phase_ != t.phase_; });
    lock_.unlock();
  }
  /// Arrives and parks until the phase completes.
  void arrive_and_wait() { wait(arrive()); }
  /// Arrives and leaves: later phases expect one participant fewer.
  void arrive_and_drop() {
    lock_.lock();
    wait_while_completing_locked();
    --expected_;
    lock_.unlock();
    (void)arrive();
  }

 private:
  // The last arrival runs the completion without the lock (it may block), before anyone of
  // the phase is released; arrivals for the next phase wait until it is done.
  void complete_and_unlock() {
    completing_ = true;
    lock_.unlock();
    completion_();
    detail::pending_wakes wakes;  // resumed after the unlock
    lock_.lock();
    completing_ = false;
    remaining_ = expected_;
    ++phase_;
    detail::wake_all(waiters_, wakes);
    lock_.unlock();
  }

  void wait_while_completing_locked() const {
    detail::wait_locked_until(lock_, waiters_, "barrier", [&] { return !completing_; });
  }

  mutable detail::spinlock lock_;
  std::ptrdiff_t expected_;                // guarded by lock_
  std::ptrdiff_t remaining_;               // guarded by lock_
  std::uint64_t phase_ = 0;                // guarded by lock_
  bool completing_ = false;                // guarded by lock_
  mutable detail::wait_list waiters_;      // guarded by lock_
  CompletionFunction completion_;
};

}  // namespace weft
