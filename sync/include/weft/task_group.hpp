// weft::task_group: structured concurrency over fibers. Children spawned from a group share one
// std::stop_source; join() waits for all of them and rethrows the first exception any of them
// threw, and the first failure requests stop at once so siblings that take a std::stop_token
// can finish early (Go's errgroup.WithContext, Tokio's JoinSet). The destructor requests stop
// and joins, and never throws.
// Invariant: the children's shared block (counter, stop source, first error) is reference
// counted, so a child never touches freed memory even if the group is gone before it ends.
#pragma once

#include <weft/detail/cxx20.hpp>

#include <exception>
#include <functional>
#include <memory>
#include <optional>
#include <stop_token>
#include <type_traits>
#include <utility>

#include <weft/detail/spinlock.hpp>
#include <weft/fiber.hpp>
#include <weft/wait_group.hpp>

namespace weft {

/// A group of child fibers with a shared stop source and first-failure propagation. spawn()
/// and request_stop() may be called from any fiber or thread, children included; join() and
/// the destructor from one place at a time.
class task_group {
 public:
  /// Creates an empty group with a fresh stop source. Throws std::bad_alloc.
  task_group() : shared_(std::make_shared<shared>()) {}
  task_group(const task_group&) = delete;
  task_group& operator=(const task_group&) = delete;
  /// Requests stop, then waits for every child (parks a fiber, blocks a plain thread).
  /// Exceptions not collected by join() are dropped; never throws. While the runtime unwinds
  /// the owning fiber at shutdown it returns without waiting; the children, which share
  /// ownership of the group's state, are unwound on their own.
  ~task_group() {
    shared_->stop.request_stop();
    try {
      shared_->children.wait();
    } catch (...) {
      // Only forced_unwind: the runtime unwinds this fiber while it waits in a destructor,
      // which must not throw. Swallowing it lets the fiber run on to its end on the unwinding
      // thread; the children keep the shared block alive and are unwound in turn.
    }
  }

  /// Starts `f()` or, if it takes one, `f(token)` with the group's std::stop_token, on a new
  /// fiber of `opts.runtime` (null: the calling fiber's runtime, or the default runtime on a
  /// plain thread). `f` is decay-copied; the copy is destroyed on the child before join() can
  /// see it finished. An exception escaping `f` is kept for join() (only the first) and
  /// requests stop. Never blocks. Throws std::system_error if no fiber can be started (the
  /// runtime is shutting down, no stack can be mapped); the group is then unchanged.
  template <class F>
  void spawn(spawn_options opts, F&& f) {
    using fn_t = std::decay_t<F>;
    static_assert(std::is_invocable_v<fn_t&&, std::stop_token> || std::is_invocable_v<fn_t&&>,
                  "weft::task_group::spawn: the callable must take nothing or a std::stop_token");
    child<fn_t> c(shared_, std::forward<F>(f));
    shared_->children.add(1);
    c.armed = true;
    // If spawn throws, the armed copy it made is destroyed and reports the child done.
    weft::spawn(opts, std::move(c));
  }
  /// spawn(spawn_options{}, f).
  template <class F>
  void spawn(F&& f) {
    spawn(spawn_options{}, std::forward<F>(f));
  }

  /// Waits for every child spawned so far (parks a fiber, blocks a plain thread), then rethrows
  /// the first exception a child threw since the last join(), if any (later ones are dropped).
  /// The group stays usable; a stop request stays in force (std::stop_source cannot be reset).
  /// Returns early, without rethrowing, only while the runtime unwinds the calling fiber at
  /// shutdown.
  void join() {
    shared_->children.wait();
    std::exception_ptr e;
    shared_->lock.lock();
    e = std::exchange(shared_->first_error, nullptr);
    shared_->lock.unlock();
    if (e != nullptr) std::rethrow_exception(e);
  }

  /// Requests stop on the group's stop source (runs registered std::stop_callbacks on the
  /// caller). Returns true if this call made the request. Never blocks on the children.
  bool request_stop() noexcept { return shared_->stop.request_stop(); }
  /// The token every child that takes one receives.
  std::stop_token get_stop_token() const noexcept { return shared_->stop.get_token(); }
  /// The group's stop source.
  std::stop_source get_stop_source() const noexcept { return shared_->stop; }

 private:
  struct shared {
    wait_group children;
    std::stop_source stop;
    detail::spinlock lock;
    std::exception_ptr first_error;  // guarded by lock

    void fail(std::exception_ptr e) noexcept {
      lock.lock();
      if (first_error == nullptr) first_error = std::move(e);
      lock.unlock();
      stop.request_stop();
    }
  };
  // The body of a child fiber. Its destructor reports the child done however it ends: it
  // returned, threw, was unwound at shutdown, or never started (unwound before it ran, or
  // spawn failed).
  template <class Fn>
  struct child {
    template <class G>
    child(std::shared_ptr<shared> sh, G&& g) : s(std::move(sh)), fn(std::in_place, std::forward<G>(g)) {}
    child(child&& o) noexcept(std::is_nothrow_move_constructible_v<Fn>)
        : s(o.s), fn(std::move(o.fn)), armed(std::exchange(o.armed, false)) {}
    child& operator=(child&&) = delete;
    ~child() {
      fn.reset();  // the callable's captures die before join() can return
      if (armed) s->children.done();
    }
    void operator()() {
      try {
        if constexpr (std::is_invocable_v<Fn&&, std::stop_token>) {
          std::invoke(std::move(*fn), s->stop.get_token());
        } else {
          std::invoke(std::move(*fn));
        }
      } catch (const detail::forced_unwind&) {
        throw;
      } catch (...) {
        s->fail(std::current_exception());
      }
      fn.reset();
    }
    std::shared_ptr<shared> s;
    std::optional<Fn> fn;
    bool armed = false;  // this copy owns the child's count in the wait_group
  };
  std::shared_ptr<shared> shared_;
};

}  // namespace weft
