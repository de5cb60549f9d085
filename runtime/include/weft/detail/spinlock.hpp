// A tiny test-and-test-and-set spinlock for critical sections of a few instructions (wait
// queues of sync primitives). Unlike a pthread mutex it may be unlocked by another fiber than
// the one that locked it — park()'s publish step runs on the next fiber — which is exactly how
// wait queues release their lock after the waiter's context is saved.
#pragma once

#include <weft/detail/cxx20.hpp>

#include <sched.h>

#include <atomic>

namespace weft::detail {

class spinlock {
 public:
  void lock() noexcept {
    // Ordering: acquire pairs with unlock's release.
    if (!locked_.exchange(true, std::memory_order_acquire)) [[likely]] return;
    lock_contended();
  }
  bool try_lock() noexcept {
    return !locked_.load(std::memory_order_relaxed) && !locked_.exchange(true, std::memory_order_acquire);
  }
  void unlock() noexcept { locked_.store(false, std::memory_order_release); }

 private:
  // Out of line: the uncontended lock above is one exchange, inlined at every primitive.
  [[gnu::noinline]] void lock_contended() noexcept {
    for (;;) {
      // Spin briefly, then give the CPU away: with more threads than cores the holder may be
      // descheduled, and spinning out our time slice would only delay it.
      for (int spins = 0; locked_.load(std::memory_order_relaxed); ++spins) {
        if (spins < 128) {
#if defined(__x86_64__) || defined(__i386__)
          __builtin_ia32_pause();
#endif
        } else {
          ::sched_yield();
        }
      }
      // Ordering: acquire pairs with unlock's release.
      if (!locked_.exchange(true, std::memory_order_acquire)) return;
    }
  }

  std::atomic<bool> locked_{false};
};

}  // namespace weft::detail
