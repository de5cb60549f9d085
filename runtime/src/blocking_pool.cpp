// Elastic blocking pool (see blocking_pool.hpp).
#include "blocking_pool.hpp"

#include <cstdio>
#include <thread>

namespace weft::detail {

void blocking_pool::submit(blocking_job* job) {
  job->next = nullptr;
  bool start_thread = false;
  {
    std::lock_guard lk(mu_);
    if (synced_.tail != nullptr) synced_.tail->next = job; else synced_.head = job;
    synced_.tail = job;
    if (synced_.idle == 0 && synced_.threads < max_threads_) {
      ++synced_.threads;
      start_thread = true;
    }
  }
  if (start_thread) {
    try {
      std::thread([this] { thread_main(); }).detach();
    } catch (...) {
      std::lock_guard lk(mu_);
      --synced_.threads;  // the job waits for a running thread; with none it would hang:
      if (synced_.threads == 0) std::fputs("weft: run_blocking: cannot start a pool thread\n", stderr);
    }
  } else {
    work_cv_.notify_one();
  }
}

void blocking_pool::thread_main() noexcept {
  std::unique_lock lk(mu_);
  for (;;) {
    while (synced_.head == nullptr && !synced_.stopping) {
      ++synced_.idle;
      bool timed_out = work_cv_.wait_for(lk, idle_timeout_) == std::cv_status::timeout;
      --synced_.idle;
      if (timed_out && synced_.head == nullptr) break;
    }
    if (synced_.head == nullptr) {
      // Leaving. The thread's fiber_local values go first, outside the lock (user
      // destructors), while shutdown() still counts this thread. A job queued meanwhile saw
      // this thread neither idle nor gone, so no thread was started for it: serve it. (So a
      // destructor must not wait for another run_blocking call: with the pool at its cap,
      // that call would wait for this very thread.)
      lk.unlock();
      fls_destroy_thread();
      lk.lock();
      if (synced_.head == nullptr) break;
    }
    blocking_job* job = synced_.head;
    synced_.head = job->next;
    if (synced_.head == nullptr) synced_.tail = nullptr;
    lk.unlock();
    job->run();
    job->done.wake();
    lk.lock();
  }
  // Invariant: after this decrement (under the lock) the thread touches no pool memory.
  if (--synced_.threads == 0) exit_cv_.notify_all();
}

void blocking_pool::shutdown() noexcept {
  std::unique_lock lk(mu_);
  synced_.stopping = true;
  work_cv_.notify_all();
  auto started = std::chrono::steady_clock::now();
  while (synced_.threads != 0) {
    if (exit_cv_.wait_for(lk, std::chrono::seconds(5)) == std::cv_status::timeout && synced_.threads != 0) {
      auto secs = std::chrono::duration_cast<std::chrono::seconds>(std::chrono::steady_clock::now() - started).count();
      std::fprintf(stderr, "weft: runtime shutdown has waited %llds for %u run_blocking() call(s) to return\n",
                   static_cast<long long>(secs), synced_.threads);
    }
  }
}

unsigned blocking_pool::threads() const {
  std::lock_guard lk(mu_);
  return synced_.threads;
}

}  // namespace weft::detail
