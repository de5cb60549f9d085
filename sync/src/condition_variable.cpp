// The condition variables' waiter queue (see weft/condition_variable.hpp).
#include <weft/condition_variable.hpp>

namespace weft::detail {

namespace {
// Cancels one wait when stop is requested. Runs on the thread calling request_stop(), or in
// the stop_callback constructor if stop was already requested (then `w` is not linked yet and
// it does nothing).
struct stop_waker {
  spinlock* lock;
  wait_list* list;
  waiter* w;
  void operator()() const noexcept {
    pending_wakes wakes;
    lock->lock();
    if (w->linked) {
      list->remove(w);
      wakes.claim(w, wake_reason::canceled);
    }
    lock->unlock();
  }
};
}  // namespace

wake_reason cv_core::wait(deadline_t deadline, void (*unlock)(void*), void* arg, const std::stop_token* st) {
  waiter w;
  w.ticket = prepare_wait("condition_variable");
  std::optional<std::stop_callback<stop_waker>> on_stop;
  if (st != nullptr) on_stop.emplace(*st, stop_waker{&lock_, &waiters_, &w});
  lock_.lock();
  // Checked under the lock after the callback is registered: a stop requested from now on
  // finds `w` linked and waits for the lock, which is released only once we are parked.
  if (st != nullptr && st->stop_requested()) {
    lock_.unlock();
    unlock(arg);
    return wake_reason::canceled;
  }
  waiters_.push_back(&w);
  // Release the user's lock here, on the waiting fiber itself (a lock that tracks its owner,
  // like a std::mutex, must be unlocked by its owner). No notify can be missed: a notifier
  // needs lock_, which stays held until park()'s publish step, after we are queued and saved.
  unlock(arg);
  wake_reason r;
  wait_in(lock_, waiters_, w, deadline, nullptr, nullptr, &r);
  return r;
}

void cv_core::notify_one() noexcept {
  pending_wakes wakes;
  lock_.lock();
  wake_one(waiters_, wakes, false);
  lock_.unlock();
}

void cv_core::notify_all() noexcept {
  pending_wakes wakes;
  lock_.lock();
  wake_all(waiters_, wakes);
  lock_.unlock();
}

}  // namespace weft::detail
