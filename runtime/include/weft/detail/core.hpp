// The narrow interface between weft's public templates and the runtime's compiled core. Nothing
// here is for users; the names may change between versions.
#pragma once

#include <weft/detail/cxx20.hpp>

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <type_traits>
#include <utility>

namespace weft {
class runtime;
}

namespace weft::detail {

struct fiber_cb;
struct runtime_impl;

/// Thrown into a suspended fiber to unwind its stack when its runtime shuts down. A
/// `catch (...)` in fiber code must rethrow it (as with Boost's forced_unwind).
struct forced_unwind {};

/// The type-erased body of a fiber, constructed on the fiber's own stack (no heap allocation).
struct fiber_body {
  /// Runs the callable on the fiber. Exceptions other than forced_unwind are handled inside.
  virtual void run() = 0;
  /// Destroys what the body still owns (result, exception); called once the last handle is gone.
  virtual void destroy() noexcept = 0;

 protected:
  ~fiber_body() = default;
};

struct spawn_params {
  runtime_impl* rt = nullptr;  // null: the current fiber's runtime, else the default runtime
  const char* name = nullptr;
  bool pinned = false;
  std::size_t payload_size = 0;
  std::size_t payload_align = alignof(std::max_align_t);
};

/// Reserves a stack and control block with `payload_size` bytes for the body. Throws
/// std::system_error (naming the limit that was hit) when no stack can be mapped.
fiber_cb* fiber_create(const spawn_params& params, void** payload);
/// Makes a created fiber runnable with `body` (which lives in its payload).
void fiber_start(fiber_cb* f, fiber_body* body);
/// Drops the handle's reference: detaches the fiber.
void fiber_release(fiber_cb* f) noexcept;
/// Blocks until `f` has finished: parks the calling fiber, or blocks a plain thread.
void fiber_join(fiber_cb* f);
/// Throws std::system_error as std::thread::join does, naming `who`: invalid_argument if `f` is
/// null (not joinable), resource_deadlock_would_occur if `f` is the calling fiber.
void check_joinable(fiber_cb* f, const char* who);
/// True if `f` ended by being unwound at shutdown rather than by returning.
bool fiber_was_unwound(const fiber_cb* f) noexcept;
/// True if f's runtime was destroyed while a handle still held it (stack_pool::~stack_pool).
bool fiber_orphaned(const fiber_cb* f) noexcept;
std::uint64_t fiber_id(const fiber_cb* f) noexcept;
/// The calling fiber, or null on a plain thread.
fiber_cb* current_fiber() noexcept;
/// A process-wide unique, never-zero id of the calling fiber or plain thread (fiber ids are
/// fiber::id values; thread ids come from the same sequence). For owner checks.
std::uint64_t current_task_id() noexcept;
/// Terminates the process, naming the fiber an exception escaped from.
[[noreturn]] void terminate_escaped_exception(const char* what) noexcept;
/// True while the current fiber's runtime is unwinding fibers at shutdown.
bool current_runtime_unwinding() noexcept;

/// Held by a join from outside the fiber's runtime (a plain thread, another runtime's fiber)
/// from before it waits until after its last access to the fiber: runtime shutdown waits for
/// such joins to leave before it unmaps the stacks they read.
class join_guard {
 public:
  explicit join_guard(fiber_cb* f) noexcept;
  ~join_guard();
  join_guard(const join_guard&) = delete;
  join_guard& operator=(const join_guard&) = delete;

 private:
  runtime_impl* counted_;
};

runtime_impl* default_runtime_impl();
runtime_impl* runtime_of(const runtime& rt) noexcept;

/// The steady-clock deadline `d` from now, for every *_for call: rounded up (never early), and
/// saturating at time_point::max() (no deadline) where now + d would overflow, so that
/// recv_for(v, std::chrono::hours::max()) waits (Go's "very long timeout") instead of
/// overflowing into the past and returning at once. A duration of zero or less is now.
template <class Rep, class Period>
std::chrono::steady_clock::time_point deadline_after(const std::chrono::duration<Rep, Period>& d) noexcept {
  using steady = std::chrono::steady_clock;
  const steady::time_point now = steady::now();
  if (d <= d.zero()) return now;
  // Compared in d's own unit: converting d to nanoseconds could itself overflow.
  if (d >= std::chrono::duration_cast<std::chrono::duration<Rep, Period>>(steady::time_point::max() - now))
    return steady::time_point::max();
  return now + std::chrono::ceil<steady::duration>(d);
}

/// The result of a call made on another fiber or thread (weft::spawn, run_blocking), kept until
/// the caller takes it: the value itself, or for a call returning `T&` the address of the
/// object (std::future<T&> semantics: the callee keeps it alive). `void` holds nothing.
template <class R>
class result_holder {
 public:
  template <class F>
  void set_from(F& f) {
    value_.emplace(std::invoke(f));
  }
  R take() { return std::move(*value_); }

 private:
  std::optional<R> value_;
};
template <class T>
class result_holder<T&> {
 public:
  template <class F>
  void set_from(F& f) {
    ptr_ = std::addressof(std::invoke(f));
  }
  T& take() { return *ptr_; }

 private:
  T* ptr_ = nullptr;
};
template <>
class result_holder<void> {
 public:
  template <class F>
  void set_from(F& f) {
    std::invoke(f);
  }
  void take() {}
};

}  // namespace weft::detail
