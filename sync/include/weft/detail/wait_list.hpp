// The waiter queue every sync primitive is built on: an intrusive FIFO of waiter records that
// live on the waiting fibers' (or threads') stacks, guarded by the primitive's spinlock.
//
// Protocol (see weft/park.hpp): a waiter prepares a ticket, links its record under the lock and
// parks; the lock is released by park()'s publish step, after the waiter's context is saved. A
// waker pops a record under the lock, sets `granted` if it hands something over (ownership, a
// permit, a value), and claims the ticket *while still holding the lock*; if the claim fails
// the waiter is already leaving by timeout or cancellation, so the waker takes the grant back
// and tries the next record. Claimed waiters are resumed only after the waker released the lock
// and is done with the primitive (pending_wakes): a waiter may destroy the primitive as soon as
// it runs again.
// Invariant: `linked` and `granted` are written only under the lock; a waiter that returns
// other than `notified` reads them under the lock, so it sees exactly the waker's decision.
#pragma once

#include <weft/detail/cxx20.hpp>

#include <chrono>
#include <cstdint>
#include <new>
#include <optional>
#include <stop_token>
#include <thread>
#include <type_traits>

#include <weft/detail/spinlock.hpp>
#include <weft/park.hpp>

namespace weft::detail {

struct waiter {
  wait_ticket ticket;
  waiter* prev = nullptr;
  waiter* next = nullptr;
  bool linked = false;
  bool granted = false;      // the waker handed over what the waiter wanted
  std::uintptr_t tag = 0;    // the primitive's own (e.g. shared or exclusive)
  void* slot = nullptr;      // the primitive's own (e.g. where a channel value goes)
  std::int64_t since = 0;    // when it first queued (mutex starvation)
  waiter* resume_next = nullptr;  // the waker's pending_wakes chain, once claimed
};

/// Wake-ups decided under a primitive's lock and delivered once the waker is done with the
/// primitive (Go's chansend: unlock, then goready). std lets a thread destroy a semaphore or a
/// mutex as soon as its own acquire or unlock returns, Go a channel as soon as its receive
/// returns: a woken waiter may do so the moment it runs, so nothing of the primitive (not even
/// its lock's release) may be touched after a waiter can run. claim() under the lock decides,
/// resume_all() delivers; the destructor calls it, so declare a pending_wakes before the lock
/// guard (or call resume_all() after the last touch). A claimed waiter stays parked, so its
/// record (on its stack) stays valid until it is resumed.
class pending_wakes {
 public:
  pending_wakes() = default;
  pending_wakes(const pending_wakes&) = delete;
  pending_wakes& operator=(const pending_wakes&) = delete;
  ~pending_wakes() { resume_all(); }
  /// Claims `w`'s wait; on success keeps `w` to resume later (FIFO). Call under the lock.
  bool claim(waiter* w, wake_reason reason = wake_reason::notified) noexcept {
    if (!w->ticket.claim(reason)) return false;
    w->resume_next = nullptr;
    if (tail_ != nullptr) tail_->resume_next = w; else head_ = w;
    tail_ = w;
    return true;
  }
  /// Resumes every claimed waiter. Call with no lock of the primitive held.
  void resume_all() noexcept {
    waiter* w = head_;
    head_ = tail_ = nullptr;
    while (w != nullptr) {
      waiter* next = w->resume_next;  // read first: once resumed, `w` may be gone
      wait_ticket t = w->ticket;
      t.resume();
      w = next;
    }
  }

 private:
  waiter* head_ = nullptr;
  waiter* tail_ = nullptr;
};

class wait_list {
 public:
  bool empty() const noexcept { return head_ == nullptr; }
  waiter* front() const noexcept { return head_; }

  void push_back(waiter* w) noexcept {
    w->next = nullptr;
    w->prev = tail_;
    if (tail_ != nullptr) tail_->next = w; else head_ = w;
    tail_ = w;
    w->linked = true;
  }
  void push_front(waiter* w) noexcept {
    w->prev = nullptr;
    w->next = head_;
    if (head_ != nullptr) head_->prev = w; else tail_ = w;
    head_ = w;
    w->linked = true;
  }
  void remove(waiter* w) noexcept {
    if (w->prev != nullptr) w->prev->next = w->next; else head_ = w->next;
    if (w->next != nullptr) w->next->prev = w->prev; else tail_ = w->prev;
    w->prev = w->next = nullptr;
    w->linked = false;
  }
  waiter* pop_front() noexcept {
    waiter* w = head_;
    if (w != nullptr) remove(w);
    return w;
  }

 private:
  waiter* head_ = nullptr;
  waiter* tail_ = nullptr;
};

/// A deadline on the steady clock for a time point of any clock (rounded up, never early).
template <class Clock, class Duration>
std::chrono::steady_clock::time_point to_steady(const std::chrono::time_point<Clock, Duration>& t) {
  using steady = std::chrono::steady_clock;
  if constexpr (std::is_same_v<Clock, steady>) {
    return std::chrono::ceil<steady::duration>(t);
  } else {
    return steady::now() + std::chrono::ceil<steady::duration>(t - Clock::now());
  }
}

/// Ends the process with `what` (misuse that std leaves undefined, e.g. unlocking a mutex that
/// is not locked).
[[noreturn]] void fatal_unlock(const char* what) noexcept;

/// Parks the caller as `w`, which the caller linked into `list` under `lock` (held on entry,
/// with w.ticket from prepare_wait() taken before linking). `lock` is released after the
/// caller's context is saved, then `also(arg)` runs (e.g. releasing a condition variable's
/// user lock). On return `lock` is not held, and `w` is unlinked. Returns true if the wait ended
/// with `w.granted` set by a waker; `reason` (if given) receives how the park ended.
bool wait_in(spinlock& lock, wait_list& list, waiter& w, deadline_t deadline, void (*also)(void*) = nullptr,
             void* arg = nullptr, wake_reason* reason = nullptr);

/// wait_in for a waiter that a waker may grant something (a lock, a permit). If the runtime's
/// shutdown unwinds the waiter after a grant reached it, `give_back()` returns what was granted
/// (unlock, release) before the unwinding goes on: the primitive may outlive the runtime and
/// must not stay held by a fiber that no longer exists.
template <class GiveBack>
bool wait_in_granted(spinlock& lock, wait_list& list, waiter& w, deadline_t deadline, wake_reason* reason,
                     GiveBack give_back) {
  try {
    return wait_in(lock, list, w, deadline, nullptr, nullptr, reason);
  } catch (const forced_unwind&) {
    // Wakers set and reset `granted` under `lock`; wait_in's undo has unlinked `w` by now.
    lock.lock();
    const bool granted = w.granted;
    lock.unlock();
    if (granted) give_back();
    throw;
  }
}

/// Runs `attempt()` (one try at a lock or permit that may wait until `deadline`) and returns
/// its result; without a deadline, runs it until it succeeds. An untimed wait fails only while
/// runtime shutdown unwinds the fiber (every park then returns at once), and an untimed lock or
/// acquire must still not return empty-handed: it keeps trying, as a blocked thread would,
/// yielding the (shutdown) thread in between.
template <class Attempt>
bool until_acquired(deadline_t deadline, Attempt attempt) {
  while (!attempt()) {
    if (deadline) return false;
    std::this_thread::yield();
  }
  return true;
}

/// Parks until `done()` holds, re-checking it under `lock` after every wake-up. Call and return
/// with `lock` held. For waits that need no hand-off (latch, barrier phases, once); `what`
/// names the primitive (prepare_wait).
template <class Done>
void wait_locked_until(spinlock& lock, wait_list& list, const char* what, Done done) {
  while (!done()) {
    waiter w;
    w.ticket = prepare_wait(what);
    list.push_back(&w);
    wake_reason r = wake_reason::notified;
    wait_in(lock, list, w, std::nullopt, nullptr, nullptr, &r);
    // Not `notified`: runtime shutdown is unwinding the fiber (see until_acquired); yield the
    // thread between checks instead of spinning.
    if (r != wake_reason::notified) std::this_thread::yield();
    lock.lock();
  }
}

/// Wakes a parked wait with `canceled` when stop is requested on a token — but never before
/// the waiter is parked: the waker side only acts once published() ran (from park()'s publish
/// step); a stop requested earlier is acted on by published() itself.
class stop_guard {
 public:
  stop_guard(const std::stop_token* st, wait_ticket t) : ticket_(t) {
    if (st != nullptr && st->stop_possible())
      callback_ = ::new (static_cast<void*>(storage_)) callback_t(*st, on_stop{this});
  }
  /// Deregisters the callback first (waiting for an on_stop already running on another thread).
  ~stop_guard() {
    if (callback_ != nullptr) callback_->~callback_t();
  }
  stop_guard(const stop_guard&) = delete;
  stop_guard& operator=(const stop_guard&) = delete;
  /// Whether a stop can wake the wait (a token that can stop was given); if not, published()
  /// does nothing and the publish step may skip it.
  bool armed() const noexcept { return callback_ != nullptr; }
  /// Call from the publish step of park().
  void published() noexcept {
    if (!callback_) return;  // no token that can stop: nothing to hand over (no lock per park)
    lock_.lock();
    parked_ = true;
    bool stop = stopped_;
    lock_.unlock();
    if (stop) ticket_.wake(wake_reason::canceled);
  }

 private:
  struct on_stop {
    stop_guard* g;
    void operator()() const noexcept {
      g->lock_.lock();
      bool parked = g->parked_;
      g->stopped_ = true;
      g->lock_.unlock();
      if (parked) g->ticket_.wake(wake_reason::canceled);
    }
  };
  spinlock lock_;
  bool parked_ = false;   // guarded by lock_
  bool stopped_ = false;  // guarded by lock_
  wait_ticket ticket_;
  // Raw storage rather than std::optional: g++ 12 at -O3 warns that optional::emplace reads the
  // empty optional's callback (a false -Wmaybe-uninitialized in users' Release builds).
  using callback_t = std::stop_callback<on_stop>;
  alignas(callback_t) unsigned char storage_[sizeof(callback_t)];
  callback_t* callback_ = nullptr;  // in storage_, or null without a token that can stop
};

/// Pops waiters and claims them into `wakes` with `granted` = `grant` until one claim succeeds;
/// returns whether one did. Call with the lock held.
bool wake_one(wait_list& list, pending_wakes& wakes, bool grant, wake_reason reason = wake_reason::notified) noexcept;

/// Claims every waiter (not granted) into `wakes`. Returns how many. Call with the lock held.
std::size_t wake_all(wait_list& list, pending_wakes& wakes, wake_reason reason = wake_reason::notified) noexcept;

}  // namespace weft::detail
