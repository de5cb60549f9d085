// Stack pool implementation (see stack_pool.hpp).
#include "stack_pool.hpp"

#include <algorithm>
#include <new>

#if defined(WEFT_ASAN)
#include <sanitizer/asan_interface.h>
#endif

namespace weft::detail {
namespace {

// A stack's bookkeeping: its span and its control block. The headers of a chunk's stacks sit
// side by side in one array carved from an arena (not on the stacks), so a free stack's
// pages can all go back to the kernel while its control block stays (type-stable). alignas
// 256: the control block of a fiber one worker spawns and another runs is written by both, and
// with 64 (no shared line) spawn+join on 2 workers ran 1.1-1.2x the time of control blocks on
// their stacks in alternating runs; with 256, 0.87x (batch 100; docs/benchmarks.md,
// 2026-11-27). The arrays are carved from mappings of the pool's own (carve_headers), not heap:
// a wait ticket used after its runtime is gone faults on unmapped memory instead of writing
// into whatever the heap put there since.
struct alignas(256) stack_header {
  stack_span span;
  fiber_cb cb;
};
static_assert(sizeof(stack_header) % 256 == 0, "headers carved one after another stay 256-aligned");
#if !defined(WEFT_ASAN)
// 256, not 512: a header is a quarter of the memory an idle fiber keeps (one touched stack page
// plus this). ASan builds carry three more pointers per context and take 512.
static_assert(sizeof(stack_header) == 256,
              "a stack_header outgrew 256 bytes (it would take 512): fiber_cb's fields are packed, see fiber_cb.hpp");
#endif

fiber_cb* pop(fiber_cb*& list) noexcept {
  fiber_cb* f = list;
  if (f != nullptr) list = f->next;
  return f;
}

void push(fiber_cb*& list, fiber_cb* f) noexcept {
  f->next = list;
  list = f;
}

}  // namespace

stack_pool::stack_pool(std::size_t stack_size, bool guard_pages, bool force_mprotect, std::size_t high_water)
    : stack_size_(stack_size), guard_pages_(guard_pages), force_mprotect_(force_mprotect), high_water_(high_water) {}

stack_pool::~stack_pool() {
  // A handle (weft::fiber, jfiber, join_handle) that outlives its runtime still holds a
  // reference: its control block stays mapped, marked orphaned (rt == nullptr), so that
  // handle's join reports the misuse (detail::check_joinable) and its release does nothing.
  // The arena holding it stays mapped for good (address space, and the few pages it touched).
  // The body (callable and result, in the payload on the stack) is destroyed here, before the
  // stack goes: a result nobody joined still has its destructor run.
  // Ordering: none needed against the workers, whose threads shutdown() joined; a handle used on
  // another thread while the runtime is being destroyed is the documented misuse (handles must
  // not outlive their runtime), which this makes safe only once the destructor has returned.
  std::vector<bool> held(synced_.arenas.size(), false);
  for (const chunk& c : synced_.chunks) {
    auto* h = static_cast<stack_header*>(c.headers);
    for (std::size_t i = 0; i < c.count; ++i) {
      fiber_cb& cb = h[i].cb;
      if ((cb.refs.load(std::memory_order_relaxed) & refs_count) == 0) continue;
      if (cb.body != nullptr) cb.body->destroy();
      cb.body = nullptr;
      cb.rt = nullptr;
      held[c.arena] = true;
    }
    unmap_stack(c.stacks);
  }
  for (const chunk& c : synced_.chunks) {
    if (held[c.arena]) continue;
    auto* h = static_cast<stack_header*>(c.headers);
    for (std::size_t i = 0; i < c.count; ++i) h[i].~stack_header();
  }
  for (std::size_t i = 0; i < synced_.arenas.size(); ++i) {
    if (!held[i]) unmap_stack(synced_.arenas[i]);
  }
}

void* stack_pool::carve_headers(std::size_t count, std::size_t& arena) {
  constexpr std::size_t arena_bytes = 256 * 1024;  // about 800 headers
  const std::size_t need = count * sizeof(stack_header);
  if (synced_.arenas.empty() || synced_.arenas.back().total - synced_.arena_used < need) {
    if (synced_.arenas.size() == synced_.arenas.capacity()) {
      synced_.arenas.reserve(2 * synced_.arenas.size() + 4);  // std::bad_alloc before mapping
    }
    synced_.arenas.push_back(map_stacks(1, std::max(need, arena_bytes), false, false));
    synced_.arena_used = 0;
  }
  arena = synced_.arenas.size() - 1;
  void* p = static_cast<char*>(synced_.arenas.back().base) + synced_.arena_used;
  synced_.arena_used += need;  // sizeof(stack_header) is a multiple of its alignment
  return p;
}

void* stack_pool::stack_low(const fiber_cb* f) noexcept {
  return static_cast<char*>(f->stack->guard_lo) + f->stack->guard;
}

void* stack_pool::stack_high(const fiber_cb* f) noexcept { return f->stack->top; }

void stack_pool::guard_range(const fiber_cb* f, const void** lo, const void** hi) noexcept {
  *lo = f->stack->guard_lo;
  *hi = static_cast<const char*>(f->stack->guard_lo) + f->stack->guard;
}

fiber_cb* stack_pool::map_chunk() {
  // Small runtimes map one stack at a time; a growing pool maps up to 64 per mmap.
  std::size_t have = mapped_.load(std::memory_order_relaxed);
  std::size_t count = have < 16 ? 1 : have < 512 ? have / 8 : 64;
  // The header's size on top, as when it lived at the top of the stack: fibers keep the usable
  // stack they had (stack_size plus the page-rounding slack, less the payload).
  mapped_stack m = map_stacks(count, stack_size_ + sizeof(stack_header), guard_pages_, force_mprotect_);
  const std::size_t stride = m.total / count;
  guard_kind_.store(m.kind, std::memory_order_relaxed);
  fiber_cb* first = nullptr;
  std::lock_guard lk(mu_);
  void* headers = nullptr;
  try {
    std::size_t arena = 0;
    if (synced_.chunks.size() == synced_.chunks.capacity()) {
      synced_.chunks.reserve(2 * synced_.chunks.size() + 16);  // std::bad_alloc before anything changes
    }
    headers = carve_headers(count, arena);
    synced_.chunks.push_back(chunk{m, headers, count, arena});
  } catch (...) {  // std::bad_alloc, or std::system_error from mapping an arena
    unmap_stack(m);
    throw;
  }
  auto* h = static_cast<stack_header*>(headers);
  for (std::size_t i = 0; i < count; ++i, ++h) {
    new (h) stack_header;
    char* slot = static_cast<char*>(m.base) + i * stride;
    h->span.guard_lo = slot;
    h->span.guard = m.guard;
    h->span.top = slot + stride;
    h->cb.stack = &h->span;
    h->cb.all_next = all_;
    all_ = &h->cb;
    if (first == nullptr) {
      first = &h->cb;
    } else {
      push(synced_.hot, &h->cb);  // the rest are free; above the mark trim() handles them
      ++synced_.hot_count;
    }
  }
  hot_changed();
  mapped_.fetch_add(count, std::memory_order_relaxed);
  return first;
}

fiber_cb* stack_pool::acquire(stack_cache* cache) {
  fiber_cb* f = nullptr;
  if (cache != nullptr && cache->count > 0) {
    f = cache->items[--cache->count];
  } else {
    std::unique_lock lk(mu_);
    if ((f = pop(synced_.hot)) != nullptr) {
      --synced_.hot_count;
      hot_changed();
    } else if ((f = pop(synced_.excess)) != nullptr) {
      excess_.fetch_sub(1, std::memory_order_relaxed);
    } else if ((f = pop(synced_.cold)) != nullptr) {
      f->stack->cold = false;
      cold_.fetch_sub(1, std::memory_order_relaxed);
    } else {
      lk.unlock();
      f = map_chunk();
    }
  }
  f->next = nullptr;
#if defined(WEFT_ASAN)
  // A finished fiber's bottom frames never return, so their redzones stay poisoned in ASan's
  // shadow; the next fiber on these pages (reused from the pool, or mapped afresh where an
  // unmapped chunk was) would be reported when its frames land on them. Start clean.
  ASAN_UNPOISON_MEMORY_REGION(stack_low(f), static_cast<std::size_t>(static_cast<char*>(stack_high(f)) -
                                                                    static_cast<char*>(stack_low(f))));
#endif
  if (cache != nullptr) {
    cache->net.store(cache->net.load(std::memory_order_relaxed) + 1, std::memory_order_relaxed);
  } else {
    in_use_.fetch_add(1, std::memory_order_relaxed);
  }
  return f;
}

bool stack_pool::release(fiber_cb* f, stack_cache* cache) noexcept {
  if (cache != nullptr) {
    cache->net.store(cache->net.load(std::memory_order_relaxed) - 1, std::memory_order_relaxed);
  } else {
    in_use_.fetch_sub(1, std::memory_order_relaxed);
  }
  f->state.store(fiber_state::free, std::memory_order_relaxed);
  if (cache != nullptr && cache->count < stack_cache::capacity) {
    cache->items[cache->count++] = f;
    return false;
  }
  std::lock_guard lk(mu_);
  if (synced_.hot_count < high_water_) {
    push(synced_.hot, f);
    ++synced_.hot_count;
    hot_changed();
    return synced_.hot_count == floor() + 1;
  }
  push(synced_.excess, f);
  excess_.fetch_add(1, std::memory_order_relaxed);
  return false;
}

void stack_pool::hot_changed() noexcept {
  synced_.hot_low = std::min(synced_.hot_low, synced_.hot_count);
  hot_hint_.store(synced_.hot_count, std::memory_order_relaxed);
}

void stack_pool::decay(std::int64_t now_ns) noexcept {
  if (now_ns < next_decay_ns_.load(std::memory_order_relaxed)) return;
  std::lock_guard lk(mu_);
  if (now_ns - synced_.last_decay_ns < decay_interval_ns) return;  // another worker just did
  // hot_low stacks sat on the list through the whole interval: nobody needed that many. Which
  // ones go does not matter (all are free); the top of the list is the cheapest to take.
  std::size_t surplus = synced_.hot_low > floor() ? synced_.hot_low - floor() : 0;
  for (std::size_t i = 0; i < surplus; ++i) {
    fiber_cb* f = pop(synced_.hot);
    push(synced_.excess, f);
  }
  synced_.hot_count -= surplus;
  excess_.fetch_add(surplus, std::memory_order_relaxed);
  synced_.last_decay_ns = now_ns;
  synced_.hot_low = synced_.hot_count;
  hot_hint_.store(synced_.hot_count, std::memory_order_relaxed);
  next_decay_ns_.store(now_ns + decay_interval_ns, std::memory_order_relaxed);
}

bool stack_pool::trim(std::size_t max) noexcept {
  fiber_cb* batch = nullptr;
  std::size_t n = 0;
  {
    std::lock_guard lk(mu_);
    while (n < max) {
      fiber_cb* f = pop(synced_.excess);
      if (f == nullptr) break;
      push(batch, f);
      ++n;
    }
    excess_.fetch_sub(n, std::memory_order_relaxed);
  }
  if (n == 0) return false;
  // Owned by this call while on no list: drop the whole stack (the control block is elsewhere).
  for (fiber_cb* f = batch; f != nullptr; f = f->next) {
    release_pages(stack_low(f), stack_high(f));
    f->stack->cold = true;
  }
  std::lock_guard lk(mu_);
  while (fiber_cb* f = pop(batch)) push(synced_.cold, f);
  cold_.fetch_add(n, std::memory_order_relaxed);
  return needs_trim();
}

void stack_pool::drain(stack_cache& cache) noexcept {
  while (cache.count > 0) {
    fiber_cb* f = cache.items[--cache.count];
    in_use_.fetch_add(1, std::memory_order_relaxed);  // release() subtracts it again
    release(f, nullptr);
  }
}

}  // namespace weft::detail
