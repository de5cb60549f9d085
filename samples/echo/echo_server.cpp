// echo_server: a TCP echo server written the way weft is meant to be used — one fiber per
// connection, blocking-style accept, read_some and write_all that park the fiber — and the
// weft side of the I/O benchmark (bench/run_echo_bench.sh runs this binary beside the
// hand-written bench/compare/echo/epoll_echo_server, both driven by echo_client).
// A connection ends when its peer closes or resets it, or when nothing arrives for
// --idle-timeout-ms (an echo that cannot be written back within that long ends it too).
// Shutdown: SIGINT/SIGTERM end the accept loop and close the listener; then every connection is
// shut down for reading, so a fiber parked in read_some reads end of stream at once while one
// with an echo in flight writes it back first. Connections still open after --grace-ms are
// closed. The summary line follows and the exit code is 0.
// The reads take no stop_token: shutdown(read) reaches the parked readers without a
// stop_callback registered per read, a cost the epoll baseline does not pay either.
#include "sample_support.hpp"

#include <weft/weft.hpp>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <system_error>

namespace {

struct options {
  sample::common_options common{.port = 7007};
  std::chrono::milliseconds idle{60000};  // 0 = no idle deadline
  std::chrono::milliseconds grace{1000};
  std::size_t buffer = 65536;
};

const char* const kUsage =
    "A TCP echo server on weft fibers: one fiber per connection, blocking-style reads and writes.\n"
    "Try it with: echo_client 127.0.0.1:7007, or nc 127.0.0.1 7007.";

// How one connection ended, added to the server's counters when its fiber ends.
struct conn_result {
  std::uint64_t bytes = 0;
  std::error_code ec;  // empty after end of stream
};

// Echoes until end of stream, an error or the idle deadline; the buffer lives on the fiber's
// stack, so its size is a template parameter (--buffer picks the instance).
template <std::size_t N>
void serve(weft::net::tcp_stream& s, std::chrono::milliseconds idle, conn_result& r) {
  char buf[N];
  for (;;) {
    if (idle.count() > 0) s.set_read_deadline(weft::net::clock::now() + idle);
    std::size_t n = s.read_some(buf, sizeof buf, r.ec);
    if (r.ec || n == 0) return;
    if (idle.count() > 0) s.set_write_deadline(weft::net::clock::now() + idle);
    s.write_all(buf, n, r.ec);
    if (r.ec) return;
    r.bytes += n;
  }
}

using serve_fn = void (*)(weft::net::tcp_stream&, std::chrono::milliseconds, conn_result&);

serve_fn serve_for(std::size_t buffer) {
  switch (buffer) {
    case 256: return serve<256>;
    case 1024: return serve<1024>;
    case 4096: return serve<4096>;
    case 16384: return serve<16384>;
    default: return serve<65536>;
  }
}

int parse_args(int argc, char** argv, options& o) {
  return sample::parse_args(
      argc, argv, "echo_server", kUsage, o.common,
      {sample::millis_flag("--idle-timeout-ms",
                           "close a connection after N ms with nothing to read (default 60000; 0 = never)", o.idle),
       sample::grace_flag("echoes in flight may take", o.grace),
       {.name = "--buffer",
        .value_name = "B",
        .help = "read buffer on each fiber's stack: 256, 1024, 4096, 16384 or 65536 (default)",
        .what = "256, 1024, 4096, 16384 or 65536",
        .set = [&o](const char* s) {
          unsigned long v = 0;
          if (!sample::parse_uint(s, 65536, v)) return false;
          if (v != 256 && v != 1024 && v != 4096 && v != 16384 && v != 65536) return false;
          o.buffer = v;
          return true;
        }}});
}

struct server {
  options opts;
  std::stop_source stop;
  std::atomic<std::uint64_t> bytes{0};
  std::atomic<std::uint64_t> idle_timeouts{0};
  // A client that closes with an echo still on its way (every load generator at the end of
  // its run) resets the connection: counted apart from real errors. End of stream is neither.
  std::atomic<std::uint64_t> peer_resets{0};
  std::atomic<std::uint64_t> errors{0};
  sample::tcp_server_result result;      // written once the server has stopped
};

void on_connection(server& srv, serve_fn serve_conn, weft::net::tcp_stream& s) {
  conn_result r;
  serve_conn(s, srv.opts.idle, r);
  srv.bytes.fetch_add(r.bytes, std::memory_order_relaxed);
  if (r.ec == std::errc::timed_out) {
    srv.idle_timeouts.fetch_add(1, std::memory_order_relaxed);
  } else if (r.ec == std::errc::connection_reset || r.ec == std::errc::broken_pipe) {
    srv.peer_resets.fetch_add(1, std::memory_order_relaxed);
  } else if (r.ec && r.ec != std::errc::operation_canceled) {  // canceled: closed at shutdown
    srv.errors.fetch_add(1, std::memory_order_relaxed);
  }
}

int run(server& srv) {
  serve_fn serve_conn = serve_for(srv.opts.buffer);
  // On stop, readers parked in read_some read end of stream; an echo in flight is written back
  // first.
  sample::tcp_server_options o{.prog = "echo_server",
                               .grace = srv.opts.grace,
                               .fiber_name = "echo connection",
                               .on_listening = {},
                               .on_stop = [](sample::connection_set<weft::net::tcp_stream>& conns) {
                                 conns.for_each([](weft::net::tcp_stream& s) {
                                   std::error_code ignored;
                                   s.shutdown(weft::net::shutdown_how::read, ignored);
                                 });
                               }};
  srv.result = sample::serve_tcp(srv.opts.common, srv.stop.get_token(), o,
                                 [&srv, serve_conn](weft::net::tcp_stream& s) { on_connection(srv, serve_conn, s); });
  return srv.result.exit_code;
}

}  // namespace

int main(int argc, char** argv) {
  options opts;
  if (int rc = parse_args(argc, argv, opts); rc >= 0) return rc;

  server srv;
  srv.opts = opts;
  sample::stop_signals signals(srv.stop);  // before any thread starts
  auto started = std::chrono::steady_clock::now();
  weft::runtime_stats stats;
  int rc = sample::run_on_runtime(opts.common.workers, stats, [&srv] { return run(srv); });
  if (rc != 0) return rc;  // it did not start (the error is printed): no summary
  std::printf("echo_server: served %llu connections, %llu bytes echoed, %llu idle timeouts, %llu reset by their "
              "client, %llu errors, %zu closed after the grace period, in %.1f s; %s\n",
              static_cast<unsigned long long>(srv.result.accepted),
              static_cast<unsigned long long>(srv.bytes.load()),
              static_cast<unsigned long long>(srv.idle_timeouts.load()),
              static_cast<unsigned long long>(srv.peer_resets.load()),
              static_cast<unsigned long long>(srv.errors.load()), srv.result.closed_after_grace,
              sample::seconds_since(started), sample::runtime_summary(stats).c_str());
  return rc;
}
