// A worker's bounded run queue: a ring that only its owner pushes to and pops from, and that
// other workers steal half of. The algorithm is Go's runq (runtime/proc.go: runqput, runqget,
// runqgrab), itself a simplification of the Chase–Lev deque (Chase and Lev, SPAA 2005; Lê et
// al., PPoPP 2013) for a FIFO owner: the owner consumes from the head like thieves do, so every
// consumer claims items with a CAS on `head_`, and only the owner writes `tail_`.
// Invariant: items in [head_, tail_) are owned by the queue; 0 <= tail_ - head_ <= capacity.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <memory>

namespace weft::detail {

template <class T>
class run_queue {
 public:
  /// `capacity` must be a power of two (256 in production; tests shrink it).
  explicit run_queue(std::uint32_t capacity)
      : mask_(capacity - 1), slots_(std::make_unique<std::atomic<T*>[]>(capacity)) {}

  std::uint32_t capacity() const noexcept { return mask_ + 1; }

  /// Owner only. Appends `item`; returns false when full (the caller then moves half out with
  /// take_half_for_overflow and retries).
  bool push(T* item) noexcept {
    // Ordering: acquire pairs with the consumers' release CAS on head_: a slot is reused only
    // after its previous item was claimed.
    std::uint32_t h = head_.load(std::memory_order_acquire);
    std::uint32_t t = tail_.load(std::memory_order_relaxed);  // only the owner writes tail_
    if (t - h >= capacity()) return false;
    slots_[t & mask_].store(item, std::memory_order_relaxed);
    // Ordering: release publishes the slot (and the item's state) to consumers' acquire load.
    tail_.store(t + 1, std::memory_order_release);
    return true;
  }

  /// Owner only, when push() failed: claims the older half of the queue into `out` (which has
  /// room for capacity()/2) and returns how many were taken, or 0 if a thief got there first
  /// (then push() has room again).
  std::uint32_t take_half_for_overflow(T** out) noexcept {
    std::uint32_t h = head_.load(std::memory_order_acquire);
    std::uint32_t t = tail_.load(std::memory_order_relaxed);
    std::uint32_t n = (t - h) / 2;
    if (n != capacity() / 2) return 0;
    for (std::uint32_t i = 0; i < n; ++i) out[i] = slots_[(h + i) & mask_].load(std::memory_order_relaxed);
    // Ordering: release so the next owner push into these slots happens after the claim.
    if (!head_.compare_exchange_strong(h, h + n, std::memory_order_release, std::memory_order_relaxed)) return 0;
    return n;
  }

  /// Owner only. The oldest item without taking it, or null. A thief may take it meanwhile, so
  /// the result is a hint (items must stay readable: weft's are type-stable).
  T* peek() const noexcept {
    // Ordering: acquire on head_ as in pop; the slot was written by this owner.
    std::uint32_t h = head_.load(std::memory_order_acquire);
    if (tail_.load(std::memory_order_relaxed) == h) return nullptr;
    return slots_[h & mask_].load(std::memory_order_relaxed);
  }

  /// Owner only. Takes the oldest item, or null.
  T* pop() noexcept {
    std::uint32_t h = head_.load(std::memory_order_acquire);
    for (;;) {
      std::uint32_t t = tail_.load(std::memory_order_relaxed);
      if (t == h) return nullptr;
      T* item = slots_[h & mask_].load(std::memory_order_relaxed);
      // Ordering: release pairs with the owner's acquire of head_ in push (slot reuse);
      // acquire on failure re-reads the head a thief advanced.
      if (head_.compare_exchange_weak(h, h + 1, std::memory_order_release, std::memory_order_acquire)) return item;
    }
  }

  /// Any thread (a thief). Claims half (rounded up) of the victim's items into `out`, which
  /// has room for capacity()/2 + 1. Returns how many were taken.
  std::uint32_t steal_half(T** out) noexcept {
    for (;;) {
      // Ordering: acquire on head_ pairs with other consumers' release CAS; acquire on tail_
      // pairs with the owner's release store in push, making the slots readable.
      std::uint32_t h = head_.load(std::memory_order_acquire);
      std::uint32_t t = tail_.load(std::memory_order_acquire);
      std::uint32_t n = t - h;
      n = n - n / 2;
      if (n == 0) return 0;
      if (n > capacity() / 2 + 1) continue;  // h and t read at different times; retry
      for (std::uint32_t i = 0; i < n; ++i) out[i] = slots_[(h + i) & mask_].load(std::memory_order_relaxed);
      // Ordering: release pairs with the owner's acquire in push before it reuses the slots.
      if (head_.compare_exchange_weak(h, h + n, std::memory_order_release, std::memory_order_relaxed)) return n;
    }
  }

  /// Any thread; a hint (may be stale by the time it returns).
  bool empty() const noexcept {
    // Ordering: acquire on both, used by the park path after a seq_cst fence (see idle.hpp).
    return head_.load(std::memory_order_acquire) == tail_.load(std::memory_order_acquire);
  }
  std::uint32_t size() const noexcept {
    // Head first: tail_ only grows, so a later tail is never behind the head read before it.
    std::uint32_t h = head_.load(std::memory_order_acquire);
    return tail_.load(std::memory_order_acquire) - h;
  }

 private:
  const std::uint32_t mask_;
  std::unique_ptr<std::atomic<T*>[]> slots_;
  alignas(64) std::atomic<std::uint32_t> head_{0};  // consumers (owner and thieves) CAS it
  alignas(64) std::atomic<std::uint32_t> tail_{0};  // Ownership: only the owner stores
};

}  // namespace weft::detail
