// The worker loop: where a worker finds its next fiber (LIFO slot, inbox, run queue, global
// queue, stealing), how fibers switch directly to one another, and how an idle worker parks
// without losing a wake-up. The protocol is described in docs/scheduler.md.
#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <iterator>

#include "scheduler.hpp"

namespace weft::detail {

namespace {
constexpr std::uint32_t global_queue_interval = 61;  // as Go's schedtick % 61
constexpr std::uint32_t max_lifo_streak = 3;          // as Tokio's MAX_LIFO_POLLS_PER_TICK

std::uint64_t xorshift(std::uint64_t& s) noexcept {
  s ^= s << 13;
  s ^= s >> 7;
  s ^= s << 17;
  return s;
}
}  // namespace

worker::worker(runtime_impl* r, unsigned i, std::uint32_t queue_capacity)
    : rt(r), index(i), queue(queue_capacity), alone(r->opts.workers == 1), rng(0x9e3779b97f4a7c15ull * (i + 1)) {
  steal_buf.resize(queue_capacity / 2 + 1);
}

void worker::overflow_to_global(fiber_cb* f) noexcept {
  // The queue is full: move its older half plus `f` to the global queue in one batch (Go's
  // runqputslow), so a burst of spawns spreads to other workers.
  for (;;) {
    std::uint32_t n = queue.take_half_for_overflow(steal_buf.data());
    if (n == 0) {
      if (queue.push(f)) return;  // a thief made room
      continue;
    }
    for (std::uint32_t i = 0; i + 1 < n; ++i) steal_buf[i]->next = steal_buf[i + 1];
    steal_buf[n - 1]->next = f;
    rt->global.push_batch(steal_buf[0], f, n + 1);
    return;
  }
}

fiber_cb* worker::lifo_swap(fiber_cb* f) noexcept {
  if (alone) {
    // Ordering: relaxed; only this thread touches the slot of a runtime's only worker (no
    // thieves, and the slot is never read from outside the runtime's workers).
    fiber_cb* old = lifo.load(std::memory_order_relaxed);
    lifo.store(f, std::memory_order_relaxed);
    return old;
  }
  // Ordering: acq_rel exchange; release publishes f's state to a thief's CAS, acquire takes
  // ownership of the fiber it displaces (or takes out).
  return lifo.exchange(f, std::memory_order_acq_rel);
}

void worker::push_local(fiber_cb* f, bool to_lifo, bool new_work) noexcept {
  if (to_lifo) f = lifo_swap(f);
  if (f != nullptr && !queue.push(f)) overflow_to_global(f);
  // A parked worker may come and steal. Not for a yield (no new work: the fiber was runnable a
  // moment ago), and not with a single worker (this one is awake: it is running us).
  if (new_work && rt->workers.size() > 1) rt->notify();
}

bool worker::keep_time() noexcept {
  std::int64_t now = now_ns();
  std::uint64_t fired = 0;
  for (auto& w : rt->workers) {
    if (w->timers.earliest() <= now) fired += w->timers.run_expired(now);
  }
  if (fired != 0) worker_counters::bump(counters.timers_fired, fired);
  return fired != 0;
}

bool worker::next_is_child_of(std::uint64_t id) const noexcept {
  // Ordering: relaxed; only this owner fills the slot, and thieves only empty it.
  fiber_cb* n = lifo.load(std::memory_order_relaxed);
  if (n == nullptr) n = queue.peek();
  return n != nullptr && n->spawner_id.load(std::memory_order_relaxed) == id;
}

fiber_cb* worker::next_local() noexcept {
  // Stopping: nothing more runs; every suspension returns to the loop, which exits.
  // Ordering: relaxed; the loop re-reads it with acquire.
  if (rt->stopping.load(std::memory_order_relaxed)) return nullptr;
  ++tick;
  fiber_cb* f;
  if (tick % global_queue_interval == 0) {
    keep_time();
    progress.store(tick, std::memory_order_relaxed);
    const std::int64_t now = now_ns();
    if (rt->workers.size() > 1) rescue_stalled(now);
    // A busy worker still looks for I/O now and then, so busy fibers cannot starve it. Not from
    // here when a fiber is switching away: it may hold a descriptor's lock until its park is
    // published, and dispatching an event to that descriptor would spin on it. Go through the
    // scheduler loop instead (one extra switch per 61 ticks), which polls first.
    // Only while the local queue is short: a worker with a long queue has work enough, and
    // adding a batch of wake-ups (up to 128) to it would overflow it into the global queue,
    // where fibers wait until the local queue drains (a latency tail under many connections).
    // A long queue drains, and then find_work polls; a parked worker sits in the poller anyway.
    // But a queue of fibers that keep yielding never drains: past 10 ms without any poll in
    // the runtime, poll regardless (Go's sysmon polls after 10 ms the same way).
    constexpr std::int64_t max_poll_gap_ns = 10'000'000;
    // Ordering: relaxed; a driver installed a moment ago is picked up at the next tick.
    if (rt->io.load(std::memory_order_relaxed) != nullptr &&
        (queue.size() < queue.capacity() / 4 ||
         now - rt->last_poll_ns.load(std::memory_order_relaxed) > max_poll_gap_ns)) {
      if (current == nullptr) {
        rt->poll_io_now();
      } else {
        poll_due = true;
        return nullptr;
      }
    }
    // Fairness: look at the global queue first now and then, so it cannot starve.
    if ((f = rt->global.pop()) != nullptr) return f;
  }
  if (!inbox.empty() && (f = inbox.pop()) != nullptr) return f;
  if (lifo.load(std::memory_order_relaxed) != nullptr) {
    f = lifo_swap(nullptr);
    if (f != nullptr) {
      if (lifo_streak < max_lifo_streak) {
        ++lifo_streak;
        return f;
      }
      // Two fibers waking each other would monopolise the worker through the LIFO slot.
      if (!queue.push(f)) overflow_to_global(f);
    }
  }
  lifo_streak = 0;
  if ((f = queue.pop()) != nullptr) return f;
  return take_from_global();
}

void worker::rescue_stalled(std::int64_t now) noexcept {
  // Go's sysmon retakes the P of a thread stuck in a syscall; here the busy workers do it for
  // one another. A worker that reached no tick boundary for stall_ns is stuck in one fiber (a
  // raw blocking call, a long computation), and the fibers queued behind it would wait for it:
  // an idle worker steals them, but a busy one never searches (and one fed by I/O readiness
  // never runs out of work). So every 61 ticks each worker looks at its peers and takes half
  // of a stalled one's queue and its LIFO slot. A parked peer does not tick either; its queue
  // is empty, so looking costs a load.
  constexpr std::int64_t stall_ns = 2'000'000;
  if (peers.size() != rt->workers.size()) peers.assign(rt->workers.size(), peer_watch{});
  for (auto& wp : rt->workers) {
    worker* v = wp.get();
    if (v == this) continue;
    peer_watch& seen = peers[v->index];
    std::uint32_t p = v->progress.load(std::memory_order_relaxed);  // Ordering: see `progress`
    if (p != seen.progress || seen.since_ns == 0) {
      seen.progress = p;
      seen.since_ns = now;
      continue;
    }
    if (now - seen.since_ns < stall_ns) continue;
    bool took = false;
    if (std::uint32_t got = v->queue.steal_half(steal_buf.data()); got != 0) {
      // Not overflow_to_global: it reuses steal_buf.
      for (std::uint32_t k = 0; k < got; ++k)
        if (!queue.push(steal_buf[k])) rt->global.push(steal_buf[k]);
      took = true;
    }
    // Ordering: acq_rel CAS pairs with the owner's exchange (see `lifo`).
    fiber_cb* stuck = v->lifo.load(std::memory_order_relaxed);
    if (stuck != nullptr &&
        v->lifo.compare_exchange_strong(stuck, nullptr, std::memory_order_acq_rel, std::memory_order_relaxed)) {
      if (!queue.push(stuck)) overflow_to_global(stuck);
      took = true;
    }
    if (took) {
      worker_counters::bump(counters.steals);
      rt->notify();  // an idle worker may share what we took
    }
  }
}

fiber_cb* worker::take_from_global() noexcept {
  // Take a fair share in one lock acquisition (Go's globrunqget): run the first, queue the rest.
  if (rt->global.empty()) return nullptr;  // the common case; spares the division below
  std::size_t share = rt->global.size() / rt->workers.size() + 1;
  share = std::min<std::size_t>(share, queue.capacity() / 2);
  fiber_cb* f = rt->global.pop_batch(share);
  if (f == nullptr) return nullptr;
  for (fiber_cb* g = f->next; g != nullptr;) {
    fiber_cb* next = g->next;
    g->next = nullptr;
    if (!queue.push(g)) overflow_to_global(g);
    g = next;
  }
  f->next = nullptr;
  return f;
}

void worker::switch_away(fiber_cb* self, after_switch_fn after, void* arg) {
  switch_to(self, next_local(), after, arg);
}

void worker::check_resumable(const fiber_cb* f) noexcept {
  // The scheduler's state machine, checked on every resume (one relaxed load): only a fiber
  // made runnable exactly once may be resumed. A fiber found running, parked or done here was
  // queued twice or woken without its wait being won: a runtime bug, never a user error.
  fiber_state s = f->state.load(std::memory_order_relaxed);
  if (s == fiber_state::runnable) return;
  static const char* const names[] = {"free", "created", "runnable", "running", "parked", "parked (unwinding)",
                                      "suspended (unwinding)", "done"};
  static_assert(std::size(names) == static_cast<std::size_t>(fiber_state::done) + 1, "one name per fiber_state");
  std::fprintf(stderr, "weft: internal error: fiber %llu \"%s\" resumed while %s\n",
               static_cast<unsigned long long>(f->id), f->name, names[static_cast<int>(s)]);
  std::abort();
}

void worker::switch_to(fiber_cb* self, fiber_cb* next, after_switch_fn after, void* arg) {
  worker_counters::bump(counters.switches);
  if (next != nullptr) {
    check_resumable(next);
    current = next;
    running_hint.store(next, std::memory_order_relaxed);
    next->state.store(fiber_state::running, std::memory_order_relaxed);
    next->last_worker = index;
    context_switch(self->ctx, next->ctx, after, arg);
  } else {
    current = nullptr;
    running_hint.store(nullptr, std::memory_order_relaxed);
    context_switch(self->ctx, main_ctx, after, arg);
  }
  // Resumed, possibly on another worker: `this` is stale here.
}

fiber_cb* worker::steal() noexcept {
  const unsigned n = static_cast<unsigned>(rt->workers.size());
  if (n > 1) {
    seen_lifo.assign(n, nullptr);
    unsigned start = static_cast<unsigned>(xorshift(rng) % n);
    for (unsigned i = 0; i < n; ++i) {
      worker* v = rt->workers[(start + i) % n].get();
      if (v == this) continue;
      std::uint32_t got = v->queue.steal_half(steal_buf.data());
      if (got != 0) {
        worker_counters::bump(counters.steals);
        for (std::uint32_t k = 0; k + 1 < got; ++k) queue.push(steal_buf[k]);  // our queue is empty
        return steal_buf[got - 1];
      }
      // Ordering: relaxed; only a hint for the second pass, which CASes.
      seen_lifo[v->index] = v->lifo.load(std::memory_order_relaxed);
    }
    if (fiber_cb* f = take_from_global()) return f;
    // A fiber that sat in another worker's LIFO slot for a whole pass may be taken: its worker
    // is busy (or blocked) and it would otherwise wait.
    for (unsigned i = 0; i < n; ++i) {
      worker* v = rt->workers[(start + i) % n].get();
      fiber_cb* seen = seen_lifo[v->index];
      if (v == this || seen == nullptr) continue;
      // Ordering: acq_rel CAS pairs with the owner's exchange (see `lifo`).
      if (v->lifo.compare_exchange_strong(seen, nullptr, std::memory_order_acq_rel, std::memory_order_relaxed)) {
        worker_counters::bump(counters.steals);
        return seen;
      }
    }
    return nullptr;
  }
  return take_from_global();
}

bool worker::spin_for_work() noexcept {
  for (int i = 0; i < 256; ++i) {
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#endif
    if (!rt->global.empty() || !inbox.empty() || lifo.load(std::memory_order_relaxed) != nullptr) return true;
    if ((i & 31) == 31) {
      for (auto& w : rt->workers)
        if (w.get() != this && !w->queue.empty()) return true;
    }
  }
  return false;
}

bool worker::work_visible() noexcept {
  if (!rt->global.empty() || !inbox.empty()) return true;
  for (auto& w : rt->workers) {
    if (w.get() == this) continue;
    // Ordering: acquire loads after the seq_cst fence in park_worker (Dekker with notify()).
    if (!w->queue.empty() || w->lifo.load(std::memory_order_acquire) != nullptr) return true;
  }
  return false;
}

void worker::park_worker() noexcept {
  bool was_searching = searching;
  searching = false;
  rt->idle.park_begin(index, was_searching);
  sleeping_until.store(timer_heap::none, std::memory_order_relaxed);
  // Ordering: pairs with the fence in idle_set::should_wake (Dekker): either the producer sees
  // us parked and wakes someone, or we see its work here; and with the fence in
  // runtime_impl::timer_added for timers (see sleeping_until).
  std::atomic_thread_fence(std::memory_order_seq_cst);
  if (work_visible() || rt->stopping.load(std::memory_order_acquire)) {
    sleeping_until.store(-1, std::memory_order_relaxed);
    if (!rt->idle.park_cancel(index)) searching = true;  // a waker claimed us; its token is on the way
    return;
  }
  // Sleep until the earliest timer of any worker: a busy worker (a long CPU-bound fiber, a raw
  // blocking call) may not look at its timers for a while.
  std::int64_t timeout = -1;
  std::int64_t earliest = timer_heap::none;
  for (auto& w : rt->workers) earliest = std::min(earliest, w->timers.earliest());
  if (earliest != timer_heap::none) {
    timeout = std::max<std::int64_t>(0, earliest - now_ns());
    sleeping_until.store(earliest, std::memory_order_relaxed);
  }
  if (rt->pool.needs_trim()) {
    constexpr std::int64_t trim_pace_ns = 10'000'000;  // one batch of 64 per 10 ms
    timeout = timeout < 0 ? trim_pace_ns : std::min(timeout, trim_pace_ns);
  } else if (rt->pool.wants_decay() || stacks.count != 0) {
    // Come back for the next decay: each parked worker wakes at most once a second, and only
    // until its cache is drained and the resident free list is down to its floor (two decays
    // after the last use).
    constexpr std::int64_t decay_pace_ns = stack_pool::decay_interval_ns;
    timeout = timeout < 0 ? decay_pace_ns : std::min(timeout, decay_pace_ns);
  }
  worker_counters::bump(counters.parks);
  // One parked worker at a time sleeps in the I/O driver instead of its futex, so readiness
  // events wake fibers while every worker is idle; its timeout is the earliest timer.
  io_driver* io = rt->io.load(std::memory_order_acquire);  // Ordering: see runtime_impl::io
  int no_owner = -1;
  std::uint32_t woke = 0;
  // Ordering: acq_rel CAS; the release store below hands the role to the next parker.
  if (io != nullptr && rt->poll_owner.compare_exchange_strong(no_owner, static_cast<int>(index),
                                                              std::memory_order_acq_rel, std::memory_order_relaxed)) {
    // Ordering: seq_cst store, then the token check (Dekker with unpark_worker).
    polling.store(true, std::memory_order_seq_cst);
    if (!sleeper.take_token()) {
      woke = rt->dispatch_io(this, io, timeout);
      sleeper.take_token();  // an unpark that also woke the driver
    }
    polling.store(false, std::memory_order_relaxed);
    rt->poll_owner.store(-1, std::memory_order_release);
  } else {
    sleeper.park(timeout);
  }
  sleeping_until.store(-1, std::memory_order_relaxed);
  if (!rt->idle.park_cancel(index)) searching = true;  // woken by notify(): we are a searcher
  // The poll queued its wake-ups without notifying (see runtime_impl::schedule); now that we
  // are off the idle set (notify cannot pick us), ask for one helper if there are several.
  if (woke > 1 && rt->workers.size() > 1) rt->notify();
}

fiber_cb* worker::find_work() noexcept {
  for (;;) {
    // Ordering: acquire pairs with the release store in runtime_impl::stop_workers.
    if (rt->stopping.load(std::memory_order_acquire)) return nullptr;
    keep_time();
    if (poll_due) {
      poll_due = false;
      rt->poll_io_now();
    }
    fiber_cb* f = next_local();
    // Ready I/O first (the fibers it wakes land in our queue), then other workers' queues.
    if (f == nullptr && rt->poll_io_now()) f = next_local();
    if (f == nullptr) {
      if (!searching) searching = rt->idle.try_start_searching();
      if (searching) f = steal();
      // Spin briefly before parking: in a producer/consumer burst the next item usually
      // arrives within microseconds, and while we search, producers skip the futex wake-up
      // (Go's spinning Ms). Bounded, so a truly idle worker still parks at once.
      if (f == nullptr && searching && spin_for_work()) continue;
    }
    if (f != nullptr) {
      if (searching) {
        searching = false;
        // The last searcher to find work wakes another: there may be more.
        if (rt->idle.stop_searching()) rt->notify();
      }
      return f;
    }
    // Idle: free stacks unused for a second become surplus (decay), and the pages of surplus
    // free stacks go back to the kernel, one batch per idle pass, paced by park_worker's
    // timeout (Go's background scavenger, at a small CPU share).
    if (stacks.count != 0) age_stack_cache(now_ns());
    if (rt->pool.wants_decay()) rt->pool.decay(now_ns());
    if (rt->pool.needs_trim()) rt->pool.trim(64);
    park_worker();
  }
}

void worker::age_stack_cache(std::int64_t now) noexcept {
  // Idle, with stacks in the cache: give them to the pool once a whole second went by without
  // a switch on this worker (so without a spawn or an exit here either). Up to 64 stacks per
  // worker would otherwise stay resident for good after a burst, beyond the pool's own floor.
  // Ordering: relaxed; this worker is the counter's only writer (worker_counters::bump), so
  // it reads its own last store; no other memory rides on it.
  const std::uint64_t switches = counters.switches.load(std::memory_order_relaxed);
  if (switches != stacks_seen_switches) {
    stacks_seen_switches = switches;
    stacks_idle_since_ns = now;
  } else if (now - stacks_idle_since_ns >= stack_pool::decay_interval_ns) {
    rt->pool.drain(stacks);
  }
}

void worker::run() noexcept {
  thread_state* ts = thread_state_ptr();
  ts->w = this;
  context_init_thread(main_ctx);
  thread_altstack_init();
  while (fiber_cb* f = find_work()) {
    check_resumable(f);
    current = f;
    running_hint.store(f, std::memory_order_relaxed);
    f->state.store(fiber_state::running, std::memory_order_relaxed);
    f->last_worker = index;
    worker_counters::bump(counters.switches);
    context_switch(main_ctx, f->ctx, nullptr, nullptr);
    // Back on the worker's stack: whoever switched here set `current` to null.
  }
  if (searching) {
    searching = false;
    rt->idle.stop_searching();
  }
  rt->pool.drain(stacks);
  thread_altstack_fini();
  context_fini_thread(main_ctx);
  thread_state_ptr()->w = nullptr;
  // Ordering: release pairs with the acquire poll in runtime_impl::stop_workers before join().
  exited.store(true, std::memory_order_release);
}

}  // namespace weft::detail
