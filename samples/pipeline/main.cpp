// pipeline: a batch program in plain thread style on weft: a producer fiber -> a channel of
// items -> N worker fibers (each counts the primes in its item's range of numbers) -> a channel
// of results -> a sink fiber. It shows channels with back-pressure, a wait_group that closes the
// result channel once every worker has finished, weft::select over the result channel and a
// timeout (the sink prints a progress line on each tick and enforces --timeout-ms), and a
// task_group: the first failure (an error injected with --fail-at) requests stop, every fiber
// sees it through its std::stop_token (in channel operations and between numbers), and the
// program exits 1 naming the failing item. SIGINT/SIGTERM stop it the same way, then it prints
// its summary and exits 0.
//
// The checksum is a sum over items, so it does not depend on the order results arrive in:
// every --workers / --parallel setting prints the same one.
#include "sample_support.hpp"

#include <weft/weft.hpp>

#include <algorithm>
#include <chrono>
#include <cinttypes>
#include <cstdint>
#include <cstdio>
#include <optional>
#include <stdexcept>
#include <stop_token>
#include <string>
#include <string_view>
#include <vector>

namespace {

using clock_type = std::chrono::steady_clock;

struct options {
  unsigned workers = 0;  // runtime threads; 0 = one per core
  std::uint64_t items = 50000;
  unsigned parallel = 4;  // worker fibers
  std::uint64_t span = 100;
  std::optional<std::uint64_t> fail_at;
  std::chrono::milliseconds timeout{0};  // 0 = none
  std::chrono::milliseconds progress{1000};
  std::size_t queue = 64;
};

const char* const kUsage =
    "A batch pipeline on weft fibers: a producer sends items 0..N-1 over a channel to worker\n"
    "fibers; item i counts the primes in [i*SPAN, (i+1)*SPAN); a sink adds up the results and\n"
    "prints a progress line to stderr every --progress-ms, then a summary with a checksum that\n"
    "does not depend on --workers or --parallel. Exit: 0 done or interrupted (SIGINT/SIGTERM),\n"
    "1 when an item fails or --timeout-ms passes, 2 on a usage error.";

// Returns -1 to run, or an exit code (0 after --help, 2 after a usage error).
int parse_args(int argc, char** argv, options& o) {
  auto ms = [](std::chrono::milliseconds& field) {
    return [&field](unsigned long v) { field = std::chrono::milliseconds(v); };
  };
  std::vector<sample::flag> flags = {
      sample::count_flag("--workers", "runtime worker threads (default 0 = one per core)", 0, 1024,
                         [&o](unsigned long v) { o.workers = static_cast<unsigned>(v); }),
      sample::count_flag("--items", "items to process (default 50000)", 0, 1UL << 40,
                         [&o](unsigned long v) { o.items = v; }),
      sample::count_flag("--parallel", "worker fibers (default 4)", 1, 100000,
                         [&o](unsigned long v) { o.parallel = static_cast<unsigned>(v); }),
      sample::count_flag("--span", "numbers per item (default 100)", 1, 1000000,
                         [&o](unsigned long v) { o.span = v; }),
      sample::count_flag("--fail-at", "make item N fail, to see the pipeline cancel", 0, 1UL << 40,
                         [&o](unsigned long v) { o.fail_at = v; }),
      sample::count_flag("--timeout-ms", "fail if the run takes longer (default 0 = no limit)", 0, 86400000,
                         ms(o.timeout)),
      sample::count_flag("--progress-ms", "progress line interval (default 1000)", 1, 3600000, ms(o.progress)),
      sample::count_flag("--queue", "capacity of each channel (default 64; 0 = rendezvous)", 0, 1000000,
                         [&o](unsigned long v) { o.queue = v; }),
  };
  int rc = sample::parse_command_line(argc, argv, "pipeline", kUsage, std::move(flags));
  if (rc < 0 && o.fail_at && *o.fail_at >= o.items) {
    // Items are numbered 0..items-1: this failure would never happen, and the run would look
    // like a demonstration of cancellation that it is not.
    if (o.items == 0) {
      std::fprintf(stderr, "pipeline: --fail-at %llu is not an item: there are none (--items 0)\n",
                   static_cast<unsigned long long>(*o.fail_at));
    } else {
      std::fprintf(stderr, "pipeline: --fail-at %llu is not an item: there are %llu (0..%llu)\n",
                   static_cast<unsigned long long>(*o.fail_at), static_cast<unsigned long long>(o.items),
                   static_cast<unsigned long long>(o.items - 1));
    }
    return 2;
  }
  return rc;
}

struct result {
  std::uint64_t item = 0;
  std::uint64_t primes = 0;
};

// What the sink has added up; read by main() after every fiber has ended.
struct totals {
  std::uint64_t done = 0;
  std::uint64_t primes = 0;
  std::uint64_t checksum = 0;
};

std::uint64_t splitmix64(std::uint64_t x) {
  x += 0x9e3779b97f4a7c15ULL;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
  return x ^ (x >> 31);
}

bool is_prime(std::uint64_t n) {
  if (n < 4) return n >= 2;
  if (n % 2 == 0) return false;
  for (std::uint64_t d = 3; d * d <= n; d += 2) {
    if (n % d == 0) return false;
  }
  return true;
}

// The work of one item: the primes in [item*span, (item+1)*span), by trial division. Checks
// for stop between numbers, so a cancelled pipeline ends within one number's work.
std::optional<std::uint64_t> count_primes(std::uint64_t item, std::uint64_t span, const std::stop_token& st) {
  std::uint64_t count = 0;
  for (std::uint64_t n = item * span; n < (item + 1) * span; ++n) {
    if (st.stop_requested()) return std::nullopt;
    if (is_prime(n)) ++count;
    // Fibers are not preempted: a long item would keep its worker from everything else,
    // including the timers behind the progress line and --timeout-ms when every worker is in
    // here. 256 candidates take well under a millisecond (docs/porting.md).
    if ((n & 255) == 255) weft::this_fiber::yield();
  }
  return count;
}

class pipeline {
 public:
  explicit pipeline(const options& o) : opts_(o), items_(o.queue), results_(o.queue) {}

  // Runs every stage in a task_group and waits for all of them. Rethrows the first failure
  // (the others were stopped by then). `interrupt` (SIGINT/SIGTERM) stops the group too.
  void run(std::stop_token interrupt) {
    started_ = clock_type::now();
    weft::task_group group;
    std::stop_callback forward(interrupt, [&group] { group.request_stop(); });
    group.spawn({.name = "producer"}, [this](std::stop_token st) { produce(st); });
    workers_.add(opts_.parallel);
    for (unsigned i = 0; i < opts_.parallel; ++i) {
      group.spawn({.name = "worker"}, [this](std::stop_token st) {
        struct on_exit {
          weft::wait_group& wg;
          ~on_exit() { wg.done(); }
        } done{workers_};
        work(st);
      });
    }
    // The results channel closes once every worker is gone, which ends the sink's loop.
    group.spawn({.name = "closer"}, [this] {
      workers_.wait();
      results_.close();
    });
    group.spawn({.name = "sink"}, [this](std::stop_token st) { sink(st); });
    group.join();
  }

  const totals& sum() const noexcept { return sum_; }

 private:
  void produce(const std::stop_token& st) {
    for (std::uint64_t i = 0; i < opts_.items; ++i) {
      if (items_.send(i, st) != weft::channel_status::ok) return;  // stopped
    }
    items_.close();
  }

  void work(const std::stop_token& st) {
    std::uint64_t item = 0;
    while (items_.recv(item, st) == weft::channel_status::ok) {
      if (opts_.fail_at == item) {
        throw std::runtime_error("item " + std::to_string(item) + ": injected failure (--fail-at)");
      }
      std::optional<std::uint64_t> primes = count_primes(item, opts_.span, st);
      if (!primes) return;
      if (results_.send(result{item, *primes}, st) != weft::channel_status::ok) return;
    }
  }

  void sink(const std::stop_token& st) {
    std::optional<clock_type::time_point> give_up;
    if (opts_.timeout.count() > 0) give_up = started_ + opts_.timeout;
    clock_type::time_point tick = started_ + opts_.progress;
    for (;;) {
      result r;
      clock_type::time_point wake = give_up ? std::min(tick, *give_up) : tick;
      weft::select_result s =
          weft::select(weft::case_recv(results_, r), weft::case_deadline(wake), weft::case_stop(st));
      if (s.index == 0 && s.status == weft::channel_status::closed) return;  // all results in
      if (s.index == 2) return;                                              // stopped
      if (s.index == 0) {
        sum_.done++;
        sum_.primes += r.primes;
        sum_.checksum += splitmix64(r.item * 0x100000001b3ULL + r.primes);
      }
      clock_type::time_point now = clock_type::now();
      if (give_up && now >= *give_up) {
        throw std::runtime_error("timed out after " + std::to_string(opts_.timeout.count()) + " ms with " +
                                 std::to_string(sum_.done) + "/" + std::to_string(opts_.items) + " items done");
      }
      // Also checked after a result: under a steady stream the timeout case may never be chosen.
      if (now >= tick) {
        double done = static_cast<double>(sum_.done);
        double secs = std::chrono::duration<double>(now - started_).count();
        std::fprintf(stderr, "pipeline: %" PRIu64 "/%" PRIu64 " items (%.1f%%), %.0f items/s\n", sum_.done,
                     opts_.items, 100.0 * done / static_cast<double>(std::max<std::uint64_t>(opts_.items, 1)),
                     done / secs);
        tick = now + opts_.progress;
      }
    }
  }

  const options opts_;
  weft::channel<std::uint64_t> items_;
  weft::channel<result> results_;
  weft::wait_group workers_;
  totals sum_;  // Ownership: only the sink fiber writes it.
  clock_type::time_point started_;
};

}  // namespace

int main(int argc, char** argv) {
  options opts;
  if (int rc = parse_args(argc, argv, opts); rc >= 0) return rc;
  std::stop_source interrupt;
  sample::stop_signals signals(interrupt);  // before any thread starts

  pipeline p(opts);
  std::string error;
  weft::runtime_stats stats;
  double seconds = 0;
  {
    weft::runtime rt(weft::runtime_options{.workers = opts.workers});
    auto started = std::chrono::steady_clock::now();
    rt.block_on([&] {
      try {
        p.run(interrupt.get_token());
      } catch (const std::exception& e) {
        error = e.what();
      }
    });
    seconds = sample::seconds_since(started);
    stats = rt.stats();
  }
  const totals& t = p.sum();
  if (!error.empty()) std::fprintf(stderr, "pipeline: error: %s\n", error.c_str());
  const char* outcome = !error.empty() ? "failed" : signals.received() != 0 ? "interrupted" : "done";
  std::printf("pipeline: %s: %" PRIu64 "/%" PRIu64 " items, primes=%" PRIu64 " checksum=%016" PRIx64
              ", %u worker fibers, in %.2f s (%.0f items/s); %s\n",
              outcome, t.done, opts.items, t.primes, t.checksum, opts.parallel, seconds,
              static_cast<double>(t.done) / std::max(seconds, 1e-9), sample::runtime_summary(stats).c_str());
  return error.empty() ? 0 : 1;
}
