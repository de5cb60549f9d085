// weft::run_blocking(f): runs a call that would block its thread (file I/O, getaddrinfo, a
// library without a fiber-aware API) on the runtime's elastic blocking pool while the calling
// fiber parks, so the worker keeps running other fibers.
#pragma once

#include <weft/detail/cxx20.hpp>

#include <exception>
#include <optional>
#include <type_traits>
#include <utility>

#include <weft/park.hpp>

namespace weft {

namespace detail {
struct blocking_job {
  virtual void run() noexcept = 0;
  wait_ticket done;
  blocking_job* next = nullptr;

 protected:
  ~blocking_job() = default;
};
/// Parks the calling fiber until `job` has run on the blocking pool. False if the caller is
/// not a fiber (or the runtime unwinds it): then the caller runs the job itself.
bool blocking_run(blocking_job* job);
}  // namespace detail

/// Runs `f()` on a thread of the calling fiber's runtime's blocking pool and parks the fiber
/// until it returns; returns its result or rethrows its exception. On a plain thread, simply
/// calls `f()`. The pool grows on demand up to runtime_options::blocking_threads_max; beyond
/// that, calls wait their turn. `f` runs on a plain thread, not on a fiber: there
/// runtime::current() is null, fiber_local and this_fiber::get_id() are the pool thread's (its
/// fiber_local values are destroyed when the thread leaves the pool: after
/// `blocking_idle_timeout`, or before the runtime's destructor returns), and
/// weft::spawn without spawn_options::runtime starts fibers on the default runtime.
template <class F>
std::invoke_result_t<std::decay_t<F>> run_blocking(F&& f) {
  using R = std::invoke_result_t<std::decay_t<F>>;
  static_assert(!std::is_rvalue_reference_v<R>,
                "weft::run_blocking: a callable returning an rvalue reference has no result to keep; return by value");
  struct job final : detail::blocking_job {
    explicit job(F&& callable) : fn(std::forward<F>(callable)) {}
    void run() noexcept override {
      try {
        result.set_from(fn);
      } catch (...) {
        error = std::current_exception();
      }
    }
    F&& fn;
    detail::result_holder<R> result;
    std::exception_ptr error;
  } j(std::forward<F>(f));
  if (!detail::blocking_run(&j)) j.run();
  if (j.error) std::rethrow_exception(j.error);
  return j.result.take();
}

}  // namespace weft
