// Test support: sizes per build (release, ASan, TSan), WEFT_STRESS_SCALE, a runtime fixture
// parameterized over worker counts that checks in TearDown that no fiber or stack leaked, and
// deadline-bounded waits (no test sleeps to "let things settle").
#pragma once

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <mutex>
#include <string>
#include <system_error>
#include <thread>

#include <weft/weft.hpp>

namespace weft_test {

enum class build_kind { release, asan, tsan };

constexpr build_kind current_build() {
#if defined(WEFT_TSAN)
  return build_kind::tsan;
#elif defined(WEFT_ASAN)
  return build_kind::asan;
#else
  return build_kind::release;
#endif
}

/// True where testing.md's latency budgets apply: release builds in the normal scheduling mode
/// (sanitizers and WEFT_MIGRATE_ON_YIELD=1 change the timing on purpose; there the tests check
/// behaviour only and record the figures as test properties).
inline bool timing_budgets_apply() {
  const char* m = std::getenv("WEFT_MIGRATE_ON_YIELD");
  return current_build() == build_kind::release && !(m != nullptr && m[0] == '1');
}

/// WEFT_STRESS_SCALE (default 1) multiplies stress sizes.
inline double stress_scale() {
  const char* s = std::getenv("WEFT_STRESS_SCALE");
  double v = s != nullptr ? std::atof(s) : 1.0;
  return v > 0 ? v : 1.0;
}

/// Picks the size for this build (testing.md: R = release, A = ASan+UBSan, T = TSan), scaled.
inline long sized(long r, long a, long t) {
  long base = current_build() == build_kind::tsan ? t : current_build() == build_kind::asan ? a : r;
  return static_cast<long>(static_cast<double>(base) * stress_scale());
}

/// Polls `pred` until it holds or `limit` passes; returns whether it held. From a fiber it parks
/// between polls (the worker runs others); from a plain thread it sleeps.
template <class Pred>
bool wait_until(Pred pred, std::chrono::steady_clock::duration limit = std::chrono::seconds(10)) {
  auto deadline = std::chrono::steady_clock::now() + limit;
  while (!pred()) {
    if (std::chrono::steady_clock::now() > deadline) return false;
    weft::this_fiber::sleep_for(std::chrono::microseconds(200));
  }
  return true;
}

/// Runs `body` on a std::thread and waits at most `limit` for it. A body that does not finish
/// (a hang being tested for) ends the process at once with a message naming `what`: a hang is
/// a fast failure, not a test binary that waits for the watchdog or ctest's timeout.
template <class Body>
void finishes_within(const char* what, std::chrono::steady_clock::duration limit, Body body) {
  std::atomic<bool> done{false};
  std::thread t([&] {
    body();
    done.store(true);
  });
  auto deadline = std::chrono::steady_clock::now() + limit;
  while (!done.load() && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  if (!done.load()) {
    std::fprintf(stderr, "HANG: %s did not finish within %lld ms\n", what,
                 static_cast<long long>(std::chrono::duration_cast<std::chrono::milliseconds>(limit).count()));
    std::fflush(stderr);
    std::abort();
  }
  t.join();
}

/// Keeps the first error message noted by many fibers (any thread), and how many there were.
class first_error {
 public:
  void note(const std::string& what) {
    count_.fetch_add(1);
    std::lock_guard lk(mu_);
    if (text_.empty()) text_ = what;
  }
  long count() const { return count_.load(); }
  std::string text() {
    std::lock_guard lk(mu_);
    return text_;
  }

 private:
  std::atomic<long> count_{0};
  std::mutex mu_;  // a std::mutex: held for a copy only, never across a suspension
  std::string text_;
};

/// The std::system_error `f()` throws, or one with an empty code and "nothing thrown".
template <class F>
std::system_error system_error_of(F&& f) {
  try {
    f();
  } catch (const std::system_error& e) {
    return e;
  }
  return std::system_error(std::error_code(), "nothing thrown");
}

/// Asserts that every fiber of `rt` has finished and released its stack.
inline void expect_no_leaks(weft::runtime& rt) {
  bool drained = wait_until([&] { return rt.stats().live_fibers == 0; }, std::chrono::seconds(5));
  weft::runtime_stats s = rt.stats();
  EXPECT_TRUE(drained) << s.live_fibers << " fiber(s) still hold a stack";
  EXPECT_EQ(s.spawned, s.finished);
}

/// A runtime per test, at the worker count given by the test parameter.
class RuntimeTest : public ::testing::TestWithParam<unsigned> {
 protected:
  void SetUp() override { rt_ = std::make_unique<weft::runtime>(options()); }
  void TearDown() override {
    if (rt_ != nullptr) expect_no_leaks(*rt_);
    rt_.reset();
  }
  virtual weft::runtime_options options() const { return weft::runtime_options{.workers = GetParam()}; }
  weft::runtime& rt() { return *rt_; }
  std::unique_ptr<weft::runtime> rt_;
};

inline std::string workers_name(const ::testing::TestParamInfo<unsigned>& info) {
  return std::to_string(info.param) + "workers";
}

}  // namespace weft_test

#define WEFT_WORKER_COUNTS(suite) \
  INSTANTIATE_TEST_SUITE_P(Workers, suite, ::testing::Values(1u, 2u, 4u), weft_test::workers_name)
