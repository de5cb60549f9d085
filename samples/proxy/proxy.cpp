// proxy: a TCP forwarder in plain thread style. For each client it accepts, a fiber connects to
// the upstream (--to HOST:PORT, resolved once at start with weft::net::resolve) and becomes the
// client-to-upstream copier; a second fiber copies upstream-to-client. Each copier reads with
// read_some and writes with write_all, so a slow reader slows its writer down (TCP flow control
// end to end) and nothing is buffered beyond one read per direction.
// Half-close: end of stream from one side is passed on as shutdown(write) to the other, and the
// other direction keeps flowing until its own end of stream. Any error (a reset, a failed write,
// an idle deadline) closes both sides; a reset is passed on as a reset (SO_LINGER 0).
// Idle deadline (--idle-timeout-ms): a copier waiting to read gives up when nothing has moved in
// either direction for that long, so a long download to a silent client is not cut; a write
// that makes no progress for that long fails too. Connecting to the upstream has its own
// deadline (--connect-timeout-ms); a failure is logged naming the upstream (at most one line a
// second, the rest counted) and closes the client.
// Shutdown: SIGINT/SIGTERM close the listener; open pairs get --grace-ms to finish, then both
// sides of each are closed; the summary line follows and the exit code is 0.
#include "sample_support.hpp"

#include <weft/weft.hpp>

#include <sys/socket.h>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <mutex>
#include <string>
#include <string_view>
#include <system_error>
#include <vector>

namespace {

using weft::net::clock;
using weft::net::tcp_stream;

struct options {
  sample::common_options common{.port = 9000};
  std::string to;  // "HOST:PORT"
  std::string to_host, to_port;
  std::chrono::milliseconds idle{60000};  // 0 = no idle deadline
  std::chrono::milliseconds connect_timeout{5000};
  std::chrono::milliseconds grace{1000};
};

const char* const kUsage =
    "A TCP forwarder on weft fibers: two fibers per connection pair, one per direction,\n"
    "half-close passed on, idle deadlines, both sides closed on any error.\n"
    "Try it with: proxy --port 9000 --to 127.0.0.1:6379, then redis-cli -p 9000 ping.";

int parse_args(int argc, char** argv, options& o) {
  int rc = sample::parse_args(
      argc, argv, "proxy", kUsage, o.common,
      {{.name = "--to",
        .value_name = "HOST:PORT",
        .help = "the upstream to forward to (required)",
        .what = "a host and a port, such as 127.0.0.1:6379",
        .set = [&o](const char* s) {
          o.to = s;
          return sample::split_host_port(s, o.to_host, o.to_port);
        }},
       sample::millis_flag("--idle-timeout-ms",
                           "close a pair after N ms with nothing moving either way (default 60000; 0 = never)",
                           o.idle),
       sample::millis_flag("--connect-timeout-ms", "give up connecting to the upstream after N ms (default 5000; 0 = the system's limit)",
                           o.connect_timeout),
       sample::grace_flag("open pairs may take to finish", o.grace)});
  if (rc < 0 && o.to.empty()) {
    std::fprintf(stderr, "proxy: --to HOST:PORT is required (try --help)\n");
    return 2;
  }
  return rc;
}

// A client and its upstream connection. Ownership: the pair lives on the stack of the client's
// connection fiber, which joins the other copier before it returns; the client stream is
// serve_tcp's, which closes it after the grace period (the copiers then close the upstream).
struct pair {
  explicit pair(tcp_stream& c) noexcept : client(c) {}

  tcp_stream& client;
  tcp_stream upstream;
  // When a byte last moved either way (steady clock, ns); both copiers write it.
  std::atomic<std::int64_t> last_activity_ns{0};

  void touch() noexcept {
    last_activity_ns.store(clock::now().time_since_epoch().count(), std::memory_order_relaxed);
  }
  clock::time_point last_activity() const noexcept {
    return clock::time_point(clock::duration(last_activity_ns.load(std::memory_order_relaxed)));
  }
  /// Closes both sides: a copier parked on either returns operation_canceled. With `reset`,
  /// each side still open is closed with SO_LINGER 0, so its peer gets RST instead of FIN. Any
  /// fiber.
  void close(bool reset = false) noexcept {
    // Under the lock: once a side is closed its descriptor number may be reused, so setting an
    // option must not race with the other copier's close. (serve_tcp's close after the grace
    // period does not take it: a reset passed on in that instant is the one case left.)
    std::lock_guard lk(close_mu_);
    for (tcp_stream* s : {&client, &upstream}) {
      if (reset && s->is_open()) {
        ::linger l{.l_onoff = 1, .l_linger = 0};
        (void)::setsockopt(s->native_handle(), SOL_SOCKET, SO_LINGER, &l, sizeof l);
      }
      s->close();
    }
  }

 private:
  weft::mutex close_mu_;
};

struct proxy {
  options opts;
  std::vector<weft::net::endpoint> upstream;  // resolved once, tried in order
  std::stop_source stop;
  std::atomic<std::uint64_t> bytes_up{0};    // client -> upstream
  std::atomic<std::uint64_t> bytes_down{0};  // upstream -> client
  std::atomic<std::uint64_t> connect_errors{0};
  std::atomic<std::uint64_t> idle_timeouts{0};
  std::atomic<std::uint64_t> errors{0};  // resets and failed writes
  sample::error_log connect_log{"proxy"};  // an upstream that is down fails every client
  sample::tcp_server_result result;  // written once the proxy has stopped
};

// Copies `from` -> `to` until end of stream (then shuts `to` down for writing: the half-close
// goes on) or an error, which it returns. `bytes` counts what was written.
std::error_code copy(pair& p, tcp_stream& from, tcp_stream& to, std::chrono::milliseconds idle, std::uint64_t& bytes) {
  char buf[16 * 1024];
  std::error_code ec;
  for (;;) {
    if (idle.count() > 0) from.set_read_deadline(p.last_activity() + idle);
    std::size_t n = from.read_some(buf, sizeof buf, ec);
    if (ec == std::errc::timed_out && clock::now() < p.last_activity() + idle) continue;  // the other way moved
    if (ec) return ec;
    if (n == 0) {
      to.shutdown(weft::net::shutdown_how::write, ec);
      return ec;
    }
    p.touch();
    if (idle.count() > 0) to.set_write_deadline(clock::now() + idle);
    to.write_all(buf, n, ec);
    if (ec) return ec;
    bytes += n;
    p.touch();
  }
}

// Connects to the first upstream address that answers within the connect timeout; logs the
// failure (naming the upstream and the client) and returns false if none does.
bool connect_upstream(proxy& px, pair& p) {
  std::error_code ec;
  for (const weft::net::endpoint& ep : px.upstream) {
    weft::net::deadline d = px.opts.connect_timeout.count() > 0 ? clock::now() + px.opts.connect_timeout
                                                                 : weft::net::no_deadline;
    p.upstream = tcp_stream::connect(ep, d, px.stop.get_token(), ec);
    if (!ec) return true;
    if (px.stop.stop_requested()) return false;
    // describe(): out of descriptors, it names the limit and how to raise it.
    const std::string why = ec == std::errc::timed_out
                                ? "no answer within " + std::to_string(px.opts.connect_timeout.count()) + " ms"
                                : weft::net::describe(ec);
    std::error_code peer_ec;
    px.connect_log.print("connect to upstream %s (%s) failed: %s; closing client %s", px.opts.to.c_str(),
                         ep.to_string().c_str(), why.c_str(), p.client.peer_endpoint(peer_ec).to_string().c_str());
  }
  px.connect_errors.fetch_add(1, std::memory_order_relaxed);
  return false;
}

void serve_pair(proxy& px, tcp_stream& client) {
  pair p(client);
  if (!connect_upstream(px, p)) return;  // serve_tcp closes the client
  try {
    p.upstream.set_nodelay(true);
  } catch (const std::system_error&) {
    return;  // the upstream is already gone
  }
  p.touch();
  const std::chrono::milliseconds idle = px.opts.idle;
  std::uint64_t up = 0, down = 0;
  std::error_code down_ec;
  weft::join_handle<void> downstream = weft::spawn(weft::spawn_options{.name = "proxy downstream"}, [&] {
    down_ec = copy(p, p.upstream, p.client, idle, down);
    // Any error closes both sides; a reset from either peer is passed on as a reset.
    if (down_ec) p.close(down_ec == std::errc::connection_reset);
  });
  std::error_code up_ec = copy(p, p.client, p.upstream, idle, up);
  if (up_ec) p.close(up_ec == std::errc::connection_reset);
  downstream.join();
  p.close();

  px.bytes_up.fetch_add(up, std::memory_order_relaxed);
  px.bytes_down.fetch_add(down, std::memory_order_relaxed);
  // operation_canceled is the consequence of the other direction's error (or of shutdown).
  if (up_ec == std::errc::timed_out || down_ec == std::errc::timed_out) {
    px.idle_timeouts.fetch_add(1, std::memory_order_relaxed);
  } else if ((up_ec && up_ec != std::errc::operation_canceled) ||
             (down_ec && down_ec != std::errc::operation_canceled)) {
    px.errors.fetch_add(1, std::memory_order_relaxed);
  }
}

// True if connecting to `up` would reach this proxy's own listener (--bind, --port): the same
// address, or, for a wildcard listener, any address of this host (one it can bind to) on the
// same port. Such a proxy connects to itself for every connection it accepts, and accepts each
// of those again: one client would use up every descriptor.
bool is_own_listener(const sample::common_options& c, const weft::net::endpoint& to) {
  using weft::net::endpoint;
  if (c.port == 0 || to.port() != c.port) return false;
  endpoint bound;
  try {
    bound = endpoint::ip(c.bind, c.port);
  } catch (const std::exception&) {
    return false;  // serve_tcp reports the bad --bind
  }
  const endpoint any4 = endpoint::ip("0.0.0.0", c.port), any6 = endpoint::ip("::", c.port);
  // Connecting to the unspecified address reaches this host's loopback (Linux).
  const endpoint up = to == any4 ? endpoint::loopback_v4(c.port) : to == any6 ? endpoint::loopback_v6(c.port) : to;
  if (bound == up) return true;
  // A wildcard listener takes connections to every address of this host of its family; an
  // IPv6 one (not IPV6_V6ONLY, serve_tcp's default) the IPv4 ones too.
  if (!(bound == any6 || (bound == any4 && up.is_v4()))) return false;
  try {
    (void)weft::net::udp_socket::bind(up.with_port(0));
  } catch (const std::system_error&) {
    return false;  // EADDRNOTAVAIL: not an address of this host
  }
  return true;
}

int run(proxy& px) {
  std::error_code ec;
  px.upstream = weft::net::resolve(px.opts.to_host, px.opts.to_port, ec);
  if (ec || px.upstream.empty()) {
    std::fprintf(stderr, "proxy: cannot resolve upstream %s: %s\n", px.opts.to.c_str(),
                 ec ? ec.message().c_str() : "no address");
    return 1;
  }
  for (const weft::net::endpoint& up : px.upstream) {
    if (is_own_listener(px.opts.common, up)) {
      std::fprintf(stderr,
                   "proxy: --to %s (%s) is this proxy's own listening address (--bind %s --port %u): every "
                   "connection would loop back into the proxy until it runs out of descriptors\n",
                   px.opts.to.c_str(), up.to_string().c_str(), px.opts.common.bind.c_str(),
                   static_cast<unsigned>(px.opts.common.port));
      return 2;
    }
  }
  sample::tcp_server_options o{
      .prog = "proxy", .grace = px.opts.grace, .fiber_name = "proxy upstream", .on_listening = {}, .on_stop = {}};
  px.result = sample::serve_tcp(px.opts.common, px.stop.get_token(), o, [&px](tcp_stream& s) { serve_pair(px, s); });
  px.connect_log.flush();
  return px.result.exit_code;
}

}  // namespace

int main(int argc, char** argv) {
  options opts;
  if (int rc = parse_args(argc, argv, opts); rc >= 0) return rc;

  proxy px;
  px.opts = opts;
  sample::stop_signals signals(px.stop);  // before any thread starts

  auto started = std::chrono::steady_clock::now();
  weft::runtime_stats stats;
  int rc = sample::run_on_runtime(opts.common.workers, stats, [&px] { return run(px); });
  if (rc != 0) return rc;  // it did not start (the error is printed): no summary
  std::printf("proxy: served %llu connections to %s, %llu bytes client->upstream, %llu bytes upstream->client, "
              "%llu connect errors, %llu idle timeouts, %llu other errors, %zu closed after the grace period, "
              "in %.1f s; %s\n",
              static_cast<unsigned long long>(px.result.accepted), px.opts.to.c_str(),
              static_cast<unsigned long long>(px.bytes_up.load()),
              static_cast<unsigned long long>(px.bytes_down.load()),
              static_cast<unsigned long long>(px.connect_errors.load()),
              static_cast<unsigned long long>(px.idle_timeouts.load()),
              static_cast<unsigned long long>(px.errors.load()), px.result.closed_after_grace,
              sample::seconds_since(started), sample::runtime_summary(stats).c_str());
  return rc;
}
