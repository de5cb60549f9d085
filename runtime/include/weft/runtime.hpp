// weft::runtime: a set of worker threads (one per core by default) that run fibers, balanced by
// work stealing. Several runtimes may live in one process; a default runtime starts lazily the
// first time a fiber is spawned outside any runtime and lives until the process exits.
#pragma once

#include <weft/detail/cxx20.hpp>

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#include <weft/detail/core.hpp>

namespace weft {

/// Options of a runtime. Field names are part of the API (designated initialisers).
struct runtime_options {
  /// Worker threads, at most 1024; 0 means one per core (std::thread::hardware_concurrency()).
  unsigned workers = 0;
  /// Usable bytes of each fiber stack, 16 KiB to 1 GiB (reserved with MAP_NORESERVE; pages are
  /// committed as used; rounded up to whole pages).
  std::size_t stack_size = 256 * 1024;
  /// A 64 KiB guard below every stack: an overflow ends the process with
  /// `weft: stack overflow in fiber <id> "<name>"` instead of corrupting memory (a single
  /// frame larger than 64 KiB can still step over it: put such buffers on the heap).
  bool guard_pages = true;
  /// Free stacks kept resident for reuse; beyond this their pages go back to the kernel. So
  /// do the pages of free stacks below it that a whole second went by without needing, down
  /// to 64 (the workers' own caches, up to 64 each, go back to the pool after a second
  /// without use): a burst of fibers does not keep its memory.
  std::size_t stack_cache_high_water = 1024;
  /// Threads of the run_blocking() pool at most (at least 1); idle ones exit after
  /// `blocking_idle_timeout`.
  unsigned blocking_threads_max = 64;
  std::chrono::milliseconds blocking_idle_timeout{10000};
  /// Slots of each worker's run queue: a power of two from 4 to 2^24. Tests shrink it to
  /// exercise overflow.
  std::uint32_t run_queue_capacity = 256;
  /// Test mode: every yield hands the fiber to another worker, to flush out code that caches
  /// thread_local, errno or thread ids across suspension points. The environment variable
  /// WEFT_MIGRATE_ON_YIELD=1 turns it on for every runtime of the process.
  bool migrate_on_yield = false;
  /// Test mode: use the mprotect guard even where MADV_GUARD_INSTALL works.
  bool force_mprotect_guard = false;
};

/// Counters summed over the workers at the time of the call (each is exact for its worker;
/// the sum is a snapshot, not atomic as a whole).
struct runtime_stats {
  std::uint64_t spawned = 0;
  std::uint64_t finished = 0;
  std::uint64_t context_switches = 0;
  std::uint64_t steals = 0;
  std::uint64_t parks = 0;           ///< times a worker went to sleep for lack of work
  std::uint64_t timers_fired = 0;
  std::uint64_t timers_pending = 0;  ///< timer entries in the heaps, including dead ones not yet swept
  std::uint64_t live_fibers = 0;     ///< fibers whose stack is in use (running, waiting or unjoined)
  std::uint64_t stacks_mapped = 0;   ///< stacks the pool holds, in use or free
  std::uint64_t stacks_cold = 0;     ///< free stacks whose pages went back to the kernel
  unsigned workers = 0;
  unsigned outside_joiners = 0;      ///< plain threads (or other runtimes' fibers) inside a join
  const char* guard = "";            ///< "madvise", "mprotect" or "none"; "" until a stack is mapped
};

/// What a fiber listed by runtime::fibers() was doing when it was looked at.
enum class fiber_status : std::uint8_t {
  created,   ///< spawned, not yet run
  runnable,  ///< in a run queue
  running,   ///< on a worker
  parked,    ///< waiting (I/O, a lock, a timer, a join, run_blocking...)
};

/// One live fiber, as listed by runtime::fibers().
struct fiber_info {
  std::uint64_t id = 0;     ///< fiber::id::value()
  std::string name;         ///< "" if unnamed (spawn_options::name, this_fiber::set_name)
  fiber_status status = fiber_status::created;
  /// While parked: what the fiber said it waits on (this_fiber::set_waiting_on), else what weft
  /// parked it on ("mutex", "condition_variable", "channel recv", "select", "I/O read",
  /// "sleep", "join", "run_blocking", ...), else "".
  std::string waiting_on;
};

template <class T>
class join_handle;

/// A fiber scheduler with its own workers, stacks and timers.
class runtime {
 public:
  /// Starts the workers. Throws std::invalid_argument, naming the field and its valid range,
  /// if an option is out of range (runtime_options lists them), and std::system_error if a
  /// thread cannot be started.
  explicit runtime(runtime_options options = {});
  /// Shuts down (docs/scheduler.md, "Shutdown"): stops the workers once each returns to its
  /// scheduler (a fiber that never yields delays this; a message names it every 5 s), waits
  /// for run_blocking() calls in flight, then unwinds every fiber that has not finished, running
  /// its destructors, and unmaps all stacks. Handles to this runtime's fibers must not be used
  /// afterwards. Must not be called from one of this runtime's fibers.
  ~runtime();
  runtime(const runtime&) = delete;
  runtime& operator=(const runtime&) = delete;

  /// Runs `f` on a new fiber of this runtime and blocks the caller (a plain thread blocks, a
  /// fiber parks) until it returns; returns its result or rethrows its exception.
  template <class F>
  std::invoke_result_t<std::decay_t<F>> block_on(F&& f);

  /// Spawns `f` on a new fiber of this runtime (see weft::spawn).
  template <class F>
  join_handle<std::invoke_result_t<std::decay_t<F>>> spawn(F&& f);

  /// A snapshot of the counters.
  runtime_stats stats() const;
  /// Lists the live fibers of this runtime (finished ones still held by a handle are left
  /// out), ordered by id. Callable from any thread or fiber; it blocks the caller only for
  /// short lock sections (the stack pool's lock, then each fiber's diagnostic spinlock) and
  /// never stops the workers, so the list is not atomic as a whole: a fiber spawned or
  /// finishing meanwhile may be in or out, and a state may be a moment stale. Each entry's id
  /// and name belong to the same fiber. Allocates; meant for diagnostics, not hot paths.
  std::vector<fiber_info> fibers() const;
  /// The options in force (workers resolved to the actual count).
  const runtime_options& options() const noexcept;
  /// The runtime the calling fiber runs on, or null on a plain thread.
  static runtime* current() noexcept;
  /// The process-wide default runtime, started on first use, with runtime_options{} except
  /// for two environment variables, read then: WEFT_WORKERS (a count, 0 = one per core) and
  /// WEFT_STACK_SIZE (bytes, or with K, M or G: "8M"). A malformed value is reported on
  /// stderr and ignored.
  static runtime& default_runtime();

 private:
  friend detail::runtime_impl* detail::runtime_of(const runtime&) noexcept;
  explicit runtime(detail::runtime_impl* impl) noexcept : impl_(impl) {}
  detail::runtime_impl* impl_;
};

}  // namespace weft

#include <weft/fiber.hpp>

namespace weft {

template <class F>
std::invoke_result_t<std::decay_t<F>> runtime::block_on(F&& f) {
  return spawn(std::forward<F>(f)).join();
}

template <class F>
join_handle<std::invoke_result_t<std::decay_t<F>>> runtime::spawn(F&& f) {
  return weft::spawn(spawn_options{.runtime = this}, std::forward<F>(f));
}

}  // namespace weft
