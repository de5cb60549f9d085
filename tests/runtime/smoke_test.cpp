#include <gtest/gtest.h>
#include <weft/weft.hpp>
#include <atomic>

TEST(Smoke, BlockOnReturns) {
  weft::runtime rt(weft::runtime_options{.workers = 2});
  long r = rt.block_on([] {
    weft::join_handle<long> h = weft::spawn([] { return 41L; });
    weft::this_fiber::yield();
    return h.join() + 1;
  });
  EXPECT_EQ(r, 42);
}
