// Which workers are parked and who is searching for work: the wake protocol of Tokio's
// multi-thread scheduler (runtime/scheduler/multi_thread/idle.rs) and Go's spinning Ms.
//
// `state_` packs (unparked << 16) | searching. Rules:
// - At most half the workers search at once (try_start_searching).
// - Whoever makes work available calls should_wake(): a parked worker is woken only when no
//   worker is searching (a searcher will find the work) and some worker is parked. The woken
//   worker starts out searching, so a burst of work wakes workers one at a time, not a herd.
// - A searcher that finds work stops searching; if it was the last searcher it wakes another
//   (the work it found may not be all there is).
// - No lost wake-up (Dekker): the producer publishes work, then a seq_cst fence, then reads
//   state_; the parking worker updates state_ (seq_cst RMW), then a seq_cst fence, then
//   re-reads every queue. At least one of them sees the other.
#pragma once

#include <atomic>
#include <cstdint>
#include <mutex>
#include <vector>

namespace weft::detail {

class idle_set {
 public:
  explicit idle_set(unsigned workers) : workers_(workers), sleeping_(workers, false) {
    sleepers_.reserve(workers);
    state_.store(workers << 16, std::memory_order_relaxed);
  }

  /// Returns true if the caller may search (steal): fewer than half the workers search.
  bool try_start_searching() noexcept {
    // Ordering: seq_cst keeps all changes of state_ in one total order with the fences of
    // the wake protocol (see the file comment).
    std::uint32_t s = state_.load(std::memory_order_seq_cst);
    for (;;) {
      if (2 * (s & 0xffff) >= workers_) return false;
      if (state_.compare_exchange_weak(s, s + 1, std::memory_order_seq_cst)) return true;
    }
  }

  /// Ends searching; returns true if the caller was the last searcher.
  bool stop_searching() noexcept {
    // Ordering: seq_cst RMW, see try_start_searching.
    std::uint32_t prev = state_.fetch_sub(1, std::memory_order_seq_cst);
    return (prev & 0xffff) == 1;
  }

  /// Producer side: true if a parked worker should be woken. Call after publishing the work.
  bool should_wake() const noexcept {
    // Ordering: the fence pairs with the fence in park_begin's caller (Dekker).
    std::atomic_thread_fence(std::memory_order_seq_cst);
    std::uint32_t s = state_.load(std::memory_order_relaxed);
    return (s & 0xffff) == 0 && (s >> 16) < workers_;
  }

  /// Picks a parked worker to wake (it becomes unparked and searching); -1 if none should be.
  /// Prefers any worker other than `avoid` (the one blocked in the I/O poller).
  int pick_to_wake(int avoid = -1) {
    std::lock_guard lk(mu_);
    std::uint32_t s = state_.load(std::memory_order_seq_cst);
    if ((s & 0xffff) != 0 || sleepers_.empty()) return -1;
    unsigned pick = sleepers_.back();
    if (static_cast<int>(pick) == avoid && sleepers_.size() > 1) pick = sleepers_[sleepers_.size() - 2];
    return unregister_locked(pick, /*searching=*/true);
  }

  /// Wakes a specific worker if it is parked (inbox hand-off). Returns true if the caller must
  /// unpark it.
  bool claim_specific(unsigned id) {
    std::lock_guard lk(mu_);
    if (!sleeping_[id]) return false;
    unregister_locked(id, /*searching=*/true);
    return true;
  }

  struct park_result {
    bool was_last_searcher;
    bool last_unparked;  // every worker is now parked: this one keeps the timers
  };

  /// The worker `id` is about to park. Follow with a seq_cst fence and a re-check of the queues.
  park_result park_begin(unsigned id, bool searching) {
    std::lock_guard lk(mu_);
    std::uint32_t delta = (1u << 16) + (searching ? 1u : 0u);
    // Ordering: seq_cst RMW, see the file comment.
    std::uint32_t prev = state_.fetch_sub(delta, std::memory_order_seq_cst);
    sleepers_.push_back(id);
    sleeping_[id] = true;
    return {searching && (prev & 0xffff) == 1, (prev >> 16) == 1};
  }

  /// The worker leaves the parked set on its own (it found work or timed out). Returns false
  /// if a waker already took it out (then a wake-up token is on its way; it is searching).
  bool park_cancel(unsigned id) {
    std::lock_guard lk(mu_);
    if (!sleeping_[id]) return false;
    unregister_locked(id, /*searching=*/false);
    return true;
  }

  /// All workers that are parked, for shutdown.
  std::vector<unsigned> take_all() {
    std::lock_guard lk(mu_);
    std::vector<unsigned> all;
    while (!sleepers_.empty()) all.push_back(unregister_locked(sleepers_.back(), false));
    return all;
  }

  unsigned searching() const noexcept { return state_.load(std::memory_order_relaxed) & 0xffff; }
  unsigned unparked() const noexcept { return state_.load(std::memory_order_relaxed) >> 16; }

 private:
  int unregister_locked(unsigned id, bool searching) {
    for (std::size_t i = 0; i < sleepers_.size(); ++i) {
      if (sleepers_[i] == id) {
        sleepers_[i] = sleepers_.back();
        sleepers_.pop_back();
        break;
      }
    }
    sleeping_[id] = false;
    // Ordering: seq_cst RMW, see the file comment.
    state_.fetch_add((1u << 16) + (searching ? 1u : 0u), std::memory_order_seq_cst);
    return static_cast<int>(id);
  }

  const unsigned workers_;
  std::atomic<std::uint32_t> state_{0};
  std::mutex mu_;
  std::vector<unsigned> sleepers_;  // guarded by mu_
  std::vector<bool> sleeping_;      // guarded by mu_
};

}  // namespace weft::detail
