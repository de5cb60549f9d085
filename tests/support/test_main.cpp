// The main() of every test binary: GoogleTest plus a watchdog that, if a test hangs, prints
// which one and aborts (a hang is a failure, never a skip). WEFT_TEST_WATCHDOG sets the limit
// in seconds per test (default 100; ctest's TIMEOUT is the outer bound).
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <cstdlib>
#include <mutex>
#include <string>
#include <thread>

namespace {

class watchdog : public ::testing::EmptyTestEventListener {
 public:
  watchdog() {
    const char* s = std::getenv("WEFT_TEST_WATCHDOG");
    limit_ = std::chrono::seconds(s != nullptr ? std::atoi(s) : 100);
    thread_ = std::thread([this] { loop(); });
    // Return only once the thread runs: a test that lowers RLIMIT_NOFILE (a death test's child
    // re-runs main) must not race its start, whose first UBSan vptr check opens a descriptor.
    std::unique_lock lk(mu_);
    cv_.wait(lk, [this] { return looping_; });
  }
  ~watchdog() override {
    {
      std::lock_guard lk(mu_);
      done_ = true;
    }
    cv_.notify_all();
    thread_.join();
  }
  void OnTestStart(const ::testing::TestInfo& info) override {
    std::lock_guard lk(mu_);
    name_ = std::string(info.test_suite_name()) + "." + info.name();
    started_ = std::chrono::steady_clock::now();
    running_ = true;
  }
  void OnTestEnd(const ::testing::TestInfo&) override {
    std::lock_guard lk(mu_);
    running_ = false;
  }

 private:
  void loop() {
    std::unique_lock lk(mu_);
    looping_ = true;
    cv_.notify_all();
    while (!done_) {
      cv_.wait_for(lk, std::chrono::seconds(1));
      if (running_ && std::chrono::steady_clock::now() - started_ > limit_) {
        std::fprintf(stderr, "watchdog: %s has run for more than %llds: aborting\n", name_.c_str(),
                     static_cast<long long>(limit_.count()));
        std::fflush(stderr);
        std::abort();
      }
    }
  }
  std::chrono::seconds limit_;
  std::mutex mu_;
  std::condition_variable cv_;
  bool done_ = false;
  bool looping_ = false;  // the thread has started (the constructor waits for it)
  bool running_ = false;
  std::string name_;
  std::chrono::steady_clock::time_point started_;
  std::thread thread_;
};

}  // namespace

int main(int argc, char** argv) {
  ::testing::InitGoogleTest(&argc, argv);
  ::testing::FLAGS_gtest_death_test_style = "threadsafe";
  ::testing::UnitTest::GetInstance()->listeners().Append(new watchdog());
  return RUN_ALL_TESTS();
}
