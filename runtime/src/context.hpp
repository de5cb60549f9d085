// The context switch: the only unit that touches Boost.Context (through context.cpp: its fcontext layer) and the
// sanitizer fiber annotations. A machine_context is one suspended execution: a fiber's or a worker
// thread's own stack.
// Invariant: every resumption of a context runs one of our hooks first (switch_to's `after`, or
// the exit hook run by the stack allocator), so the ASan/TSan "finish switch" and the C++
// exception-state hand-over happen in exactly one place per switch.
#pragma once

#include <cstddef>
#include <cstdint>

namespace weft::detail {

/// Runs on the resumed context after the previous one is saved (publish-after-switch).
using after_switch_fn = void (*)(void* arg);

struct machine_context;

/// What a finished fiber body asks for: the context to continue on and what to run there once
/// the dying stack is no longer in use.
struct exit_target {
  machine_context* to;
  after_switch_fn after;
  void* after_arg;
};

/// Entry of a new context. It returns where to go when the fiber is done.
using context_entry_fn = exit_target (*)(void* arg);

struct machine_context {
  // The suspended context (Boost.Context's fcontext_t), null while it runs.
  void* handle = nullptr;
  // Per-context C++ exception state (libstdc++'s __cxa_eh_globals).
  void* eh_caught = nullptr;
  unsigned eh_uncaught = 0;
  // A context made by context_make that has never run: the first switch jumps, not ontop.
  bool fresh = false;
  // Where a new context starts (context_make writes it, its first run reads it) and, once that
  // returned, where it goes (set by the exiting side, read by the exit hook on the next
  // context). Never both at once, so they share the bytes: the control block lives in 256
  // bytes (stack_pool.cpp, stack_header).
  struct start_point {
    context_entry_fn entry;
    void* arg;
  };
  union {
    start_point start;
    exit_target pending_exit{};
  };
#if defined(WEFT_ASAN)
  void* asan_fake_stack = nullptr;
  const void* stack_bottom = nullptr;
  std::size_t stack_size = 0;
#endif
#if defined(WEFT_TSAN)
  void* tsan_fiber = nullptr;
#endif
};

/// Prepares `self` to represent the calling OS thread's own stack.
void context_init_thread(machine_context& self) noexcept;
/// Releases what context_init_thread acquired.
void context_fini_thread(machine_context& self) noexcept;

/// Creates a suspended context on [lo, hi): `entry(arg)` runs when it is first switched to.
void context_make(machine_context& ctx, void* lo, void* hi, context_entry_fn entry, void* arg);

/// Suspends the caller into `self` and resumes `to`; `after(arg)` runs on `to` first.
void context_switch(machine_context& self, machine_context& to, after_switch_fn after, void* arg);

/// Resumes `ctx` by throwing detail::forced_unwind (weft/detail/core.hpp) from its suspension
/// point; returns when the unwound fiber exits back to `self`.
void context_unwind(machine_context& self, machine_context& ctx);

/// True if `ctx` holds a suspended context.
bool context_valid(const machine_context& ctx) noexcept;

}  // namespace weft::detail
