// Runtime lifecycle: starting workers, making fibers runnable from anywhere, statistics, and
// shutdown (stop workers, unwind what is left while run_blocking() calls finish, stop the
// blocking pool). docs/scheduler.md, "Shutdown", lists the steps.
#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <thread>
#include <ctime>
#include <stdexcept>

#include "scheduler.hpp"

namespace weft::detail {

[[gnu::noinline]] thread_state* thread_state_ptr() noexcept {
  static thread_local thread_state state;
  thread_state* p = &state;
  asm volatile("" : "+r"(p));
  return p;
}

std::int64_t now_ns() noexcept {
  timespec ts;
  ::clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<std::int64_t>(ts.tv_sec) * 1000000000 + ts.tv_nsec;
}

namespace {
[[noreturn]] void refuse(const char* field, std::size_t value, const char* wants) {
  char msg[256];
  std::snprintf(msg, sizeof msg, "weft::runtime_options::%s is %zu: wants %s", field, value, wants);
  throw std::invalid_argument(msg);
}

// Fills in the defaults and refuses what cannot run (a runtime never silently runs with other
// options than those asked for): the message names the field, the value and the valid range.
runtime_options resolve(runtime_options o) {
  if (o.workers > max_workers) refuse("workers", o.workers, "0 (one per core) to 1024");
  if (o.workers == 0) o.workers = std::clamp(std::thread::hardware_concurrency(), 1u, max_workers);
  if (o.run_queue_capacity < 4 || o.run_queue_capacity > (1u << 24) ||
      (o.run_queue_capacity & (o.run_queue_capacity - 1)) != 0) {
    refuse("run_queue_capacity", o.run_queue_capacity, "a power of two from 4 to 16777216 (default 256)");
  }
  if (o.stack_size < min_stack_size || o.stack_size > max_stack_size) {
    refuse("stack_size", o.stack_size, "16384 (16 KiB) to 1073741824 bytes (1 GiB; default 256 KiB)");
  }
  if (o.blocking_threads_max == 0) {
    refuse("blocking_threads_max", 0, "at least 1 (run_blocking would wait forever; default 64)");
  }
  // Test mode for a whole suite (CI runs it once): every runtime migrates on every yield.
  if (const char* m = std::getenv("WEFT_MIGRATE_ON_YIELD"); m != nullptr && m[0] == '1') o.migrate_on_yield = true;
  return o;
}
}  // namespace

runtime_impl::runtime_impl(const runtime_options& options)
    : opts(resolve(options)),
      idle(opts.workers),
      pool(opts.stack_size, opts.guard_pages, opts.force_mprotect_guard, opts.stack_cache_high_water),
      blocking(opts.blocking_threads_max, opts.blocking_idle_timeout) {
  install_overflow_handler();
  for (unsigned i = 0; i < opts.workers; ++i) workers.push_back(std::make_unique<worker>(this, i, opts.run_queue_capacity));
  try {
    for (auto& w : workers) {
      worker* wp = w.get();
      w->thread = std::thread([wp] { wp->run(); });
    }
  } catch (...) {
    stop_workers();
    throw;
  }
}

runtime_impl::~runtime_impl() { shutdown(); }

void runtime_impl::notify() noexcept {
  if (!idle.should_wake()) return;
  // Leave the worker blocked in the poller there if another is parked: it keeps I/O moving.
  // Ordering: seq_cst, see poll_owner.
  int id = idle.pick_to_wake(poll_owner.load(std::memory_order_seq_cst));
  if (id >= 0) unpark_worker(workers[static_cast<unsigned>(id)].get());
}

void runtime_impl::unpark_worker(worker* w) noexcept {
  w->sleeper.unpark();
  // Ordering: seq_cst load after unpark's seq_cst token store pairs with park_worker's
  // seq_cst store of `polling` followed by its token check (see worker::polling).
  if (w->polling.load(std::memory_order_seq_cst)) {
    if (io_driver* d = io.load(std::memory_order_acquire)) d->wake();
  }
}

io_driver* runtime_impl::driver(io_driver* (*make)(runtime_impl*)) {
  // Ordering: acquire pairs with the release store below.
  if (io_driver* d = io.load(std::memory_order_acquire)) return d;
  std::lock_guard lk(io_mu);
  if (io_driver* d = io.load(std::memory_order_relaxed)) return d;
  io_owned.reset(make(this));
  // Ordering: release publishes the constructed driver to workers' acquire loads.
  io.store(io_owned.get(), std::memory_order_release);
  return io_owned.get();
}

bool runtime_impl::poll_io_now() noexcept {
  // Ordering: acquire pairs with the release store in driver().
  io_driver* d = io.load(std::memory_order_acquire);
  // A worker blocked in the driver receives the events itself; a second poll would only
  // contend with it.
  if (d == nullptr || poll_owner.load(std::memory_order_relaxed) >= 0) return false;
  std::uint32_t woke = dispatch_io(this_worker(), d, 0);
  // One fiber: this worker runs it next, waking a parked one would only cost a futex call and
  // move the fiber's cache lines. Several: one helper, which steals and wakes more if needed.
  if (woke > 1 && workers.size() > 1) notify();
  return woke != 0;
}

std::uint32_t runtime_impl::dispatch_io(worker* me, io_driver* d, std::int64_t timeout_ns) noexcept {
  me->dispatching_io = true;
  std::uint32_t woke = d->poll(timeout_ns);
  me->dispatching_io = false;
  last_poll_ns.store(now_ns(), std::memory_order_relaxed);  // Ordering: see last_poll_ns
  return woke;
}

void runtime_impl::notify_worker(worker* w) noexcept {
  // Ordering: the seq_cst fence pairs with the one in worker::park_worker: either we see it
  // registered as parked, or it sees its inbox non-empty.
  std::atomic_thread_fence(std::memory_order_seq_cst);
  if (idle.claim_specific(w->index)) unpark_worker(w);
}

void runtime_impl::timer_added(std::int64_t deadline) noexcept {
  std::atomic_thread_fence(std::memory_order_seq_cst);  // see worker::sleeping_until
  worker* oversleeper = nullptr;
  for (auto& w : workers) {
    std::int64_t until = w->sleeping_until.load(std::memory_order_relaxed);
    if (until < 0) continue;
    if (until <= deadline) return;  // someone wakes in time and fires everyone's due timers
    oversleeper = w.get();
  }
  if (oversleeper != nullptr) notify_worker(oversleeper);
}

void runtime_impl::schedule(fiber_cb* f, bool lifo, bool new_work) noexcept {
  worker* me = this_worker();
  if (me != nullptr && me->rt != this) me = nullptr;
  if (me == nullptr) {
    // Counted until this call's last touch of the runtime (see outside_schedules). Ordering:
    // relaxed; the release store of the state below publishes it.
    outside_schedules.fetch_add(1, std::memory_order_relaxed);
  }
  // Ordering of the unwinding load: relaxed; see the note after the branches.
  if (!unwinding.load(std::memory_order_relaxed)) [[likely]] {
    // Ordering: release pairs with settle_waits' acquire load: once shutdown sees the fiber
    // runnable it also sees this call counted.
    f->state.store(fiber_state::runnable, std::memory_order_release);
    enqueue(f, me, lifo, new_work);
  } else if (f->state.exchange(fiber_state::runnable, std::memory_order_acq_rel) != fiber_state::parked_unwinding) {
    enqueue(f, me, lifo, new_work);
  }
  // else: the resume step of a wait that `f` began while being unwound (park_until): `f` runs
  // on the shutdown thread and only waited for this step. Not queued. (A waker that claimed
  // such a wait saw `unwinding` set: the claim follows the wait's publication, which follows
  // unwind_all's release store.)
  // Ordering: release pairs with shutdown's acquire load; nothing of the runtime is touched
  // after this.
  if (me == nullptr) outside_schedules.fetch_sub(1, std::memory_order_release);
}

void runtime_impl::enqueue(fiber_cb* f, worker* me, bool lifo, bool new_work) noexcept {
  if (f->home_worker >= 0) {
    worker* home = workers[static_cast<unsigned>(f->home_worker)].get();
    home->inbox.push(f);
    if (home != me) notify_worker(home);
    return;
  }
  if (me != nullptr && !unwinding.load(std::memory_order_relaxed)) {
    // Fibers made ready by one poll go FIFO (as Go injects a netpoll batch): through the LIFO
    // slot each would displace the previous one and the batch would run newest-first.
    // While dispatching I/O, no wake-up per fiber: the batch is counted and poll_io_now (or
    // park_worker) wakes one helper once if it holds more than one fiber.
    me->push_local(f, lifo && !me->dispatching_io, new_work && !me->dispatching_io);
    return;
  }
  global.push(f);
  if (!stopping.load(std::memory_order_relaxed)) notify();
}

void runtime_impl::release_ref(fiber_cb* f) noexcept {
  // Ordering: acq_rel: the last decrement sees every write of the other holder.
  if ((f->refs.fetch_sub(1, std::memory_order_acq_rel) & refs_count) != 1) return;
  // The body went before (fiber_main, fiber_release): nothing of the fiber's runs here, which
  // may be the exit hook on another fiber's context.
  worker* me = this_worker();
  const bool on_worker = me != nullptr && me->rt == this;
  // A plain thread that puts the resident free list above its floor wakes a worker, which
  // starts the decay clock (workers that parked before it have no reason to wake).
  // Ordering: no lost wake-up, by the wake protocol's Dekker pair. release() stores hot_hint_
  // before notify()'s seq_cst fence and its read of the idle state; park_worker registers as
  // parked, then its seq_cst fence, then reads wants_decay() for its timeout. Either notify()
  // sees the worker parked and wakes it, or the worker sees the hint and parks with the 1 s
  // timeout. (A searcher that notify() skips reads the hint in park_worker the same way.)
  if (pool.release(f, on_worker ? &me->stacks : nullptr) && !on_worker &&
      !stopping.load(std::memory_order_relaxed)) {
    notify();
  }
}

runtime_stats runtime_impl::stats() const {
  runtime_stats s;
  for (const auto& w : workers) {
    s.spawned += w->counters.spawned.load(std::memory_order_relaxed);
    s.finished += w->counters.finished.load(std::memory_order_relaxed);
    s.context_switches += w->counters.switches.load(std::memory_order_relaxed);
    s.steals += w->counters.steals.load(std::memory_order_relaxed);
    s.parks += w->counters.parks.load(std::memory_order_relaxed);
    s.timers_fired += w->counters.timers_fired.load(std::memory_order_relaxed);
    s.timers_pending += w->timers.size();
  }
  s.spawned += spawned_outside.load(std::memory_order_relaxed);
  s.finished += finished_outside.load(std::memory_order_relaxed);
  std::int64_t live = pool.in_use_uncached();
  for (const auto& w : workers) live += w->stacks.net.load(std::memory_order_relaxed);
  s.live_fibers = live > 0 ? static_cast<std::uint64_t>(live) : 0;
  s.stacks_mapped = pool.mapped();
  s.stacks_cold = pool.cold();
  s.workers = static_cast<unsigned>(workers.size());
  s.outside_joiners = outside_joiners.load(std::memory_order_relaxed);
  switch (pool.guard()) {
    case guard_kind::madvise_guard: s.guard = "madvise"; break;
    case guard_kind::mprotect: s.guard = "mprotect"; break;
    case guard_kind::none: s.guard = opts.guard_pages ? "" : "none"; break;
  }
  return s;
}

namespace {
// Shutdown waits on other threads' progress without a bound; it names what it waits for
// every 5 s instead of hanging silently.
template <class Done>
void wait_for_outside(const char* what, Done done) {
  auto started = std::chrono::steady_clock::now();
  auto next_report = started + std::chrono::seconds(5);
  while (!done()) {
    std::this_thread::sleep_for(std::chrono::microseconds(100));
    auto now = std::chrono::steady_clock::now();
    if (now >= next_report) {
      next_report = now + std::chrono::seconds(5);
      std::fprintf(stderr, "weft: runtime shutdown has waited %llds for %s\n",
                   static_cast<long long>(std::chrono::duration_cast<std::chrono::seconds>(now - started).count()),
                   what);
    }
  }
}
}  // namespace

void runtime_impl::stop_workers() noexcept {
  // Ordering: release pairs with the acquire loads in worker::find_work.
  stopping.store(true, std::memory_order_release);
  for (auto& w : workers) {
    idle.claim_specific(w->index);
    unpark_worker(w.get());
  }
  auto started = std::chrono::steady_clock::now();
  for (auto& w : workers) {
    if (!w->thread.joinable()) continue;
    // std::thread has no timed join: poll the worker's state so a fiber that never yields is
    // named instead of hanging silently.
    auto next_report = std::chrono::steady_clock::now() + std::chrono::seconds(5);
    while (true) {
      bool exited = false;
      // Every 5 s by the clock (a count of 200 us sleeps drifts: each sleeps longer).
      while (!exited && std::chrono::steady_clock::now() < next_report) {
        exited = w->exited.load(std::memory_order_acquire);
        if (!exited) std::this_thread::sleep_for(std::chrono::microseconds(200));
      }
      if (exited || w->exited.load(std::memory_order_acquire)) break;
      next_report += std::chrono::seconds(5);
      fiber_cb* cur = w->running_hint.load(std::memory_order_relaxed);
      auto secs = std::chrono::duration_cast<std::chrono::seconds>(std::chrono::steady_clock::now() - started).count();
      std::fprintf(stderr,
                   "weft: runtime shutdown has waited %llds for worker %u, which is running fiber %llu \"%s\" "
                   "that has not returned to the scheduler (a loop without a yield or a blocking call?)\n",
                   static_cast<long long>(secs), w->index,
                   static_cast<unsigned long long>(cur != nullptr ? cur->id : 0), cur != nullptr ? cur->name : "");
    }
    w->thread.join();
  }
}

void runtime_impl::shutdown() noexcept {
  fiber_cb* cur = current_fiber();
  if (cur != nullptr && cur->rt == this) {
    std::fprintf(stderr, "weft: a runtime is being destroyed from its own fiber %llu \"%s\"; destroy it from "
                         "outside (e.g. after block_on returns)\n",
                 static_cast<unsigned long long>(cur->id), cur->name);
    std::abort();
  }
  stop_workers();
  // Before the pool is drained: a run_blocking() job may wait for something only unwinding a
  // fiber releases (a weft::mutex a parked fiber holds, a promise it owns). unwind_all lets
  // the pool run meanwhile and unwinds a fiber waiting for a job only once the job returned.
  unwind_all();
  // Every job of a fiber has returned by now (and woken it); this only stops the threads.
  blocking.shutdown();
  // Resume steps of waits that fibers began while being unwound (park_until) may still be
  // inside schedule().
  wait_outside_schedules();
  // Threads still inside join() read the control blocks: let them leave before unmapping.
  // Ordering: acquire pairs with join_guard's release decrement.
  wait_for_outside("thread(s) still inside join()",
                   [this] { return outside_joiners.load(std::memory_order_acquire) == 0; });
}

void runtime_impl::settle_waits(const std::vector<fiber_cb*>& fibers) noexcept {
  for (fiber_cb* f : fibers) {
    // Ordering: acquire pairs with schedule()'s release store of the state.
    if (f->state.load(std::memory_order_acquire) != fiber_state::parked) continue;
    // Cancel a pending wait (claim it for shutdown): from now on no waker can claim it, so
    // nothing will resume it. Ordering: relaxed load; the claim's CAS orders.
    const std::uint64_t seq = f->wait_word.load(std::memory_order_relaxed) >> 2;
    if (claim_waitable(f, seq, wake_reason::canceled)) continue;
    // Claimed, not yet resumed. The workers have stopped, so the waker is an outside thread,
    // and it may read records on this fiber's stack (a pending_wakes chain) until its resume
    // step: unwinding the fiber now would free them under it. Wait for that step.
    char what[128];
    std::snprintf(what, sizeof what, "the thread that claimed the wait of fiber %llu \"%s\" to resume it",
                  static_cast<unsigned long long>(f->id), f->name);
    wait_for_outside(what, [f] {
      return f->state.load(std::memory_order_acquire) != fiber_state::parked;
    });
  }
  // Resume steps (and any other outside schedule()) still inside the runtime: one may still be
  // queueing a fiber that is about to be unwound.
  wait_outside_schedules();
}

void runtime_impl::wait_outside_schedules() noexcept {
  // Ordering: acquire pairs with schedule()'s release decrement.
  wait_for_outside("thread(s) still inside a wake-up (schedule)",
                   [this] { return outside_schedules.load(std::memory_order_acquire) == 0; });
}

void runtime_impl::unwind_all() noexcept {
  // Ordering: release pairs with the acquire load in fiber_main (never-started fibers skip
  // their body).
  unwinding.store(true, std::memory_order_release);
  // Destructors run on the fibers' stacks from this thread: give it an alternate signal stack
  // so an overflow there is reported too.
  struct altstack_guard {
    bool installed = thread_altstack_init();
    ~altstack_guard() {
      if (installed) thread_altstack_fini();
    }
  } altstack;
  std::vector<fiber_cb*> left;
  // Parked in run_blocking(): the job, on the fiber's stack, is queued or running on the pool,
  // and the pool thread wakes the fiber when it returns. Such a wait is not canceled, and the
  // fiber is unwound only after that wake-up (its resume step).
  std::vector<fiber_cb*> in_pool;
  // Ordering: relaxed loads; the workers have been joined, and only they (the fibers on them)
  // wrote the states and wait kinds read here. A pool thread's later wake-up is read below.
  pool.for_each([&](fiber_cb* f) {
    fiber_state s = f->state.load(std::memory_order_relaxed);
    if (s == fiber_state::free || s == fiber_state::done) return;
    if (s == fiber_state::parked && f->wait_kind.load(std::memory_order_relaxed) == run_blocking_wait_kind) {
      in_pool.push_back(f);
    } else {
      left.push_back(f);
    }
  });
  settle_waits(left);
  // Round robin, not each fiber to its end: a fiber that has to wait while being unwound (its
  // destructor locks a mutex another unwound-to-be fiber holds) suspends (unwind_suspend) and
  // the next one goes on; it tries again in the next round. Nothing here can wait for a
  // suspended fiber but another suspended fiber, so each round lets at least the fibers that
  // can finish finish; the rest wait for a thread outside the runtime, or cannot end at all.
  const auto started = std::chrono::steady_clock::now();
  auto next_report = started + std::chrono::seconds(5);
  std::vector<fiber_cb*> still;
  auto last_progress = started, last_yield = started;
  while (!left.empty() || !in_pool.empty()) {
    // run_blocking() calls that returned: their fibers join the others.
    bool returned = false;
    std::erase_if(in_pool, [&](fiber_cb* f) {
      // Ordering: acquire pairs with schedule()'s acq_rel exchange (the pool thread's resume
      // step), which follows the job's end.
      if (f->state.load(std::memory_order_acquire) == fiber_state::parked) return false;
      left.push_back(f);
      returned = true;
      return true;
    });
    // The pool thread may still be queueing one of them (schedule): let it leave first.
    if (returned) wait_outside_schedules();
    if (left.empty()) std::this_thread::sleep_for(std::chrono::microseconds(100));  // only jobs left
    still.clear();
    bool progress = returned;
    for (fiber_cb* f : left) {
      fiber_state s = f->state.load(std::memory_order_relaxed);
      // A fiber unwound earlier may have unwound this one (joins inside destructors).
      if (s == fiber_state::free || s == fiber_state::done) {
        progress = true;
        continue;
      }
      // Not done yet although it returned (join_word 1): a detached fiber's result destructor
      // that parked. unwind_fiber resumes it rather than unwinding it.
      if (unwind_fiber(f)) {
        progress = true;
      } else {
        still.push_back(f);
      }
    }
    left.swap(still);
    // Rounds in which nothing finished: the rest wait for a run_blocking() job, a thread
    // outside the runtime or each other. Every such wait is retried each round (a lock, a
    // receive, a destructor's own retry loop), so a round without progress is not yet a stall.
    // Give the core to those threads at most once a millisecond: a sched_yield per round costs
    // a time slice per retry on a busy machine (a destructor retrying a receive 10^5 times
    // took minutes). After a second without progress the wait is a long one: sleep instead of
    // burning the core until it ends (or the report below says what it waits for).
    auto now = std::chrono::steady_clock::now();
    if (progress) {
      last_progress = now;
    } else if (now - last_progress > std::chrono::seconds(1)) {
      std::this_thread::sleep_for(std::chrono::milliseconds(1));
      now = std::chrono::steady_clock::now();
    } else if (now - last_yield >= std::chrono::milliseconds(1)) {
      std::this_thread::yield();
      last_yield = now = std::chrono::steady_clock::now();
    }
    if ((left.empty() && in_pool.empty()) || now < next_report) continue;
    next_report = now + std::chrono::seconds(5);
    const auto secs = std::chrono::duration_cast<std::chrono::seconds>(now - started).count();
    for (fiber_cb* f : left) {
      const char* kind = f->wait_kind.load(std::memory_order_relaxed);
      std::fprintf(stderr,
                   "weft: runtime shutdown has waited %llds for fiber %llu \"%s\" to unwind; it keeps waiting (on "
                   "%s): either a catch (...) swallowed weft::detail::forced_unwind (rethrow it: docs/porting.md, "
                   "\"catch (...) must rethrow\"), or it waits for a thread outside the runtime or for a fiber "
                   "that cannot finish either\n",
                   static_cast<long long>(secs), static_cast<unsigned long long>(f->id), f->name,
                   kind != nullptr ? kind : "?");
    }
    for (fiber_cb* f : in_pool) {
      std::fprintf(stderr,
                   "weft: runtime shutdown has waited %llds for fiber %llu \"%s\", whose run_blocking() call has not "
                   "returned\n",
                   static_cast<long long>(secs), static_cast<unsigned long long>(f->id), f->name);
    }
  }
}

bool runtime_impl::unwind_ready(fiber_cb* f) noexcept {
  // Ordering: acquire pairs with schedule()'s acq_rel exchange (a pool thread's resume step).
  const fiber_state s = f->state.load(std::memory_order_acquire);
  if (s == fiber_state::running) return false;
  // Parked, and settle_waits did not cancel the wait: a run_blocking() call still out (or
  // returned, and its resume step still to come).
  // Ordering: relaxed; the acquire load of the state above orders it after the claim.
  if (s == fiber_state::parked && (f->wait_word.load(std::memory_order_relaxed) & wait_reason_mask) !=
                                      static_cast<std::uint64_t>(wake_reason::canceled)) {
    return false;
  }
  if (s == fiber_state::runnable) wait_outside_schedules();  // its waker may still be queueing it
  return true;
}

bool unwind_fiber(fiber_cb* f) noexcept {
  thread_state* ts = thread_state_ptr();
  fiber_cb* prev = ts->unwinding;
  machine_context* prev_return = ts->unwind_return;
  // The caller may be a fiber of another runtime: while unwinding, this thread is not that
  // runtime's worker (the unwound fiber must exit back here, not into that worker's queues).
  worker* outer = ts->w;
  ts->w = nullptr;
  machine_context here;
  machine_context* self = prev != nullptr ? &prev->ctx : &here;
  if (prev == nullptr) context_init_thread(here);
  ts->unwinding = f;
  ts->unwind_return = self;
  // Ordering: relaxed; `unwind_suspended` and `running` are written only by this thread, and
  // any other state was published to it by settle_waits or unwind_ready (acquire loads).
  const fiber_state s = f->state.load(std::memory_order_relaxed);
  f->state.store(fiber_state::running, std::memory_order_relaxed);
  // Ordering: acquire pairs with fiber_main's acq_rel exchange of join_word.
  const bool returned = f->join_word.load(std::memory_order_acquire) == 1;
  if (s == fiber_state::unwind_suspended) {
    context_switch(*self, f->ctx, nullptr, nullptr);  // back into its unwind_suspend
  } else if (f->started && !returned) {
    context_unwind(*self, f->ctx);
  } else if (f->started) {
    // Returned, and parked in its result's destructor (a detached fiber destroys its result
    // itself: fiber_main). A destructor is noexcept: no forced_unwind into it. Resumed, its
    // park reports how the wait ended (canceled by settle_waits, or a run_blocking() job's
    // wake-up), and its further waits suspend as any unwound fiber's do.
    context_switch(*self, f->ctx, nullptr, nullptr);
  } else {
    context_switch(*self, f->ctx, nullptr, nullptr);
  }
  ts = thread_state_ptr();
  const bool finished = !ts->unwind_suspended;
  ts->unwind_suspended = false;
  ts->unwinding = prev;
  ts->unwind_return = prev_return;
  ts->w = outer;
  if (prev == nullptr) context_fini_thread(here);
  return finished;
}

void unwind_suspend(fiber_cb* self) noexcept {
  thread_state* ts = thread_state_ptr();
  // Ordering: relaxed; read by this thread (unwind_all, unwind_fiber) and by diagnostics.
  // Invariant: no waker can reach a suspended fiber: its last wait ended (canceled) before.
  self->state.store(fiber_state::unwind_suspended, std::memory_order_relaxed);
  ts->unwind_suspended = true;
  context_switch(self->ctx, *ts->unwind_return, nullptr, nullptr);
  // Resumed by unwind_fiber, which set the state (running) and this thread's unwinding fields.
}

void unwind_join(fiber_cb* self, fiber_cb* f) noexcept {
  // Ordering: acquire pairs with fiber_main's acq_rel exchange of join_word (the result).
  while (f->join_word.load(std::memory_order_acquire) != 1) {
    // Not ready: `f` is in this thread's chain of unwinding fibers (it joins `self`, or waits
    // for a fiber that does) and goes on only once `self` has returned to it, or it waits for
    // its run_blocking() call. Either way `self` waits, letting the others go on meanwhile.
    if (f->rt->unwind_ready(f) && unwind_fiber(f)) continue;
    unwind_suspend(self);
  }
}

}  // namespace weft::detail
