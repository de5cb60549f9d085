// weft::wait_group (see weft/wait_group.hpp). Every waiter is woken with `granted` set when the
// counter reaches zero; a waiter whose timeout raced with that wake keeps the grant (zero was
// reached before it left), unlike a hand-off of a lock, which the waker would take back.
#include <weft/wait_group.hpp>

#include <string>
#include <system_error>

namespace weft {

void wait_group::add(std::int64_t delta) {
  detail::pending_wakes wakes;  // resumed after the unlock: a waiter may destroy the group
  lock_.lock();
  if (count_ + delta < 0) {
    const std::int64_t was = count_;
    lock_.unlock();
    throw std::system_error(std::make_error_code(std::errc::invalid_argument),
                            "weft::wait_group: negative counter: add(" + std::to_string(delta) + ") on a counter of " +
                                std::to_string(was) + " (more done() than add())");
  }
  count_ += delta;
  if (count_ == 0 && delta != 0) {
    while (detail::waiter* w = waiters_.pop_front()) {
      w->granted = true;
      wakes.claim(w);
    }
  }
  lock_.unlock();
}

void wait_group::wait() { wait_impl(std::nullopt); }

bool wait_group::wait_impl(detail::deadline_t deadline) {
  detail::waiter w;
  w.ticket = prepare_wait("wait_group");
  lock_.lock();
  if (count_ == 0) {
    lock_.unlock();
    return true;
  }
  if (deadline && std::chrono::steady_clock::now() >= *deadline) {
    lock_.unlock();
    return false;
  }
  waiters_.push_back(&w);
  bool zero = detail::wait_in(lock_, waiters_, w, deadline);
  // The waker wakes while holding lock_ and its unlock is its last access to *this: take the
  // lock once so the caller may destroy the wait_group as soon as we return.
  lock_.lock();
  lock_.unlock();
  return zero;
}

}  // namespace weft
