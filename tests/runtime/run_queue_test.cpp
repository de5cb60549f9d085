// The run queue in isolation (T3, T4): every item is seen exactly once while an owner pushes
// and pops and thieves steal half; overflow hands the older half to the caller.
#include <atomic>
#include <thread>
#include <vector>

#include "run_queue.hpp"
#include "weft_test.hpp"

namespace {

struct item {
  int value;
};

TEST(RunQueueTest, OwnerPopsInFifoOrder) {
  weft::detail::run_queue<item> q(8);
  std::vector<item> items(8);
  for (int i = 0; i < 8; ++i) {
    items[i].value = i;
    ASSERT_TRUE(q.push(&items[i]));
  }
  EXPECT_FALSE(q.push(&items[0]));  // full
  for (int i = 0; i < 8; ++i) EXPECT_EQ(q.pop()->value, i);
  EXPECT_EQ(q.pop(), nullptr);
  EXPECT_TRUE(q.empty());
}

TEST(RunQueueTest, StealTakesHalfRoundedUp) {
  // T4: for every fill level, one steal takes ceil(n/2), and nothing is duplicated or lost.
  constexpr std::uint32_t cap = 256;
  std::vector<item> items(cap);
  std::vector<item*> out(cap / 2 + 1);
  for (std::uint32_t fill = 0; fill <= cap; ++fill) {
    weft::detail::run_queue<item> q(cap);
    for (std::uint32_t i = 0; i < fill; ++i) {
      items[i].value = static_cast<int>(i);
      ASSERT_TRUE(q.push(&items[i]));
    }
    std::uint32_t got = q.steal_half(out.data());
    EXPECT_EQ(got, fill - fill / 2) << "fill " << fill;
    std::vector<int> seen(fill, 0);
    for (std::uint32_t i = 0; i < got; ++i) ++seen[static_cast<std::size_t>(out[i]->value)];
    while (item* it = q.pop()) ++seen[static_cast<std::size_t>(it->value)];
    for (std::uint32_t i = 0; i < fill; ++i) EXPECT_EQ(seen[i], 1) << "fill " << fill << " item " << i;
  }
}

TEST(RunQueueTest, OverflowMovesTheOlderHalf) {
  weft::detail::run_queue<item> q(4);
  std::vector<item> items(4);
  for (int i = 0; i < 4; ++i) {
    items[i].value = i;
    ASSERT_TRUE(q.push(&items[i]));
  }
  item* out[2];
  ASSERT_EQ(q.take_half_for_overflow(out), 2u);
  EXPECT_EQ(out[0]->value, 0);
  EXPECT_EQ(out[1]->value, 1);
  EXPECT_EQ(q.size(), 2u);
}

TEST(RunQueueTest, ConcurrentOwnerAndThievesSeeEveryItemOnce) {
  // T3: the owner pushes and pops N items (small capacity so the queue is often full and
  // steals race with reuse of slots) while two thieves steal; a bitmap counts sightings.
  const long n = weft_test::sized(1000000, 200000, 100000);
  std::vector<item> items(static_cast<std::size_t>(n));
  std::vector<std::atomic<int>> seen(static_cast<std::size_t>(n));
  weft::detail::run_queue<item> q(16);
  std::atomic<bool> done{false};
  auto mark = [&](item* it) { seen[static_cast<std::size_t>(it->value)].fetch_add(1, std::memory_order_relaxed); };
  auto thief = [&] {
    std::vector<item*> buf(9);
    while (!done.load(std::memory_order_acquire)) {
      std::uint32_t got = q.steal_half(buf.data());
      for (std::uint32_t i = 0; i < got; ++i) mark(buf[i]);
    }
  };
  std::thread t1(thief), t2(thief);
  item* overflow[8];
  for (long i = 0; i < n; ++i) {
    items[static_cast<std::size_t>(i)].value = static_cast<int>(i);
    while (!q.push(&items[static_cast<std::size_t>(i)])) {
      std::uint32_t k = q.take_half_for_overflow(overflow);
      for (std::uint32_t j = 0; j < k; ++j) mark(overflow[j]);
    }
    if (i % 3 == 0)
      if (item* it = q.pop()) mark(it);
  }
  while (item* it = q.pop()) mark(it);
  done.store(true, std::memory_order_release);
  t1.join();
  t2.join();
  long missing = 0, duplicated = 0;
  for (auto& s : seen) {
    int v = s.load();
    if (v == 0) ++missing;
    if (v > 1) ++duplicated;
  }
  EXPECT_EQ(missing, 0);
  EXPECT_EQ(duplicated, 0);
}

}  // namespace
