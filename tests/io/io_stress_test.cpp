// I/O stress over real loopback sockets (testing.md T19, T21-T23, T26, T28 and 10k connections):
// close while a fiber waits, descriptor-number reuse, an accept herd, backpressure, fork/exec
// and signals beside I/O, and a worker stalled in a blocking call (T24, running out of
// descriptors, is in io_emfile_test.cpp). Every wait has a deadline; latency budgets apply only where
// weft_test::timing_budgets_apply() says so (elsewhere the figures are recorded as properties).
#include <dirent.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <mutex>
#include <optional>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "io_desc.hpp"
#include "io_test_util.hpp"
#include "weft_test.hpp"

extern char** environ;

using namespace std::chrono_literals;
using weft::net::endpoint;
using weft::net::tcp_listener;
using weft::net::tcp_stream;
using weft::net::unix_stream;
using weft_test::RuntimeTest;
using weft_test::sized;
using namespace io_test;
using clk = std::chrono::steady_clock;

namespace {

// Closes with RST (SO_LINGER 0): churn tests cycle through more ports than TIME_WAIT would allow.
void close_with_reset(tcp_stream& s) {
  ::linger lg{1, 0};
  ::setsockopt(s.native_handle(), SOL_SOCKET, SO_LINGER, &lg, sizeof lg);
  s.close();
}

// A connected pair over loopback TCP: {client, server side}. Runs on a fiber.
std::pair<tcp_stream, tcp_stream> tcp_pair() {
  auto l = tcp_listener::bind(endpoint::loopback_v4(0));
  l.set_read_deadline(clk::now() + 10s);
  tcp_stream server;
  auto acceptor = weft::spawn([&] { server = l.accept(); });
  tcp_stream client = tcp_stream::connect(l.local_endpoint(), clk::now() + 10s);
  acceptor.join();
  return {std::move(client), std::move(server)};
}

using weft_test::first_error;

std::string describe(const char* where, const std::error_code& ec) { return std::string(where) + ": " + ec.message(); }

// Two fibers bouncing one byte over a connected pair until finish(), counting round trips and
// errors; `on_round` runs on the pinging fiber after each round. Every wait has a deadline.
struct ping_pong {
  std::atomic<long> rounds{0};
  std::atomic<bool> stop{false};
  first_error errors;
  std::vector<weft::join_handle<void>> fibers;

  template <class Stream, class OnRound = void (*)()>
  void start(weft::runtime& rt, Stream& ping, Stream& pong, OnRound on_round = [] {}) {
    ping.set_deadline(clk::now() + 60s);
    pong.set_deadline(clk::now() + 60s);
    fibers.push_back(rt.spawn([this, s = &pong] {
      for (char c = 0;;) {
        std::error_code ec;
        s->read_exact(&c, 1, ec);
        if (!ec && c != 'q') s->write_all(&c, 1, ec);
        if (ec) errors.note(describe("pong", ec));
        if (ec || c == 'q') return;
      }
    }));
    fibers.push_back(rt.spawn([this, s = &ping, on_round] {
      char c = 'p';
      std::error_code ec;
      while (!stop.load() && !ec) {
        s->write_all(&c, 1, ec);
        if (!ec) s->read_exact(&c, 1, ec);
        if (ec) {
          errors.note(describe("ping", ec));
          break;
        }
        rounds.fetch_add(1);
        on_round();
      }
      s->write_all("q", 1, ec);
    }));
  }
  void finish() {
    stop.store(true);
    for (auto& f : fibers) f.join();
  }
};

}  // namespace

class IoStressTest : public RuntimeTest {};
INSTANTIATE_TEST_SUITE_P(Workers, IoStressTest, ::testing::Values(2u), weft_test::workers_name);

TEST_P(IoStressTest, CloseWhileWaitingCancelsPromptlyAndLeavesNoStaleWakeUp) {
  // T21. Lanes run side by side so the 5 ms stale-wake-up probes overlap; descriptor numbers
  // are shared by all lanes, so a closed number is usually taken again by the next pair.
  const long iterations = sized(10000, 2000, 500);
  const long lanes = 16;
  std::atomic<long> wrong_cancel{0}, over_budget{0}, max_latency_us{0}, reused{0}, early{0}, bad_data{0};
  first_error errors;
  rt().block_on([&] {
    weft::wait_group wg;
    wg.add(lanes);
    for (long lane = 0; lane < lanes; ++lane) {
      weft::spawn([&, lane] {
        std::mt19937 rng(static_cast<unsigned>(lane));
        for (long i = lane; i < iterations; i += lanes) {
          int old_fd = -1;
          {
            auto p = unix_stream::pair();
            unix_stream& a = p.first;
            old_fd = a.native_handle();
            a.set_read_deadline(clk::now() + 5s);  // a lost cancellation fails, not hangs
            std::atomic<bool> entered{false};
            std::error_code ec;
            clk::time_point returned;
            auto reader = weft::spawn([&] {
              char c;
              entered.store(true);
              a.read_some(&c, 1, ec);
              returned = clk::now();
            });
            while (!entered.load()) weft::this_fiber::yield();
            auto spin_until = clk::now() + std::chrono::microseconds(rng() % 201);
            while (clk::now() < spin_until) {
            }
            auto closed_at = clk::now();
            a.close();
            reader.join();
            if (ec != std::errc::operation_canceled) {
              wrong_cancel.fetch_add(1);
              errors.note(describe("read during close", ec));
            }
            long us = micros(returned - closed_at);
            if (us > 10'000) over_budget.fetch_add(1);
            long prev = max_latency_us.load();
            while (us > prev && !max_latency_us.compare_exchange_weak(prev, us)) {
            }
          }
          // Both numbers are free again: a new pair probably gets one of them. Nothing meant for
          // the old records may end a wait on the new ones early or deliver anything.
          auto [c, d] = unix_stream::pair();
          if (c.native_handle() == old_fd || d.native_handle() == old_fd) reused.fetch_add(1);
          auto start = clk::now();
          c.set_read_deadline(start + 5ms);
          char got = 0;
          std::error_code ec;
          std::size_t n = c.read_some(&got, 1, ec);
          if (n != 0 || ec != std::errc::timed_out || clk::now() - start < 5ms) {
            early.fetch_add(1);
            errors.note(describe("read on the reused descriptor", ec));
          }
          c.set_read_deadline(clk::now() + 5s);
          char sent = static_cast<char>(i);
          d.write_all(&sent, 1);
          if (c.read_some(&got, 1, ec) != 1 || ec || got != sent) {
            bad_data.fetch_add(1);
            errors.note(describe("read after the probe", ec));
          }
        }
        wg.done();
      }).detach();
    }
    EXPECT_TRUE(wg.wait_for(90s));
  });
  RecordProperty("iterations", std::to_string(iterations));
  RecordProperty("max_cancel_latency_us", std::to_string(max_latency_us.load()));
  RecordProperty("over_10ms", std::to_string(over_budget.load()));
  RecordProperty("fd_reused", std::to_string(reused.load()));
  EXPECT_EQ(wrong_cancel.load(), 0) << errors.text();
  EXPECT_EQ(early.load(), 0) << errors.text();
  EXPECT_EQ(bad_data.load(), 0) << errors.text();
  EXPECT_GT(reused.load(), iterations / 4) << "the test did not exercise descriptor-number reuse";
  // A lost or late cancellation shows as the 5 s read deadline. Beyond that, 10 ms is a
  // budget for the wake-up path; on 2 shared cores running the suite in parallel a worker is
  // sometimes off its CPU for that long (one case in 10,000 took 10.6 ms), so one case in a
  // thousand may exceed it, but none by 100x.
  if (weft_test::timing_budgets_apply()) {
    EXPECT_LE(over_budget.load(), iterations / 1000) << "max " << max_latency_us.load() << " us";
    EXPECT_LT(max_latency_us.load(), 1'000'000);
  }
}

TEST_P(IoStressTest, ConnectAcceptCloseChurnServesEveryConnectionOnce) {
  // T22: each connection carries its number; the server echoes it and marks it served.
  const long cycles = sized(50000, 5000, 2000);
  const int acceptors = 4;
  const int clients = 8;
  std::vector<std::atomic<int>> served(static_cast<std::size_t>(cycles));
  first_error server_errors, client_errors;
  std::atomic<long> canceled{0};
  auto start = clk::now();
  rt().block_on([&] {
    auto l = tcp_listener::bind(endpoint::loopback_v4(0), {.backlog = 4096});
    auto ep = l.local_endpoint();
    l.set_read_deadline(clk::now() + 90s);
    std::vector<weft::join_handle<void>> servers, cs;
    for (int a = 0; a < acceptors; ++a) {
      servers.push_back(weft::spawn([&] {
        for (;;) {
          std::error_code ec;
          tcp_stream s = l.accept(ec);
          if (ec == std::errc::operation_canceled) {
            canceled.fetch_add(1);
            return;
          }
          if (ec) {
            server_errors.note(describe("accept", ec));
            if (ec == std::errc::timed_out) return;
            continue;
          }
          s.set_deadline(clk::now() + 10s);
          std::uint32_t id = 0;
          s.read_exact(&id, sizeof id, ec);
          if (ec || id >= static_cast<std::uint32_t>(cycles)) {
            server_errors.note(describe("server read", ec));
            continue;
          }
          served[id].fetch_add(1);
          s.write_all(&id, sizeof id, ec);
          if (ec) server_errors.note(describe("server write", ec));
        }
      }));
    }
    for (int c = 0; c < clients; ++c) {
      cs.push_back(weft::spawn([&, c] {
        for (long id = c; id < cycles; id += clients) {
          std::error_code ec;
          tcp_stream s = tcp_stream::connect(ep, clk::now() + 10s, ec);
          if (ec) {
            client_errors.note(describe("connect", ec));
            continue;
          }
          s.set_deadline(clk::now() + 10s);
          auto v = static_cast<std::uint32_t>(id);
          std::uint32_t back = ~v;
          s.write_all(&v, sizeof v, ec);
          if (!ec) s.read_exact(&back, sizeof back, ec);
          if (ec || back != v) client_errors.note(describe("client echo", ec));
          close_with_reset(s);
        }
      }));
    }
    for (auto& h : cs) h.join();
    l.close();
    for (auto& h : servers) h.join();
  });
  RecordProperty("cycles", std::to_string(cycles));
  RecordProperty("elapsed_ms", std::to_string(micros(clk::now() - start) / 1000));
  EXPECT_EQ(server_errors.count(), 0) << server_errors.text();
  EXPECT_EQ(client_errors.count(), 0) << client_errors.text();
  EXPECT_EQ(canceled.load(), acceptors);
  long once = 0;
  for (auto& s : served) once += s.load() == 1 ? 1 : 0;
  EXPECT_EQ(once, cycles);
}

// The record behind a socket (a protected member, read through a member pointer of a class
// derived from socket, which may name it).
struct desc_of : weft::net::socket {
  static weft::detail::io_desc* get(const weft::net::socket& s) { return s.*(&desc_of::desc_); }
};

TEST_P(IoStressTest, AcceptHerdTakesEachConnectionOnceAndEndsOnClose) {
  // T23: twenty fibers accept on one listener; every connection is taken by exactly one of them.
  const long connections = sized(1000, 500, 300);
  const int acceptors = 20;
  const int clients = 10;
  std::vector<std::atomic<int>> taken(static_cast<std::size_t>(connections));
  std::vector<long> per_acceptor(acceptors, 0);
  std::atomic<long> canceled{0};
  first_error errors;
  std::uint64_t switches = 0;
  std::uint32_t wakeups = 0;
  rt().block_on([&] {
    auto l = tcp_listener::bind(endpoint::loopback_v4(0));
    auto* ld = desc_of::get(l);
    auto ep = l.local_endpoint();
    l.set_read_deadline(clk::now() + 60s);
    std::atomic<int> waiting{0};
    std::vector<weft::join_handle<void>> acc, cs;
    for (int a = 0; a < acceptors; ++a) {
      acc.push_back(weft::spawn([&, a] {
        for (;;) {
          std::error_code ec;
          waiting.fetch_add(1);
          tcp_stream s = l.accept(ec);
          if (ec == std::errc::operation_canceled) {
            canceled.fetch_add(1);
            return;
          }
          if (ec) {
            errors.note(describe("accept", ec));
            return;
          }
          s.set_deadline(clk::now() + 10s);
          std::uint32_t id = 0;
          s.read_exact(&id, sizeof id, ec);
          if (ec || id >= static_cast<std::uint32_t>(connections)) {
            errors.note(describe("server read", ec));
            continue;
          }
          taken[id].fetch_add(1);
          ++per_acceptor[static_cast<std::size_t>(a)];
          s.write_all("k", 1, ec);
          if (ec) errors.note(describe("server write", ec));
        }
      }));
    }
    EXPECT_TRUE(weft_test::wait_until([&] { return waiting.load() >= acceptors; }));
    std::uint64_t cs0 = rt().stats().context_switches;
    std::uint32_t w0 = weft::detail::io_wakeups(ld, weft::detail::io_dir::read);
    for (int c = 0; c < clients; ++c) {
      cs.push_back(weft::spawn([&, c] {
        for (long id = c; id < connections; id += clients) {
          std::error_code ec;
          tcp_stream s = tcp_stream::connect(ep, clk::now() + 10s, ec);
          if (ec) {
            errors.note(describe("connect", ec));
            continue;
          }
          s.set_deadline(clk::now() + 10s);
          auto v = static_cast<std::uint32_t>(id);
          char ack = 0;
          s.write_all(&v, sizeof v, ec);
          if (!ec) s.read_exact(&ack, 1, ec);
          if (ec || ack != 'k') errors.note(describe("client", ec));
          close_with_reset(s);
        }
      }));
    }
    for (auto& h : cs) h.join();
    switches = rt().stats().context_switches - cs0;
    wakeups = weft::detail::io_wakeups(ld, weft::detail::io_dir::read) - w0;
    auto closed_at = clk::now();
    l.close();
    for (auto& h : acc) h.join();
    EXPECT_LT(clk::now() - closed_at, 5s);
  });
  long once = 0;
  for (auto& t : taken) once += t.load() == 1 ? 1 : 0;
  long busy = std::count_if(per_acceptor.begin(), per_acceptor.end(), [](long n) { return n > 0; });
  RecordProperty("context_switches_per_connection_x100", std::to_string(switches * 100 / static_cast<std::uint64_t>(connections)));
  RecordProperty("acceptors_used", std::to_string(busy));
  RecordProperty("listener_wakeups", std::to_string(wakeups));
  EXPECT_EQ(errors.count(), 0) << errors.text();
  // No herd: a readiness event wakes the one acceptor parked in the listener's read slot; the
  // others queue behind it on the descriptor's turn (handed on one at a time, as Go's fdMutex).
  EXPECT_LE(wakeups * 10, static_cast<std::uint32_t>(connections) * 12) << wakeups << " wake-ups";
  EXPECT_EQ(once, connections);
  EXPECT_EQ(canceled.load(), acceptors) << "every acceptor ends with operation_canceled on close";
}

TEST_P(IoStressTest, TenThousandConcurrentConnectionsEchoEveryByte) {
  // A fiber per connection on both sides, all connected at once before any byte moves. Each
  // connection costs two descriptors here, so the count stays under RLIMIT_NOFILE.
  ::rlimit lim{};
  ::getrlimit(RLIMIT_NOFILE, &lim);
  const long budget = (free_fds_below(static_cast<long>(lim.rlim_cur)) - 64) / 2;
  const long n = std::min(sized(10000, 2000, 1000), budget);
  ASSERT_GE(n, 500) << "RLIMIT_NOFILE " << lim.rlim_cur << " is too low for this test";
  const int connectors = 8;
  std::atomic<long> accepted{0}, connected{0}, ok{0}, bytes_checked{0}, bytes_sent{0};
  std::uint64_t live_at_gate = 0;
  first_error errors;
  rt().block_on([&] {
    auto l = tcp_listener::bind(endpoint::loopback_v4(0), {.backlog = 4096});
    auto ep = l.local_endpoint();
    l.set_read_deadline(clk::now() + 60s);
    weft::wait_group conns;  // every fiber below, both sides
    weft::wait_group gate;   // opened once every connection is up on both sides
    gate.add(1);
    auto server = weft::spawn([&] {
      while (accepted.load() < n) {
        std::error_code ec;
        tcp_stream s = l.accept(ec);
        if (ec) {
          errors.note(describe("accept", ec));
          return;
        }
        accepted.fetch_add(1);
        conns.add(1);
        weft::spawn([&, s = std::move(s)]() mutable {
          s.set_deadline(clk::now() + 60s);
          char buf[256];
          for (;;) {
            std::error_code e;
            std::size_t k = s.read_some(buf, sizeof buf, e);
            if (e) errors.note(describe("server read", e));
            if (e || k == 0) break;
            s.write_all(buf, k, e);
            if (e) {
              errors.note(describe("server write", e));
              break;
            }
          }
          conns.done();
        }).detach();
      }
    });
    std::vector<weft::join_handle<void>> cs;
    for (int c = 0; c < connectors; ++c) {
      cs.push_back(weft::spawn([&, c] {
        for (long id = c; id < n; id += connectors) {
          std::error_code ec;
          tcp_stream s = tcp_stream::connect(ep, clk::now() + 10s, ec);
          if (ec) {
            errors.note(describe("connect", ec));
            continue;
          }
          connected.fetch_add(1);
          conns.add(1);
          weft::spawn([&, id, s = std::move(s)]() mutable {
            s.set_deadline(clk::now() + 60s);
            if (!gate.wait_for(60s)) errors.note("gate never opened");
            std::mt19937 rng(static_cast<unsigned>(id));
            std::vector<unsigned char> out(1 + rng() % 64), in(out.size());
            for (auto& b : out) b = static_cast<unsigned char>(rng());
            std::error_code e;
            s.write_all(out.data(), out.size(), e);
            if (!e) s.read_exact(in.data(), in.size(), e);
            bytes_sent.fetch_add(static_cast<long>(out.size()));
            long same = 0;
            for (std::size_t i = 0; i < out.size(); ++i) same += out[i] == in[i] ? 1 : 0;
            bytes_checked.fetch_add(same);
            char extra;
            if (!e) s.shutdown(weft::net::shutdown_how::write, e);
            if (!e && s.read_some(&extra, 1, e) != 0) errors.note("data after the echo");
            if (e) errors.note(describe("client", e));
            if (!e && same == static_cast<long>(out.size())) ok.fetch_add(1);
            conns.done();
          }).detach();
        }
      }));
    }
    for (auto& h : cs) h.join();
    server.join();
    EXPECT_EQ(connected.load(), n);
    EXPECT_EQ(accepted.load(), n);
    live_at_gate = rt().stats().live_fibers;
    gate.done();
    EXPECT_TRUE(conns.wait_for(60s));
  });
  RecordProperty("connections", std::to_string(n));
  RecordProperty("live_fibers_at_gate", std::to_string(live_at_gate));
  EXPECT_EQ(errors.count(), 0) << errors.text();
  EXPECT_EQ(ok.load(), n);
  EXPECT_EQ(bytes_checked.load(), bytes_sent.load());
  EXPECT_GE(live_at_gate, static_cast<std::uint64_t>(2 * n)) << "connections were not all open at once";
}

TEST_P(IoStressTest, BackpressureParksTheWriterUntilTheReaderDrains) {
  // T26: the reader stops; the writer fills the socket buffers and parks (no CPU, no fiber
  // switches), then every byte arrives in order once the reader drains.
  const std::size_t total = static_cast<std::size_t>(sized(64, 16, 8)) << 20;
  auto pattern = [](std::size_t i) { return static_cast<unsigned char>((i * 131) ^ (i >> 12)); };
  long parked_cpu_us = 0;
  std::uint64_t parked_switches = 0;
  std::size_t parked_at = 0, moved_while_parked = 0;
  rt().block_on([&] {
    auto p = tcp_pair();
    tcp_stream& reader = p.first;
    tcp_stream& writer = p.second;
    writer.set_send_buffer(64 << 10);
    reader.set_receive_buffer(64 << 10);
    writer.set_deadline(clk::now() + 60s);
    reader.set_deadline(clk::now() + 60s);
    std::atomic<std::size_t> written{0};
    std::error_code write_ec;
    auto producer = weft::spawn([&] {
      std::vector<unsigned char> chunk(256 << 10);
      for (std::size_t off = 0; off < total; off += chunk.size()) {
        std::size_t k = std::min(chunk.size(), total - off);
        for (std::size_t i = 0; i < k; ++i) chunk[i] = pattern(off + i);
        // write_some, so `written` follows every byte the kernel took.
        for (std::size_t done = 0; done < k;) {
          std::size_t w = writer.write_some(chunk.data() + done, k - done, write_ec);
          if (write_ec) return;
          done += w;
          written.fetch_add(w);
        }
      }
    });
    // Parked: the send buffer is full, so the writer's last call got EAGAIN. (TCP may still
    // move a window's worth now and then; that wakes the writer once, it does not spin it.)
    EXPECT_TRUE(weft_test::wait_until([&] {
      ::pollfd pfd{writer.native_handle(), POLLOUT, 0};
      return ::poll(&pfd, 1, 0) == 0;
    }));
    parked_at = written.load();
    long cpu0 = process_cpu_us();
    std::uint64_t cs0 = rt().stats().context_switches;
    weft::this_fiber::sleep_for(200ms);
    parked_switches = rt().stats().context_switches - cs0;
    parked_cpu_us = process_cpu_us() - cpu0;
    moved_while_parked = written.load() - parked_at;
    EXPECT_GT(written.load(), 0u);
    EXPECT_LT(written.load(), total);
    std::vector<unsigned char> buf(1 << 20);
    std::size_t got = 0;
    long mismatches = 0;
    while (got < total) {
      std::error_code ec;
      std::size_t k = reader.read_some(buf.data(), std::min(buf.size(), total - got), ec);
      if (ec || k == 0) {
        ADD_FAILURE() << "reader stopped at " << got << ": " << ec.message();
        reader.close();  // ends the producer too
        break;
      }
      for (std::size_t i = 0; i < k; ++i) mismatches += buf[i] != pattern(got + i) ? 1 : 0;
      got += k;
    }
    producer.join();
    EXPECT_FALSE(write_ec) << write_ec.message();
    EXPECT_EQ(got, total);
    EXPECT_EQ(written.load(), total);
    EXPECT_EQ(mismatches, 0);
  });
  RecordProperty("bytes_buffered_while_parked", std::to_string(parked_at));
  RecordProperty("bytes_moved_while_parked", std::to_string(moved_while_parked));
  RecordProperty("parked_cpu_us", std::to_string(parked_cpu_us));
  RecordProperty("parked_context_switches", std::to_string(parked_switches));
  EXPECT_LT(parked_at + moved_while_parked, std::size_t{4} << 20) << "the socket buffers held more than the cap";
  EXPECT_LT(parked_switches, 50u) << "the writer spins instead of parking";
  if (weft_test::timing_budgets_apply()) {
    EXPECT_LT(parked_cpu_us, 50'000);
  }
}

TEST_P(IoStressTest, BlockingCallOnOneWorkerDoesNotStopTheOthers) {
  // T19: a fiber pinned to worker 0 blocks its thread in ::usleep for 300 ms. The ping-pong
  // goes on, and fibers queued behind the sleeper on worker 0 are stolen.
  const int queued = 8;
  auto pair = rt().block_on([] { return unix_stream::pair(); });
  ping_pong game;
  game.start(rt(), pair.first, pair.second);
  EXPECT_TRUE(weft_test::wait_until([&] { return game.rounds.load() > 100; }));
  int worker = -1;
  long before = 0, after = 0;
  std::atomic<int> ran_during_stall{0};
  std::vector<long> delay_us(queued, -1);
  auto blocker = weft::spawn(weft::spawn_options{.runtime = &rt(), .pinned = true}, [&] {
    worker = weft::this_fiber::worker_index();
    auto stall_start = clk::now();
    std::vector<weft::join_handle<void>> q;
    for (int k = 0; k < queued; ++k) {
      q.push_back(weft::spawn([&, k] {
        delay_us[static_cast<std::size_t>(k)] = micros(clk::now() - stall_start);
        ran_during_stall.fetch_add(1);
      }));
    }
    before = game.rounds.load();
    ::usleep(300'000);
    after = game.rounds.load();
    int ran = ran_during_stall.load();
    for (auto& h : q) h.join();
    ran_during_stall.store(ran);
  });
  blocker.join();
  game.finish();
  long worst = *std::max_element(delay_us.begin(), delay_us.end());
  RecordProperty("rounds_during_stall", std::to_string(after - before));
  RecordProperty("worst_steal_delay_us", std::to_string(worst));
  EXPECT_EQ(worker, 0) << "a pinned fiber spawned from a plain thread runs on worker 0";
  EXPECT_EQ(game.errors.count(), 0) << game.errors.text();
  EXPECT_GT(after - before, 10) << "ping-pong stopped while worker 0 was blocked";
  EXPECT_EQ(ran_during_stall.load(), queued) << "fibers queued on the blocked worker were not stolen";
  if (weft_test::timing_budgets_apply()) {
    EXPECT_LT(worst, 50'000);
  }
}

// --- T28: fork/exec and signals ------------------------------------------------------------

namespace {

std::atomic<long> g_signals{0};
void count_signal(int) { g_signals.fetch_add(1, std::memory_order_relaxed); }

// Waits for `pid` on the blocking pool, polling so the wait has a deadline; kills it past that.
// Returns the wait status, or -1.
int reap_within(pid_t pid, clk::duration limit) {
  return weft::run_blocking([&] {
    auto end = clk::now() + limit;
    for (;;) {
      int st = 0;
      pid_t r = ::waitpid(pid, &st, WNOHANG);
      if (r == pid) return st;
      if (r < 0 && errno != EINTR) return -1;
      if (clk::now() > end) {
        ::kill(pid, SIGKILL);
        ::waitpid(pid, &st, 0);
        return -1;
      }
      std::this_thread::sleep_for(200us);
    }
  });
}

}  // namespace

TEST_P(IoStressTest, ForkAndExecFromAFiberWhileWorkersRun) {
  const int children = static_cast<int>(sized(20, 10, 6));
  std::atomic<bool> stop{false};
  std::atomic<long> spins{0};
  long worst_us = 0;
  rt().block_on([&] {
    std::vector<weft::join_handle<void>> busy;
    for (int i = 0; i < 4; ++i) {
      busy.push_back(weft::spawn([&] {
        while (!stop.load()) {
          spins.fetch_add(1);
          weft::this_fiber::yield();
        }
      }));
    }
    for (int i = 0; i < children; ++i) {
      auto start = clk::now();
      pid_t pid = -1;
      char arg0[] = "true";
      char* argv[] = {arg0, nullptr};
      if (i % 2 == 0) {
        if (::posix_spawn(&pid, "/bin/true", nullptr, nullptr, argv, environ) != 0) pid = -1;
      } else if ((pid = ::fork()) == 0) {
        ::execv("/bin/true", argv);
        ::_exit(127);
      }
      if (pid < 0) {
        ADD_FAILURE() << "cannot start child " << i << ": " << std::strerror(errno);
        break;
      }
      int st = reap_within(pid, 10s);
      worst_us = std::max(worst_us, micros(clk::now() - start));
      EXPECT_TRUE(st >= 0 && WIFEXITED(st) && WEXITSTATUS(st) == 0) << "child " << i << " status " << st;
    }
    stop.store(true);
    for (auto& h : busy) h.join();
  });
  RecordProperty("worst_child_ms", std::to_string(worst_us / 1000));
  EXPECT_GT(spins.load(), 0);
  if (weft_test::timing_budgets_apply()) {
    EXPECT_LT(worst_us, 1'000'000);
  }
}

TEST_P(IoStressTest, SignalsDuringPingPongCauseNoErrors) {
  // 200 SIGUSR1 (100 with SA_RESTART, 100 without, so blocked calls see EINTR) at worker
  // threads and at the process while fibers ping-pong over TCP. Each signal is sent only after
  // the previous one was handled, so none coalesce and the count is exact. Under TSan a signal
  // that arrives during a raw syscall (the runtime's futex waits) or on a fiber that then parks
  // is handled only when that context next enters an intercepted call, seconds later at times:
  // there the signals go out 200 us apart and only "some were handled" is checked.
  const bool exact = weft_test::current_build() != weft_test::build_kind::tsan;
  const int signals = 200;
  std::atomic<pid_t> worker_tid[2] = {0, 0};
  auto socks = rt().block_on([] {
    std::vector<std::pair<tcp_stream, tcp_stream>> v;
    for (int i = 0; i < 3; ++i) v.push_back(tcp_pair());
    return v;
  });
  std::vector<std::unique_ptr<ping_pong>> games;
  for (auto& p : socks) {
    games.push_back(std::make_unique<ping_pong>());
    games.back()->start(rt(), p.first, p.second, [&] {
      int w = weft::this_fiber::worker_index();
      if (w == 0 || w == 1) worker_tid[w].store(static_cast<pid_t>(::syscall(SYS_gettid)));
    });
  }
  auto rounds = [&] {
    long n = 0;
    for (auto& g : games) n += g->rounds.load();
    return n;
  };
  EXPECT_TRUE(weft_test::wait_until([&] { return rounds() > 100; }));
  const long rounds_before = rounds();
  struct sigaction old{};
  struct sigaction sa{};
  sa.sa_handler = count_signal;
  sigemptyset(&sa.sa_mask);
  g_signals.store(0);
  long unhandled = 0;
  for (int i = 0; i < signals; ++i) {
    if (i == 0 || i == signals / 2) {
      sa.sa_flags = i == 0 ? SA_RESTART : 0;
      ::sigaction(SIGUSR1, &sa, i == 0 ? &old : nullptr);
    }
    pid_t tid = worker_tid[i % 2].load();
    if (i % 3 == 2 || tid == 0) {
      ::kill(::getpid(), SIGUSR1);  // the kernel picks a thread: often this one, in a wait
    } else {
      ::syscall(SYS_tgkill, ::getpid(), tid, SIGUSR1);
    }
    if (!exact) {
      std::this_thread::sleep_for(200us);
    } else if (!weft_test::wait_until([&] { return g_signals.load() > i; }, 2s)) {
      ++unhandled;
    }
  }
  if (!exact && !weft_test::wait_until([&] { return g_signals.load() > 0; }, 20s)) ++unhandled;
  const long rounds_after = rounds();
  long errors = 0;
  std::string first;
  for (auto& g : games) {
    g->finish();
    errors += g->errors.count();
    if (first.empty()) first = g->errors.text();
  }
  // Pending signals would kill the process once the default action is back: keep counting.
  if (exact && unhandled == 0) ::sigaction(SIGUSR1, &old, nullptr);
  RecordProperty("rounds_during_signals", std::to_string(rounds_after - rounds_before));
  RecordProperty("signals_handled", std::to_string(g_signals.load()));
  EXPECT_EQ(errors, 0) << first;
  EXPECT_EQ(unhandled, 0);
  if (exact) {
    EXPECT_EQ(g_signals.load(), signals);
  } else {
    EXPECT_GT(g_signals.load(), 0);
    EXPECT_LE(g_signals.load(), signals);
  }
  EXPECT_GT(rounds_after, rounds_before);
}
