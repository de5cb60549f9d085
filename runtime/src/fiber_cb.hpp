// The fiber control block. It lives beside the fiber's stack (stack_pool), is constructed once
// when the stack is first mapped and is reused by every fiber that later runs on that stack.
// Invariant: a control block's memory stays valid and keeps its layout for the lifetime of its
// runtime (type-stable memory), so a stale wait_ticket or timer entry may still read
// `wait_word` and will find a sequence number that no longer matches.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <exception>

#include <weft/detail/core.hpp>
#include <weft/detail/spinlock.hpp>
#include <weft/park.hpp>

#include "context.hpp"

namespace weft::detail {

struct worker;
struct stack_span;
struct fls_storage;

/// Something that can wait: a fiber or a plain thread.
struct waitable {
  // (seq << 2) | reason; reason 0 = pending. prepare_wait increments seq.
  // Ordering: the waker's successful CAS (acq_rel) pairs with the waiter's acquire load of the
  // reason after it resumes, and orders everything the waker wrote before waking.
  std::atomic<std::uint64_t> wait_word{0};
  fiber_cb* fiber = nullptr;  // null for a plain thread
  // Plain threads only: the winning waker's resume step stores the wait's token (park.cpp,
  // ready_token) here. Ordering: release store after the CAS, acquire load by the waiter.
  std::atomic<std::uint32_t> futex{0};
};

enum class fiber_state : std::uint8_t {
  free,      // on the stack pool's free list
  created,   // body set, not yet run
  runnable,  // in a queue
  running,
  parked,
  parked_unwinding,  // waiting while being unwound at shutdown, on the shutdown thread (park_until)
  unwind_suspended,  // being unwound at shutdown; gave the shutdown thread back to wait (unwind_suspend)
  done,
};

// Fields are ordered by size so no padding is left: with its stack_span, the block fits the 256
// bytes of a stack_header outside ASan builds (stack_pool.cpp asserts it). Mind the sizes when
// adding one.
struct fiber_cb : waitable {
  // Handle reference + running reference (the count, refs_count), and refs_exited. The stack
  // returns to the pool when both references are gone. The body (callable and result) goes
  // earlier, on the fiber or on the handle's thread, never in the exit step (fiber_main).
  // Ordering: acq_rel decrements; the last one frees (classic refcount release/acquire). The
  // fiber's fetch_or of refs_exited (fiber_main) pairs with the handle's CAS decrement loop
  // (fiber_release); both comments there say which side destroys the body.
  // (First, so that it fills waitable's tail padding.)
  std::atomic<std::uint32_t> refs{0};
  machine_context ctx;
  runtime_impl* rt = nullptr;
  fiber_body* body = nullptr;
  stack_span* stack = nullptr;   // Ownership: set once when the stack is mapped
  fiber_cb* next = nullptr;      // intrusive link: free list, global queue, inbox
  fiber_cb* all_next = nullptr;  // every control block of a runtime, for dumps and shutdown
  std::uint64_t id = 0;
  // 0 = running, 1 = done, otherwise a wait_ticket* of the (single) joiner.
  // Ordering: exit stores "done" with release (publishes the result); join loads with acquire.
  std::atomic<std::uintptr_t> join_word{0};
  // The id of the fiber that spawned this one (0: spawned from outside a fiber), for the
  // joiner policy (wake_joiner). Ordering: relaxed; another worker may read it through a
  // stale queue slot, and a stale value only changes where a joiner queues.
  std::atomic<std::uint64_t> spawner_id{0};
  fls_storage* fls = nullptr;    // fiber_local values, created on first use
  // A string with static storage duration saying what the fiber waits on (set_waiting_on).
  // Ordering: relaxed; the pointee is immutable, a reader may see a slightly stale pointer.
  std::atomic<const char*> waiting_on{nullptr};
  // What weft itself last parked the fiber on (prepare_wait's `what`): "mutex", "sleep", ...
  // Shown when the fiber set no waiting_on. Ordering: relaxed, as waiting_on.
  std::atomic<const char*> wait_kind{nullptr};
  int home_worker = -1;          // >= 0: pinned to that worker
  std::uint32_t last_worker = 0;
  // Set by the exit step once it is done with the joiner's ticket it took from join_word (the
  // ticket lives on the joiner's stack). A joiner unwound at shutdown after that exchange
  // waits for it before its frame goes. Ordering: release store, acquire load.
  std::atomic<bool> joiner_released{false};
  // Diagnostics only (relaxed): what the fiber is doing.
  std::atomic<fiber_state> state{fiber_state::free};
  bool unwound = false;          // ended by forced_unwind at shutdown
  bool started = false;
  // Diagnostics (runtime::fibers()). Invariant: `id` and `name` are written only under
  // diag_mu (fiber_create, set_name), so a snapshot that reads them under it sees one
  // incarnation's pair even while the block is recycled; others read them unlocked only on the
  // fiber itself or through a handle, which no write can race.
  spinlock diag_mu;
  char name[32] = {};
};

// fiber_cb::refs: set by the fiber once it is past the step that destroys its body (fiber_main).
// A handle released after that destroys the body itself, before dropping its reference.
constexpr std::uint32_t refs_exited = std::uint32_t{1} << 31;
constexpr std::uint32_t refs_count = refs_exited - 1;

inline fiber_cb* waitable_fiber(waitable* w) noexcept { return w->fiber; }

constexpr std::uint64_t wait_reason_mask = 3;

}  // namespace weft::detail
