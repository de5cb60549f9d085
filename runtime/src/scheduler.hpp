// The scheduler's data: workers, the runtime they belong to, and the per-thread state through
// which code finds them. The algorithms are in worker.cpp (scheduling, stealing, parking) and
// runtime_impl.cpp (start, shutdown). docs/scheduler.md explains the protocol step by step.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

#include <weft/runtime.hpp>

#include "blocking_pool.hpp"
#include "context.hpp"
#include "fiber_cb.hpp"
#include "fiber_list.hpp"
#include "idle.hpp"
#include "io_driver.hpp"
#include "parker.hpp"
#include "run_queue.hpp"
#include "stack_pool.hpp"
#include "timer_heap.hpp"

namespace weft::detail {

/// Limits of runtime_options (and of WEFT_WORKERS / WEFT_STACK_SIZE for the default runtime):
/// the idle set packs worker counts in 16 bits; a fiber needs a few pages for its control block
/// and the frames of the runtime's own calls.
inline constexpr unsigned max_workers = 1024;
inline constexpr std::size_t min_stack_size = 16 * 1024;
inline constexpr std::size_t max_stack_size = std::size_t{1} << 30;

/// Per-worker counters. Ownership: written by the worker's thread only (relaxed load + store,
/// no RMW), read by stats() from any thread.
struct worker_counters {
  std::atomic<std::uint64_t> spawned{0}, finished{0}, switches{0}, steals{0}, parks{0}, timers_fired{0};
  static void bump(std::atomic<std::uint64_t>& c, std::uint64_t n = 1) noexcept {
    c.store(c.load(std::memory_order_relaxed) + n, std::memory_order_relaxed);
  }
};

struct worker {
  worker(runtime_impl* rt, unsigned index, std::uint32_t queue_capacity);

  // --- used by the owner thread only unless noted ---
  /// The next fiber to run from local sources (LIFO slot, inbox, run queue, global queue),
  /// without stealing or blocking. Runs timers every 61 ticks.
  fiber_cb* next_local() noexcept;
  /// Makes `f` runnable on this worker: into the LIFO slot (`lifo`) or the queue's tail;
  /// `new_work` lets a parked worker be woken to share it.
  void push_local(fiber_cb* f, bool lifo, bool new_work = true) noexcept;
  /// Owner only. Whether the fiber this worker would run next (its LIFO slot, else its queue's
  /// head) was spawned by fiber `id`. A hint: a thief may take it meanwhile.
  bool next_is_child_of(std::uint64_t id) const noexcept;
  /// Fires due timers of every worker; true if any fiber was woken.
  bool keep_time() noexcept;
  /// Suspends the current fiber `self` (its context saved into self->ctx) and runs the next
  /// local fiber or returns to the scheduler loop; `after(arg)` runs once self is saved.
  /// Throws detail::forced_unwind when the runtime unwinds the fiber at shutdown.
  void switch_away(fiber_cb* self, after_switch_fn after, void* arg);
  /// As switch_away, to a `next` (may be null: the scheduler loop) the caller already took.
  void switch_to(fiber_cb* self, fiber_cb* next, after_switch_fn after, void* arg);
  /// The worker thread's loop.
  void run() noexcept;
  /// Aborts with a message unless `f` is runnable (the scheduler's own invariant).
  static void check_resumable(const fiber_cb* f) noexcept;

  runtime_impl* const rt;
  const unsigned index;
  run_queue<fiber_cb> queue;           // owner pushes/pops; thieves steal (any thread)
  // Most recently woken fiber, run next. Ordering: the owner exchanges (acq_rel); a thief takes
  // it with a CAS (acq_rel) only after seeing it sit there for a whole search pass. A runtime's
  // only worker uses relaxed load + store instead (lifo_swap): nobody else touches its slot.
  std::atomic<fiber_cb*> lifo{nullptr};
  // The only worker of its runtime: no thief exists, so the LIFO slot needs no atomic RMW.
  const bool alone;
  fiber_list inbox;                    // pinned fibers and hand-offs; any thread pushes
  timer_heap timers;                   // any thread (locked)
  parker sleeper;                      // any thread unparks
  machine_context main_ctx;            // the worker thread's own stack
  fiber_cb* current = nullptr;         // Ownership: this worker's thread
  // Copies for other threads (shutdown messages, diagnostics). Ordering: relaxed, hints only;
  // `exited` is a release store at the end of run(), acquire-loaded before join().
  std::atomic<fiber_cb*> running_hint{nullptr};
  std::atomic<bool> exited{false};
  // When this worker's sleep ends: -1 awake, INT64_MAX parked without (or before computing) a
  // deadline. Ordering: seq_cst fence after the store in park_worker pairs with the fence in
  // runtime_impl::timer_added (Dekker: a new earlier timer either is seen by the parker's
  // timeout computation, or the adder sees the parker and wakes it).
  std::atomic<std::int64_t> sleeping_until{-1};
  // True while this worker sleeps in the I/O driver instead of its futex. Ordering: the worker
  // stores it (seq_cst) and then checks its parker token; unpark_worker sets the token and then
  // loads it (seq_cst): either the worker sees the token and does not block, or the waker sees
  // `polling` and calls io->wake().
  std::atomic<bool> polling{false};
  std::uint32_t tick = 0;
  // `tick` as last published by the owner (every 61 ticks), for the stall check of the other
  // workers (see rescue_stalled). Ordering: relaxed; a stale value only delays a rescue.
  std::atomic<std::uint32_t> progress{0};
  std::uint32_t lifo_streak = 0;
  bool searching = false;
  bool poll_due = false;               // next_local asked the scheduler loop to poll I/O
  bool dispatching_io = false;         // inside io->poll(): wake-ups queue FIFO
  std::uint64_t rng;
  stack_cache stacks;
  // The cache's idle clock (owner only): `counters.switches` when last seen changing, and
  // since when it has not. A cache this worker did not touch for a second goes back to the
  // pool's shared list, where decay ages it like any free stack (age_stack_cache).
  std::uint64_t stacks_seen_switches = 0;
  std::int64_t stacks_idle_since_ns = 0;
  std::uint64_t next_id = 0, id_limit = 0;  // a block of ids from reserve_task_ids()
  std::vector<fiber_cb*> steal_buf;
  std::vector<fiber_cb*> seen_lifo;
  struct peer_watch {
    std::uint32_t progress = 0;  // the peer's published tick when we last looked
    std::int64_t since_ns = 0;   // when we first saw it at that value
  };
  std::vector<peer_watch> peers;  // indexed by worker; owner only
  worker_counters counters;
  std::thread thread;

 private:
  fiber_cb* find_work() noexcept;
  fiber_cb* steal() noexcept;
  void rescue_stalled(std::int64_t now) noexcept;
  void park_worker() noexcept;
  bool work_visible() noexcept;
  bool spin_for_work() noexcept;
  void age_stack_cache(std::int64_t now) noexcept;
  void overflow_to_global(fiber_cb* f) noexcept;
  fiber_cb* lifo_swap(fiber_cb* f) noexcept;
  fiber_cb* take_from_global() noexcept;
};

struct runtime_impl {
  explicit runtime_impl(const runtime_options& options);
  ~runtime_impl();

  /// Makes `f` runnable. Any thread. `lifo`: a hint that it should run next on this worker.
  /// `new_work` false (a yield) skips waking a parked worker.
  void schedule(fiber_cb* f, bool lifo, bool new_work = true) noexcept;
  /// Wakes a parked worker if nobody is searching (after new work was published).
  void notify() noexcept;
  /// Wakes worker `w` if it is parked (after pushing to its inbox).
  void notify_worker(worker* w) noexcept;
  /// A timer at `deadline` became its heap's earliest: wake a parked worker that would sleep
  /// past it (the worker that added it may be about to run a long CPU-bound fiber).
  void timer_added(std::int64_t deadline) noexcept;
  /// Drops one of the two references of `f`; the last one returns the stack to the pool.
  void release_ref(fiber_cb* f) noexcept;
  /// Wakes worker `w` from its sleep: its futex, or the poller if it is blocked in it.
  void unpark_worker(worker* w) noexcept;
  /// The I/O driver, created by `make` on first call (io/ passes the epoll factory). Any thread.
  io_driver* driver(io_driver* (*make)(runtime_impl*));
  /// Polls for I/O without blocking if a driver exists and no worker is blocked in it.
  bool poll_io_now() noexcept;
  /// One poll of `d` by worker `me` (timeout as io_driver::poll): the fibers it wakes queue FIFO
  /// on `me` without a notify each; records last_poll_ns. Returns how many it woke; the caller
  /// asks for a helper when there are several.
  std::uint32_t dispatch_io(worker* me, io_driver* d, std::int64_t timeout_ns) noexcept;
  runtime_stats stats() const;
  /// While unwinding (shutdown thread): whether `f` may be unwound now. Not while it is in
  /// this thread's chain of unwinding fibers, nor while it waits for a run_blocking() call
  /// still out on the pool (the job lives on its stack). Once that call has returned, waits
  /// for the pool thread to leave schedule() first.
  bool unwind_ready(fiber_cb* f) noexcept;

  runtime_options opts;
  std::vector<std::unique_ptr<worker>> workers;
  fiber_list global;
  idle_set idle;
  stack_pool pool;
  blocking_pool blocking;
  // Ordering: release store in shutdown, acquire loads in the worker loop.
  std::atomic<bool> stopping{false};
  std::atomic<bool> unwinding{false};
  // Counters of fibers spawned/finished outside any worker (plain threads, shutdown).
  std::atomic<std::uint64_t> spawned_outside{0}, finished_outside{0};
  // Joins from outside this runtime in progress (join_guard). Ordering: the guard's release
  // decrement pairs with shutdown's acquire load before it unmaps stacks.
  std::atomic<unsigned> outside_joiners{0};
  // schedule() calls in progress on threads that are not this runtime's workers (a plain thread
  // or another runtime's worker resuming a fiber whose wait it claimed). Shutdown waits for
  // them before it unwinds fibers or frees anything they touch.
  // Ordering: relaxed increment, published by schedule()'s release store of the fiber's state;
  // release decrement, paired with shutdown's acquire load.
  std::atomic<unsigned> outside_schedules{0};
  weft::runtime* facade = nullptr;  // the public object, for runtime::current()
  // The process's default runtime (its options come from WEFT_WORKERS / WEFT_STACK_SIZE): the
  // overflow message then names the variable. Ordering: relaxed; set once before any fiber.
  std::atomic<bool> is_default{false};
  // The I/O driver (null until io/ installs one). Ordering: release store under io_mu in
  // driver(), acquire loads by workers (they then call into a fully built driver).
  std::atomic<io_driver*> io{nullptr};
  std::unique_ptr<io_driver> io_owned;  // guarded by io_mu; destroyed after the workers stop
  std::mutex io_mu;
  // The worker blocked in io->poll() with a timeout, or -1. Claimed with a CAS by a parking
  // worker; notify() prefers to wake another worker so the poller keeps polling.
  // Ordering: acq_rel CAS / release store; readers (notify, unpark_worker) use seq_cst loads
  // paired with the parking worker's seq_cst store of worker::polling (Dekker, see there).
  std::atomic<int> poll_owner{-1};
  // When a poll last returned (steady ns): a busy worker with a long queue skips its periodic
  // poll unless this is older than 10 ms (Go's sysmon rule), so I/O is never starved.
  // Ordering: relaxed; a stale value only moves one poll by a tick interval.
  std::atomic<std::int64_t> last_poll_ns{0};

 private:
  void shutdown() noexcept;
  void stop_workers() noexcept;
  void unwind_all() noexcept;
  void settle_waits(const std::vector<fiber_cb*>& fibers) noexcept;
  void wait_outside_schedules() noexcept;
  void enqueue(fiber_cb* f, worker* me, bool lifo, bool new_work) noexcept;
};

/// Per-OS-thread state. Reached only through thread_state_ptr(): see its comment.
struct thread_state {
  worker* w = nullptr;               // the worker this thread is, or null
  fiber_cb* unwinding = nullptr;     // fiber being unwound by this (shutdown) thread
  machine_context* unwind_return = nullptr;  // where `unwinding` goes when it exits or suspends
  // Set by unwind_suspend right before it switches to unwind_return, read (and cleared) by the
  // unwind_fiber call that switched to the fiber: the fiber suspended rather than finished.
  bool unwind_suspended = false;
  waitable* thread_waitable = nullptr;  // plain-thread waits (lazily created, recycled)
  void* thread_fls = nullptr;
};

/// This thread's state. Not inlined and laundered through an empty asm so the compiler can
/// neither treat it as const nor cache the address across a call that may switch fibers (after
/// which the code may run on another thread). Call it again after every suspension point.
thread_state* thread_state_ptr() noexcept;

inline worker* this_worker() noexcept { return thread_state_ptr()->w; }

/// Reserves `n` consecutive ids of fibers and threads, unique in the process (the worker's
/// next_id/id_limit block comes from here).
std::uint64_t reserve_task_ids(std::uint64_t n) noexcept;

/// The `what` of a fiber's wait for its run_blocking() job (prepare_wait), one object for every
/// unit: shutdown tells such a fiber by this address (fiber_cb::wait_kind).
inline constexpr char run_blocking_wait_kind[] = "run_blocking";

/// The runtime whose fibers the calling thread is unwinding at shutdown, or null.
runtime_impl* unwinding_runtime() noexcept;

/// Unwinds a parked, runnable or never-started fiber from the calling thread (shutdown), or
/// resumes its unwinding if it is suspended (state unwind_suspended). Returns true once it has
/// finished, false if it suspended again (unwind_suspend): then it is still unfinished and must
/// be resumed later. Never for a fiber in this thread's chain of unwinding fibers (running).
bool unwind_fiber(fiber_cb* f) noexcept;
/// Called on `self`, the fiber this thread unwinds, when it has to wait (a park, a yield, a
/// join of a fiber it cannot finish now): switches back to the one that resumed it
/// (unwind_all's loop, or a fiber joining it), so that other fibers are unwound before `self`
/// tries again. A wait may depend on them: a lock held by a fiber not yet unwound.
void unwind_suspend(fiber_cb* self) noexcept;
/// join() of `f` from `self`, both of the runtime this thread unwinds: unwinds `f` (nested)
/// until it has finished, suspending `self` whenever `f` cannot go on yet.
void unwind_join(fiber_cb* self, fiber_cb* f) noexcept;

/// The guard/overflow handler: installs the process SIGSEGV handler and this thread's
/// alternate signal stack.
void install_overflow_handler() noexcept;
/// Installs an alternate signal stack for this thread; false if it had one (or none could be made).
bool thread_altstack_init() noexcept;
void thread_altstack_fini() noexcept;

exit_target fiber_main(void* arg) noexcept;

}  // namespace weft::detail
