// The elastic thread pool behind run_blocking(): threads are started on demand up to a cap and
// exit after an idle timeout. Jobs wait in FIFO order when every thread is busy.
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <mutex>

#include <weft/blocking.hpp>

namespace weft::detail {

/// Destroys the calling plain thread's fiber_local values now (park.cpp). A pool thread calls
/// it before it tells shutdown() it is gone: a detached thread's thread_local destructors may
/// otherwise run after the runtime (and the process's statics) are destroyed, or not at all.
void fls_destroy_thread() noexcept;

class blocking_pool {
 public:
  blocking_pool(unsigned max_threads, std::chrono::milliseconds idle_timeout)
      : max_threads_(max_threads == 0 ? 1 : max_threads), idle_timeout_(idle_timeout) {}
  ~blocking_pool() { shutdown(); }

  /// Queues `job`; when it has run, job->done is woken. Any thread.
  void submit(blocking_job* job);
  /// Refuses new jobs, waits for queued and running ones and for every thread to exit. Prints a
  /// message every 5 s while a job keeps it waiting.
  void shutdown() noexcept;
  unsigned threads() const;

 private:
  void thread_main() noexcept;

  const unsigned max_threads_;
  const std::chrono::milliseconds idle_timeout_;
  mutable std::mutex mu_;
  std::condition_variable work_cv_;
  std::condition_variable exit_cv_;
  struct synced {
    blocking_job* head = nullptr;
    blocking_job* tail = nullptr;
    unsigned threads = 0;
    unsigned idle = 0;
    bool stopping = false;
  } synced_;  // guarded by mu_
};

}  // namespace weft::detail
