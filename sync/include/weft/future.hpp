// Fiber-aware futures with the std names and members: weft::future, shared_future, promise,
// packaged_task and async (the <future> of a port). A future and its producer share one
// reference-counted state on the heap, so either side may outlive the other and a future from
// weft::async needs nothing else kept alive. Waiting parks a fiber (its worker runs others) and
// blocks a plain thread; any fiber or thread may set a state that any other waits on. Errors are
// std::future_error with std's std::future_errc codes.
// Invariant: a state goes empty -> claimed -> ready exactly once; only the claimant writes the
// value or the exception, and it does so before it makes the state ready (release, under the
// state's lock), so a waiter that observes "ready" (acquire) reads them without the lock.
#pragma once

#include <weft/detail/cxx20.hpp>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <exception>
#include <functional>
#include <future>
#include <memory>
#include <optional>
#include <system_error>
#include <tuple>
#include <type_traits>
#include <utility>

#include <weft/detail/wait_list.hpp>
#include <weft/fiber.hpp>

namespace weft {

template <class T>
class future;
template <class T>
class shared_future;
template <class T>
class promise;
template <class Signature>
class packaged_task;

namespace detail {

/// Throws std::future_error(e).
[[noreturn]] void throw_future_error(std::future_errc e);

/// How a state's value comes about: set by a producer, computed on a new fiber (weft::async),
/// or computed by the first waiter (std::launch::deferred).
enum class launch_kind : std::uint8_t { plain, async, deferred };

/// The part of a shared state that does not depend on the value type: reference counts, the
/// ready flag, the waiter queue and the stored exception.
class future_state_base {
 public:
  explicit future_state_base(launch_kind kind) noexcept : kind_(kind) {}
  future_state_base(const future_state_base&) = delete;
  future_state_base& operator=(const future_state_base&) = delete;

  /// Adds a reference (a producer's or a future's).
  void add_ref() noexcept { refs_.fetch_add(1, std::memory_order_relaxed); }
  /// Drops a reference; the last one destroys the state.
  void release() noexcept {
    // Ordering: acq_rel, the classic reference-count release/acquire before destruction.
    if (refs_.fetch_sub(1, std::memory_order_acq_rel) == 1) destroy();
  }

  // ---- consumers (future, shared_future) ----

  /// Hands out the single future (promise::get_future): adds a future reference. Throws
  /// future_error(future_already_retrieved) on the second call.
  void retrieve();
  /// Adds a future reference for a copy of a shared_future.
  void add_future() noexcept {
    futures_.fetch_add(1, std::memory_order_relaxed);
    add_ref();
  }
  /// Drops a future reference. The last one of a weft::async (launch::async) state that is not
  /// ready blocks until it is, as std::future's destructor does for std::async.
  void drop_future() noexcept;
  /// True once a value or an exception is stored. Never blocks.
  bool ready() const noexcept {
    // Ordering: acquire pairs with the release store in publish(): value and error_ are visible.
    return status_.load(std::memory_order_acquire) == status_ready;
  }
  bool deferred() const noexcept { return kind_ == launch_kind::deferred; }
  /// Runs a deferred function (first caller only), then parks until ready. Returns early,
  /// not ready, only while the runtime unwinds the calling fiber at shutdown.
  void wait();
  /// Parks until ready or `deadline`; deferred (without running anything) for a deferred state
  /// that is not ready.
  std::future_status wait_until(std::chrono::steady_clock::time_point deadline);
  /// wait(), then rethrows a stored exception (moved out of the state when `take_error`, for the
  /// single consumer of a future). Throws std::system_error(operation_canceled) if the runtime
  /// unwound the caller before the state became ready.
  void wait_for_get(bool take_error);

  // ---- producers (promise, packaged_task, async) ----

  /// Reserves the right to satisfy the state. Throws future_error(promise_already_satisfied).
  void claim();
  /// Gives a claim back (the value's constructor threw).
  void unclaim() noexcept { status_.store(status_empty, std::memory_order_relaxed); }
  /// Makes a claimed state ready and wakes every waiter.
  void publish() noexcept;
  /// Makes a claimed state ready when the calling fiber (or plain thread) ends. Throws
  /// std::bad_alloc; the claim then stays.
  void publish_at_exit();
  /// claim(), store `e`, then publish() or publish_at_exit().
  void set_exception(std::exception_ptr e, bool at_exit);
  /// Stores future_error(broken_promise) and publishes, unless the state is already claimed.
  void abandon() noexcept;
  /// Turns an async state that could not get a fiber into a deferred one (policy
  /// async|deferred). Only before the state is shared.
  void fall_back_to_deferred() noexcept;

 protected:
  virtual ~future_state_base() = default;
  /// Frees the state (an allocator-aware state overrides it).
  virtual void destroy() noexcept { delete this; }
  /// Computes the value of a deferred state on the calling fiber.
  virtual void run_deferred() {}
  /// Destroys a stored value (fall_back_to_deferred after an abandon).
  virtual void reset_value() noexcept {}

  // Ownership: the claimant before publish(); after it the consumers read it (a future's get()
  // takes it out).
  std::exception_ptr error_;

 private:
  static constexpr std::uint8_t status_empty = 0, status_claimed = 1, status_ready = 2;
  bool wait_ready(deadline_t deadline);

  std::atomic<std::uint32_t> refs_{1};
  std::atomic<std::uint32_t> futures_{0};  // future and shared_future references
  std::atomic<std::uint8_t> status_{status_empty};
  std::atomic<bool> retrieved_{false};
  std::atomic<bool> deferred_started_{false};
  launch_kind kind_;  // Ownership: fixed once the state is shared
  spinlock lock_;
  wait_list waiters_;  // guarded by lock_
};

template <class T>
struct stored_as {
  using type = T;
};
template <class T>
struct stored_as<T&> {
  using type = T*;
};
struct no_value {};
template <>
struct stored_as<void> {
  using type = no_value;
};

/// What shared_future<T>::get() returns: const T&, T& for T&, nothing for void.
template <class T>
struct shared_result {
  using type = const T&;
};
template <class T>
struct shared_result<T&> {
  using type = T&;
};
template <>
struct shared_result<void> {
  using type = void;
};

/// A shared state holding a T (a T* for T&, nothing for void).
template <class T>
class future_state : public future_state_base {
 public:
  using value_type = typename stored_as<T>::type;
  using future_state_base::future_state_base;

  /// claim(), construct the value from `args`, then publish (now or at exit). Throws
  /// promise_already_satisfied, or what the value's constructor throws (the state stays empty).
  template <class... A>
  void set_value(bool at_exit, A&&... args) {
    claim();
    try {
      value_.emplace(std::forward<A>(args)...);
    } catch (...) {
      unclaim();
      throw;
    }
    finish(at_exit);
  }
  /// Publishes a claimed state with its value or error stored, now or at exit (rolling the
  /// claim back if registering for the exit fails).
  void finish(bool at_exit) {
    if (!at_exit) {
      publish();
      return;
    }
    try {
      publish_at_exit();
    } catch (...) {
      value_.reset();
      error_ = nullptr;
      unclaim();
      throw;
    }
  }
  /// The stored value; only after wait_for_get() returned.
  value_type& value() noexcept { return *value_; }

 protected:
  void reset_value() noexcept override { value_.reset(); }
  /// Stores the result of `fn(args...)` (or the exception it throws) in a claimed state. A
  /// forced_unwind (runtime shutdown) is rethrown with the state left as it was.
  template <class F, class... A>
  void store_result_of(F&& fn, A&&... args) {
    try {
      if constexpr (std::is_void_v<T>) {
        std::invoke(std::forward<F>(fn), std::forward<A>(args)...);
        value_.emplace();
      } else if constexpr (std::is_reference_v<T>) {
        T r = std::invoke(std::forward<F>(fn), std::forward<A>(args)...);
        value_.emplace(std::addressof(r));
      } else {
        value_.emplace(std::invoke(std::forward<F>(fn), std::forward<A>(args)...));
      }
    } catch (const forced_unwind&) {
      throw;
    } catch (...) {
      error_ = std::current_exception();
    }
  }

 private:
  std::optional<value_type> value_;  // Ownership: the claimant, before publish()
};

/// A promise's state allocated with a user allocator.
template <class T, class Alloc>
class allocated_state final : public future_state<T> {
 public:
  using alloc_type = typename std::allocator_traits<Alloc>::template rebind_alloc<allocated_state>;
  explicit allocated_state(const alloc_type& a) : future_state<T>(launch_kind::plain), alloc_(a) {}

 private:
  void destroy() noexcept override {
    alloc_type a(alloc_);
    this->~allocated_state();
    std::allocator_traits<alloc_type>::deallocate(a, this, 1);
  }
  alloc_type alloc_;
};

/// The state of a weft::async call: it owns decay-copies of the function and its arguments.
template <class R, class Fn, class... Args>
class async_state final : public future_state<R> {
 public:
  template <class F, class... A>
  explicit async_state(launch_kind kind, F&& f, A&&... args)
      : future_state<R>(kind), call_(std::in_place, std::forward<F>(f), std::forward<A>(args)...) {}

  /// Runs the function on the calling fiber and makes the state ready. Its copies of the
  /// function and arguments are destroyed before the result becomes visible. A forced_unwind
  /// (runtime shutdown) leaves broken_promise behind and is rethrown.
  void run() {
    this->claim();  // cannot fail: nothing else satisfies this state
    try {
      this->store_result_of([this]() -> decltype(auto) {
        return std::apply([](Fn& fn, Args&... args) -> decltype(auto) {
          return std::invoke(std::move(fn), std::move(args)...);
        }, *call_);
      });
    } catch (const forced_unwind&) {
      call_.reset();
      this->error_ = std::make_exception_ptr(std::future_error(std::future_errc::broken_promise));
      this->publish();
      throw;
    }
    call_.reset();
    this->publish();
  }

 private:
  void run_deferred() override { run(); }
  std::optional<std::tuple<Fn, Args...>> call_;
};

/// A packaged_task's state: it owns the task's callable.
template <class R, class... Args>
class task_state : public future_state<R> {
 public:
  using future_state<R>::future_state;
  /// Claims the state, runs the callable with `args` and publishes (now or at exit).
  virtual void call(bool at_exit, Args&&... args) = 0;
  /// A fresh state that takes over the callable (packaged_task::reset).
  virtual task_state* renew() = 0;
};

template <class F, class R, class... Args>
class task_state_impl final : public task_state<R, Args...> {
 public:
  template <class G>
  explicit task_state_impl(G&& g) : task_state<R, Args...>(launch_kind::plain), fn_(std::forward<G>(g)) {}

  void call(bool at_exit, Args&&... args) override {
    this->claim();
    try {
      this->store_result_of(fn_, std::forward<Args>(args)...);
    } catch (...) {  // only forced_unwind (runtime shutdown) gets here: leave the state empty
      this->reset_value();
      this->unclaim();
      throw;
    }
    this->finish(at_exit);
  }
  task_state<R, Args...>* renew() override { return new task_state_impl(std::move(fn_)); }

 private:
  F fn_;
};

/// Access to the private constructors of future and shared_future for the producers.
struct future_access {
  template <class T>
  static future<T> make(future_state<T>* s) noexcept {
    return future<T>(s);
  }
};

/// Drops a future reference at scope exit.
struct drop_future_on_exit {
  future_state_base* s;
  ~drop_future_on_exit() { s->drop_future(); }
};

template <class M>
struct call_signature;
template <class R, class G, class... A>
struct call_signature<R (G::*)(A...)> {
  using type = R(A...);
};
template <class R, class G, class... A>
struct call_signature<R (G::*)(A...) const> {
  using type = R(A...);
};
template <class R, class G, class... A>
struct call_signature<R (G::*)(A...) noexcept> {
  using type = R(A...);
};
template <class R, class G, class... A>
struct call_signature<R (G::*)(A...) const noexcept> {
  using type = R(A...);
};
template <class R, class G, class... A>
struct call_signature<R (G::*)(A...)&> {
  using type = R(A...);
};
template <class R, class G, class... A>
struct call_signature<R (G::*)(A...) const&> {
  using type = R(A...);
};

/// The members future<T> and shared_future<T> have in common.
template <class T>
class future_common {
 public:
  /// True if this refers to a shared state. Never blocks.
  bool valid() const noexcept { return state_ != nullptr; }
  /// Parks the calling fiber (blocks a plain thread) until the result is ready; for a deferred
  /// state, first runs the function on the caller. Throws future_error(no_state) if !valid().
  void wait() const { checked()->wait(); }
  /// Parks until the result is ready or `d` has passed (never earlier). Returns ready, timeout,
  /// or deferred (at once, running nothing) for a deferred function that has not run. Throws
  /// future_error(no_state) if !valid().
  template <class Rep, class Period>
  std::future_status wait_for(const std::chrono::duration<Rep, Period>& d) const {
    auto* s = checked();
    return s->wait_until(detail::deadline_after(d));
  }
  /// As wait_for, with a time point of any clock.
  template <class Clock, class Duration>
  std::future_status wait_until(const std::chrono::time_point<Clock, Duration>& t) const {
    auto* s = checked();
    return s->wait_until(to_steady(t));
  }

 protected:
  future_common() noexcept = default;
  explicit future_common(future_state<T>* s) noexcept : state_(s) {}
  future_state<T>* checked() const {
    if (state_ == nullptr) throw_future_error(std::future_errc::no_state);
    return state_;
  }
  future_state<T>* state_ = nullptr;  // holds one future reference
};

}  // namespace detail

/// std::future<T>: the single consumer of a shared state. Move-only. get() may be called once.
/// Destroying the last future of a weft::async(std::launch::async, ...) call that is still
/// running blocks until it finishes, as with std::async.
template <class T>
class future : public detail::future_common<T> {
 public:
  /// Constructs a future with no shared state (valid() is false).
  future() noexcept = default;
  /// Takes over `o`'s state; `o` becomes invalid.
  future(future&& o) noexcept : detail::future_common<T>(std::exchange(o.state_, nullptr)) {}
  /// Releases the current state (see ~future), then takes over `o`'s.
  future& operator=(future&& o) noexcept {
    if (this != &o) {
      reset();
      this->state_ = std::exchange(o.state_, nullptr);
    }
    return *this;
  }
  future(const future&) = delete;
  future& operator=(const future&) = delete;
  /// Releases the state. If it is the last reference of a launch::async call still running,
  /// parks (blocks a plain thread) until the call finishes. Never throws.
  ~future() { reset(); }

  /// Moves the state into a shared_future; this future becomes invalid. Never blocks.
  shared_future<T> share() noexcept { return shared_future<T>(std::move(*this)); }

  /// Waits as wait() does, then returns the value (T&, nothing for void) or rethrows the stored
  /// exception; the future is invalid afterwards, whatever happened. Throws
  /// future_error(no_state) if !valid() (for instance on a second call), future_error
  /// (broken_promise) if the producer went away unsatisfied, and std::system_error
  /// (operation_canceled) if the runtime unwinds the calling fiber at shutdown meanwhile.
  T get() {
    detail::future_state<T>* s = this->checked();
    this->state_ = nullptr;
    detail::drop_future_on_exit drop{s};
    s->wait_for_get(true);
    if constexpr (std::is_void_v<T>) {
      return;
    } else if constexpr (std::is_reference_v<T>) {
      return *s->value();
    } else {
      return std::move(s->value());
    }
  }

 private:
  friend struct detail::future_access;
  friend class shared_future<T>;
  explicit future(detail::future_state<T>* s) noexcept : detail::future_common<T>(s) {}
  void reset() noexcept {
    if (this->state_ != nullptr) std::exchange(this->state_, nullptr)->drop_future();
  }
};

/// std::shared_future<T>: a copyable consumer; every copy sees the same value, get() may be
/// called any number of times, from any fibers and threads at once (each on its own copy or,
/// as std allows, concurrently on one object through const members).
template <class T>
class shared_future : public detail::future_common<T> {
  using result_t = typename detail::shared_result<T>::type;

 public:
  /// Constructs a shared_future with no shared state (valid() is false).
  shared_future() noexcept = default;
  /// Takes over `f`'s state; `f` becomes invalid.
  shared_future(future<T>&& f) noexcept : detail::future_common<T>(std::exchange(f.state_, nullptr)) {}
  /// Refers to `o`'s state too.
  shared_future(const shared_future& o) noexcept : detail::future_common<T>(o.state_) {
    if (this->state_ != nullptr) this->state_->add_future();
  }
  /// Takes over `o`'s state; `o` becomes invalid.
  shared_future(shared_future&& o) noexcept : detail::future_common<T>(std::exchange(o.state_, nullptr)) {}
  /// Releases the current state (see ~shared_future), then refers to `o`'s.
  shared_future& operator=(const shared_future& o) noexcept {
    if (o.state_ != nullptr) o.state_->add_future();
    reset();
    this->state_ = o.state_;
    return *this;
  }
  /// Releases the current state (see ~shared_future), then takes over `o`'s.
  shared_future& operator=(shared_future&& o) noexcept {
    if (this != &o) {
      reset();
      this->state_ = std::exchange(o.state_, nullptr);
    }
    return *this;
  }
  /// Releases the state; as ~future if this was its last future of a launch::async call.
  ~shared_future() { reset(); }

  /// Waits as wait() does, then returns the value (const T&, T& for a reference, nothing for
  /// void) or rethrows the stored exception; the state stays valid. Throws
  /// future_error(no_state) if !valid(), future_error(broken_promise) if the producer went away
  /// unsatisfied, std::system_error(operation_canceled) if the runtime unwinds the calling
  /// fiber at shutdown meanwhile.
  result_t get() const {
    detail::future_state<T>* s = this->checked();
    s->wait_for_get(false);
    if constexpr (std::is_void_v<T>) {
      return;
    } else if constexpr (std::is_reference_v<T>) {
      return *s->value();
    } else {
      return s->value();
    }
  }

 private:
  void reset() noexcept {
    if (this->state_ != nullptr) std::exchange(this->state_, nullptr)->drop_future();
  }
};

namespace detail {

/// The members promise<T>, promise<T&> and promise<void> have in common.
template <class T>
class promise_common {
 public:
  /// Returns the (single) future of this promise. Never blocks. Throws future_error: no_state
  /// after a move, future_already_retrieved on the second call.
  future<T> get_future() {
    future_state<T>* s = checked();
    s->retrieve();
    return future_access::make(s);
  }
  /// Stores `e` and makes the state ready, waking every waiter. Never blocks. Throws
  /// future_error: no_state after a move, promise_already_satisfied if a value or exception
  /// was already set. `e` must not be null (std's precondition; violating it ends the process).
  void set_exception(std::exception_ptr e) { set_error(std::move(e), false); }
  /// Stores `e` now and makes the state ready when the calling fiber (or plain thread) ends.
  /// Errors as set_exception; std::bad_alloc if the exit hook cannot be registered.
  void set_exception_at_thread_exit(std::exception_ptr e) { set_error(std::move(e), true); }

 protected:
  promise_common() : state_(new future_state<T>(launch_kind::plain)) {}
  template <class Alloc>
  promise_common(std::allocator_arg_t, const Alloc& a) {
    using state_t = allocated_state<T, Alloc>;
    typename state_t::alloc_type sa(a);
    state_t* p = std::allocator_traits<typename state_t::alloc_type>::allocate(sa, 1);
    try {
      ::new (static_cast<void*>(p)) state_t(sa);
    } catch (...) {
      std::allocator_traits<typename state_t::alloc_type>::deallocate(sa, p, 1);
      throw;
    }
    state_ = p;
  }
  promise_common(promise_common&& o) noexcept : state_(std::exchange(o.state_, nullptr)) {}
  promise_common& operator=(promise_common&& o) noexcept {
    if (this != &o) {
      abandon();
      state_ = std::exchange(o.state_, nullptr);
    }
    return *this;
  }
  ~promise_common() { abandon(); }
  void swap_state(promise_common& o) noexcept { std::swap(state_, o.state_); }
  future_state<T>* checked() const {
    if (state_ == nullptr) throw_future_error(std::future_errc::no_state);
    return state_;
  }

 private:
  void set_error(std::exception_ptr e, bool at_exit) {
    future_state<T>* s = checked();
    if (e == nullptr) fatal_unlock("weft::promise::set_exception: the exception_ptr is null");
    s->set_exception(std::move(e), at_exit);
  }
  void abandon() noexcept {
    if (state_ != nullptr) {
      future_state<T>* s = std::exchange(state_, nullptr);
      s->abandon();
      s->release();
    }
  }
  future_state<T>* state_ = nullptr;  // holds one producer reference
};

}  // namespace detail

/// std::promise<T>: the producer side of a shared state. Move-only. Destroying (or moving onto)
/// a promise whose state is not satisfied stores future_error(broken_promise) for its future.
template <class T>
class promise : public detail::promise_common<T> {
 public:
  /// Creates a new shared state. Throws std::bad_alloc.
  promise() = default;
  /// Creates the shared state with `a`.
  template <class Alloc>
  promise(std::allocator_arg_t tag, const Alloc& a) : detail::promise_common<T>(tag, a) {}
  /// Takes over `o`'s state; `o` is left without one (its members throw no_state).
  promise(promise&& o) noexcept = default;
  /// Abandons the current state (as the destructor does), then takes over `o`'s.
  promise& operator=(promise&& o) noexcept = default;
  promise(const promise&) = delete;
  promise& operator=(const promise&) = delete;
  /// Releases the state; if it was never satisfied, its future gets future_error(broken_promise).
  ~promise() = default;
  /// Exchanges the states of two promises.
  void swap(promise& o) noexcept { this->swap_state(o); }

  /// Stores a copy of `v` and makes the state ready, waking every waiter. Never blocks. Throws
  /// future_error: no_state after a move, promise_already_satisfied if already set; or what
  /// copying `v` throws (the state then stays unsatisfied).
  void set_value(const T& v) { this->checked()->set_value(false, v); }
  /// As set_value(const T&), moving `v`.
  void set_value(T&& v) { this->checked()->set_value(false, std::move(v)); }
  /// Stores a copy of `v` now and makes the state ready when the calling fiber (or plain
  /// thread) ends. Errors as set_value; std::bad_alloc if the exit hook cannot be registered.
  void set_value_at_thread_exit(const T& v) { this->checked()->set_value(true, v); }
  /// As set_value_at_thread_exit(const T&), moving `v`.
  void set_value_at_thread_exit(T&& v) { this->checked()->set_value(true, std::move(v)); }
};

/// std::promise<T&>: the state holds a reference to an object the producer keeps alive.
template <class T>
class promise<T&> : public detail::promise_common<T&> {
 public:
  /// Creates a new shared state. Throws std::bad_alloc.
  promise() = default;
  /// Creates the shared state with `a`.
  template <class Alloc>
  promise(std::allocator_arg_t tag, const Alloc& a) : detail::promise_common<T&>(tag, a) {}
  /// Takes over `o`'s state; `o` is left without one (its members throw no_state).
  promise(promise&& o) noexcept = default;
  /// Abandons the current state (as the destructor does), then takes over `o`'s.
  promise& operator=(promise&& o) noexcept = default;
  promise(const promise&) = delete;
  promise& operator=(const promise&) = delete;
  /// Releases the state; if it was never satisfied, its future gets future_error(broken_promise).
  ~promise() = default;
  /// Exchanges the states of two promises.
  void swap(promise& o) noexcept { this->swap_state(o); }
  /// Stores a reference to `r` and makes the state ready. Never blocks. Throws future_error:
  /// no_state after a move, promise_already_satisfied if already set.
  void set_value(T& r) { this->checked()->set_value(false, std::addressof(r)); }
  /// Stores a reference to `r` now and makes the state ready when the calling fiber (or plain
  /// thread) ends. Errors as set_value; std::bad_alloc if the exit hook cannot be registered.
  void set_value_at_thread_exit(T& r) { this->checked()->set_value(true, std::addressof(r)); }
};

/// std::promise<void>: signals completion (or an exception) without a value.
template <>
class promise<void> : public detail::promise_common<void> {
 public:
  /// Creates a new shared state. Throws std::bad_alloc.
  promise() = default;
  /// Creates the shared state with `a`.
  template <class Alloc>
  promise(std::allocator_arg_t tag, const Alloc& a) : detail::promise_common<void>(tag, a) {}
  /// Takes over `o`'s state; `o` is left without one (its members throw no_state).
  promise(promise&& o) noexcept = default;
  /// Abandons the current state (as the destructor does), then takes over `o`'s.
  promise& operator=(promise&& o) noexcept = default;
  promise(const promise&) = delete;
  promise& operator=(const promise&) = delete;
  /// Releases the state; if it was never satisfied, its future gets future_error(broken_promise).
  ~promise() = default;
  /// Exchanges the states of two promises.
  void swap(promise& o) noexcept { this->swap_state(o); }
  /// Makes the state ready. Never blocks. Throws future_error: no_state after a move,
  /// promise_already_satisfied if already set.
  void set_value() { this->checked()->set_value(false); }
  /// Makes the state ready when the calling fiber (or plain thread) ends. Errors as set_value;
  /// std::bad_alloc if the exit hook cannot be registered.
  void set_value_at_thread_exit() { this->checked()->set_value(true); }
};

/// Exchanges the states of two promises.
template <class T>
void swap(promise<T>& a, promise<T>& b) noexcept {
  a.swap(b);
}

/// std::packaged_task<R(Args...)>: a callable whose result (or exception) goes to a future.
/// Move-only. Destroying a task that was not called stores future_error(broken_promise).
template <class R, class... Args>
class packaged_task<R(Args...)> {
 public:
  /// Constructs a task with no state (valid() is false).
  packaged_task() noexcept = default;
  /// Stores a decay-copy of `f` in a new shared state. Throws std::bad_alloc or what copying
  /// `f` throws.
  template <class F, class = std::enable_if_t<!std::is_same_v<std::remove_cvref_t<F>, packaged_task>>>
  explicit packaged_task(F&& f)
      : state_(new detail::task_state_impl<std::decay_t<F>, R, Args...>(std::forward<F>(f))) {
    static_assert(std::is_invocable_r_v<R, std::decay_t<F>&, Args...>,
                  "weft::packaged_task<R(Args...)>: the callable must be invocable with Args... and return R");
  }
  /// Takes over `o`'s state; `o` becomes invalid.
  packaged_task(packaged_task&& o) noexcept : state_(std::exchange(o.state_, nullptr)) {}
  /// Abandons the current state (as the destructor does), then takes over `o`'s.
  packaged_task& operator=(packaged_task&& o) noexcept {
    if (this != &o) {
      abandon();
      state_ = std::exchange(o.state_, nullptr);
    }
    return *this;
  }
  packaged_task(const packaged_task&) = delete;
  packaged_task& operator=(const packaged_task&) = delete;
  /// Releases the state; if the task never ran, its future gets future_error(broken_promise).
  ~packaged_task() { abandon(); }

  /// True if this task has a shared state. Never blocks.
  bool valid() const noexcept { return state_ != nullptr; }
  /// Exchanges two tasks.
  void swap(packaged_task& o) noexcept { std::swap(state_, o.state_); }
  /// Returns the (single) future of the current state. Throws future_error: no_state if
  /// !valid(), future_already_retrieved on the second call.
  future<R> get_future() {
    detail::task_state<R, Args...>* s = checked();
    s->retrieve();
    return detail::future_access::make(static_cast<detail::future_state<R>*>(s));
  }
  /// Calls the stored callable with `args` on the calling fiber and makes the state ready with
  /// its result or the exception it threw. Blocks only as the callable does. Throws
  /// future_error: no_state if !valid(), promise_already_satisfied if already called.
  void operator()(Args... args) { checked()->call(false, std::forward<Args>(args)...); }
  /// As operator(), but the state becomes ready when the calling fiber (or plain thread) ends.
  void make_ready_at_thread_exit(Args... args) { checked()->call(true, std::forward<Args>(args)...); }
  /// Gives the callable a fresh state (the old one's future gets broken_promise unless the task
  /// ran). Throws future_error(no_state) if !valid(), or std::bad_alloc.
  void reset() {
    detail::task_state<R, Args...>* old = checked();
    state_ = old->renew();
    old->abandon();
    old->release();
  }

 private:
  detail::task_state<R, Args...>* checked() const {
    if (state_ == nullptr) detail::throw_future_error(std::future_errc::no_state);
    return state_;
  }
  void abandon() noexcept {
    if (state_ != nullptr) {
      auto* s = std::exchange(state_, nullptr);
      s->abandon();
      s->release();
    }
  }
  detail::task_state<R, Args...>* state_ = nullptr;  // holds one producer reference
};

template <class R, class... Args>
packaged_task(R (*)(Args...)) -> packaged_task<R(Args...)>;
template <class F, class Sig = typename detail::call_signature<decltype(&F::operator())>::type>
packaged_task(F) -> packaged_task<Sig>;

/// Exchanges two tasks.
template <class R, class... Args>
void swap(packaged_task<R(Args...)>& a, packaged_task<R(Args...)>& b) noexcept {
  a.swap(b);
}

namespace detail {

/// The reference an async fiber holds: if the fiber ends without running the function (it was
/// unwound at shutdown before it started), the future gets broken_promise.
template <class S>
struct async_ref {
  explicit async_ref(S* s) noexcept : state(s) {}
  async_ref(async_ref&& o) noexcept : state(std::exchange(o.state, nullptr)) {}
  async_ref& operator=(async_ref&&) = delete;
  ~async_ref() {
    if (state != nullptr) {
      state->abandon();
      state->release();
    }
  }
  S* state;
};

}  // namespace detail

/// std::async: runs `f(args...)` on decay-copies of `f` and `args`. With std::launch::async
/// (alone or, as by default, with deferred) it runs on a new fiber of the calling fiber's runtime
/// (the default runtime on a plain thread); if no fiber can be started it throws
/// std::system_error, or, when `policy` also allows deferred, falls back to deferred. With
/// std::launch::deferred alone it runs on the first fiber or thread that calls get() or wait().
/// The result or exception goes to the returned future, which needs nothing else kept alive;
/// as with std::async, destroying the last future of a launch::async call blocks (parks)
/// until the call finishes. Throws std::bad_alloc or what copying `f`/`args` throws.
template <class F, class... Args>
[[nodiscard]] future<std::invoke_result_t<std::decay_t<F>, std::decay_t<Args>...>> async(std::launch policy, F&& f,
                                                                                        Args&&... args) {
  using R = std::invoke_result_t<std::decay_t<F>, std::decay_t<Args>...>;
  using state_t = detail::async_state<R, std::decay_t<F>, std::decay_t<Args>...>;
  const bool deferred_ok = (policy & std::launch::deferred) == std::launch::deferred;
  const bool async_wanted = (policy & std::launch::async) == std::launch::async || !deferred_ok;
  auto* s = new state_t(async_wanted ? detail::launch_kind::async : detail::launch_kind::deferred,
                        std::forward<F>(f), std::forward<Args>(args)...);
  s->retrieve();  // the future's reference
  future<R> result = detail::future_access::make(static_cast<detail::future_state<R>*>(s));
  if (!async_wanted) {
    s->release();  // the creator's reference: the future alone holds a deferred state
  } else {
    // The creator's reference passes to the fiber.
    try {
      weft::spawn(spawn_options{.name = "weft::async"}, [ref = detail::async_ref<state_t>(s)]() mutable {
        ref.state->run();
      });
    } catch (const std::system_error&) {
      // The fiber's reference was dropped with the unstarted body, abandoning the state; no one
      // else has seen it yet, so it can still become deferred.
      if (!deferred_ok) throw;
      s->fall_back_to_deferred();
    }
  }
  return result;
}

/// weft::async(std::launch::async | std::launch::deferred, f, args...): runs on a new fiber.
template <class F, class... Args, class = std::enable_if_t<!std::is_same_v<std::decay_t<F>, std::launch>>>
[[nodiscard]] future<std::invoke_result_t<std::decay_t<F>, std::decay_t<Args>...>> async(F&& f, Args&&... args) {
  return weft::async(std::launch::async | std::launch::deferred, std::forward<F>(f), std::forward<Args>(args)...);
}

}  // namespace weft

template <class T, class Alloc>
struct std::uses_allocator<weft::promise<T>, Alloc> : std::true_type {};
