// Boost.Context glue and the sanitizer annotations (see context.hpp for the invariant).
#include "context.hpp"

#include <weft/detail/core.hpp>

#include <boost/context/fiber.hpp>
#include <boost/context/preallocated.hpp>
#include <boost/context/stack_context.hpp>

#include <cxxabi.h>

#include <cstdio>
#include <cstdlib>
#include <new>
#include <utility>

#if defined(WEFT_ASAN)
#include <sanitizer/asan_interface.h>
#include <sanitizer/common_interface_defs.h>
#endif
#if defined(WEFT_TSAN)
#include <sanitizer/tsan_interface.h>
#endif

namespace ctx = boost::context;


namespace weft::detail {
namespace {

static_assert(sizeof(ctx::fiber) == sizeof(void*), "boost::context::fiber is one pointer");

ctx::fiber& fiber_of(machine_context& m) noexcept {
  return *std::launder(reinterpret_cast<ctx::fiber*>(m.handle));
}

// libstdc++'s per-thread exception state. __cxa_get_globals is declared const, so the pointer
// is laundered: after a switch the same code may run on another thread.
struct eh_globals {
  void* caught;
  unsigned int uncaught;
};

// __cxa_get_globals lives in libstdc++.so and goes through __tls_get_addr on every call; the
// address is fixed per thread, so it is cached in this (static, initial-exec) thread_local.
// Read only before a jump, never reused after one.
eh_globals* thread_eh_globals() noexcept {
  static thread_local void* cached = nullptr;
  void* p = cached;
  if (p == nullptr) {
    p = abi::__cxa_get_globals();
    cached = p;
  }
  asm volatile("" : "+r"(p));
  return static_cast<eh_globals*>(p);
}

// Hands the thread's exception state from `from` to `to` (same thread, right before the jump).
void swap_eh_state(machine_context* from, machine_context& to) noexcept {
  eh_globals* g = thread_eh_globals();
  if (from != nullptr) {
    from->eh_caught = g->caught;
    from->eh_uncaught = g->uncaught;
  }
  g->caught = to.eh_caught;
  g->uncaught = to.eh_uncaught;
}

// Called on the leaving side, right before the jump. `from == nullptr`: the leaving context dies.
void annotate_leave(machine_context* from, machine_context& to) noexcept {
#if defined(WEFT_ASAN)
  __sanitizer_start_switch_fiber(from != nullptr ? &from->asan_fake_stack : nullptr, to.stack_bottom,
                                 to.stack_size);
#endif
#if defined(WEFT_TSAN)
  __tsan_switch_to_fiber(to.tsan_fiber, 0);
#endif
  (void)from;
  (void)to;
}

// Called first on the arriving side. `from` learns its stack bounds (needed for thread stacks).
void annotate_arrive(machine_context& to, machine_context* from) noexcept {
#if defined(WEFT_ASAN)
  const void* bottom = nullptr;
  std::size_t size = 0;
  __sanitizer_finish_switch_fiber(to.asan_fake_stack, &bottom, &size);
  if (from != nullptr) {
    from->stack_bottom = bottom;
    from->stack_size = size;
  }
#endif
  (void)to;
  (void)from;
}

// Boost's stack allocator hook. Boost calls deallocate() on the next context once the exiting
// fiber's stack is no longer in use: that is our exit hook. The memory itself belongs to the
// runtime's stack pool, so nothing is freed here.
struct exit_hook_allocator {
  machine_context* dying;

  ctx::stack_context allocate() { std::abort(); }

  void deallocate(ctx::stack_context&) noexcept {
    machine_context* dying_ctx = dying;
    exit_target target = dying_ctx->pending_exit;  // copy: the stack may be reused by `after`
    annotate_arrive(*target.to, nullptr);
#if defined(WEFT_TSAN)
    void* dead_tsan = dying_ctx->tsan_fiber;
    dying_ctx->tsan_fiber = nullptr;
    __tsan_destroy_fiber(dead_tsan);
#endif
    if (target.after != nullptr) target.after(target.after_arg);
  }
};

struct switch_record {
  machine_context* from;
  machine_context* to;
  after_switch_fn after;
  void* arg;
  bool unwind;
};

}  // namespace

void context_init_thread(machine_context& self) noexcept {
  new (self.handle) ctx::fiber();
#if defined(WEFT_TSAN)
  self.tsan_fiber = __tsan_get_current_fiber();
#endif
}

void context_fini_thread(machine_context& self) noexcept { fiber_of(self).~fiber(); }

bool context_valid(const machine_context& m) noexcept {
  return static_cast<bool>(*std::launder(reinterpret_cast<const ctx::fiber*>(m.handle)));
}

void context_make(machine_context& m, void* lo, void* hi, context_entry_fn entry, void* arg) {
  auto top = reinterpret_cast<std::uintptr_t>(hi);
  auto bottom = reinterpret_cast<std::uintptr_t>(lo);
  ctx::stack_context sctx;
  sctx.sp = hi;
  sctx.size = top - bottom;
  m.asan_fake_stack = nullptr;
  m.stack_bottom = lo;
  m.stack_size = top - bottom;
  m.eh_caught = nullptr;
  m.eh_uncaught = 0;
#if defined(WEFT_TSAN)
  m.tsan_fiber = __tsan_create_fiber(0);
#endif
  machine_context* self = &m;
  new (m.handle) ctx::fiber(
      std::allocator_arg, ctx::preallocated(hi, top - bottom, sctx), exit_hook_allocator{self},
      [self, entry, arg](ctx::fiber&& caller) -> ctx::fiber {
        (void)caller;  // always empty: our hooks keep the caller's context themselves
        exit_target target = entry(arg);
        self->pending_exit = target;
        swap_eh_state(nullptr, *target.to);
        annotate_leave(nullptr, *target.to);
        return std::move(fiber_of(*target.to));
      });
}

namespace {
ctx::fiber on_arrival(ctx::fiber&& from_ctx, const switch_record* rec_ptr) {
  switch_record rec = *rec_ptr;  // copy: `after` may let the previous context run elsewhere
  annotate_arrive(*rec.to, rec.from);
  fiber_of(*rec.from) = std::move(from_ctx);
  if (rec.unwind) throw forced_unwind{};
  if (rec.after != nullptr) rec.after(rec.arg);
  return {};
}
}  // namespace

// Not inlined, even by LTO: the code after a switch may run on another thread, and a caller
// that inlined the switch could reuse a thread-local address (the exception-state cache
// above, errno) computed before it.
[[gnu::noinline]] void context_switch(machine_context& self, machine_context& to, after_switch_fn after, void* arg) {
  switch_record rec{&self, &to, after, arg, false};
  swap_eh_state(&self, to);
  annotate_leave(&self, to);
  ctx::fiber target = std::move(fiber_of(to));
  std::move(target).resume_with([&rec](ctx::fiber&& from_ctx) { return on_arrival(std::move(from_ctx), &rec); });
}

[[gnu::noinline]] void context_unwind(machine_context& self, machine_context& victim) {
  switch_record rec{&self, &victim, nullptr, nullptr, true};
  swap_eh_state(&self, victim);
  annotate_leave(&self, victim);
  ctx::fiber target = std::move(fiber_of(victim));
  std::move(target).resume_with([&rec](ctx::fiber&& from_ctx) { return on_arrival(std::move(from_ctx), &rec); });
}

}  // namespace weft::detail
