// Blocks an OS thread until notified or a timeout: a futex on Linux (linux/futex_parker.cpp).
// A notification that arrives before park() is not lost: it makes the next park() return at
// once (a token, like std::binary_semaphore).
#pragma once

#include <atomic>
#include <cstdint>

namespace weft::detail {

/// Waits while *word == expected, at most `timeout_ns` (< 0: no timeout). Spurious returns happen.
void futex_wait(std::atomic<std::uint32_t>* word, std::uint32_t expected, std::int64_t timeout_ns) noexcept;
/// Wakes up to `n` threads waiting on `word`.
void futex_wake(std::atomic<std::uint32_t>* word, int n) noexcept;

class parker {
 public:
  /// Blocks until unpark() or the timeout; consumes the token.
  void park(std::int64_t timeout_ns) noexcept {
    // Ordering: acquire pairs with unpark's release: what the waker wrote before unpark() is
    // visible once the token is consumed.
    if (token_.exchange(0, std::memory_order_acquire) == 1) return;
    futex_wait(&token_, 0, timeout_ns);
    token_.exchange(0, std::memory_order_acquire);
  }
  /// Consumes the token if one is set, without blocking.
  bool take_token() noexcept {
    // Ordering: seq_cst: the load half of the Dekker pair described at worker::polling.
    if (token_.load(std::memory_order_seq_cst) == 0) return false;
    return token_.exchange(0, std::memory_order_acquire) == 1;
  }
  /// Any thread. Sets the token and wakes the parked thread.
  void unpark() noexcept {
    // Ordering: release pairs with park's acquire exchange; seq_cst also orders it before the
    // waker's load of worker::polling (runtime_impl::unpark_worker).
    token_.store(1, std::memory_order_seq_cst);
    futex_wake(&token_, 1);
  }

 private:
  std::atomic<std::uint32_t> token_{0};
};

}  // namespace weft::detail
