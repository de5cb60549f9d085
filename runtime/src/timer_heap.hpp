// A worker's timers: a 4-ary min-heap of (deadline, wait) with lazy deletion. A timer is never
// removed when its wait ends early (most timeouts are cancelled that way); it fires into a stale
// ticket, which is a no-op, or is swept when the heap has doubled since the last sweep.
// The heap is guarded by a mutex: its owner adds and runs timers, and a worker that keeps the
// time for everyone (the last to park, or a busy one every 61 ticks) runs other workers'
// expired timers too.
#pragma once

#include <atomic>
#include <climits>
#include <cstdint>
#include <mutex>
#include <vector>

#include "fiber_cb.hpp"

namespace weft::detail {

/// Ends the wait (w, seq) with `reason` if it is still pending; makes the waiter runnable.
bool wake_waitable(waitable* w, std::uint64_t seq, wake_reason reason) noexcept;
/// The two halves of wake_waitable (wait_ticket::claim and resume).
bool claim_waitable(waitable* w, std::uint64_t seq, wake_reason reason) noexcept;
/// `lifo`: a fiber runs next on this worker (its LIFO slot), else it queues behind the others.
void resume_waitable(waitable* w, std::uint64_t seq, bool lifo = true) noexcept;

/// Monotonic clock in nanoseconds (CLOCK_MONOTONIC, the clock of std::chrono::steady_clock).
std::int64_t now_ns() noexcept;

class timer_heap {
 public:
  static constexpr std::int64_t none = INT64_MAX;

  /// Adds a timer; returns true if it is now this heap's earliest.
  bool add(std::int64_t deadline, waitable* w, std::uint64_t seq) {
    std::lock_guard lk(mu_);
    if (heap_.size() >= sweep_at_) sweep_locked();
    heap_.push_back({deadline, w, seq});
    sift_up(heap_.size() - 1);
    publish_locked();
    return heap_[0].deadline == deadline;
  }

  /// Fires every timer due at `now`; returns how many woke a waiter.
  std::uint64_t run_expired(std::int64_t now) {
    std::uint64_t fired = 0;
    // Ordering: acquire pairs with publish_locked's release (a hint; the heap is re-read locked).
    if (earliest_.load(std::memory_order_acquire) > now) return 0;
    entry batch[64];
    for (;;) {
      unsigned n = 0;
      {
        std::lock_guard lk(mu_);
        while (n < 64 && !heap_.empty() && heap_[0].deadline <= now) {
          batch[n++] = heap_[0];
          pop_top();
        }
        publish_locked();
      }
      for (unsigned i = 0; i < n; ++i) fired += wake_waitable(batch[i].w, batch[i].seq, wake_reason::timed_out) ? 1 : 0;
      if (n < 64) return fired;
    }
  }

  /// The earliest deadline, or `none`. Any thread.
  std::int64_t earliest() const noexcept {
    // Ordering: acquire pairs with publish_locked's release.
    return earliest_.load(std::memory_order_acquire);
  }

  std::size_t size() {
    std::lock_guard lk(mu_);
    return heap_.size();
  }

 private:
  struct entry {
    std::int64_t deadline;
    waitable* w;
    std::uint64_t seq;
  };

  void publish_locked() noexcept {
    // Ordering: release pairs with earliest()'s acquire in the parking and time-keeping paths.
    earliest_.store(heap_.empty() ? none : heap_[0].deadline, std::memory_order_release);
  }

  void sift_up(std::size_t i) noexcept {
    entry e = heap_[i];
    while (i > 0) {
      std::size_t parent = (i - 1) / 4;
      if (heap_[parent].deadline <= e.deadline) break;
      heap_[i] = heap_[parent];
      i = parent;
    }
    heap_[i] = e;
  }

  void sift_down(std::size_t i) noexcept {
    const std::size_t n = heap_.size();
    entry e = heap_[i];
    for (;;) {
      std::size_t first = 4 * i + 1;
      if (first >= n) break;
      std::size_t best = first;
      std::size_t last = first + 4 < n ? first + 4 : n;
      for (std::size_t c = first + 1; c < last; ++c)
        if (heap_[c].deadline < heap_[best].deadline) best = c;
      if (heap_[best].deadline >= e.deadline) break;
      heap_[i] = heap_[best];
      i = best;
    }
    heap_[i] = e;
  }

  void pop_top() noexcept {
    heap_[0] = heap_.back();
    heap_.pop_back();
    if (!heap_.empty()) sift_down(0);
  }

  // Drops timers whose wait already ended and rebuilds the heap.
  void sweep_locked() {
    std::size_t kept = 0;
    for (const entry& e : heap_) {
      // Ordering: relaxed is enough: a stale read only keeps a dead timer until the next sweep.
      if (e.w->wait_word.load(std::memory_order_relaxed) == (e.seq << 2)) heap_[kept++] = e;
    }
    heap_.resize(kept);
    for (std::size_t i = heap_.size(); i-- > 0;) sift_down(i);
    sweep_at_ = heap_.size() * 2 > 64 ? heap_.size() * 2 : 64;
  }

  std::mutex mu_;
  std::vector<entry> heap_;  // guarded by mu_
  std::size_t sweep_at_ = 64;  // guarded by mu_
  std::atomic<std::int64_t> earliest_{none};
};

}  // namespace weft::detail
