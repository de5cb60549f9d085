// The stack pool: every fiber stack of a runtime, each with its control block. The control
// blocks of a chunk of stacks sit in one array beside the chunk, not on the stacks, so a free
// stack costs no resident memory once trimmed: only its control block (512 bytes) stays.
// Spawning and exiting touch no mmap: stacks are recycled through a per-worker cache (owner
// thread only, no locks) that spills into shared free lists. Stacks are mapped in chunks of up
// to 64 (one mmap, one guard per stack). Free stacks beyond a high-water mark are trimmed —
// their pages returned to the kernel — by idle workers, off the spawn/exit path. So are those
// below the mark that a whole second went by without needing (decay(): the resident free list
// shrinks to what the last second used, down to a floor), so a server's memory returns to
// its baseline after a burst of connections, as Go's scavenger returns unused heap.
// Invariant: a stack, and so its control block, is unmapped only when the pool is destroyed
// (type-stable memory, see fiber_cb.hpp).
#pragma once

#include <atomic>
#include <cstddef>
#include <mutex>
#include <vector>

#include "fiber_cb.hpp"
#include "stack_memory.hpp"

namespace weft::detail {

struct stack_span {
  void* guard_lo = nullptr;  // lowest address of this stack's slot (its guard region, if any)
  std::size_t guard = 0;     // guard bytes
  void* top = nullptr;       // one past the highest address of the stack
  bool cold = false;         // resident pages were returned to the kernel
};

/// Per-worker cache of free stacks. Ownership: the worker's thread only.
struct stack_cache {
  static constexpr unsigned capacity = 64;
  fiber_cb* items[capacity];
  unsigned count = 0;
  // Stacks acquired minus stacks released through this cache (negative when fibers spawned on
  // one worker finish on another). Ownership: the cache's worker writes it (load + store, no
  // read-modify-write on a line another core writes); stats() sums it over all workers.
  // Ordering: relaxed, a statistic.
  std::atomic<std::int64_t> net{0};
};

class stack_pool {
 public:
  stack_pool(std::size_t stack_size, bool guard_pages, bool force_mprotect, std::size_t high_water);
  ~stack_pool();
  stack_pool(const stack_pool&) = delete;
  stack_pool& operator=(const stack_pool&) = delete;

  /// A free control block with its stack; maps new ones when none is free. `cache` may be
  /// null (plain thread). Throws std::system_error when mapping fails.
  fiber_cb* acquire(stack_cache* cache);
  /// Returns a control block whose fiber is gone (both references dropped). True if this put
  /// the resident free list above its floor (wants_decay() turned true).
  bool release(fiber_cb* f, stack_cache* cache) noexcept;
  /// Moves a worker's cached stacks back to the shared lists (worker exit, or a cache the
  /// worker went a second without using: worker::age_stack_cache).
  void drain(stack_cache& cache) noexcept;
  /// Returns the pages of up to `max` free stacks beyond the high-water mark to the kernel.
  /// Returns true if more remain. Called by idle workers.
  bool trim(std::size_t max) noexcept;
  /// True if trim() has work (a hint).
  bool needs_trim() const noexcept { return excess_.load(std::memory_order_relaxed) != 0; }

  /// Resident free stacks kept however long they go unused (or the high-water mark if lower).
  static constexpr std::size_t decay_floor = 64;
  static constexpr std::int64_t decay_interval_ns = 1'000'000'000;
  /// True while the resident free list (not counting the workers' caches, up to 64 stacks
  /// each) is above its floor: idle workers call decay() at least once per decay_interval_ns
  /// (a hint).
  bool wants_decay() const noexcept { return hot_hint_.load(std::memory_order_relaxed) > floor(); }
  /// Once per decay_interval_ns (earlier calls return at once, without the lock): as many free
  /// stacks as stayed on the resident list through the whole interval (its low mark), beyond
  /// the floor, move to the list trim() empties. Called by idle workers.
  void decay(std::int64_t now_ns) noexcept;

  /// Lowest usable stack address and one past the highest.
  static void* stack_low(const fiber_cb* f) noexcept;
  static void* stack_high(const fiber_cb* f) noexcept;
  /// The guard range of `f`'s stack (empty when unguarded).
  static void guard_range(const fiber_cb* f, const void** lo, const void** hi) noexcept;

  /// Calls fn(fiber_cb*) for every control block ever mapped, under the pool's lock (so fn
  /// must not acquire or release stacks). Safe from any thread.
  template <class Fn>
  void for_each(Fn&& fn) {
    std::lock_guard lk(mu_);
    for (fiber_cb* f = all_; f != nullptr; f = f->all_next) fn(f);
  }

  std::size_t mapped() const noexcept { return mapped_.load(std::memory_order_relaxed); }
  /// Free stacks whose pages were returned to the kernel.
  std::size_t cold() const noexcept { return cold_.load(std::memory_order_relaxed); }
  /// Stacks in use acquired or released without a cache (plain threads); add each worker
  /// cache's `net` for the total (runtime_impl::stats).
  std::int64_t in_use_uncached() const noexcept { return in_use_.load(std::memory_order_relaxed); }
  guard_kind guard() const noexcept { return guard_kind_.load(std::memory_order_relaxed); }

 private:
  fiber_cb* map_chunk();
  struct chunk {
    mapped_stack stacks;
    void* headers;      // stack_header[count] (stack_pool.cpp), one per stack of the chunk
    std::size_t count;
    std::size_t arena;  // the index in synced::arenas of the mapping `headers` is carved from
  };
  // Carves `count` headers from the last arena, mapping a new one when it is full (mu_ held).
  void* carve_headers(std::size_t count, std::size_t& arena);
  std::size_t floor() const noexcept { return high_water_ < decay_floor ? high_water_ : decay_floor; }
  // After a change of synced_.hot_count (mu_ held): the hint and the interval's low mark.
  void hot_changed() noexcept;

  std::size_t stack_size_;
  bool guard_pages_;
  bool force_mprotect_;
  std::size_t high_water_;
  std::mutex mu_;
  struct synced {
    fiber_cb* hot = nullptr;     // resident free stacks, at most high_water_ (LIFO)
    fiber_cb* excess = nullptr;  // resident free stacks beyond the mark, waiting for trim()
    fiber_cb* cold = nullptr;    // free stacks whose pages were returned
    std::size_t hot_count = 0;
    std::size_t hot_low = 0;         // the least hot_count since the last decay
    std::int64_t last_decay_ns = 0;  // steady clock
    std::vector<chunk> chunks;
    // Mappings the chunks' header arrays are carved from, consecutively: the control blocks
    // of a pool sit side by side in a few pages, whatever the chunk sizes.
    std::vector<mapped_stack> arenas;
    std::size_t arena_used = 0;  // bytes of arenas.back() handed out
  } synced_;  // guarded by mu_
  fiber_cb* all_ = nullptr;  // guarded by mu_
  // Counters for stats and leak checks. Ordering: relaxed, read for reporting only.
  std::atomic<std::size_t> mapped_{0};
  std::atomic<std::int64_t> in_use_{0};  // acquisitions minus releases made without a cache
  std::atomic<std::size_t> excess_{0};
  std::atomic<std::size_t> cold_{0};    // stacks on synced_.cold
  // Ordering: relaxed hints, written under mu_ and read without it; a stale value delays a
  // decay (or takes the lock once for nothing), nothing more. That a parking worker cannot
  // miss hot_hint_ rising for good is the fences' work (see runtime_impl::release_ref).
  std::atomic<std::size_t> hot_hint_{0};         // synced_.hot_count
  std::atomic<std::int64_t> next_decay_ns_{0};   // synced_.last_decay_ns + decay_interval_ns
  std::atomic<guard_kind> guard_kind_{guard_kind::none};
};

}  // namespace weft::detail
