// Sync stress (issue 3's sizes, scaled by WEFT_STRESS_SCALE): 1,000 fibers x 1,000 lock/unlock
// on one mutex across workers; 10^6 channel messages through MPMC with every value received
// exactly once; semaphore ping-pong between fibers and a plain thread. Sanitizer builds run
// the full sizes with 2 workers and smaller ones with 1 and 4.
#include <atomic>
#include <thread>
#include <vector>

#include <weft/channel.hpp>
#include <weft/mutex.hpp>
#include <weft/semaphore.hpp>

#include "weft_test.hpp"

using weft::channel_status;

namespace {

class SyncStressTest : public weft_test::RuntimeTest {};
INSTANTIATE_TEST_SUITE_P(Workers, SyncStressTest, ::testing::Values(1u, 2u, 4u), weft_test::workers_name);

TEST_P(SyncStressTest, ThousandFibersThousandLocks) {
  weft::mutex m;
  long counter = 0;
  // The full size runs in every build with 2 workers; sanitizer builds shrink the
  // other worker counts to keep CI short.
  const bool full = GetParam() == 2;
  const int fibers = static_cast<int>(weft_test::sized(1000, full ? 1000 : 300, full ? 1000 : 200));
  const int per = 1000;
  rt().block_on([&] {
    std::vector<weft::join_handle<void>> hs;
    for (int f = 0; f < fibers; ++f)
      hs.push_back(weft::spawn([&] {
        for (int i = 0; i < per; ++i) {
          m.lock();
          ++counter;
          if (i % 100 == 0) weft::this_fiber::yield();
          m.unlock();
        }
      }));
    for (auto& h : hs) h.join();
  });
  EXPECT_EQ(counter, static_cast<long>(fibers) * per);
}

TEST_P(SyncStressTest, MillionMessagesMpmcExactlyOnce) {
  const bool full = GetParam() == 2;  // full size in every build with 2 workers
  const long total = weft_test::sized(1000000, full ? 1000000 : 200000, full ? 1000000 : 50000);
  const int producers = 4, consumers = 4;
  for (std::size_t cap : {std::size_t{0}, std::size_t{64}}) {
    weft::channel<long> ch(cap);
    std::vector<std::atomic<unsigned char>> seen(static_cast<std::size_t>(total));
    rt().block_on([&] {
      std::vector<weft::join_handle<void>> ps, cs;
      for (int p = 0; p < producers; ++p)
        ps.push_back(weft::spawn([&, p] {
          for (long v = p; v < total; v += producers) EXPECT_EQ(ch.send(v), channel_status::ok);
        }));
      for (int c = 0; c < consumers; ++c)
        cs.push_back(weft::spawn([&] {
          long v;
          while (ch.recv(v) == channel_status::ok) seen[static_cast<std::size_t>(v)].fetch_add(1, std::memory_order_relaxed);
        }));
      for (auto& h : ps) h.join();
      ch.close();
      for (auto& h : cs) h.join();
    });
    long missing = 0, dup = 0;
    for (auto& s : seen) {
      if (s.load() == 0) ++missing;
      if (s.load() > 1) ++dup;
    }
    EXPECT_EQ(missing, 0) << "capacity " << cap;
    EXPECT_EQ(dup, 0) << "capacity " << cap;
  }
}

TEST_P(SyncStressTest, SemaphorePingPongWithAPlainThread) {
  weft::binary_semaphore ping(0), pong(0);
  const long rounds = weft_test::sized(100000, 20000, 5000);
  std::thread plain([&] {
    for (long i = 0; i < rounds; ++i) {
      ping.acquire();
      pong.release();
    }
  });
  rt().block_on([&] {
    for (long i = 0; i < rounds; ++i) {
      ping.release();
      pong.acquire();
    }
  });
  plain.join();
  SUCCEED();  // a lost wake-up hangs and the watchdog fails the test
}

}  // namespace
