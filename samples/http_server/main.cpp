// http_server: an HTTP/1.1 server written in plain thread style — one fiber per connection
// (weft::spawn, named "conn <peer>"), blocking reads and writes on weft::net sockets, a
// hand-written incremental parser, keep-alive and pipelining (every complete request of a read
// is answered, in order, with one write). Routes: `/` hello, `/metrics` (Prometheus),
// `/debug/fibers` (the runtime's live fibers), `/static/...` (files under --root, read through
// run_blocking). Works with curl, wrk, ab and browsers.
//
// Deadlines: between requests a connection may stay idle for --idle-timeout-ms; once a request
// starts its head must be complete within --header-timeout-ms (a slowloris client trickling
// bytes is answered 408 and closed while the others keep being served); each body read and
// each write gets --idle-timeout-ms. Malformed and oversize requests get 400/413/414/431 and the
// connection closes gracefully (sample::linger). "Expect: 100-continue" is answered with
// "100 Continue" once the head is in, or with the final 404/405 (and a close) if no route takes
// the request; OPTIONS (and "OPTIONS *") lists the allowed methods.
//
// Shutdown: SIGINT/SIGTERM are taken by sample::stop_signals, which requests stop. The accept
// loop ends, the listener closes, idle connections end at once, a request half received gets
// --grace-ms to finish (its reply says "Connection: close"), then every connection still open
// is closed and the process prints a summary and exits 0.
#include "request_parser.hpp"
#include "response.hpp"
#include "routes.hpp"
#include "sample_support.hpp"

#include <weft/weft.hpp>

#include <sys/stat.h>

#include <climits>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <stop_token>
#include <string>
#include <system_error>
#include <vector>

namespace {

using namespace std::chrono_literals;
using clock_type = weft::net::clock;

struct options {
  sample::common_options common{.port = 8080};
  std::string root;
  std::chrono::milliseconds idle_timeout{10000};
  std::chrono::milliseconds header_timeout{5000};
  std::chrono::milliseconds grace{1000};
};

const char* const kUsage =
    "An HTTP/1.1 server on weft fibers: GET / (hello), /metrics (Prometheus text),\n"
    "/debug/fibers (live fibers), /static/<path> (files under --root).";

// Returns -1 to run, or an exit code (0 after --help, 2 after a usage error).
int parse_args(int argc, char** argv, options& o) {
  return sample::parse_args(
      argc, argv, "http_server", kUsage, o.common,
      {{.name = "--root",
        .value_name = "DIR",
        .help = "serve GET /static/<path> from the files under DIR",
        .what = "an existing directory",
        .set = [&o](const char* s) {
          std::unique_ptr<char, decltype(&std::free)> real(::realpath(s, nullptr), &std::free);
          struct stat st{};
          if (!real || ::stat(real.get(), &st) != 0 || !S_ISDIR(st.st_mode)) return false;
          o.root = real.get();
          return true;
        }},
       sample::millis_flag("--idle-timeout-ms", "close a connection idle between requests this long (default 10000)",
                           o.idle_timeout, 1, 3600000),
       sample::millis_flag("--header-timeout-ms", "a started request's head must arrive within this (default 5000)",
                           o.header_timeout, 1, 3600000),
       sample::millis_flag("--grace-ms",
                           "on SIGINT/SIGTERM, how long half-received requests may take (default 1000)", o.grace)});
}

struct server {
  options opts;
  http::route_context routes;
  http::server_counters counters;
  std::stop_source stop;
};

// Serves one client: read what arrived, answer every complete request in it with one
// write_all, repeat until the client closes, a deadline passes, an error, or shutdown.
void serve(server& srv, weft::net::tcp_stream& s) {
  http::request_parser parser;
  http::request req;
  http::local_counters tally;
  std::string out;
  std::vector<char> buf(16 * 1024);
  sample::request_grace grace(srv.stop, srv.opts.grace);
  bool head_started = false;  // the request in flight has begun; head_deadline bounds its head
  clock_type::time_point head_deadline{};
  for (;;) {
    // Deadlines: idle between requests, a fixed budget for a head, progress for a body.
    if (!parser.has_partial()) {
      head_started = false;
      s.set_read_deadline(clock_type::now() + srv.opts.idle_timeout);
    } else if (!parser.reading_body()) {
      s.set_read_deadline(head_deadline);
    } else {
      s.set_read_deadline(clock_type::now() + srv.opts.idle_timeout);
    }
    if (grace.armed()) s.set_read_deadline(std::min(head_deadline, clock_type::now() + srv.opts.grace));
    weft::this_fiber::set_waiting_on(parser.has_partial() ? "read request (partial)" : "read request");
    std::error_code ec;
    std::size_t n = grace.read_some(s, buf.data(), buf.size(), ec);
    if (grace.start(ec, parser.has_partial(), s)) {
      head_deadline = grace.deadline();
      continue;
    }
    if (ec == std::errc::timed_out && parser.has_partial()) {
      // A request that does not arrive in time (slowloris): say so, then close.
      http::append_error(out, 408, http::connection_header::close, true);
      ++tally.requests;  // every response answers a request, parsed or not: the classes add up
      tally.count(408);
      s.set_write_deadline(clock_type::now() + 1s);
      s.write_all(out.data(), out.size(), ec);
      break;
    }
    if (ec || n == 0) break;
    parser.feed(buf.data(), n);
    bool close_after = false;
    for (;;) {
      http::parse_status st = parser.next(req);
      if (st == http::parse_status::need_more) break;
      if (st == http::parse_status::error) {
        int status = parser.error_status();
        http::append_error(out, status, http::connection_header::close, true, parser.error());
        ++tally.requests;
        tally.count(status);
        close_after = true;
        break;
      }
      head_started = false;
      ++tally.requests;
      close_after = !req.keep_alive || srv.stop.stop_requested();
      auto conn = close_after ? http::connection_header::close
                  : req.version_minor == 0 ? http::connection_header::keep_alive
                                           : http::connection_header::none;
      http::file_body file;
      tally.count(http::handle(req, srv.routes, conn, out, file));
      if (file.fd >= 0 || out.size() >= 256 * 1024) {  // a file follows its head; long pipelines flush
        weft::this_fiber::set_waiting_on("write response");
        s.set_write_deadline(clock_type::now() + srv.opts.idle_timeout);
        s.write_all(out.data(), out.size(), ec);
        out.clear();
        if (!ec && file.fd >= 0) http::send_file(s, file, ec);
        if (ec) break;
      }
      if (close_after) break;
    }
    // The request in flight said "Expect: 100-continue": its client waits for this line (curl
    // a second) before it sends the body. After the replies to the requests before it. A
    // request no route takes (400, 404, 405) gets its final status instead, and the connection
    // closes without reading the body the client has not sent (RFC 9110, 10.1.1).
    if (!close_after && !ec && parser.take_continue()) {
      if (int refused = http::refusal(parser.pending_method(), parser.pending_target()); refused != 0) {
        ++tally.requests;
        http::append_refusal(out, refused, parser.pending_target(), http::connection_header::close,
                             parser.pending_method() == "HEAD");
        tally.count(refused);
        close_after = true;
      } else {
        out += "HTTP/1.1 100 Continue\r\n\r\n";
      }
    }
    if (!out.empty() && !ec) {
      weft::this_fiber::set_waiting_on("write response");
      s.set_write_deadline(clock_type::now() + srv.opts.idle_timeout);
      s.write_all(out.data(), out.size(), ec);
      out.clear();
    }
    tally.flush(srv.counters);
    if (ec) break;
    if (parser.has_partial() && !head_started) {
      // The next request has begun (maybe behind pipelined ones): its head's budget starts now.
      head_started = true;
      head_deadline = clock_type::now() + srv.opts.header_timeout;
    }
    if (close_after) {
      weft::this_fiber::set_waiting_on("linger");
      sample::linger(s);
      break;
    }
    if (grace.finished(parser.has_partial())) {  // the requests in flight at the stop are done
      weft::this_fiber::set_waiting_on("linger");
      sample::linger(s);
      break;
    }
  }
  tally.flush(srv.counters);
}

int run(server& srv) {
  // Idle connections leave at once (their reads take the stop token); half-received requests
  // get the grace period, plus a margin for their replies to go out.
  sample::tcp_server_options o{.prog = "http_server", .grace = srv.opts.grace + 200ms, .fiber_name = "conn",
                               .on_listening = {}, .on_stop = {}};
  return sample::serve_tcp(srv.opts.common, srv.stop.get_token(), o, [&srv](weft::net::tcp_stream& s) {
    srv.counters.connections.fetch_add(1, std::memory_order_relaxed);
    srv.counters.open_connections.fetch_add(1, std::memory_order_relaxed);
    serve(srv, s);
    srv.counters.open_connections.fetch_sub(1, std::memory_order_relaxed);
  }).exit_code;
}

}  // namespace

int main(int argc, char** argv) {
  options opts;
  if (int rc = parse_args(argc, argv, opts); rc >= 0) return rc;

  server srv;
  srv.opts = opts;
  srv.routes.root = opts.root;
  srv.routes.counters = &srv.counters;
  sample::stop_signals signals(srv.stop);  // before any thread starts

  auto started = std::chrono::steady_clock::now();
  weft::runtime_stats stats;
  int rc = sample::run_on_runtime(opts.common.workers, stats, [&srv] { return run(srv); });
  if (rc != 0) return rc;  // it did not start (the error is printed): no summary
  const auto& c = srv.counters;
  auto get = [](const std::atomic<std::uint64_t>& a) { return static_cast<unsigned long long>(a.load()); };
  std::printf("http_server: served %llu connections, %llu requests (2xx=%llu 3xx=%llu 4xx=%llu 5xx=%llu) in %.1f s; %s\n",
              get(c.connections), get(c.requests), get(c.responses[2]), get(c.responses[3]), get(c.responses[4]),
              get(c.responses[5]), sample::seconds_since(started), sample::runtime_summary(stats).c_str());
  return rc;
}
