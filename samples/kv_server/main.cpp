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

#include <weft/weft.hpp>

#include <pthread.h>
#include <signal.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
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
  std::uint16_t port = 6379;
  unsigned workers = 0;
  std::string bind = "127.0.0.1";
  std::chrono::milliseconds grace{1000};
};

void usage(std::FILE* f) {
  std::fprintf(f,
               "usage: kv_server [--port N] [--bind ADDR] [--workers N] [--grace-ms N]\n"
               "A Redis-protocol (RESP2) key-value server on weft fibers.\n"
               "  --port N      TCP port (default 6379; 0 picks a free one and prints it)\n"
               "  --bind ADDR   address to listen on (default 127.0.0.1)\n"
               "  --workers N   runtime worker threads (default 0 = one per core)\n"
               "  --grace-ms N  on SIGINT/SIGTERM, how long half-received requests may take\n"
               "                to finish before their connections are closed (default 1000)\n"
               "Commands: PING ECHO SET(EX PX EXAT PXAT NX XX GET KEEPTTL) GET DEL UNLINK EXISTS\n"
               "INCR DECR INCRBY DECRBY MGET MSET EXPIRE PEXPIRE TTL PTTL KEYS DBSIZE FLUSHALL\n"
               "QUIT CONFIG GET COMMAND.\n");
}

bool parse_uint(const char* s, unsigned long max, unsigned long& out) {
  char* end = nullptr;
  errno = 0;
  unsigned long v = std::strtoul(s, &end, 10);
  if (errno != 0 || end == s || *end != '\0' || v > max || s[0] == '-') return false;
  out = v;
  return true;
}

// Returns 0 to run, or an exit code (help: 0 via -1, error: 2).
int parse_args(int argc, char** argv, options& o) {
  for (int i = 1; i < argc; ++i) {
    std::string_view a = argv[i];
    auto value = [&](const char* name) -> const char* {
      if (i + 1 >= argc) {
        std::fprintf(stderr, "kv_server: %s needs a value\n", name);
        return nullptr;
      }
      return argv[++i];
    };
    unsigned long v = 0;
    if (a == "--help" || a == "-h") {
      usage(stdout);
      return -1;
    } else if (a == "--port") {
      const char* s = value("--port");
      if (s == nullptr || !parse_uint(s, 65535, v)) {
        std::fprintf(stderr, "kv_server: --port wants 0..65535\n");
        return 2;
      }
      o.port = static_cast<std::uint16_t>(v);
    } else if (a == "--workers") {
      const char* s = value("--workers");
      if (s == nullptr || !parse_uint(s, 1024, v)) {
        std::fprintf(stderr, "kv_server: --workers wants 0..1024\n");
        return 2;
      }
      o.workers = static_cast<unsigned>(v);
    } else if (a == "--bind") {
      const char* s = value("--bind");
      if (s == nullptr) return 2;
      o.bind = s;
    } else if (a == "--grace-ms") {
      const char* s = value("--grace-ms");
      if (s == nullptr || !parse_uint(s, 3600000, v)) {
        std::fprintf(stderr, "kv_server: --grace-ms wants a count of milliseconds\n");
        return 2;
      }
      o.grace = std::chrono::milliseconds(v);
    } else {
      std::fprintf(stderr, "kv_server: unknown option '%s' (try --help)\n", argv[i]);
      return 2;
    }
  }
  return 0;
}

// Open connections, so shutdown can close those that outlive the grace period.
class connection_set {
 public:
  void add(weft::net::tcp_stream* s) {
    std::lock_guard lk(mu_);
    set_.insert(s);
  }
  void remove(weft::net::tcp_stream* s) {
    std::lock_guard lk(mu_);
    set_.erase(s);
  }
  std::size_t close_all() {
    std::lock_guard lk(mu_);
    for (weft::net::tcp_stream* s : set_) s->close();  // wakes its reader with operation_canceled
    return set_.size();
  }

 private:
  weft::mutex mu_;
  std::unordered_set<weft::net::tcp_stream*> set_;  // guarded by mu_
};

struct server {
  kv::store db;
  connection_set conns;
  weft::wait_group live;
  std::stop_source stop;
  options opts;
  std::uint16_t port = 0;
  std::atomic<std::uint64_t> connections{0};
  std::atomic<std::uint64_t> commands{0};
  std::atomic<std::uint64_t> protocol_errors{0};
  std::size_t keys_at_exit = 0;
};

// Closes our side after a final reply (QUIT, protocol error) without losing it: closing with
// unread input would send a reset that can destroy the reply in the client's receive queue, so
// shut down writing and discard input until the client closes (bounded by time and bytes).
void linger(weft::net::tcp_stream& s) {
  std::error_code ec;
  s.shutdown(weft::net::shutdown_how::write, ec);
  s.set_read_deadline(weft::net::clock::now() + 200ms);
  char sink[4096];
  std::size_t total = 0;
  while (total < (1u << 20)) {
    std::size_t n = s.read_some(sink, sizeof sink, ec);
    if (ec || n == 0) break;
    total += n;
  }
}

// Serves one client: read what arrived, run every complete request in it, send the replies of
// that read in one write_all, repeat.
void serve(server& srv, weft::net::tcp_stream& s) {
  kv::resp_parser parser;
  std::vector<std::string> args;
  std::string out;
  std::vector<char> buf(16 * 1024);
  bool grace_armed = false;
  std::uint64_t local_commands = 0;
  for (;;) {
    std::error_code ec;
    std::size_t n = 0;
    if (grace_armed) {
      n = s.read_some(buf.data(), buf.size(), ec);  // bounded by the read deadline
    } else {
      n = s.read_some(buf.data(), buf.size(), srv.stop.get_token(), ec);
    }
    if (ec == std::errc::operation_canceled && !grace_armed && srv.stop.stop_requested() &&
        parser.has_partial() && s.is_open()) {
      // Stopping with a request half received: let it finish within the grace period.
      grace_armed = true;
      s.set_read_deadline(weft::net::clock::now() + srv.opts.grace);
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
      linger(s);
      break;
    }
    if (grace_armed && !parser.has_partial()) break;  // the in-flight request is done
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
  weft::net::tcp_listener listener;
  try {
    listener = weft::net::tcp_listener::bind(weft::net::endpoint::ip(srv.opts.bind, srv.opts.port));
  } catch (const std::exception& e) {
    std::fprintf(stderr, "kv_server: %s\n", e.what());
    return 1;
  }
  srv.port = listener.local_endpoint().port();
  std::printf("listening on %s\n", listener.local_endpoint().to_string().c_str());
  std::fflush(stdout);

  srv.live.add(1);
  weft::spawn([&srv] {
    sweeper(srv);
    srv.live.done();
  });

  std::stop_token st = srv.stop.get_token();
  for (;;) {
    std::error_code ec;
    weft::net::tcp_stream s = listener.accept(st, ec);
    if (ec) {
      if (st.stop_requested()) break;
      std::fprintf(stderr, "kv_server: accept: %s\n", ec.message().c_str());
      // EMFILE and the like are retried inside accept; anything else is per-client, but do
      // not spin on it.
      weft::this_fiber::sleep_for(10ms);
      continue;
    }
    srv.connections.fetch_add(1, std::memory_order_relaxed);
    srv.live.add(1);
    weft::spawn([&srv, s = std::move(s)]() mutable {
      s.set_nodelay(true);
      srv.conns.add(&s);
      serve(srv, s);
      srv.conns.remove(&s);
      s.close();
      srv.live.done();
    });
  }
  listener.close();
  // Idle connections leave at once (their reads take the stop token); half-received requests
  // get the grace period, plus a margin for their replies to go out.
  if (!srv.live.wait_for(srv.opts.grace + 200ms)) {
    std::size_t n = srv.conns.close_all();
    std::fprintf(stderr, "kv_server: closed %zu connection(s) still open after the grace period\n", n);
  }
  srv.live.wait();
  srv.keys_at_exit = srv.db.size();
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  options opts;
  if (int rc = parse_args(argc, argv, opts); rc != 0) {
    return rc < 0 ? 0 : rc;
  }

  // Block the stop signals before any thread starts, so every thread inherits the mask and only
  // the watcher's sigwait receives them.
  sigset_t stop_signals;
  sigemptyset(&stop_signals);
  sigaddset(&stop_signals, SIGINT);
  sigaddset(&stop_signals, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &stop_signals, nullptr);

  server srv;
  srv.opts = opts;
  std::thread watcher([&srv, stop_signals] {
    int sig = 0;
    sigwait(&stop_signals, &sig);
    srv.stop.request_stop();
  });

  auto started = std::chrono::steady_clock::now();
  int rc = 0;
  weft::runtime_stats stats;
  {
    weft::runtime rt(weft::runtime_options{.workers = opts.workers});
    rc = rt.block_on([&srv] { return run(srv); });
    stats = rt.stats();
  }
  // Wake the watcher if the server ended on its own (a bind error); a real signal that came
  // first has already ended it, and this one then stays pending in a thread-directed queue.
  if (!srv.stop.stop_requested()) pthread_kill(watcher.native_handle(), SIGTERM);
  watcher.join();

  double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
  std::printf(
      "kv_server: served %llu connections, %llu commands (%llu protocol errors), %zu keys at exit "
      "in %.1f s; runtime: workers=%u fibers spawned=%llu context_switches=%llu steals=%llu "
      "parks=%llu timers_fired=%llu\n",
      static_cast<unsigned long long>(srv.connections.load()),
      static_cast<unsigned long long>(srv.commands.load()),
      static_cast<unsigned long long>(srv.protocol_errors.load()), srv.keys_at_exit, secs,
      stats.workers, static_cast<unsigned long long>(stats.spawned),
      static_cast<unsigned long long>(stats.context_switches), static_cast<unsigned long long>(stats.steals),
      static_cast<unsigned long long>(stats.parks), static_cast<unsigned long long>(stats.timers_fired));
  return rc;
}
