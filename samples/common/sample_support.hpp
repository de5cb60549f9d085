// Shared plumbing of the weft samples: the command line (sample_args.hpp), SIGINT/SIGTERM
// turned into a std::stop_source request, the one accept loop every server sample runs
// (serve_tcp: a fiber per connection, registered in a connection_set, graceful stop), the
// runtime-statistics part of the summary line, and the graceful close that keeps a final reply
// from being destroyed by a reset.
// Invariant: samples never install signal handlers; stop signals are blocked in every thread
// and only stop_signals' watcher thread receives them (sigwait).
#pragma once

#include "error_log.hpp"
#include "sample_args.hpp"

#include <weft/weft.hpp>

#include <signal.h>

#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <mutex>
#include <stop_token>
#include <string>
#include <system_error>
#include <thread>
#include <unordered_set>
#include <vector>

namespace sample {

/// Turns SIGINT/SIGTERM into `stop.request_stop()`, and ignores SIGPIPE (a closed stdout is an
/// EPIPE, not death). A second SIGINT/SIGTERM ends the process at once, with a line on stderr
/// and exit status 128 + the signal number, without waiting for the connections' grace. Construct it at the top of main(), before any thread exists (runtime
/// workers inherit the blocked mask). The destructor ends the watcher even when no signal came
/// (the server ended on its own, e.g. a bind error).
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

/// Gives the heap memory that a burst of closed connections freed back to the kernel. glibc
/// keeps what the worker threads' arenas free resident: after 5,000 idle kv_server connections
/// closed, their 16 KiB read buffers stayed as 80 MiB of RSS. Once the open connections fall to
/// half their peak since the last trim (a peak of at least 256), malloc_trim(0) runs on the
/// blocking pool. Safe from any fiber or thread.
class heap_trimmer {
 public:
  /// Records that `open` connections are open now.
  void opened(std::size_t open) noexcept;
  /// Records that `open` connections are left; may trim, blocking the calling fiber (or thread)
  /// for the milliseconds malloc_trim takes.
  void closed(std::size_t open);

 private:
  std::atomic<std::size_t> peak_{0};
};

/// True if bytes the peer sent wait unread in the socket's receive queue (FIONREAD).
bool input_waiting(const weft::net::tcp_stream& s) noexcept;

/// The stopping rule of a request/response server: reads take the stop token, so an idle
/// connection ends at once on SIGINT/SIGTERM; a connection whose request is half received, or
/// whose next request has arrived but is still unread (the server was busy when the stop
/// came), gets `grace` to finish it (its reads then go without the token, bounded by the read
/// deadline the caller sets from deadline()). Once finished, the caller closes with linger(),
/// so that input the client sent after it does not turn the close into a reset that destroys
/// the reply. One per connection, on its fiber.
class request_grace {
 public:
  request_grace(const std::stop_source& stop, std::chrono::milliseconds grace)
      : token_(stop.get_token()), grace_(grace) {}

  /// read_some with the stop token until the grace period starts, without it afterwards.
  std::size_t read_some(weft::net::tcp_stream& s, void* buf, std::size_t size, std::error_code& ec) {
    return armed_ ? s.read_some(buf, size, ec) : s.read_some(buf, size, token_, ec);
  }
  /// After a read: true if the stop canceled it with a request half received (`partial`) or
  /// waiting unread; the grace period starts now (until deadline()) and the caller reads again.
  bool start(const std::error_code& ec, bool partial, const weft::net::tcp_stream& s) {
    if (armed_ || ec != std::errc::operation_canceled || !token_.stop_requested() || !s.is_open()) return false;
    if (!partial && !input_waiting(s)) return false;
    armed_ = true;
    deadline_ = weft::net::clock::now() + grace_;
    return true;
  }
  bool armed() const noexcept { return armed_; }
  weft::net::clock::time_point deadline() const noexcept { return deadline_; }
  /// True once the request that was in flight at the stop is complete: close the connection.
  bool finished(bool partial) const noexcept { return armed_ && !partial; }

 private:
  // Taken once: every get_token() is an atomic increment on the stop state that all
  // connections share, a cache line both workers would bounce on every read.
  std::stop_token token_;
  std::chrono::milliseconds grace_;
  bool armed_ = false;
  weft::net::clock::time_point deadline_{};
};

/// The open connections of a server, so shutdown can close those that outlive a grace period.
/// Removing connections returns their memory to the kernel after a burst (heap_trimmer).
/// Safe from any fiber or thread.
template <class Stream>
class connection_set {
 public:
  void add(Stream* s) {
    std::size_t open = 0;
    {
      std::lock_guard lk(mu_);
      set_.insert(s);
      open = set_.size();
    }
    trimmer_.opened(open);
  }
  /// May block the fiber for a heap trim (heap_trimmer::closed).
  void remove(Stream* s) {
    std::size_t open = 0;
    {
      std::lock_guard lk(mu_);
      set_.erase(s);
      open = set_.size();
    }
    trimmer_.closed(open);
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
  heap_trimmer trimmer_;
};

/// Closes our side after a final reply without losing it: closing with unread input would send
/// a reset that can destroy the reply in the client's receive queue. Shuts down writing, then
/// discards input until the client closes, at most `wait` and 1 MiB. Blocks the fiber.
void linger(weft::net::tcp_stream& s, std::chrono::milliseconds wait = std::chrono::milliseconds(200));

/// Runs `body()` (returning the exit code) on a fiber of a runtime of `workers` workers
/// (0 = one per core); `stats` receives the runtime's counters before it shuts down. Call it
/// after stop_signals is constructed. Blocks the thread.
int run_on_runtime(unsigned workers, weft::runtime_stats& stats, const std::function<int()>& body);

/// Hooks and settings of serve_tcp beyond the per-connection function.
struct tcp_server_options {
  const char* prog = "sample";  ///< prefixes error lines: "<prog>: accept: ..."
  /// After stop, how long connections may take to end on their own before they are closed.
  std::chrono::milliseconds grace{1000};
  /// The connection fibers' name in diagnostics, followed by the peer: "conn 127.0.0.1:40312".
  const char* fiber_name = "connection";
  /// Runs once the listener is bound, before the "listening on" line and the first accept.
  std::function<void(const weft::net::endpoint&)> on_listening;
  /// Runs once the listener is closed after the stop, before the grace period: tells the open
  /// connections to finish (echo_server shuts each down for reading with for_each).
  std::function<void(connection_set<weft::net::tcp_stream>&)> on_stop;
};

/// What serve_tcp did, for the summary line.
struct tcp_server_result {
  int exit_code = 0;                   ///< 0, or 1 when the listener could not be bound
  std::uint64_t accepted = 0;          ///< connections accepted
  std::size_t closed_after_grace = 0;  ///< connections still open after the grace period
};

/// Runs a TCP server in plain thread style: binds `c.bind`:`c.port`, prints "listening on
/// ADDR:PORT" to stdout (flushed; tests parse it), and until `stop` is requested accepts
/// connections, each served by `serve(stream)` on a fiber of its own (named after
/// `opts.fiber_name` and the peer; the calling fiber is named "accept loop"), with TCP_NODELAY, and
/// registered in a connection_set so that shutdown can close it (`serve` returns when it is
/// closed; the stream is closed after it returns). After the stop: closes the listener, runs
/// `opts.on_stop`, waits up to `opts.grace` for the connections to end, closes those still open
/// (saying how many on stderr) and waits for their fibers.
/// Accept errors are printed and retried after 10 ms (EMFILE is retried inside accept); a
/// std::exception escaping `serve` is printed ("<prog>: connection: ...") and ends only that
/// connection. Both are printed through an error_log: at most one line a second each. When the
/// listener cannot be bound, prints one line, "<prog>: cannot listen on ADDR:PORT: <errno
/// text>" (or that --bind is no IP address), and returns exit code 1. Must run on a fiber;
/// `serve` runs on many fibers at once.
tcp_server_result serve_tcp(const common_options& c, std::stop_token stop, const tcp_server_options& opts,
                            const std::function<void(weft::net::tcp_stream&)>& serve);

}  // namespace sample
