// shared_mutex (see weft/shared_mutex.hpp). Every waiter is granted the lock by whoever releases
// it (hand-off), in FIFO order: a queued writer blocks later readers, and a releasing writer
// admits the whole run of readers at the head of the queue.
#include <weft/shared_mutex.hpp>

namespace weft {

namespace {
constexpr std::uintptr_t want_shared = 1;
}

bool shared_mutex::try_lock() noexcept {
  std::lock_guard lk(lock_);
  if (synced_.writer || synced_.readers != 0 || !synced_.waiters.empty()) return false;
  synced_.writer = true;
  return true;
}

bool shared_mutex::try_lock_shared() noexcept {
  std::lock_guard lk(lock_);
  if (synced_.writer || !synced_.waiters.empty()) return false;
  ++synced_.readers;
  return true;
}

bool shared_mutex::lock_until(detail::deadline_t deadline, bool shared) {
  return detail::until_acquired(deadline, [&] { return lock_once(deadline, shared); });
}

bool shared_mutex::lock_once(detail::deadline_t deadline, bool shared) {
  lock_.lock();
  if (shared ? (!synced_.writer && synced_.waiters.empty())
             : (!synced_.writer && synced_.readers == 0 && synced_.waiters.empty())) {
    if (shared) ++synced_.readers; else synced_.writer = true;
    lock_.unlock();
    return true;
  }
  detail::waiter w;
  w.ticket = prepare_wait("shared_mutex");
  w.tag = shared ? want_shared : 0;
  synced_.waiters.push_back(&w);
  if (detail::wait_in_granted(lock_, synced_.waiters, w, deadline, nullptr, [this, shared] {
        if (shared) unlock_shared(); else unlock();
      }))
    return true;
  // Timed out. Our leaving may let the waiters behind us in (e.g. readers behind a writer).
  detail::pending_wakes wakes;
  lock_.lock();
  grant_locked(wakes);
  lock_.unlock();
  return false;
}

void shared_mutex::grant_locked(detail::pending_wakes& wakes) noexcept {
  while (detail::waiter* w = synced_.waiters.front()) {
    bool shared = w->tag == want_shared;
    if (synced_.writer || (!shared && synced_.readers != 0)) return;
    synced_.waiters.pop_front();
    if (shared) ++synced_.readers; else synced_.writer = true;
    w->granted = true;
    if (!wakes.claim(w)) {  // it is timing out: take the grant back
      w->granted = false;
      if (shared) --synced_.readers; else synced_.writer = false;
    }
  }
}

void shared_mutex::unlock() {
  detail::pending_wakes wakes;  // resumed after the unlock: a waiter may destroy the mutex
  lock_.lock();
  if (!synced_.writer) {
    lock_.unlock();
    detail::fatal_unlock("weft::shared_mutex::unlock: the mutex is not locked exclusively");
  }
  synced_.writer = false;
  grant_locked(wakes);
  lock_.unlock();
}

void shared_mutex::unlock_shared() {
  detail::pending_wakes wakes;
  lock_.lock();
  if (synced_.readers == 0) {
    lock_.unlock();
    detail::fatal_unlock("weft::shared_mutex::unlock_shared: no shared lock is held");
  }
  --synced_.readers;
  grant_locked(wakes);
  lock_.unlock();
}

}  // namespace weft
