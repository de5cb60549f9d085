// The shared state of weft's futures (see weft/future.hpp): claiming, publishing, waiting, the
// exit hook of the *_at_thread_exit members and the blocking destructor of async futures.
// Invariant: status_ becomes ready only under lock_ and every waiter links itself under lock_
// after checking it, so publish() wakes every waiter that will ever park on the state.
#include <weft/fiber_local.hpp>
#include <weft/future.hpp>

#include <vector>

namespace weft::detail {



void throw_future_error(std::future_errc e) { throw std::future_error(e); }

// The states a fiber (or plain thread) made ready "at thread exit": published when its
// fiber_local storage is destroyed, that is when the fiber ends (or the thread exits).
struct at_exit_states {
  std::vector<future_state_base*> states;  // each holds a reference
  at_exit_states() = default;
  at_exit_states(const at_exit_states&) = delete;
  at_exit_states& operator=(const at_exit_states&) = delete;
  ~at_exit_states() {
    for (future_state_base* s : states) {
      s->publish();
      s->release();
    }
  }
};

namespace {
fiber_local<at_exit_states>& exit_hook() {
  static fiber_local<at_exit_states> hook;
  return hook;
}
}  // namespace

void future_state_base::retrieve() {
  // Ordering: relaxed; the flag only arbitrates between callers, it publishes nothing.
  if (retrieved_.exchange(true, std::memory_order_relaxed)) throw_future_error(std::future_errc::future_already_retrieved);
  futures_.fetch_add(1, std::memory_order_relaxed);
  add_ref();
}

void future_state_base::drop_future() noexcept {
  // Ordering: acq_rel so the last dropper sees every other future's accesses before it waits.
  if (futures_.fetch_sub(1, std::memory_order_acq_rel) == 1 && kind_ == launch_kind::async && !ready()) {
    try {
      wait_ready(std::nullopt);
    } catch (...) {
      // Only forced_unwind: the runtime unwinds this fiber while it waits in a destructor,
      // which must not throw. Swallowing it lets the fiber run on to its end on the unwinding
      // thread, where every further park returns at once.
    }
  }
  release();
}

bool future_state_base::wait_ready(deadline_t deadline) {
  for (;;) {
    if (ready()) return true;
    if (deadline && std::chrono::steady_clock::now() >= *deadline) return false;
    waiter w;
    w.ticket = prepare_wait("future");
    lock_.lock();
    // Ordering: acquire pairs with publish()'s release store (also ordered by lock_).
    if (status_.load(std::memory_order_acquire) == status_ready) {
      lock_.unlock();
      return true;
    }
    waiters_.push_back(&w);
    wake_reason reason = wake_reason::notified;
    wait_in(lock_, waiters_, w, deadline, nullptr, nullptr, &reason);
    // Canceled: the runtime unwinds this fiber at shutdown and every park returns at once.
    if (reason == wake_reason::canceled) return ready();
  }
}

void future_state_base::wait() {
  // Ordering: relaxed; the winner runs the function, losers wait for ready (acquire).
  if (kind_ == launch_kind::deferred && !deferred_started_.exchange(true, std::memory_order_relaxed)) run_deferred();
  wait_ready(std::nullopt);
}

std::future_status future_state_base::wait_until(std::chrono::steady_clock::time_point deadline) {
  if (ready()) return std::future_status::ready;
  if (kind_ == launch_kind::deferred) return std::future_status::deferred;
  return wait_ready(deadline) ? std::future_status::ready : std::future_status::timeout;
}

void future_state_base::wait_for_get(bool take_error) {
  wait();
  if (!ready())
    throw std::system_error(std::make_error_code(std::errc::operation_canceled),
                            "weft::future::get: the runtime unwound the waiting fiber at shutdown");
  if (error_ == nullptr) return;
  // A future (single consumer) takes the exception out: the caller's thread then drops the last
  // reference to it. Left in the state, the last reference could go on the producer's thread
  // while the caller still reads the exception, ordered only by libstdc++'s own (uninstrumented)
  // reference count, which ThreadSanitizer reports as a race. A shared_future must copy.
  if (take_error) std::rethrow_exception(std::exchange(error_, nullptr));
  std::rethrow_exception(error_);
}

void future_state_base::claim() {
  std::uint8_t expected = status_empty;
  // Ordering: relaxed; the claim is an ownership token, publish() orders the results.
  if (!status_.compare_exchange_strong(expected, status_claimed, std::memory_order_relaxed))
    throw_future_error(std::future_errc::promise_already_satisfied);
}

void future_state_base::publish() noexcept {
  pending_wakes wakes;
  lock_.lock();
  // Ordering: release pairs with the acquire loads in ready() and wait_ready(): the value and
  // error_ written by the claimant are visible to whoever sees "ready".
  status_.store(status_ready, std::memory_order_release);
  wake_all(waiters_, wakes);
  lock_.unlock();
}

void future_state_base::publish_at_exit() {
  std::vector<future_state_base*>& states = exit_hook().get().states;
  states.push_back(this);
  add_ref();
}

void future_state_base::set_exception(std::exception_ptr e, bool at_exit) {
  claim();
  error_ = std::move(e);
  if (!at_exit) {
    publish();
    return;
  }
  try {
    publish_at_exit();
  } catch (...) {
    error_ = nullptr;
    unclaim();
    throw;
  }
}

void future_state_base::abandon() noexcept {
  std::uint8_t expected = status_empty;
  if (!status_.compare_exchange_strong(expected, status_claimed, std::memory_order_relaxed)) return;
  error_ = std::make_exception_ptr(std::future_error(std::future_errc::broken_promise));
  publish();
}

void future_state_base::fall_back_to_deferred() noexcept {
  // Unshared: nothing can race with these plain stores.
  reset_value();
  error_ = nullptr;
  status_.store(status_empty, std::memory_order_relaxed);
  kind_ = launch_kind::deferred;
}

}  // namespace weft::detail
