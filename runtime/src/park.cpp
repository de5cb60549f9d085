// The park/unpark protocol (weft/park.hpp) for fibers and plain threads, plain-thread wait
// records, fiber_local storage and run_blocking's hand-off to the blocking pool.
// Invariant: a wait is pending while wait_word == seq << 2; exactly one CAS moves it to
// seq << 2 | reason, and only that CAS's winner makes the waiter runnable.
#include <mutex>
#include <thread>
#include <utility>
#include <vector>

#include <weft/blocking.hpp>
#include <weft/fiber_local.hpp>

#include "scheduler.hpp"

namespace weft::detail {

struct fls_slot {
  void* value = nullptr;
  void (*destroy)(void*) = nullptr;
  std::uint64_t gen = 0;  // the fls_key::gen of the fiber_local that created `value`
};

struct fls_storage {
  std::vector<fls_slot> slots;
};

void fls_destroy_thread() noexcept;

namespace {
// Destroys every value of `s`, last slot first. Destructors may use (and so create) other
// fiber_local values: the loop pops one slot at a time until none is left, never iterating a
// vector that a destructor may grow.
void fls_destroy_all(fls_storage* s) noexcept {
  while (!s->slots.empty()) {
    fls_slot slot = s->slots.back();
    s->slots.pop_back();
    if (slot.value != nullptr) slot.destroy(slot.value);
  }
}


// Plain-thread wait records: type-stable (recycled, never freed) so a stale ticket may still
// CAS one harmlessly.
std::mutex g_records_mu;
std::vector<waitable*>* g_free_records = nullptr;  // guarded by g_records_mu

struct thread_exit_hook {
  ~thread_exit_hook() {
    fls_destroy_thread();
    thread_state* ts = thread_state_ptr();
    if (ts->thread_waitable != nullptr) {
      std::lock_guard lk(g_records_mu);
      if (g_free_records == nullptr) g_free_records = new std::vector<waitable*>();
      g_free_records->push_back(ts->thread_waitable);
      ts->thread_waitable = nullptr;
    }
  }
};

waitable* thread_record() {
  thread_state* ts = thread_state_ptr();
  if (ts->thread_waitable == nullptr) {
    static thread_local thread_exit_hook hook;
    (void)hook;
    std::lock_guard lk(g_records_mu);
    if (g_free_records != nullptr && !g_free_records->empty()) {
      ts->thread_waitable = g_free_records->back();
      g_free_records->pop_back();
    } else {
      ts->thread_waitable = new waitable();
    }
  }
  return ts->thread_waitable;
}

waitable* current_waitable() {
  fiber_cb* f = current_fiber();
  return f != nullptr ? static_cast<waitable*>(f) : thread_record();
}

wake_reason reason_of(std::uint64_t word) noexcept { return static_cast<wake_reason>(word & wait_reason_mask); }

struct park_record {
  waitable* w;
  std::uint64_t seq;
  std::int64_t deadline;  // timer_heap::none: no deadline
  void (*publish)(void*);
  void* arg;
};

// Runs on the next context once the parking fiber's context is saved. The record lives on
// the parked stack and the fiber may be resumed (on another worker) as soon as `publish` makes
// its ticket visible, so everything is copied first and the timer is added afterwards from the
// copies (a timer added for a wait that already ended is a harmless stale entry).
void after_park(void* p) noexcept {
  park_record r = *static_cast<park_record*>(p);
  if (r.publish != nullptr) r.publish(r.arg);
  if (r.deadline != timer_heap::none) {
    worker* w = this_worker();
    if (w->timers.add(r.deadline, r.w, r.seq)) w->rt->timer_added(r.deadline);
  }
}

// The futex value a plain-thread waiter's resume step stores for wait `seq` (odd, so never 0).
std::uint32_t ready_token(std::uint64_t seq) noexcept { return static_cast<std::uint32_t>(seq * 2 + 1); }

wake_reason park_thread(waitable* w, std::uint64_t seq, std::int64_t deadline, void (*publish)(void*), void* arg) {
  if (publish != nullptr) publish(arg);
  const std::uint32_t token = ready_token(seq);
  for (;;) {
    // A waker's claim (the CAS) is not enough to return: the waker may still be inside the
    // primitive (it resumes us after unlocking it), and we may destroy the primitive as soon
    // as we return. Return once its resume step stored our token.
    // Ordering: acquire pairs with the release store in resume_waitable (and through it with
    // the waker's acq_rel CAS).
    std::uint32_t f = w->futex.load(std::memory_order_acquire);
    if (f == token) return reason_of(w->wait_word.load(std::memory_order_acquire));
    // Ordering: acquire pairs with the winner's acq_rel CAS.
    std::uint64_t word = w->wait_word.load(std::memory_order_acquire);
    std::int64_t timeout = -1;
    if ((word & wait_reason_mask) == 0 && deadline != timer_heap::none) {
      timeout = deadline - now_ns();
      if (timeout <= 0) {
        // Our own claim: nobody else will resume us, so there is no step to wait for.
        if (claim_waitable(w, seq, wake_reason::timed_out)) return wake_reason::timed_out;
        continue;  // a waker claimed it first: wait for its resume step
      }
    }
    futex_wait(&w->futex, f, timeout);
  }
}

}  // namespace

bool claim_waitable(waitable* w, std::uint64_t seq, wake_reason reason) noexcept {
  std::uint64_t expected = seq << 2;
  // Ordering: acq_rel: release publishes what the waker wrote before waking to the waiter's
  // acquire load; acquire orders after the waiter's publication of the ticket.
  return w->wait_word.compare_exchange_strong(expected, (seq << 2) | static_cast<std::uint64_t>(reason),
                                              std::memory_order_acq_rel, std::memory_order_relaxed);
}

void resume_waitable(waitable* w, std::uint64_t seq, bool lifo) noexcept {
  // Touches only the waiter's own record (type-stable), never the primitive it waited on.
  if (fiber_cb* f = w->fiber) {
    f->rt->schedule(f, lifo);
  } else {
    // Ordering: release pairs with park_thread's acquire load of the token.
    w->futex.store(ready_token(seq), std::memory_order_release);
    futex_wake(&w->futex, 1);
  }
}

bool wake_waitable(waitable* w, std::uint64_t seq, wake_reason reason) noexcept {
  if (!claim_waitable(w, seq, reason)) return false;
  resume_waitable(w, seq);
  return true;
}

void fls_destroy_thread() noexcept {
  thread_state* ts = thread_state_ptr();
  if (ts->thread_fls == nullptr) return;
  auto* s = static_cast<fls_storage*>(ts->thread_fls);
  fls_destroy_all(s);  // still reachable: destructors may use fiber_locals of this thread
  ts->thread_fls = nullptr;
  delete s;
}

void fls_destroy_fiber(fiber_cb* f) noexcept {
  fls_storage* s = f->fls;
  if (s == nullptr) return;
  fls_destroy_all(s);
  f->fls = nullptr;
  delete s;
}

namespace {
// Indexes of destroyed fiber_locals, for reuse, and the next never-used one.
std::mutex g_fls_keys_mu;
std::vector<std::size_t>* g_fls_free = nullptr;  // guarded by g_fls_keys_mu; never freed
std::size_t g_fls_next = 0;                      // guarded by g_fls_keys_mu
}  // namespace

fls_key fls_new_key() noexcept {
  static std::atomic<std::uint64_t> gens{1};  // Ordering: relaxed, uniqueness only
  fls_key k{0, gens.fetch_add(1, std::memory_order_relaxed)};
  std::lock_guard lk(g_fls_keys_mu);
  if (g_fls_free != nullptr && !g_fls_free->empty()) {
    k.index = g_fls_free->back();
    g_fls_free->pop_back();
  } else {
    k.index = g_fls_next++;
  }
  return k;
}

void fls_free_key(fls_key key) noexcept {
  std::lock_guard lk(g_fls_keys_mu);
  if (g_fls_free == nullptr) g_fls_free = new std::vector<std::size_t>();
  try {
    g_fls_free->push_back(key.index);
  } catch (...) {
    // Out of memory: the index is simply not reused.
  }
}

namespace {
fls_storage*& fls_slot_ref() {
  thread_state* ts = thread_state_ptr();
  fiber_cb* f = ts->w != nullptr ? ts->w->current : ts->unwinding;
  if (f != nullptr) return f->fls;
  thread_record();  // registers the thread-exit hook that frees thread storage
  return *reinterpret_cast<fls_storage**>(&ts->thread_fls);
}
}  // namespace

void* fls_get(fls_key key) noexcept {
  fls_storage* s = fls_slot_ref();
  if (s == nullptr || key.index >= s->slots.size()) return nullptr;
  fls_slot& slot = s->slots[key.index];
  if (slot.gen == key.gen) return slot.value;
  if (slot.value != nullptr) {
    // Left by a destroyed fiber_local whose index `key` reuses: it goes now (its destructor
    // may use fiber_locals and grow the table, so the slot is cleared before).
    fls_slot stale = slot;
    slot = fls_slot{};
    stale.destroy(stale.value);
  }
  return nullptr;
}

// Only after fls_get(key) returned null (fiber_local::get), which cleared a stale slot.
void fls_set(fls_key key, void* value, void (*destroy)(void*)) {
  fls_storage*& s = fls_slot_ref();
  if (s == nullptr) s = new fls_storage();
  if (key.index >= s->slots.size()) s->slots.resize(key.index + 1);
  s->slots[key.index] = fls_slot{value, destroy, key.gen};
}

bool blocking_run(blocking_job* job) {
  thread_state* ts = thread_state_ptr();
  if (ts->w == nullptr) return false;  // plain thread, or unwinding at shutdown
  fiber_cb* f = ts->w->current;
  job->done = prepare_wait(run_blocking_wait_kind);
  struct submit_arg {
    blocking_pool* pool;
    blocking_job* job;
  } a{&f->rt->blocking, job};
  park(job->done, std::nullopt, [](void* p) {
    auto* s = static_cast<submit_arg*>(p);
    s->pool->submit(s->job);
  }, &a);
  return true;
}

}  // namespace weft::detail

namespace weft {

using namespace weft::detail;

bool detail::wake_joiner(const wait_ticket& t) noexcept {
  if (t.target_ == nullptr || !claim_waitable(t.target_, t.seq_, wake_reason::notified)) return false;
  bool lifo = true;
  if (fiber_cb* j = t.target_->fiber) {
    worker* w = this_worker();
    // A fan-out (spawn N, join each): run first, the joiner would only park again at its next
    // join while its other children queued here have not run; behind them it finds them done.
    if (w != nullptr && w->rt == j->rt) lifo = !w->next_is_child_of(j->id);
  }
  resume_waitable(t.target_, t.seq_, lifo);
  return true;
}

bool wait_ticket::wake(wake_reason reason) const noexcept {
  return target_ != nullptr && wake_waitable(target_, seq_, reason);
}

bool wait_ticket::claim(wake_reason reason) const noexcept {
  return target_ != nullptr && claim_waitable(target_, seq_, reason);
}

void wait_ticket::resume() const noexcept { resume_waitable(target_, seq_); }

wait_ticket prepare_wait(const char* what) noexcept {
  waitable* w = current_waitable();
  // Ordering: relaxed; diagnostics only (runtime::fibers() may read a moment-stale pointer).
  if (w->fiber != nullptr) w->fiber->wait_kind.store(what, std::memory_order_relaxed);
  std::uint64_t seq = (w->wait_word.load(std::memory_order_relaxed) >> 2) + 1;
  // Ordering: relaxed; the ticket reaches wakers only through park()'s publish step, whose
  // release (a lock release, a CAS) orders this store before any waker's CAS.
  w->wait_word.store(seq << 2, std::memory_order_relaxed);
  // A thread's token word starts clear, so even a token equal to an old one (2^31 waits apart)
  // cannot end this wait: no resume of an earlier wait can still arrive (park_thread returns
  // only after its own). Ordering: relaxed; only this thread reads it before the ticket is
  // published, and the winner's release store comes after that publication.
  if (w->fiber == nullptr) w->futex.store(0, std::memory_order_relaxed);
  wait_ticket t;
  t.target_ = w;
  t.seq_ = seq;
  return t;
}

wake_reason detail::park_until(wait_ticket ticket, deadline_t deadline, void (*publish)(void*), void* arg) {
  waitable* w = ticket.target_;
  const std::int64_t dl = deadline.ns();
  static_assert(deadline_t::none == timer_heap::none);
  thread_state* ts = thread_state_ptr();
  fiber_cb* f = ts->w != nullptr ? ts->w->current : ts->unwinding;
  if (f == nullptr) return park_thread(w, ticket.seq_, dl, publish, arg);
  if (ts->unwinding != nullptr) {
    // Shutdown: nothing will run this fiber again; end the wait at once. The fiber is running
    // on this thread, so the wait is ended here, not by scheduling it. The state tells a waker
    // that claims the ticket between the publish step and the cancel below that its resume
    // step (runtime_impl::schedule) must not queue the fiber, only report that it is done.
    // Ordering: relaxed; the publish step's release orders it before any claim.
    f->state.store(fiber_state::parked_unwinding, std::memory_order_relaxed);
    if (publish != nullptr) publish(arg);
    if (!claim_waitable(w, ticket.seq_, wake_reason::canceled)) {
      // A waker claimed it first. Until its resume step it may read records on this stack (a
      // pending_wakes chain), as for a plain thread (park_thread): wait for that step.
      // Ordering: acquire pairs with the acq_rel exchange in runtime_impl::schedule.
      while (f->state.load(std::memory_order_acquire) == fiber_state::parked_unwinding) std::this_thread::yield();
    }
    f->state.store(fiber_state::running, std::memory_order_relaxed);
    const wake_reason r = reason_of(w->wait_word.load(std::memory_order_acquire));
    // Canceled: the caller will most likely wait again (a lock's retry loop), perhaps for a
    // fiber not yet unwound (it holds the lock). Let the others be unwound before it does. The
    // wait has ended: a waker finds it canceled, and a record still queued is one a waker
    // skips, as one left by a timeout.
    if (r == wake_reason::canceled) unwind_suspend(f);
    return r;
  }
  park_record rec{w, ticket.seq_, dl, publish, arg};
  f->state.store(fiber_state::parked, std::memory_order_relaxed);
  ts->w->switch_away(f, after_park, &rec);
  // Ordering: acquire pairs with the winner's acq_rel CAS in wake_waitable.
  return reason_of(f->wait_word.load(std::memory_order_acquire));
}

wake_reason park(wait_ticket ticket, std::optional<std::chrono::steady_clock::time_point> deadline,
                 void (*publish)(void*), void* arg) {
  return detail::park_until(ticket, deadline, publish, arg);
}

}  // namespace weft
