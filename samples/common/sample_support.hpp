// Shared plumbing of the weft samples: the command line every sample takes (--help, --port,
// --bind, --workers plus its own flags), SIGINT/SIGTERM turned into a std::stop_source request,
// the runtime-statistics part of the summary line, the set of open connections that shutdown
// closes, and the graceful close that keeps a final reply from being destroyed by a reset.
// Invariant: samples never install signal handlers; stop signals are blocked in every thread
// and only stop_signals' watcher thread receives them (sigwait).
#pragma once

#include <weft/weft.hpp>

#include <signal.h>

#include <chrono>
#include <cstdint>
#include <cstdio>
#include <functional>
#include <mutex>
#include <stop_token>
#include <string>
#include <string_view>
#include <thread>
#include <unordered_set>
#include <vector>

namespace sample {

/// The options every server sample takes.
struct common_options {
  std::uint16_t port = 0;
  std::string bind = "127.0.0.1";
  unsigned workers = 0;  ///< 0 = one per core
};

/// A sample-specific command-line flag. `set` receives the value (nullptr for a switch) and
/// returns false to reject it; `parse_args` then prints "<prog>: <name> wants <what>".
struct flag {
  std::string name;                      ///< "--root"
  std::string value_name;                ///< "DIR"; empty for a switch without a value
  std::string help;                      ///< one line, printed by --help
  std::string what;                      ///< for the error message: "a directory"
  std::function<bool(const char*)> set;  ///< stores the parsed value
};

/// A positional argument, such as a client's target "HOST:PORT". `set` returns false to reject
/// it; the parser then prints "<prog>: <name> wants <what>".
struct operand {
  std::string name;                      ///< "HOST:PORT"
  std::string help;                      ///< one line, printed by --help
  std::string what;                      ///< for the error message: "a host and a port"
  std::function<bool(const char*)> set;  ///< stores the parsed value
};

/// Parses an unsigned decimal in [0, max] (no sign, no trailing characters).
bool parse_uint(const char* s, unsigned long max, unsigned long& out);

/// Splits "HOST:PORT" ("127.0.0.1:7007", "localhost:7007", "[::1]:7007"; brackets dropped)
/// into its parts; false unless the host is non-empty and the port is in 1..65535.
bool split_host_port(std::string_view text, std::string& host, std::string& port);

/// Parses a duration in seconds in [0, max_seconds] ("10", "0.5"; no sign, no trailing characters).
bool parse_seconds(const char* s, double max_seconds, double& out);

/// The general parser under parse_args, for programs that are not servers (a client): `flags`,
/// and when `arg` is given exactly one operand. --help prints the usage line, `usage`, the flags
/// and `footer` (each may be empty) to stdout. Returns -1 to run, 0 after --help, or 2 after a
/// usage error (printed to stderr naming the flag).
int parse_command_line(int argc, char** argv, const char* prog, const char* usage, std::vector<flag> flags,
                       const operand* arg = nullptr, const char* footer = nullptr);

/// Parses argv into `common` and the sample's `extra` flags. `usage` is the text after the
/// usage line (what the program does; may be empty). Returns -1 to run, 0 after --help (the
/// caller exits 0), or 2 after a usage error (printed to stderr naming the flag).
int parse_args(int argc, char** argv, const char* prog, const char* usage, common_options& common,
               std::vector<flag> extra = {});

/// A "--name N" flag that stores a count of milliseconds (0..86400000) in `out`.
flag millis_flag(std::string name, std::string help, std::chrono::milliseconds& out);

/// Turns SIGINT/SIGTERM into `stop.request_stop()`. Construct it at the top of main(), before
/// any thread exists (runtime workers inherit the blocked mask). The destructor ends the
/// watcher even when no signal came (the server ended on its own, e.g. a bind error).
class stop_signals {
 public:
  explicit stop_signals(std::stop_source stop);
  ~stop_signals();
  stop_signals(const stop_signals&) = delete;
  stop_signals& operator=(const stop_signals&) = delete;

  /// The signal that requested stop (SIGINT or SIGTERM), or 0 if none came.
  int received() const noexcept { return received_.load(std::memory_order_acquire); }

 private:
  std::stop_source stop_;
  sigset_t set_{};
  std::atomic<int> received_{0};
  std::thread watcher_;
};

/// "runtime: workers=2 fibers spawned=... context_switches=... steals=... parks=... timers_fired=..."
std::string runtime_summary(const weft::runtime_stats& s);

/// Seconds elapsed since `since`, for summary lines.
double seconds_since(std::chrono::steady_clock::time_point since);

/// The open connections of a server, so shutdown can close those that outlive a grace period.
/// Safe from any fiber or thread.
template <class Stream>
class connection_set {
 public:
  void add(Stream* s) {
    std::lock_guard lk(mu_);
    set_.insert(s);
  }
  void remove(Stream* s) {
    std::lock_guard lk(mu_);
    set_.erase(s);
  }
  /// Closes every connection still registered (each blocked read ends with operation_canceled)
  /// and returns how many there were.
  std::size_t close_all() {
    std::lock_guard lk(mu_);
    for (Stream* s : set_) s->close();
    return set_.size();
  }
  /// Calls `f(stream)` on every connection still registered, under the set's lock (so `f` must
  /// not block: shutdown(read), say, which ends a parked read with end of stream).
  template <class F>
  void for_each(F f) {
    std::lock_guard lk(mu_);
    for (Stream* s : set_) f(*s);
  }
  std::size_t size() {
    std::lock_guard lk(mu_);
    return set_.size();
  }

 private:
  weft::mutex mu_;
  std::unordered_set<Stream*> set_;  // guarded by mu_
};

/// Binds the server's listener on `c.bind`:`c.port` and prints "listening on ADDR:PORT" on
/// stdout, flushed (tests and scripts wait for that line; port 0 picks a free one). On failure
/// prints "<prog>: <what failed>" to stderr and returns false. Runs on a fiber.
bool listen(const char* prog, const common_options& c, weft::net::tcp_listener& out);

/// Accepts connections until `st` is stopped, then closes the listener. Each connection runs
/// `serve(weft::net::tcp_stream&&)` on a fiber of its own, counted in `live` (added before
/// the spawn, done when `serve` returns; the fiber is detached). Other accept errors are
/// logged ("<prog>: accept: ...") and retried after 10 ms (EMFILE and ENFILE already back off
/// inside accept). Blocks the fiber.
template <class Serve>
void accept_until_stopped(const char* prog, weft::net::tcp_listener& l, std::stop_token st, weft::wait_group& live,
                          Serve serve) {
  for (;;) {
    std::error_code ec;
    weft::net::tcp_stream s = l.accept(st, ec);
    if (ec) {
      if (st.stop_requested()) break;
      std::fprintf(stderr, "%s: accept: %s\n", prog, ec.message().c_str());
      weft::this_fiber::sleep_for(std::chrono::milliseconds(10));
      continue;
    }
    live.add(1);
    weft::spawn([&live, serve, s = std::move(s)]() mutable {
      serve(std::move(s));
      live.done();
    });
  }
  l.close();
}

/// After the listener closed: waits up to `grace` for the connection fibers counted in `live`
/// to finish, then closes every connection still in `conns` (their blocked calls end with
/// operation_canceled) and waits for the rest. Returns how many it had to close. Blocks the
/// fiber.
template <class Stream>
std::size_t drain(weft::wait_group& live, connection_set<Stream>& conns, std::chrono::milliseconds grace) {
  std::size_t closed = 0;
  if (!live.wait_for(grace)) closed = conns.close_all();
  live.wait();
  return closed;
}

/// Runs `body()` (returning the exit code) on a fiber of a runtime of `workers` workers
/// (0 = one per core); `stats` receives the runtime's counters before it shuts down. Call it
/// after stop_signals is constructed. Blocks the thread.
template <class Body>
int run_on_runtime(unsigned workers, weft::runtime_stats& stats, Body body) {
  weft::runtime rt(weft::runtime_options{.workers = workers});
  int rc = rt.block_on(body);
  stats = rt.stats();
  return rc;
}

/// Closes our side after a final reply without losing it: closing with unread input would send
/// a reset that can destroy the reply in the client's receive queue. Shuts down writing, then
/// discards input until the client closes, at most `wait` and 1 MiB. Blocks the fiber.
void linger(weft::net::tcp_stream& s, std::chrono::milliseconds wait = std::chrono::milliseconds(200));

}  // namespace sample
