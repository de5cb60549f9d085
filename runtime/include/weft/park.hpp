// The low-level park/unpark API that sync/ and io/ build on. One wait of one fiber or plain
// thread is named by a wait_ticket; any thread may wake it, and exactly one wake-up (a notify,
// the deadline, a cancellation) wins.
//
// Protocol for a primitive with a waiter queue guarded by a lock L:
//   weft::wait_ticket t = weft::prepare_wait();
//   ... lock L, decide to wait, link a node holding `t` into the queue ...
//   weft::wake_reason r = weft::park(t, deadline, [](void* l) { unlock(l); }, &L);
//   ... lock L again and unlink the node if it is still linked (a timeout or cancel won) ...
// A waker locks L, unlinks a node and calls node.ticket.wake(); if wake() returns false the wait
// already ended another way and the waker may pass the wake-up on to the next waiter.
// A waiter may destroy the primitive as soon as its wait returns (std and Go allow it for a
// semaphore, mutex or channel), so a waker that still touches the primitive after deciding
// (unlocking L) splits the wake: claim() under L decides, resume() after L is released (and
// the primitive no longer touched) lets the waiter run. Until resume() it stays parked.
#pragma once

#include <weft/detail/cxx20.hpp>

#include <chrono>
#include <cstdint>
#include <optional>

#include <weft/detail/core.hpp>

namespace weft {

/// How a park ended.
enum class wake_reason : std::uint8_t {
  notified = 1,   ///< wait_ticket::wake() with the default reason
  timed_out = 2,  ///< the deadline passed
  canceled = 3,   ///< a cancellation (stop request, close, runtime shutdown)
};

class wait_ticket;

namespace detail {
struct waitable;

/// A deadline on the steady clock, or none: one integer (nanoseconds since the clock's epoch,
/// INT64_MAX for none), so it travels in a register. Passing an
/// std::optional<time_point> by value costs a byte store and a wider reload of the same bytes
/// at every call — a store-forwarding stall on the park/wake path of every primitive.
class deadline_t {
 public:
  using time_point = std::chrono::steady_clock::time_point;
  static constexpr std::int64_t none = INT64_MAX;
  constexpr deadline_t() noexcept = default;
  constexpr deadline_t(std::nullopt_t) noexcept {}
  /// time_point::max() means no deadline.
  constexpr deadline_t(time_point t) noexcept
      : ns_(t == time_point::max() ? none
                                   : std::chrono::duration_cast<std::chrono::nanoseconds>(t.time_since_epoch()).count()) {}
  constexpr deadline_t(const std::optional<time_point>& t) noexcept : deadline_t() {
    if (t) *this = deadline_t(*t);
  }
  /// From nanoseconds since the steady clock's epoch (`none`: no deadline).
  static constexpr deadline_t from_ns(std::int64_t ns) noexcept {
    deadline_t d;
    d.ns_ = ns;
    return d;
  }
  constexpr explicit operator bool() const noexcept { return ns_ != none; }
  constexpr time_point operator*() const noexcept {
    return time_point(std::chrono::duration_cast<time_point::duration>(std::chrono::nanoseconds(ns_)));
  }
  /// Nanoseconds since the steady clock's epoch, or `none`.
  constexpr std::int64_t ns() const noexcept { return ns_; }

 private:
  std::int64_t ns_ = none;
};

/// wake() for the joiner of a finished fiber (the runtime's own use): a fiber joiner runs next
/// (the LIFO slot), unless the fiber this worker would run next is another child of it, then
/// it queues behind (docs/scheduler.md, "The LIFO slot").
bool wake_joiner(const wait_ticket& t) noexcept;

/// park() with a deadline_t: what sync/ and io/ call.
wake_reason park_until(wait_ticket ticket, deadline_t deadline, void (*publish)(void*) = nullptr,
                       void* arg = nullptr);
}  // namespace detail

/// Names one wait of one fiber or thread. Copyable and cheap. Waking a ticket whose wait has
/// ended is a harmless no-op that returns false: the memory it points to is never freed while
/// a runtime lives (fiber control blocks and thread records are type-stable).
class wait_ticket {
 public:
  wait_ticket() = default;
  /// Ends the named wait with `reason` if it is still pending and no other wake won; makes
  /// the fiber runnable (or wakes the thread). Callable from any thread, never blocks.
  /// Returns true if this call won.
  bool wake(wake_reason reason = wake_reason::notified) const noexcept;
  /// First half of wake(): ends the wait with `reason` if it is still pending and no other wake
  /// won, but leaves the waiter parked (a plain thread stays blocked). Returns true if this call
  /// won; then resume() must follow, exactly once, and promptly: do not wait for anything (a
  /// park, a lock, a join) in between. Runtime shutdown waits for that resume() before it
  /// unwinds the waiter (a claimer suspended in between would hang it; shutdown names the
  /// fiber every 5 s). Callable from any thread, never blocks.
  bool claim(wake_reason reason = wake_reason::notified) const noexcept;
  /// Second half: makes the waiter of a ticket this thread claimed runnable (wakes the thread).
  /// Touches only the waiter's own record, never the primitive it waited on.
  void resume() const noexcept;
  explicit operator bool() const noexcept { return target_ != nullptr; }
  friend bool operator==(const wait_ticket&, const wait_ticket&) = default;

 private:
  friend wait_ticket prepare_wait(const char* what) noexcept;
  friend bool detail::wake_joiner(const wait_ticket&) noexcept;
  friend wake_reason detail::park_until(wait_ticket, detail::deadline_t, void (*)(void*), void*);
  detail::waitable* target_ = nullptr;
  std::uint64_t seq_ = 0;
};

/// Starts a new wait for the calling fiber (or plain thread) and returns its ticket. Any
/// earlier ticket of the caller becomes stale. `what` (a string with static storage duration,
/// or null) names what the fiber will park on; runtime::fibers() shows it while the fiber is
/// parked, unless the fiber said otherwise with this_fiber::set_waiting_on.
wait_ticket prepare_wait(const char* what = nullptr) noexcept;

/// Suspends the caller until its ticket is woken or `deadline` passes. On a fiber it parks the
/// fiber (the worker runs others); on a plain thread it blocks the thread. `publish(arg)` runs
/// exactly once, after the caller can safely be woken (for a fiber: after its context is
/// saved): that is where the ticket becomes visible to wakers, typically by releasing the lock
/// that guards the queue holding it. Never publish a ticket before park(), and never touch
/// `arg` (or anything else on the parked stack) after the ticket is visible: the fiber may
/// already run again elsewhere.
/// Returns how the wait ended. During runtime shutdown a fiber may be unwound from here (see
/// detail::forced_unwind): a caller whose publish step left a pointer into its stack somewhere
/// (a queue node, a ticket address) must take it back out while that exception passes.
wake_reason park(wait_ticket ticket, std::optional<std::chrono::steady_clock::time_point> deadline,
                 void (*publish)(void*) = nullptr, void* arg = nullptr);

}  // namespace weft
