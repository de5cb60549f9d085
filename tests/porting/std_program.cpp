// The porting check's input: a small concurrent program written against the std thread
// library only. scripts/port_to_weft.sh renames it to weft (std::thread -> weft::fiber, ...);
// both builds must print the same lines. Output depends only on the computation, not on the
// interleaving.
#include <atomic>
#include <barrier>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <future>
#include <latch>
#include <mutex>
#include <semaphore>
#include <shared_mutex>
#include <thread>
#include <vector>

int main() {
  // Threads and a mutex: an exact shared counter.
  std::mutex m;
  long counter = 0;
  {
    std::vector<std::thread> threads;
    for (int t = 0; t < 8; ++t)
      threads.emplace_back([&] {
        for (int i = 0; i < 10000; ++i) {
          std::lock_guard<std::mutex> g(m);
          ++counter;
          if (i % 1000 == 0) std::this_thread::yield();
        }
      });
    for (auto& t : threads) t.join();
  }
  std::printf("counter %ld\n", counter);

  // A producer/consumer queue on a condition variable.
  std::condition_variable cv;
  std::vector<int> queue;
  bool done = false;
  long sum = 0;
  std::thread consumer([&] {
    std::unique_lock<std::mutex> lk(m);
    for (;;) {
      cv.wait(lk, [&] { return !queue.empty() || done; });
      while (!queue.empty()) {
        sum += queue.back();
        queue.pop_back();
      }
      if (done) break;
    }
  });
  for (int i = 1; i <= 1000; ++i) {
    {
      std::lock_guard<std::mutex> g(m);
      queue.push_back(i);
    }
    cv.notify_one();
  }
  {
    std::lock_guard<std::mutex> g(m);
    done = true;
  }
  cv.notify_one();
  consumer.join();
  std::printf("sum %ld\n", sum);

  // A latch, a barrier with a completion step, a semaphore limiting concurrency.
  std::latch ready(4);
  std::atomic<int> phases{0};
  std::barrier sync_point(4, [&]() noexcept { phases++; });
  std::counting_semaphore<2> slots(2);
  std::atomic<int> inside{0}, max_inside{0};
  {
    std::vector<std::thread> workers;
    for (int t = 0; t < 4; ++t)
      workers.emplace_back([&] {
        ready.count_down();
        ready.wait();
        for (int round = 0; round < 5; ++round) {
          slots.acquire();
          int now = ++inside;
          int seen = max_inside.load();
          while (now > seen && !max_inside.compare_exchange_weak(seen, now)) {}
          std::this_thread::sleep_for(std::chrono::milliseconds(1));
          --inside;
          slots.release();
          sync_point.arrive_and_wait();
        }
      });
    for (auto& t : workers) t.join();
  }
  std::printf("phases %d, at most %d inside\n", phases.load(), max_inside.load() <= 2 ? 2 : max_inside.load());

  // Futures: async, promise, packaged_task, shared_future; a read-mostly shared_mutex.
  std::future<int> f = std::async(std::launch::async, [] { return 6 * 7; });
  std::promise<std::string> p;
  std::future<std::string> fp = p.get_future();
  std::thread setter([&] { p.set_value("promised"); });
  std::packaged_task<int(int)> task([](int x) { return x * x; });
  std::future<int> ft = task.get_future();
  std::thread runner(std::move(task), 9);
  std::shared_mutex rw;
  std::shared_future<int> shared = std::async(std::launch::deferred, [] { return 5; }).share();
  int reads = 0;
  {
    std::shared_lock<std::shared_mutex> r(rw);
    reads = shared.get() + shared.get();
  }
  std::printf("async %d, promise %s, task %d, shared %d, status %s\n", f.get(), fp.get().c_str(), ft.get(), reads,
              f.valid() ? "valid" : "consumed");
  setter.join();
  runner.join();

  // The other spellings of the same names: a using-declaration, a namespace alias, a
  // using-directive, a static member.
  {
    using std::thread;
    namespace tt = std::this_thread;
    thread napper([] {
      using namespace std::this_thread;
      sleep_for(std::chrono::milliseconds(1));
      tt::yield();
    });
    napper.join();
    std::printf("spellings ok, %s\n", std::jthread::hardware_concurrency() > 0 ? "some cores" : "no cores");
  }
  return 0;
}
