// weft_echo_server: the echo server written the way weft is meant to be used — one fiber per
// connection, blocking-style calls (accept, read_some, write_all) that park the fiber, on a
// runtime of --threads workers. One listener and one accepting fiber; work stealing spreads the
// connection fibers over the workers. Flags and the "listening on" line match
// epoll_echo_server, its hand-written baseline. SIGINT/SIGTERM stop it cleanly: the signals are
// blocked in every thread and taken by sigwait on a plain watcher thread, which requests stop;
// accept(stop_token) returns operation_canceled, block_on returns, and the runtime's destructor
// unwinds the connection fibers still parked in read_some (their destructors close the sockets).
// The connection loop takes no stop_token: registering a stop_callback on every read would be
// a cost the baseline does not pay.
#include <pthread.h>

#include <cstdint>
#include <cstdio>
#include <exception>
#include <stop_token>
#include <string>
#include <system_error>
#include <thread>

#include <weft/fiber.hpp>
#include <weft/net/tcp.hpp>
#include <weft/runtime.hpp>

#include "echo_common.hpp"

namespace {

constexpr const char* prog = "weft_echo_server";
constexpr const char* usage =
    "usage: weft_echo_server [--port P] [--threads N] [--buffer B]\n"
    "  --port P     TCP port on 127.0.0.1; 0 (default) picks a free one. Prints\n"
    "               \"listening on 127.0.0.1:PORT\" once it accepts connections.\n"
    "  --threads N  weft workers (default 2)\n"
    "  --buffer B   bytes of each connection fiber's read buffer, on its stack: 256, 1024, 4096,\n"
    "               16384 or 65536 (default: the baseline's read size). Pages of it that reads\n"
    "               touch stay resident while the fiber is parked: they show in the RSS per idle\n"
    "               connection (256 leaves what the runtime itself keeps).\n"
    "Runs until SIGINT or SIGTERM.\n";

// Echoes until end of stream or an error; the buffer lives on the fiber's stack.
template <std::size_t N>
void serve(weft::net::tcp_stream& s) {
  char buf[N];
  for (;;) {
    std::error_code ec;
    std::size_t n = s.read_some(buf, sizeof buf, ec);
    if (ec || n == 0) return;
    s.write_all(buf, n, ec);
    if (ec) return;
  }
}

using serve_fn = void (*)(weft::net::tcp_stream&);

}  // namespace

int main(int argc, char** argv) {
  unsigned workers = 2;
  std::uint16_t port = 0;
  serve_fn serve_conn = serve<65536>;
  echo_bench::args a(prog, usage, argc, argv);
  while (a.advance()) {
    unsigned long long v = 0;
    if (a.value("--port", v, 0, 65535)) {
      port = std::uint16_t(v);
    } else if (a.value("--threads", v, 1, 1024)) {
      workers = unsigned(v);
    } else if (a.value("--buffer", v, 1, 65536)) {
      switch (v) {
        case 256: serve_conn = serve<256>; break;
        case 1024: serve_conn = serve<1024>; break;
        case 4096: serve_conn = serve<4096>; break;
        case 16384: serve_conn = serve<16384>; break;
        case 65536: serve_conn = serve<65536>; break;
        default: a.bad("--buffer wants 256, 1024, 4096, 16384 or 65536");
      }
    } else {
      a.unknown();
    }
  }

  // Before the runtime starts its workers, so that every thread inherits the mask.
  sigset_t stop_signals = echo_bench::block_stop_signals(prog);
  std::stop_source stop;
  int sig = 0;
  std::thread watcher([&] {
    sig = echo_bench::wait_stop_signal(prog, stop_signals);
    stop.request_stop();
  });

  int status = 0;
  {
    weft::runtime rt(weft::runtime_options{.workers = workers});
    try {
      rt.block_on([&] {
        auto listener = weft::net::tcp_listener::bind(weft::net::endpoint::loopback_v4(port));
        std::printf("listening on 127.0.0.1:%u\n", unsigned(listener.local_endpoint().port()));
        std::fflush(stdout);
        std::stop_token st = stop.get_token();
        for (;;) {
          std::error_code ec;
          weft::net::tcp_stream s = listener.accept(st, ec);
          if (ec == std::errc::operation_canceled) return;
          if (ec) throw std::system_error(ec, "weft::net::tcp_listener::accept");
          // Dropping the join_handle detaches the fiber.
          weft::spawn([serve_conn, s = std::move(s)]() mutable {
            try {
              s.set_nodelay(true);  // as the baseline does
            } catch (const std::system_error&) {
              return;  // the peer is already gone
            }
            serve_conn(s);
          });
        }
      });
    } catch (const std::exception& e) {
      std::fprintf(stderr, "%s: %s\n", prog, e.what());
      status = 1;
    }
    if (status != 0) {
      // Not stopped by a signal: wake the watcher (the signal is blocked, so it stays pending
      // for that thread and its sigwait takes it).
      pthread_kill(watcher.native_handle(), SIGTERM);
    }
    watcher.join();
  }  // ~runtime: unwinds the connection fibers, closing their sockets
  if (status == 0) std::fprintf(stderr, "%s: %s; stopped\n", prog, strsignal(sig));
  return status;
}
