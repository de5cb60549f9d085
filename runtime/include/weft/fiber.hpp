// Fibers: weft::fiber (mirrors std::thread), weft::jfiber (mirrors std::jthread),
// weft::spawn -> join_handle<T> (result and exception travel to join()), and weft::this_fiber.
// A fiber's stack and control block come from its runtime's pool; spawning allocates nothing on
// the heap (the callable and its result live on the new fiber's stack).
#pragma once

#include <weft/detail/cxx20.hpp>

#include <chrono>
#include <cstdint>
#include <exception>
#include <functional>
#include <optional>
#include <ostream>
#include <stop_token>
#include <string>
#include <string_view>
#include <system_error>
#include <tuple>
#include <type_traits>
#include <utility>

#include <weft/detail/core.hpp>

namespace weft {

class runtime;

/// Where and how to spawn a fiber.
struct spawn_options {
  /// The runtime to run on; null means the calling fiber's runtime, or the default runtime on
  /// a plain thread.
  weft::runtime* runtime = nullptr;
  /// A name shown in diagnostics (truncated to 31 bytes).
  const char* name = nullptr;
  /// Keep the fiber on the worker that spawns it (worker 0 when spawned from a plain thread):
  /// it is never stolen and never migrates.
  bool pinned = false;
};

namespace detail {

template <class R>
struct result_slot {
  static_assert(!std::is_rvalue_reference_v<R>,
                "weft::spawn: a callable returning an rvalue reference has no result to keep; return by value");
  result_holder<R> value;
  std::exception_ptr error;
  R take() { return value.take(); }
};

// The body of a weft::spawn fiber: result and exception are kept for join().
template <class Fn, class R>
struct spawn_body final : fiber_body {
  explicit spawn_body(Fn&& f) : fn(std::move(f)) {}
  void run() override {
    try {
      result.value.set_from(*fn);
    } catch (const forced_unwind&) {
      fn.reset();
      throw;
    } catch (...) {
      result.error = std::current_exception();
    }
    fn.reset();
  }
  void destroy() noexcept override { this->~spawn_body(); }
  std::optional<Fn> fn;
  result_slot<R> result;
};

// The body of a weft::fiber: std::thread semantics, an escaping exception terminates.
template <class Fn, class... Args>
struct thread_body final : fiber_body {
  template <class F, class... A>
  explicit thread_body(F&& f, A&&... a) : call(std::in_place, std::forward<F>(f), std::forward<A>(a)...) {}
  void run() override {
    try {
      std::apply([](auto& fn, auto&... args) { std::invoke(std::move(fn), std::move(args)...); }, *call);
    } catch (const forced_unwind&) {
      call.reset();
      throw;
    } catch (const std::exception& e) {
      terminate_escaped_exception(e.what());
    } catch (...) {
      terminate_escaped_exception("an exception not derived from std::exception");
    }
    call.reset();
  }
  void destroy() noexcept override { this->~thread_body(); }
  std::optional<std::tuple<Fn, Args...>> call;
};

template <class Body, class... CtorArgs>
Body* create_fiber_with(const spawn_params& p0, fiber_cb** out, CtorArgs&&... args) {
  spawn_params p = p0;
  p.payload_size = sizeof(Body);
  p.payload_align = alignof(Body);
  void* payload = nullptr;
  fiber_cb* f = fiber_create(p, &payload);
  Body* body;
  try {
    body = ::new (payload) Body(std::forward<CtorArgs>(args)...);
  } catch (...) {
    fiber_release(f);  // never started: this drops both references
    throw;
  }
  *out = f;
  return body;
}

spawn_params to_params(const spawn_options& o) noexcept;

}  // namespace detail

/// A fiber, with the interface of std::thread.
class fiber {
 public:
  /// Identifies a fiber; a default-constructed id names no fiber. Ordered, hashable, printable.
  class id {
   public:
    id() noexcept = default;
    explicit id(std::uint64_t v) noexcept : v_(v) {}
    std::uint64_t value() const noexcept { return v_; }
    friend bool operator==(id, id) noexcept = default;
    friend auto operator<=>(id, id) noexcept = default;
    /// The number, on any character type; the id of no fiber prints as libstdc++ prints the
    /// id of no thread ("fiber::id of a non-executing fiber"), not as a number.
    template <class CharT, class Traits>
    friend std::basic_ostream<CharT, Traits>& operator<<(std::basic_ostream<CharT, Traits>& os, id i) {
      if (i.v_ == 0) return os << "fiber::id of a non-executing fiber";
      return os << i.v_;
    }

   private:
    std::uint64_t v_ = 0;
  };

  fiber() noexcept = default;
  /// Starts `f(args...)` on a new fiber of the calling fiber's runtime (the default runtime on a
  /// plain thread). Arguments are decay-copied, as by std::thread. Throws std::system_error if no
  /// stack can be mapped. An exception escaping `f` terminates the process, naming the fiber.
  template <class F, class... Args,
            class = std::enable_if_t<!std::is_same_v<std::remove_cvref_t<F>, fiber>>>
  explicit fiber(F&& f, Args&&... args) {
    using body_t = detail::thread_body<std::decay_t<F>, std::decay_t<Args>...>;
    detail::fiber_cb* cb = nullptr;
    body_t* body = detail::create_fiber_with<body_t>(detail::spawn_params{}, &cb, std::forward<F>(f),
                                                     std::forward<Args>(args)...);
    detail::fiber_start(cb, body);
    cb_ = cb;
  }
  /// Terminates if still joinable, as std::thread does (except while its runtime unwinds
  /// fibers at shutdown, when it detaches).
  ~fiber() {
    if (joinable()) on_joinable_lost("destroyed");
  }
  fiber(fiber&& o) noexcept : cb_(std::exchange(o.cb_, nullptr)) {}
  /// Terminates if this one is still joinable, as std::thread does (naming the fiber).
  fiber& operator=(fiber&& o) noexcept {
    if (joinable()) on_joinable_lost("assigned to");
    cb_ = std::exchange(o.cb_, nullptr);
    return *this;
  }
  fiber(const fiber&) = delete;
  fiber& operator=(const fiber&) = delete;

  bool joinable() const noexcept { return cb_ != nullptr; }
  id get_id() const noexcept { return cb_ != nullptr ? id(detail::fiber_id(cb_)) : id(); }
  /// Waits for the fiber to finish: parks the calling fiber or blocks a plain thread. Throws
  /// std::system_error: invalid_argument if not joinable, resource_deadlock_would_occur on
  /// self-join, no_such_process if the fiber's runtime was destroyed first.
  void join() { join_as("weft::fiber::join"); }
  /// Lets the fiber run on unowned; its resources are released when it finishes. Throws
  /// std::system_error (invalid_argument) if not joinable.
  void detach() { detach_as("weft::fiber::detach"); }
  void swap(fiber& o) noexcept { std::swap(cb_, o.cb_); }
  friend void swap(fiber& a, fiber& b) noexcept { a.swap(b); }
  /// Worker threads of the default runtime's configuration: WEFT_WORKERS if set, else one per
  /// core. Does not start the default runtime.
  static unsigned hardware_concurrency() noexcept;

 private:
  // "weft: weft::fiber <id> "<name>" <what> while joinable ...", then std::terminate (or a
  // detach while its runtime unwinds fibers at shutdown).
  void on_joinable_lost(const char* what) noexcept;
  // join() and detach(), with the errors naming `who` (jfiber's own name for them).
  friend class jfiber;
  void join_as(const char* who);
  void detach_as(const char* who);
  detail::fiber_cb* cb_ = nullptr;
};

/// A fiber with the interface of std::jthread: it owns a std::stop_source, passes a
/// std::stop_token to a callable that takes one first, and requests stop and joins on destruction.
class jfiber {
 public:
  using id = fiber::id;
  jfiber() noexcept = default;
  template <class F, class... Args,
            class = std::enable_if_t<!std::is_same_v<std::remove_cvref_t<F>, jfiber>>>
  explicit jfiber(F&& f, Args&&... args) {
    if constexpr (std::is_invocable_v<std::decay_t<F>, std::stop_token, std::decay_t<Args>...>) {
      f_ = fiber(std::forward<F>(f), stop_.get_token(), std::forward<Args>(args)...);
    } else {
      f_ = fiber(std::forward<F>(f), std::forward<Args>(args)...);
    }
  }
  ~jfiber() { stop_and_join(); }
  jfiber(jfiber&&) noexcept = default;
  /// As std::jthread's: stops and joins the fiber this one had, then takes `o`'s. Assigning
  /// a jfiber to itself does nothing (LWG 3788).
  jfiber& operator=(jfiber&& o) noexcept {
    if (this == &o) return *this;
    stop_and_join();
    f_ = std::move(o.f_);
    stop_ = std::move(o.stop_);
    return *this;
  }

  bool joinable() const noexcept { return f_.joinable(); }
  id get_id() const noexcept { return f_.get_id(); }
  /// As fiber::join.
  void join() { f_.join_as("weft::jfiber::join"); }
  void detach() { f_.detach_as("weft::jfiber::detach"); }
  std::stop_source get_stop_source() noexcept { return stop_; }
  std::stop_token get_stop_token() const noexcept { return stop_.get_token(); }
  bool request_stop() noexcept { return stop_.request_stop(); }
  void swap(jfiber& o) noexcept {
    f_.swap(o.f_);
    std::swap(stop_, o.stop_);
  }
  friend void swap(jfiber& a, jfiber& b) noexcept { a.swap(b); }

 private:
  // The destructor's and move-assignment's join. A jfiber that outlived its runtime has nothing
  // left to stop or join (its runtime unwound it): dropped, as weft::fiber's destructor does.
  void stop_and_join() noexcept {
    if (!joinable()) return;
    if (detail::fiber_orphaned(f_.cb_)) {
      f_.detach_as("weft::jfiber::~jfiber");
      return;
    }
    request_stop();
    join();
  }

 public:
  /// As fiber::hardware_concurrency().
  static unsigned hardware_concurrency() noexcept { return fiber::hardware_concurrency(); }

 private:
  std::stop_source stop_;
  fiber f_;
};

/// The handle of a fiber started with weft::spawn. Dropping it detaches the fiber (its result
/// is then discarded: destroyed by the caller of detach() if the fiber has already returned,
/// else by the fiber when it returns). Should not outlive the fiber's runtime: join() then throws
/// std::system_error (no_such_process) naming the fiber, whose result is gone.
template <class T>
class join_handle {
 public:
  join_handle() noexcept = default;
  join_handle(detail::fiber_cb* cb, detail::result_slot<T>* slot) noexcept : cb_(cb), slot_(slot) {}
  join_handle(join_handle&& o) noexcept : cb_(std::exchange(o.cb_, nullptr)), slot_(std::exchange(o.slot_, nullptr)) {}
  join_handle& operator=(join_handle&& o) noexcept {
    if (this != &o) {
      detach();
      cb_ = std::exchange(o.cb_, nullptr);
      slot_ = std::exchange(o.slot_, nullptr);
    }
    return *this;
  }
  ~join_handle() { detach(); }

  bool joinable() const noexcept { return cb_ != nullptr; }
  fiber::id get_id() const noexcept { return cb_ != nullptr ? fiber::id(detail::fiber_id(cb_)) : fiber::id(); }

  /// Waits for the fiber (parks a fiber, blocks a plain thread) and returns its result, or
  /// rethrows the exception that escaped it. Throws std::system_error: invalid_argument if not
  /// joinable, resource_deadlock_would_occur on self-join, operation_canceled if the fiber was
  /// unwound at runtime shutdown, no_such_process if the runtime is gone.
  T join() {
    detail::check_joinable(cb_, "weft::join_handle::join");
    detail::join_guard outside(cb_);
    detail::fiber_join(cb_);
    detail::fiber_cb* cb = std::exchange(cb_, nullptr);
    auto* slot = std::exchange(slot_, nullptr);
    struct release_guard {
      detail::fiber_cb* cb;
      ~release_guard() { detail::fiber_release(cb); }
    } guard{cb};
    if (detail::fiber_was_unwound(cb))
      throw std::system_error(std::make_error_code(std::errc::operation_canceled),
                              "weft::join_handle::join: the fiber was unwound at runtime shutdown");
    // Take the exception out of the fiber's payload before the handle's reference goes: the
    // payload may then be destroyed on the fiber's worker while this thread still handles it.
    if (slot->error) std::rethrow_exception(std::exchange(slot->error, nullptr));
    return slot->take();
  }

  /// Lets the fiber run on; its result is discarded.
  void detach() noexcept {
    if (cb_ != nullptr) detail::fiber_release(std::exchange(cb_, nullptr));
    slot_ = nullptr;
  }

 private:
  detail::fiber_cb* cb_ = nullptr;
  detail::result_slot<T>* slot_ = nullptr;
};

/// Starts `f()` on a new fiber and returns its handle; `join()` returns f's result or rethrows.
template <class F>
join_handle<std::invoke_result_t<std::decay_t<F>>> spawn(spawn_options opts, F&& f) {
  using R = std::invoke_result_t<std::decay_t<F>>;
  using body_t = detail::spawn_body<std::decay_t<F>, R>;
  detail::fiber_cb* cb = nullptr;
  std::decay_t<F> fn(std::forward<F>(f));
  body_t* body = detail::create_fiber_with<body_t>(detail::to_params(opts), &cb, std::move(fn));
  detail::fiber_start(cb, body);
  return join_handle<R>(cb, &body->result);
}

/// Starts `f()` on a new fiber of the calling fiber's runtime (the default runtime on a plain thread).
template <class F>
join_handle<std::invoke_result_t<std::decay_t<F>>> spawn(F&& f) {
  return spawn(spawn_options{}, std::forward<F>(f));
}

namespace this_fiber {

/// The calling fiber's id; on a plain thread, the thread's own id (unique in the process, never
/// equal to a fiber's or to a default-constructed id), as std::this_thread::get_id().
fiber::id get_id() noexcept;
/// Lets other runnable fibers of this worker run first; returns at once if there are none. On a
/// plain thread, std::this_thread::yield().
void yield();
/// Parks the calling fiber (blocks a plain thread) for at least `d`. May return early only when
/// the runtime shuts down.
void sleep_until(std::chrono::steady_clock::time_point t);
template <class Rep, class Period>
void sleep_for(const std::chrono::duration<Rep, Period>& d) {
  if (d <= d.zero()) {
    yield();
    return;
  }
  sleep_until(detail::deadline_after(d));
}
template <class Clock, class Duration>
void sleep_until(const std::chrono::time_point<Clock, Duration>& t) {
  if constexpr (std::is_same_v<Clock, std::chrono::steady_clock>) {
    sleep_until(std::chrono::time_point_cast<std::chrono::steady_clock::duration>(t));
  } else {
    sleep_for(t - Clock::now());
  }
}
/// Names the calling fiber (truncated to 31 bytes); no effect on a plain thread.
void set_name(std::string_view name) noexcept;
/// The calling fiber's name ("" if unnamed or on a plain thread).
std::string name();
/// Says what the calling fiber is about to wait on ("read request", "accept"), shown by
/// runtime::fibers() while it is parked; null clears it. `what` must have static storage
/// duration (a string literal): it is read from other threads later. Never blocks; no effect
/// on a plain thread.
void set_waiting_on(const char* what) noexcept;
/// Pins the calling fiber to the worker it runs on now: it is never stolen or migrated.
void pin() noexcept;
/// Lets the calling fiber migrate again.
void unpin() noexcept;
/// True if the calling fiber is pinned (pin(), or spawned with spawn_options::pinned).
bool is_pinned() noexcept;
/// The index of the worker running the calling fiber, or -1 on a plain thread.
int worker_index() noexcept;

}  // namespace this_fiber

}  // namespace weft

template <>
struct std::hash<weft::fiber::id> {
  std::size_t operator()(weft::fiber::id i) const noexcept { return std::hash<std::uint64_t>{}(i.value()); }
};
