// Channels and select: Go semantics (rendezvous, buffering, close and drain, try/timed/stop
// forms, move-only values, range-for), select over mixed cases with fairness and exactly-once
// completion, plain threads on either side.
#include <atomic>
#include <map>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include <weft/channel.hpp>
#include <weft/mutex.hpp>
#include <weft/select.hpp>

#include "weft_test.hpp"

using namespace std::chrono_literals;
using weft::channel_status;
using weft_test::RuntimeTest;

namespace {

class ChannelTest : public RuntimeTest {};
WEFT_WORKER_COUNTS(ChannelTest);

TEST_P(ChannelTest, RendezvousHandsOverInOrder) {
  weft::channel<int> ch(0);
  rt().block_on([&] {
    auto producer = weft::spawn([&] {
      for (int i = 0; i < 100; ++i) EXPECT_EQ(ch.send(i), channel_status::ok);
      ch.close();
    });
    int expected = 0, v = -1;
    while (ch.recv(v) == channel_status::ok) EXPECT_EQ(v, expected++);
    EXPECT_EQ(expected, 100);
    EXPECT_EQ(ch.recv(v), channel_status::closed);
    producer.join();
  });
}

TEST_P(ChannelTest, BufferedTryAndClose) {
  weft::channel<std::string> ch(2);
  rt().block_on([&] {
    EXPECT_EQ(ch.capacity(), 2u);
    std::string a = "a", c = "c";
    EXPECT_EQ(ch.try_send(std::move(a)), channel_status::ok);
    EXPECT_EQ(ch.try_send(std::string("b")), channel_status::ok);
    EXPECT_EQ(ch.try_send(std::move(c)), channel_status::full);
    EXPECT_EQ(c, "c");  // not consumed
    EXPECT_EQ(ch.size(), 2u);
    EXPECT_TRUE(ch.close());
    EXPECT_FALSE(ch.close());
    EXPECT_EQ(ch.send("x"), channel_status::closed);
    std::string out = "untouched";
    EXPECT_EQ(ch.try_recv(out), channel_status::ok);
    EXPECT_EQ(out, "a");
    EXPECT_EQ(ch.recv(out), channel_status::ok);  // drains before reporting closed
    EXPECT_EQ(out, "b");
    out = "untouched";
    EXPECT_EQ(ch.recv(out), channel_status::closed);
    EXPECT_EQ(out, "untouched");
    weft::channel<int> empty(1);
    int v = 0;
    EXPECT_EQ(empty.try_recv(v), channel_status::empty);
  });
}

TEST_P(ChannelTest, TheLongestTimeoutsWaitInsteadOfOverflowing) {
  // now() + hours::max() overflows: a Go-style "wait practically for ever" must wait, not time
  // out at once (every *_for call goes through detail::deadline_after).
  weft::channel<int> ch(0);
  weft::timed_mutex m;
  rt().block_on([&] {
    auto sender = weft::spawn([&] {
      weft::this_fiber::sleep_for(20ms);
      ch.send(7);
      ch.send(8);
    });
    int v = 0;
    EXPECT_EQ(ch.recv_for(v, std::chrono::hours::max()), channel_status::ok);
    EXPECT_EQ(v, 7);
    auto r = weft::select(weft::case_recv(ch, v), weft::case_timeout(std::chrono::seconds::max()));
    EXPECT_EQ(r.index, 0u);
    EXPECT_EQ(v, 8);
    sender.join();
    EXPECT_TRUE(m.try_lock_for(std::chrono::nanoseconds::max()));
    m.unlock();
  });
}

TEST_P(ChannelTest, TimedAndCanceledOperations) {
  weft::channel<int> ch(0);
  rt().block_on([&] {
    int v = 0;
    auto t0 = std::chrono::steady_clock::now();
    EXPECT_EQ(ch.recv_for(v, 3ms), channel_status::timeout);
    EXPECT_GE(std::chrono::steady_clock::now() - t0, 3ms);
    t0 = std::chrono::steady_clock::now();
    EXPECT_EQ(ch.send_for(1, 3ms), channel_status::timeout);
    EXPECT_GE(std::chrono::steady_clock::now() - t0, 3ms);
    EXPECT_EQ(ch.send_until(1, std::chrono::system_clock::now() + 1ms), channel_status::timeout);
    std::stop_source src;
    auto waiter = weft::spawn([&] {
      int x;
      return ch.recv(x, src.get_token());
    });
    weft::this_fiber::sleep_for(1ms);
    src.request_stop();
    EXPECT_EQ(waiter.join(), channel_status::canceled);
    EXPECT_EQ(ch.send(5, src.get_token()), channel_status::canceled);  // already stopped
    // A timed-out sender's value is not delivered later.
    EXPECT_EQ(ch.try_recv(v), channel_status::empty);
  });
}

TEST_P(ChannelTest, CloseWakesEveryWaiter) {
  weft::channel<int> ch(0);
  rt().block_on([&] {
    std::vector<weft::join_handle<channel_status>> hs;
    for (int i = 0; i < 10; ++i)
      hs.push_back(weft::spawn([&] {
        int v;
        return ch.recv(v);
      }));
    weft::channel<int> full(0);
    std::vector<weft::join_handle<channel_status>> senders;
    for (int i = 0; i < 10; ++i) senders.push_back(weft::spawn([&, i] { return full.send(i); }));
    weft::this_fiber::sleep_for(2ms);
    ch.close();
    full.close();
    for (auto& h : hs) EXPECT_EQ(h.join(), channel_status::closed);
    for (auto& h : senders) EXPECT_EQ(h.join(), channel_status::closed);
  });
}

TEST_P(ChannelTest, MoveOnlyValuesAndRangeFor) {
  weft::channel<std::unique_ptr<int>> ch(3);
  rt().block_on([&] {
    auto producer = weft::spawn([&] {
      for (int i = 0; i < 50; ++i) ch.send(std::make_unique<int>(i));
      ch.close();
    });
    int sum = 0, count = 0;
    for (auto& p : ch) {
      sum += *p;
      ++count;
    }
    producer.join();
    EXPECT_EQ(count, 50);
    EXPECT_EQ(sum, 49 * 50 / 2);
  });
}

TEST_P(ChannelTest, AMoveOnlyValueNotSentStaysWithTheSender) {
  // Every way a send can end without ok leaves std::move(p) untouched; ok takes it.
  weft::channel<std::unique_ptr<int>> ch(0), other(1);
  rt().block_on([&] {
    auto p = std::make_unique<int>(42);
    EXPECT_EQ(ch.send_for(std::move(p), 1ms), channel_status::timeout);
    ASSERT_NE(p, nullptr);
    EXPECT_EQ(ch.send_until(std::move(p), std::chrono::steady_clock::now() + 1ms), channel_status::timeout);
    ASSERT_NE(p, nullptr);
    EXPECT_EQ(ch.try_send(std::move(p)), channel_status::full);
    ASSERT_NE(p, nullptr);
    std::stop_source stopped;
    stopped.request_stop();
    EXPECT_EQ(ch.send(std::move(p), stopped.get_token()), channel_status::canceled);
    ASSERT_NE(p, nullptr);
    // A select whose send case loses to a ready receive, or to its timeout.
    other.send(std::make_unique<int>(1));
    std::unique_ptr<int> got;
    auto r = weft::select(weft::case_send(ch, std::move(p)), weft::case_recv(other, got));
    EXPECT_EQ(r.index, 1u);
    ASSERT_NE(p, nullptr);
    ASSERT_NE(got, nullptr);
    r = weft::select(weft::case_send(ch, std::move(p)), weft::case_timeout(1ms));
    EXPECT_EQ(r.status, channel_status::timeout);
    ASSERT_NE(p, nullptr);
    // Completed sends take it: a select to a waiting receiver, then send on a closed channel.
    auto receiver = weft::spawn([&] {
      std::unique_ptr<int> v;
      return ch.recv(v) == channel_status::ok ? *v : -1;
    });
    r = weft::select(weft::case_send(ch, std::move(p)), weft::case_timeout(10s));
    EXPECT_EQ(r.index, 0u);
    EXPECT_EQ(r.status, channel_status::ok);
    EXPECT_EQ(p, nullptr);
    EXPECT_EQ(receiver.join(), 42);
    p = std::make_unique<int>(7);
    ch.close();
    EXPECT_EQ(ch.send(std::move(p)), channel_status::closed);
    EXPECT_NE(p, nullptr);
    // One object moved into two send cases would be moved from twice: refused, untouched.
    weft::channel<std::unique_ptr<int>> third(1);
    EXPECT_THROW(weft::select(weft::case_send(other, std::move(p)), weft::case_send(third, std::move(p))),
                 std::invalid_argument);
    EXPECT_NE(p, nullptr);
    // An lvalue is copied: the caller's value is never touched.
    weft::channel<std::string> strings(1);
    std::string s = "kept";
    EXPECT_EQ(strings.send(s), channel_status::ok);
    r = weft::select(weft::case_send(strings, s), weft::case_default());
    EXPECT_EQ(r.status, channel_status::empty);
    EXPECT_EQ(s, "kept");
  });
}

TEST_P(ChannelTest, RangeForNeedsNoDefaultConstructor) {
  struct point {
    explicit point(int v) : x(v) {}
    int x;
  };
  weft::channel<point> ch(0);  // rendezvous: every value goes straight to the receiver
  rt().block_on([&] {
    auto producer = weft::spawn([&] {
      for (int i = 1; i <= 10; ++i) ch.send(point(i));
      ch.close();
    });
    int sum = 0;
    for (const point& p : ch) sum += p.x;
    producer.join();
    EXPECT_EQ(sum, 55);
  });
}

TEST_P(ChannelTest, PlainThreadsOnBothEnds) {
  weft::channel<int> ch(0);
  std::thread producer([&] {
    for (int i = 0; i < 1000; ++i) ch.send(i);
    ch.close();
  });
  long sum = rt().block_on([&] {
    long s = 0;
    int v;
    while (ch.recv(v) == channel_status::ok) s += v;
    return s;
  });
  producer.join();
  EXPECT_EQ(sum, 999L * 1000 / 2);
  weft::channel<int> back(1);
  auto h = rt().spawn([&] { return back.send(7); });
  int v = 0;
  EXPECT_EQ(back.recv(v), channel_status::ok);
  EXPECT_EQ(v, 7);
  EXPECT_EQ(h.join(), channel_status::ok);
}

TEST_P(ChannelTest, SelectCompletesExactlyOneCase) {
  weft::channel<int> a(0), b(1), out(1);
  rt().block_on([&] {
    int va = 0, vb = 0;
    // Nothing ready: default.
    auto r = weft::select(weft::case_recv(a, va), weft::case_recv(b, vb), weft::case_default());
    EXPECT_EQ(r.index, 2u);
    EXPECT_EQ(r.status, channel_status::empty);
    // Timeout case.
    auto t0 = std::chrono::steady_clock::now();
    r = weft::select(weft::case_recv(a, va), weft::case_timeout(3ms));
    EXPECT_EQ(r.index, 1u);
    EXPECT_EQ(r.status, channel_status::timeout);
    EXPECT_GE(std::chrono::steady_clock::now() - t0, 3ms);
    // With several timeout cases, the earliest fires and its index is reported, wherever it is.
    r = weft::select(weft::case_recv(a, va), weft::case_timeout(3ms), weft::case_timeout(1h));
    EXPECT_EQ(r.index, 1u);
    EXPECT_EQ(r.status, channel_status::timeout);
    r = weft::select(weft::case_timeout(1h), weft::case_recv(a, va), weft::case_timeout(3ms));
    EXPECT_EQ(r.index, 2u);
    EXPECT_EQ(r.status, channel_status::timeout);
    // A buffered value is ready.
    b.send(42);
    r = weft::select(weft::case_recv(a, va), weft::case_recv(b, vb));
    EXPECT_EQ(r.index, 1u);
    EXPECT_EQ(vb, 42);
    // Send case completes into the buffer.
    r = weft::select(weft::case_recv(a, va), weft::case_send(out, 9));
    EXPECT_EQ(r.index, 1u);
    int got = 0;
    EXPECT_EQ(out.try_recv(got), channel_status::ok);
    EXPECT_EQ(got, 9);
    // Parked select woken by a sender on another fiber.
    auto sender = weft::spawn([&] { return a.send(5); });
    r = weft::select(weft::case_recv(a, va), weft::case_recv(b, vb));
    EXPECT_EQ(r.index, 0u);
    EXPECT_EQ(va, 5);
    EXPECT_EQ(sender.join(), channel_status::ok);
    // A closed channel is ready (closed).
    a.close();
    r = weft::select(weft::case_recv(a, va), weft::case_timeout(1s));
    EXPECT_EQ(r.index, 0u);
    EXPECT_EQ(r.status, channel_status::closed);
    // Stop case.
    std::stop_source src;
    weft::channel<int> never(0);
    auto stopper = weft::spawn([&] {
      weft::this_fiber::sleep_for(1ms);
      src.request_stop();
    });
    r = weft::select(weft::case_recv(never, va), weft::case_stop(src.get_token()));
    EXPECT_EQ(r.index, 1u);
    EXPECT_EQ(r.status, channel_status::canceled);
    stopper.join();
  });
}

TEST_P(ChannelTest, SelectIsFair) {
  // Two always-ready channels: over many selects, neither case starves.
  weft::channel<int> a(1000000), b(1000000);
  const int n = static_cast<int>(weft_test::sized(100000, 20000, 10000));
  for (int i = 0; i < n; ++i) {
    a.try_send(i);
    b.try_send(i);
  }
  int picks[2] = {0, 0};
  rt().block_on([&] {
    int v;
    for (int i = 0; i < n; ++i) ++picks[weft::select(weft::case_recv(a, v), weft::case_recv(b, v)).index];
  });
  EXPECT_GT(picks[0], n / 3);
  EXPECT_GT(picks[1], n / 3);
}

TEST_P(ChannelTest, SelectSendsNeverDuplicateOrLose) {
  // Many fibers select-send the same value stream to two rendezvous channels with timeouts
  // while two receivers drain both: every value arrives exactly once, or its send timed out.
  weft::channel<int> x(0), y(0);
  const int senders = 8, per = static_cast<int>(weft_test::sized(2000, 500, 200));
  std::vector<std::atomic<int>> seen(static_cast<std::size_t>(senders * per));
  std::atomic<int> timeouts{0}, sent{0};
  rt().block_on([&] {
    std::vector<weft::join_handle<void>> hs;
    for (int s = 0; s < senders; ++s)
      hs.push_back(weft::spawn([&, s] {
        for (int i = 0; i < per; ++i) {
          int v = s * per + i;
          auto r = weft::select(weft::case_send(x, v), weft::case_send(y, v), weft::case_timeout(200us));
          if (r.status == channel_status::ok) sent++; else timeouts++;
        }
      }));
    auto drain = [&](weft::channel<int>& c) {
      return weft::spawn([&] {
        int v;
        while (c.recv(v) == channel_status::ok) seen[static_cast<std::size_t>(v)]++;
      });
    };
    auto dx = drain(x), dy = drain(y);
    for (auto& h : hs) h.join();
    x.close();
    y.close();
    dx.join();
    dy.join();
  });
  int received = 0;
  for (auto& s : seen) {
    EXPECT_LE(s.load(), 1);
    received += s.load();
  }
  EXPECT_EQ(received, sent.load());
  EXPECT_EQ(sent.load() + timeouts.load(), senders * per);
}

}  // namespace
