// A tiny test-and-test-and-set spinlock for critical sections of a few instructions (wait
// queues of sync primitives). Unlike a pthread mutex it may be unlocked by another fiber than
// the one that locked it — park()'s publish step runs on the next fiber — which is exactly how
// wait queues release their lock after the waiter's context is saved.
#pragma once

#include <atomic>

namespace weft::detail {

class spinlock {
 public:
  void lock() noexcept {
    for (;;) {
      // Ordering: acquire pairs with unlock's release.
      if (!locked_.exchange(true, std::memory_order_acquire)) return;
      while (locked_.load(std::memory_order_relaxed)) {
#if defined(__x86_64__) || defined(__i386__)
        __builtin_ia32_pause();
#endif
      }
    }
  }
  bool try_lock() noexcept {
    return !locked_.load(std::memory_order_relaxed) && !locked_.exchange(true, std::memory_order_acquire);
  }
  void unlock() noexcept { locked_.store(false, std::memory_order_release); }

 private:
  std::atomic<bool> locked_{false};
};

}  // namespace weft::detail
