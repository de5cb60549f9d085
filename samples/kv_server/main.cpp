// kv_server: a Redis-protocol (RESP2) key-value server written in plain thread style — one fiber
// per connection (weft::spawn), blocking reads and writes on weft::net sockets, a sharded map
// under weft::shared_mutex, and a sweeper fiber that sleeps on the runtime's timers to expire
// keys. Works with redis-cli and redis-benchmark.
//
// Shutdown: SIGINT/SIGTERM are blocked in every thread and taken by a watcher thread with
// sigwait; it requests stop. The accept loop ends, the listener closes, idle connections end at
// once, a connection with a request half received gets a short grace to finish it, then every
// connection still open is closed (its read ends with operation_canceled) and the process
// prints a summary and exits 0.
#include "commands.hpp"
#include "resp_parser.hpp"
#include "store.hpp"
#include "sample_support.hpp"

#include <weft/weft.hpp>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <optional>
#include <stop_token>
#include <string>
#include <string_view>
#include <system_error>
#include <thread>
#include <unordered_set>
#include <vector>

namespace {

using namespace std::chrono_literals;

struct options {
  sample::common_options common{.port = 6379};
  std::chrono::milliseconds grace{1000};
};

const char* const kUsage =
    "A Redis-protocol (RESP2) key-value server on weft fibers.\n"
    "Commands: PING ECHO SET(EX PX EXAT PXAT NX XX GET KEEPTTL) GET DEL UNLINK EXISTS\n"
    "INCR DECR INCRBY DECRBY MGET MSET EXPIRE PEXPIRE TTL PTTL KEYS DBSIZE FLUSHALL\n"
    "QUIT CONFIG GET COMMAND.";

// Returns -1 to run, or an exit code (0 after --help, 2 after a usage error).
int parse_args(int argc, char** argv, options& o) {
  return sample::parse_args(
      argc, argv, "kv_server", kUsage, o.common,
      {sample::grace_flag("half-received requests may take to finish", o.grace)});
}

struct server {
  kv::store db;
  std::stop_source stop;
  options opts;
  std::uint16_t port = 0;
  std::uint64_t connections = 0;  // written once the server has stopped
  std::atomic<std::uint64_t> commands{0};
  std::atomic<std::uint64_t> protocol_errors{0};
  std::size_t keys_at_exit = 0;
};

// Serves one client: read what arrived, run every complete request in it, send the replies of
// that read in one write_all, repeat.
void serve(server& srv, weft::net::tcp_stream& s) {
  kv::resp_parser parser;
  std::vector<std::string> args;
  std::string out;
  std::vector<char> buf(16 * 1024);
  sample::request_grace grace(srv.stop, srv.opts.grace);
  std::uint64_t local_commands = 0;
  for (;;) {
    std::error_code ec;
    std::size_t n = grace.read_some(s, buf.data(), buf.size(), ec);
    if (grace.start(ec, parser.has_partial(), s)) {
      s.set_read_deadline(grace.deadline());
      continue;
    }
    if (ec || n == 0) break;
    parser.feed(buf.data(), n);
    bool close_after = false;
    for (;;) {
      kv::resp_status st = parser.next(args);
      if (st == kv::resp_status::need_more) break;
      if (st == kv::resp_status::error) {
        out += "-ERR ";
        out += parser.error();
        out += "\r\n";
        srv.protocol_errors.fetch_add(1, std::memory_order_relaxed);
        close_after = true;
        break;
      }
      ++local_commands;
      if (kv::execute(srv.db, args, out, srv.port) == kv::after_command::close) {
        close_after = true;
        break;
      }
      if (out.size() >= 256 * 1024) {  // keep a long pipeline's replies bounded
        s.write_all(out.data(), out.size(), ec);
        out.clear();
        if (ec) break;
      }
    }
    if (!out.empty() && !ec) {
      s.write_all(out.data(), out.size(), ec);
      out.clear();
    }
    if (ec) break;
    if (close_after) {
      sample::linger(s);
      break;
    }
    if (grace.finished(parser.has_partial())) {  // the requests in flight at the stop are done
      sample::linger(s);
      break;
    }
  }
  srv.commands.fetch_add(local_commands, std::memory_order_relaxed);
}

void sweeper(server& srv) {
  std::stop_token st = srv.stop.get_token();
  while (!st.stop_requested()) {
    weft::this_fiber::sleep_for(100ms);
    srv.db.sweep_expired();
  }
}

int run(server& srv) {
  std::optional<weft::join_handle<void>> sweeping;
  // Idle connections leave at once (their reads take the stop token); half-received requests
  // get the grace period, plus a margin for their replies to go out.
  sample::tcp_server_options o{
      .prog = "kv_server", .grace = srv.opts.grace + 200ms, .fiber_name = "kv client", .on_listening = {},
      .on_stop = {}};
  o.on_listening = [&srv, &sweeping](const weft::net::endpoint& at) {
    srv.port = at.port();
    sweeping = weft::spawn([&srv] { sweeper(srv); });
  };
  sample::tcp_server_result r = sample::serve_tcp(srv.opts.common, srv.stop.get_token(), o,
                                                  [&srv](weft::net::tcp_stream& s) { serve(srv, s); });
  srv.connections = r.accepted;
  if (sweeping) sweeping->join();  // it ends on the stop, as the server did
  srv.keys_at_exit = srv.db.size();
  return r.exit_code;
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
  std::printf("kv_server: served %llu connections, %llu commands (%llu protocol errors), %zu keys at exit "
              "in %.1f s; %s\n",
              static_cast<unsigned long long>(srv.connections),
              static_cast<unsigned long long>(srv.commands.load()),
              static_cast<unsigned long long>(srv.protocol_errors.load()), srv.keys_at_exit,
              sample::seconds_since(started), sample::runtime_summary(stats).c_str());
  return rc;
}
