// Stack pool implementation (see stack_pool.hpp).
#include "stack_pool.hpp"

#include <new>

namespace weft::detail {
namespace {

struct alignas(64) stack_header {
  stack_span span;
  fiber_cb cb;
};

// The span is the header's first member, so the header starts where the span does.
stack_header* header_of(const fiber_cb* f) noexcept { return reinterpret_cast<stack_header*>(f->stack); }

}  // namespace

stack_pool::stack_pool(std::size_t stack_size, bool guard_pages, bool force_mprotect, std::size_t high_water)
    : stack_size_(stack_size), guard_pages_(guard_pages), force_mprotect_(force_mprotect), high_water_(high_water) {}

stack_pool::~stack_pool() {
  fiber_cb* f = all_;
  while (f != nullptr) {
    fiber_cb* next = f->all_next;
    mapped_stack m = f->stack->map;
    stack_header* h = header_of(f);
    h->~stack_header();
    unmap_stack(m);
    f = next;
  }
}

void* stack_pool::stack_low(const fiber_cb* f) noexcept {
  const mapped_stack& m = f->stack->map;
  return static_cast<char*>(m.base) + m.guard;
}

void* stack_pool::stack_high(const fiber_cb* f) noexcept { return header_of(f); }

void stack_pool::guard_range(const fiber_cb* f, const void** lo, const void** hi) noexcept {
  const mapped_stack& m = f->stack->map;
  *lo = m.base;
  *hi = static_cast<const char*>(m.base) + m.guard;
}

fiber_cb* stack_pool::map_new() {
  mapped_stack m = map_stack(stack_size_ + sizeof(stack_header), guard_pages_, force_mprotect_);
  auto top = reinterpret_cast<std::uintptr_t>(m.base) + m.total;
  auto* h = new (reinterpret_cast<void*>((top - sizeof(stack_header)) & ~std::uintptr_t{63})) stack_header;
  h->span.map = m;
  h->cb.stack = &h->span;
  guard_kind_.store(m.kind, std::memory_order_relaxed);
  mapped_.fetch_add(1, std::memory_order_relaxed);
  std::lock_guard lk(mu_);
  h->cb.all_next = all_;
  all_ = &h->cb;
  return &h->cb;
}

fiber_cb* stack_pool::acquire(stack_cache* cache) {
  fiber_cb* f = nullptr;
  if (cache != nullptr && cache->count > 0) {
    f = cache->items[--cache->count];
  } else {
    std::unique_lock lk(mu_);
    if (synced_.hot != nullptr) {
      f = synced_.hot;
      synced_.hot = f->next;
      --synced_.hot_count;
    } else if (synced_.cold != nullptr) {
      f = synced_.cold;
      synced_.cold = f->next;
      f->stack->cold = false;
    } else {
      lk.unlock();
      f = map_new();
    }
  }
  f->next = nullptr;
  in_use_.fetch_add(1, std::memory_order_relaxed);
  return f;
}

void stack_pool::release(fiber_cb* f, stack_cache* cache) noexcept {
  in_use_.fetch_sub(1, std::memory_order_relaxed);
  f->state.store(fiber_state::free, std::memory_order_relaxed);
  if (cache != nullptr && cache->count < stack_cache::capacity) {
    cache->items[cache->count++] = f;
    return;
  }
  std::lock_guard lk(mu_);
  if (synced_.hot_count < high_water_) {
    f->next = synced_.hot;
    synced_.hot = f;
    ++synced_.hot_count;
    return;
  }
  // Beyond the high-water mark: keep the mapping (type-stable control block), drop the pages
  // below the header page.
  std::uintptr_t header_page = reinterpret_cast<std::uintptr_t>(header_of(f)) & ~(page_size() - 1);
  release_pages(stack_low(f), reinterpret_cast<void*>(header_page));
  f->stack->cold = true;
  f->next = synced_.cold;
  synced_.cold = f;
}

void stack_pool::drain(stack_cache& cache) noexcept {
  while (cache.count > 0) {
    fiber_cb* f = cache.items[--cache.count];
    in_use_.fetch_add(1, std::memory_order_relaxed);  // release() subtracts it again
    release(f, nullptr);
  }
}

}  // namespace weft::detail
