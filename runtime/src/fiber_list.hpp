// A mutex-guarded FIFO of fibers linked through fiber_cb::next: the global injection queue and
// each worker's inbox (pinned fibers, migrate-on-yield hand-offs).
// Invariant: `len_` equals the number of linked fibers whenever `mu_` is not held.
#pragma once

#include <atomic>
#include <cstddef>
#include <mutex>

#include "fiber_cb.hpp"

namespace weft::detail {

class fiber_list {
 public:
  void push(fiber_cb* f) noexcept { push_batch(f, f, 1); }

  /// Appends a chain first..last (linked through next) of n fibers.
  void push_batch(fiber_cb* first, fiber_cb* last, std::size_t n) noexcept {
    last->next = nullptr;
    std::lock_guard lk(mu_);
    if (synced_.tail != nullptr) synced_.tail->next = first; else synced_.head = first;
    synced_.tail = last;
    // Ordering: release under the lock; readers use it as a hint only and take the lock.
    len_.store(len_.load(std::memory_order_relaxed) + n, std::memory_order_release);
  }

  fiber_cb* pop() noexcept {
    if (empty()) return nullptr;
    std::lock_guard lk(mu_);
    fiber_cb* f = synced_.head;
    if (f == nullptr) return nullptr;
    synced_.head = f->next;
    if (synced_.head == nullptr) synced_.tail = nullptr;
    len_.store(len_.load(std::memory_order_relaxed) - 1, std::memory_order_release);
    f->next = nullptr;
    return f;
  }

  /// Takes up to `max` fibers from the head as a chain linked through next; returns its head.
  fiber_cb* pop_batch(std::size_t max) noexcept {
    if (empty() || max == 0) return nullptr;
    std::lock_guard lk(mu_);
    fiber_cb* first = synced_.head;
    if (first == nullptr) return nullptr;
    fiber_cb* last = first;
    std::size_t n = 1;
    while (n < max && last->next != nullptr) {
      last = last->next;
      ++n;
    }
    synced_.head = last->next;
    if (synced_.head == nullptr) synced_.tail = nullptr;
    last->next = nullptr;
    // Ordering: as in push_batch.
    len_.store(len_.load(std::memory_order_relaxed) - n, std::memory_order_release);
    return first;
  }

  /// Any thread; a hint. Ordering: acquire pairs with the release stores above; the park
  /// path issues a seq_cst fence before reading it (see idle.hpp).
  bool empty() const noexcept { return len_.load(std::memory_order_acquire) == 0; }
  std::size_t size() const noexcept { return len_.load(std::memory_order_acquire); }

 private:
  std::mutex mu_;
  struct synced {
    fiber_cb* head = nullptr;
    fiber_cb* tail = nullptr;
  } synced_;  // guarded by mu_
  std::atomic<std::size_t> len_{0};
};

}  // namespace weft::detail
