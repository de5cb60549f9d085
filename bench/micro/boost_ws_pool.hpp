// The Boost.Fiber work_stealing pool shared by bench/micro/runtime_bench.cpp and sync_bench.cpp:
// two threads set up once per process (Boost 1.74 allows nothing else), sleeping between jobs.
#pragma once

#include <boost/fiber/algo/work_stealing.hpp>
#include <boost/fiber/all.hpp>

#include <condition_variable>
#include <cstdint>
#include <functional>
#include <mutex>
#include <thread>
#include <utility>
#include <vector>

namespace weft_bench {

// Boost.Fiber work_stealing on two threads. In Boost 1.74 the algorithm keeps its schedulers in
// a static array sized on first use, and its constructor waits on a static barrier: it can be
// instantiated for exactly `thread_count` threads once per process. So the two threads are
// started once, on first use, and serve every work_stealing benchmark. Between jobs they sleep
// on a std::condition_variable (no dispatcher runs, no CPU); during a job, thread 0 runs it on
// its main fiber while thread 1 waits on a fiber condition variable, so its dispatcher spins and
// steals, as in Boost's performance/fiber/skynet_stealing_join.cpp (suspend = false).
class boost_ws_pool {
 public:
  static constexpr std::uint32_t kThreads = 2;

  static boost_ws_pool& get() {
    std::call_once(once_, [] { instance_ = new boost_ws_pool(); });
    return *instance_;
  }
  static void shutdown_if_started() {
    if (instance_ == nullptr) return;
    instance_->stop();
    delete instance_;
    instance_ = nullptr;
  }

  /// Starts `job` on thread 0's main fiber; thread 1 helps until it returns.
  void start(std::function<void()> job) {
    std::lock_guard lk(m_);
    job_ = std::move(job);
    acks_ = 0;
    ++gen_;
    cv_.notify_all();
  }
  /// start(job), then wait().
  void run(std::function<void()> job) {
    start(std::move(job));
    wait();
  }
  /// Waits until the job has returned and both threads are back asleep.
  void wait() {
    std::unique_lock lk(m_);
    done_cv_.wait(lk, [&] { return acks_ == kThreads; });
    job_ = nullptr;
  }

 private:
  boost_ws_pool() {
    for (std::uint32_t i = 0; i < kThreads; ++i) threads_.emplace_back([this, i] { loop(i); });
  }
  void stop() {
    {
      std::lock_guard lk(m_);
      quit_ = true;
      cv_.notify_all();
    }
    for (auto& t : threads_) t.join();
  }

  void loop(std::uint32_t index) {
    boost::fibers::use_scheduling_algorithm<boost::fibers::algo::work_stealing>(kThreads);
    std::uint64_t seen = 0;
    for (;;) {
      std::function<void()> job;
      {
        std::unique_lock lk(m_);
        cv_.wait(lk, [&] { return quit_ || gen_ != seen; });
        if (quit_) return;
        seen = gen_;
        if (index == 0) job = job_;
      }
      if (index == 0) {
        job();
        {
          std::unique_lock lk(fm_);
          fdone_ = seen;
        }
        fcv_.notify_all();
      } else {
        std::unique_lock lk(fm_);
        fcv_.wait(lk, [&] { return fdone_ == seen; });
      }
      {
        std::lock_guard lk(m_);
        ++acks_;
      }
      done_cv_.notify_all();
    }
  }

  static inline std::once_flag once_;
  static inline boost_ws_pool* instance_ = nullptr;

  std::mutex m_;
  std::condition_variable cv_, done_cv_;
  std::function<void()> job_;
  std::uint64_t gen_ = 0;
  std::uint32_t acks_ = 0;
  bool quit_ = false;
  boost::fibers::mutex fm_;
  boost::fibers::condition_variable fcv_;
  std::uint64_t fdone_ = 0;
  std::vector<std::thread> threads_;
};

}  // namespace weft_bench
