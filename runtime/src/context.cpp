// Boost.Context glue and the sanitizer annotations (see context.hpp for the invariant).
#include "context.hpp"

#include <weft/detail/core.hpp>

#include <boost/context/detail/fcontext.hpp>

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

// Boost.Context's fcontext layer (jump_fcontext, ontop_fcontext, make_fcontext), the assembly
// under boost::context::fiber. weft uses it directly: fiber's constructor jumps into every new
// context and back once to hand over its record, two switches per spawn that a context started
// by its first jump does without (docs/benchmarks.md, "Tried against the spawn+join budget").
namespace fctx = boost::context::detail;


namespace weft::detail {
namespace {

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

struct switch_record {
  machine_context* from;
  machine_context* to;
  after_switch_fn after;
  void* arg;
  bool unwind;
};

fctx::fcontext_t take_handle(machine_context& m) noexcept { return std::exchange(m.handle, nullptr); }

// The arriving side of every switch but the exit: `from` is saved by now (its handle is `t`'s).
void arrive(fctx::fcontext_t from_handle, const switch_record* rec_ptr) {
  switch_record rec = *rec_ptr;  // copy: `after` may let the previous context run elsewhere
  annotate_arrive(*rec.to, rec.from);
  rec.from->handle = from_handle;
  if (rec.unwind) throw forced_unwind{};
  if (rec.after != nullptr) rec.after(rec.arg);
}

// ontop_fcontext's hook for a switch to a started context: runs on that context's stack, as if
// called from its suspended switch, and returns there (the `ret` keeps the CPU's return-stack
// buffer balanced, unlike jump_fcontext's `jmp`: docs/benchmarks.md).
fctx::transfer_t on_arrival(fctx::transfer_t t) {
  arrive(t.fctx, static_cast<const switch_record*>(t.data));
  return {nullptr, nullptr};
}

// The exit step: runs on the next context once the finished fiber's stack is no longer in use.
void finish_exit(void* p) noexcept {
  auto* dying = static_cast<machine_context*>(p);
  exit_target target = dying->pending_exit;  // copy: the stack may be reused by `after`
  dying->handle = nullptr;  // a fresh target's arrival step stored the dead context there
#if defined(WEFT_TSAN)
  void* dead_tsan = dying->tsan_fiber;
  dying->tsan_fiber = nullptr;
  __tsan_destroy_fiber(dead_tsan);
#endif
  if (target.after != nullptr) target.after(target.after_arg);
}

fctx::transfer_t on_exit(fctx::transfer_t t) noexcept {
  auto* dying = static_cast<machine_context*>(t.data);
  annotate_arrive(*dying->pending_exit.to, nullptr);
  finish_exit(dying);
  return {nullptr, nullptr};
}

// First code of a new context, reached by jump_fcontext with a switch record as data (an ontop
// hook cannot start a context: make_fcontext's trampoline takes its argument from the
// registers a jump sets). Leaves for the exit target and runs the exit step there.
[[noreturn]] void context_start(fctx::transfer_t t) noexcept {
  auto* rec = static_cast<const switch_record*>(t.data);
  machine_context* self = rec->to;
  arrive(t.fctx, rec);  // never an unwind: a context that never ran is switched to, not unwound
  const machine_context::start_point start = self->start;
  exit_target target = start.entry(start.arg);
  self->pending_exit = target;
  swap_eh_state(nullptr, *target.to);
  annotate_leave(nullptr, *target.to);
  if (target.to->fresh) {
    // The next fiber never ran either: start it, with the exit step as its arrival step. The
    // record stays readable: arrive() copies it before the exit step can free this stack.
    switch_record exit_rec{self, target.to, finish_exit, self, false};
    target.to->fresh = false;
    fctx::jump_fcontext(take_handle(*target.to), &exit_rec);
  } else {
    fctx::ontop_fcontext(take_handle(*target.to), self, on_exit);
  }
  std::abort();  // unreachable: nothing resumes a finished context
}

// Suspends into `self` and resumes `to`, running the arrival step there first.
void switch_to(machine_context& self, machine_context& to, const switch_record& rec) {
  swap_eh_state(&self, to);
  annotate_leave(&self, to);
  if (to.fresh) {
    to.fresh = false;
    fctx::jump_fcontext(take_handle(to), const_cast<switch_record*>(&rec));
  } else {
    fctx::ontop_fcontext(take_handle(to), const_cast<switch_record*>(&rec), on_arrival);
  }
}

}  // namespace

void context_init_thread(machine_context& self) noexcept {
  self.handle = nullptr;
  self.fresh = false;
#if defined(WEFT_TSAN)
  self.tsan_fiber = __tsan_get_current_fiber();
#endif
}

void context_fini_thread(machine_context& self) noexcept { self.handle = nullptr; }

bool context_valid(const machine_context& m) noexcept { return m.handle != nullptr; }

void context_make(machine_context& m, void* lo, void* hi, context_entry_fn entry, void* arg) {
  auto top = reinterpret_cast<std::uintptr_t>(hi);
  auto bottom = reinterpret_cast<std::uintptr_t>(lo);
#if defined(WEFT_ASAN)
  m.asan_fake_stack = nullptr;
  m.stack_bottom = lo;
  m.stack_size = top - bottom;
#endif
  m.eh_caught = nullptr;
  m.eh_uncaught = 0;
  m.start = machine_context::start_point{entry, arg};
  m.fresh = true;
#if defined(WEFT_TSAN)
  m.tsan_fiber = __tsan_create_fiber(0);
#endif
  m.handle = fctx::make_fcontext(hi, top - bottom, context_start);
}

// Not inlined, even by LTO: the code after a switch may run on another thread, and a caller
// that inlined the switch could reuse a thread-local address (the exception-state cache
// above, errno) computed before it.
[[gnu::noinline]] void context_switch(machine_context& self, machine_context& to, after_switch_fn after, void* arg) {
  switch_record rec{&self, &to, after, arg, false};
  switch_to(self, to, rec);
}

[[gnu::noinline]] void context_unwind(machine_context& self, machine_context& victim) {
  switch_record rec{&self, &victim, nullptr, nullptr, true};
  switch_to(self, victim, rec);
}

}  // namespace weft::detail
