// weft::mutex slow paths and once_flag (see weft/mutex.hpp).
// Invariant: has_waiters is set (under lock_) before a waiter parks and cleared (under lock_)
// when the queue empties, so unlock()'s fast path CAS (locked -> 0) fails whenever someone waits.
#include <weft/mutex.hpp>
#include <weft/runtime.hpp>

#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <thread>

namespace weft {

namespace {
constexpr std::int64_t starvation_ns = 1'000'000;  // Go's starvationThresholdNs

std::int64_t now_ns() noexcept {
  timespec ts;
  ::clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<std::int64_t>(ts.tv_sec) * 1000000000 + ts.tv_nsec;
}
}  // namespace

namespace detail {
void fatal_unlock(const char* what) noexcept {
  std::fprintf(stderr, "weft: %s\n", what);
  std::fflush(stderr);
  std::abort();
}
}  // namespace detail

bool mutex::lock_slow(detail::deadline_t deadline) {
  detail::waiter w;
  bool requeue = false;
  bool clear_woken = false;  // we are the waiter unlock woke: let it wake another one again
  for (;;) {
    // No spinning before parking: with the holder on another worker a spin rarely wins the
    // short window between its unlock and its next lock, and when it does the mutex starts to
    // move between workers on every lock (measured: 5.2 us per contended lock with a 32-pause
    // spin on 2 workers, 0.11 us without; docs/benchmarks.md, Synchronization).
    lock_.lock();
    if (clear_woken) {
      woken_ = false;
      clear_woken = false;
    }
    std::uint32_t s = state_.load(std::memory_order_relaxed);
    bool got = false;
    for (;;) {
      if ((s & locked) == 0) {
        // Ordering: acquire pairs with unlock's release.
        if (state_.compare_exchange_weak(s, s | locked, std::memory_order_acquire, std::memory_order_relaxed)) {
          got = true;
          break;
        }
        continue;
      }
      // Ordering: relaxed; has_waiters only changes under lock_, and the holder's unlock CAS
      // fails on it (the CAS reads the latest value in modification order).
      if (state_.compare_exchange_weak(s, s | has_waiters, std::memory_order_relaxed)) break;
    }
    if (got) {
      lock_.unlock();
      return true;
    }
    w.ticket = prepare_wait("mutex");
    w.granted = false;
    if (!requeue) w.since = now_ns();
    // A waiter that was woken but lost the race to a barging locker goes back to the front.
    if (requeue) waiters_.push_front(&w); else waiters_.push_back(&w);
    w.tag = 0;
    wake_reason r;
    bool granted;
    try {
      granted = detail::wait_in_granted(lock_, waiters_, w, deadline, &r, [this] { unlock(); });
    } catch (const detail::forced_unwind&) {
      forget_woken(w);
      throw;
    }
    if (granted) return true;  // handed over by unlock: we own it
    if (r != wake_reason::notified) {
      // Timed out (or canceled). If we were the last waiter, clear the hint.
      lock_.lock();
      if (waiters_.empty()) state_.fetch_and(~has_waiters, std::memory_order_relaxed);
      lock_.unlock();
      if (!deadline) {
        // Untimed: lock() never returns without the lock (as detail::until_acquired, which
        // this loop already is).
        std::this_thread::yield();
        requeue = false;
        continue;
      }
      return false;
    }
    requeue = true;
    clear_woken = true;
  }
}

void mutex::forget_woken(detail::waiter& w) noexcept {
  // A waiter woken by unlock (not handed the lock) that runtime shutdown unwinds instead of
  // letting it retry: unlock stops waking others while woken_ is set, so clear it, and wake
  // the next waiter in its place if nobody holds the mutex (a holder's unlock will otherwise).
  detail::pending_wakes wakes;  // resumes after lock_ is released
  lock_.lock();
  if (w.tag == woken_by_unlock) {
    woken_ = false;
    // Ordering: relaxed; `locked` is only set by a CAS, and a locker that fails it queues
    // under lock_ (held here), so an unlocked mutex seen here has no racing decision.
    while ((state_.load(std::memory_order_relaxed) & locked) == 0) {
      detail::waiter* next = waiters_.pop_front();
      if (next == nullptr) break;
      if (waiters_.empty()) state_.fetch_and(~has_waiters, std::memory_order_relaxed);
      if (wakes.claim(next)) {
        next->tag = woken_by_unlock;
        woken_ = true;
        break;
      }
    }
  }
  lock_.unlock();
}

void mutex::unlock_slow() {
  std::uint32_t s = state_.load(std::memory_order_relaxed);
  if ((s & locked) == 0) detail::fatal_unlock("weft::mutex::unlock: the mutex is not locked");
  // Nothing of *this is touched once `locked` is released (or the lock handed over) with no
  // waiter claimed: the next owner may destroy the mutex at once (std allows it as soon as its
  // own unlock returns). With a waiter claimed (it retries through lock_, or owns the mutex if
  // handed it), the mutex lives until that waiter's lock() returns; the waiter is resumed last
  // by `wakes`.
  // With nobody to wake, `locked` is released by a CAS that fails if a locker queued since
  // lock_ was released: we still own the mutex then, and go round again to wake it.
  detail::pending_wakes wakes;
  for (;;) {
    lock_.lock();
    bool claimed = false;  // someone will retry (or was handed the lock)
    if (woken_) {
      // A woken waiter has yet to run and retry: do not wake another (it would most likely find
      // the mutex taken again as well). Only a starving front waiter is handed the lock.
      detail::waiter* front = waiters_.front();
      if (front == nullptr || now_ns() - front->since <= starvation_ns) claimed = true;
    }
    while (!claimed) {
      detail::waiter* w = waiters_.pop_front();
      if (w == nullptr) break;
      if (waiters_.empty()) state_.fetch_and(~has_waiters, std::memory_order_relaxed);
      if (now_ns() - w->since > starvation_ns) {
        // Starvation: hand the lock over directly; it stays locked.
        w->granted = true;
        if (wakes.claim(w)) {
          lock_.unlock();
          return;  // `wakes` resumes the new owner
        }
        w->granted = false;
        continue;
      }
      if (wakes.claim(w)) {  // it competes for the lock again once released
        w->tag = woken_by_unlock;
        woken_ = true;
        claimed = true;
      }
    }
    // A stale hint (the last waiter left by timeout) would make the CAS below fail for ever.
    // Ordering: relaxed; has_waiters only changes under lock_ (held here).
    if (!claimed && waiters_.empty()) state_.fetch_and(~has_waiters, std::memory_order_relaxed);
    if (claimed) {
      // `locked` goes before lock_ is released. A woken waiter that retries, or one unwound at
      // shutdown (forget_woken), decides under lock_ from `locked`: released after lock_, a
      // retry could see it still set, clear woken_ and park again while this unlock, having
      // decided to wake nobody, releases the mutex: a lost wake-up. Touching lock_ after
      // `locked` is safe here: a claimed waiter is still inside lock(), so the mutex cannot
      // be destroyed yet. Ordering: release publishes the critical section to the next acquire.
      state_.fetch_and(~locked, std::memory_order_release);
      lock_.unlock();
      return;
    }
    lock_.unlock();
    // Ordering: relaxed; the CAS below re-reads the latest value, and a locker's has_waiters
    // (set under lock_ when it queues) makes it fail, so that locker is not slept through.
    s = state_.load(std::memory_order_relaxed);
    while ((s & has_waiters) == 0) {
      // Ordering: release publishes the critical section to the next acquire.
      if (state_.compare_exchange_weak(s, s & ~locked, std::memory_order_release, std::memory_order_relaxed)) return;
    }
  }
}

bool once_flag::begin() {
  lock_.lock();
  detail::wait_locked_until(lock_, waiters_, "call_once", [&] { return state_.load(std::memory_order_relaxed) != running; });
  bool run = state_.load(std::memory_order_relaxed) == idle;
  if (run) state_.store(running, std::memory_order_relaxed);
  lock_.unlock();
  return run;
}

void once_flag::end(bool succeeded) {
  detail::pending_wakes wakes;
  lock_.lock();
  // Ordering: release pairs with call_once's acquire load of `done`.
  state_.store(succeeded ? done : idle, std::memory_order_release);
  // On failure every waiter is woken too, not just the one std's "one of them" needs: each
  // re-checks the state under lock_ (begin), so exactly one finds it idle and runs the function
  // and the others park again. A single hand-off would be lost if its waiter never retried:
  // runtime shutdown unwinds a woken fiber at its park in begin(), outside call_once's try, so
  // it never calls end(), and the other waiters (a plain thread) would wait on an idle flag for
  // ever. Failure is the rare path; a thundering herd there is cheap.
  detail::wake_all(waiters_, wakes);
  lock_.unlock();
}

}  // namespace weft
