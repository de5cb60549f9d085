// Semaphore and latch (see weft/semaphore.hpp, weft/latch.hpp).
#include <cstdint>
#include <string>
#include <system_error>

#include <weft/latch.hpp>
#include <weft/semaphore.hpp>

namespace weft::detail {

void semaphore_core::release(std::ptrdiff_t n, std::ptrdiff_t max) {
  if (n < 0) {
    throw std::system_error(std::make_error_code(std::errc::invalid_argument),
                            "weft::counting_semaphore::release(" + std::to_string(n) + "): wants a count >= 0");
  }
  pending_wakes wakes;  // resumed after the unlock: a waiter may destroy the semaphore
  lock_.lock();
  // Waiters exist only while the count is 0, so this is std's `update <= max() - counter()`.
  if (n > max - count_) {
    const std::ptrdiff_t was = count_;
    lock_.unlock();
    throw std::system_error(std::make_error_code(std::errc::invalid_argument),
                            "weft::counting_semaphore::release(" + std::to_string(n) + ") with " + std::to_string(was) +
                                " of max() " + std::to_string(max) + " permits available: the count would pass max()");
  }
  while (n > 0 && wake_one(waiters_, wakes, /*grant=*/true)) --n;  // a permit each, handed over
  count_ += n;
  lock_.unlock();
}

bool semaphore_core::try_acquire() noexcept {
  std::lock_guard lk(lock_);
  if (count_ == 0) return false;
  --count_;
  return true;
}

bool semaphore_core::acquire_until(deadline_t deadline) {
  return until_acquired(deadline, [&] {
    lock_.lock();
    if (count_ > 0) {
      --count_;
      lock_.unlock();
      return true;
    }
    waiter w;
    w.ticket = prepare_wait("semaphore");
    waiters_.push_back(&w);
    return wait_in_granted(lock_, waiters_, w, deadline, nullptr, [this] { release(1, PTRDIFF_MAX); });
  });
}

}  // namespace weft::detail

namespace weft {

void latch::count_down(std::ptrdiff_t n) {
  detail::pending_wakes wakes;
  lock_.lock();
  if (n < 0 || n > count_) {
    const std::ptrdiff_t was = count_;
    lock_.unlock();
    throw std::system_error(std::make_error_code(std::errc::invalid_argument),
                            "weft::latch::count_down(" + std::to_string(n) + ") on a count of " + std::to_string(was) +
                                ": wants 0 to the count (it must not go below 0)");
  }
  count_ -= n;
  if (count_ == 0) detail::wake_all(waiters_, wakes);
  lock_.unlock();
}

bool latch::try_wait() const noexcept {
  std::lock_guard lk(lock_);
  return count_ == 0;
}

void latch::wait() const {
  lock_.lock();
  detail::wait_locked_until(lock_, waiters_, "latch", [&] { return count_ == 0; });
  lock_.unlock();
}

}  // namespace weft
