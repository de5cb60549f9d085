// The http_server sample's routes: `GET /` (hello), `GET /metrics` (Prometheus text of the
// runtime's and the server's counters), `GET /debug/fibers` (the live fibers), and
// `GET /static/<path>` (files under --root, read through weft::run_blocking). HEAD works on
// each; other methods get 405, other paths 404.
// Invariant: a static file is served only if the realpath of what the request names lies
// inside the realpath of the root, so "..", "%2e%2e", absolute paths and symlinks cannot escape.
#pragma once

#include "request_parser.hpp"
#include "response.hpp"

#include <weft/weft.hpp>

#include <atomic>
#include <cstdint>
#include <string>
#include <system_error>
#include <vector>

namespace http {

/// The server's own counters. Connection fibers add batches (relaxed: read for reporting).
struct server_counters {
  std::atomic<std::uint64_t> connections{0};       ///< accepted
  std::atomic<std::int64_t> open_connections{0};
  std::atomic<std::uint64_t> requests{0};
  std::atomic<std::uint64_t> responses[6] = {};    ///< by status class: [2] = 2xx ... [5] = 5xx
};

/// Per-connection tallies, added to server_counters once per read so the hot path touches no
/// shared cache line per request.
struct local_counters {
  std::uint64_t requests = 0;
  std::uint64_t responses[6] = {};
  void count(int status) { ++responses[status / 100 % 6]; }
  void flush(server_counters& to);
};

/// What routes need from the server.
struct route_context {
  std::string root;  ///< realpath of --root; empty: no static files
  server_counters* counters = nullptr;
};

/// A file to send after its head (already in the output buffer). Owns `fd`.
struct file_body {
  int fd = -1;
  std::uint64_t size = 0;
  file_body() = default;
  file_body(const file_body&) = delete;
  file_body& operator=(const file_body&) = delete;
  ~file_body();
};

/// The status a request for `method` `target` is refused with before any route runs (400: "*"
/// without OPTIONS, or a target that is neither a path nor an http(s) URL; 404: no such route, 405: a method the route does not allow), or 0 if a
/// route serves it (which may still answer 404 or 403 for a static file). handle() decides with
/// it, and so does the connection loop for a request that asked "Expect: 100-continue": a
/// refused one gets its final status at once, and its body is never invited.
int refusal(std::string_view method, std::string_view target);

/// Appends the response for refusal() `status` of `target` (405 with its Allow field; a body
/// unless HEAD).
void append_refusal(std::string& out, int status, std::string_view target, connection_header conn, bool head);

/// Handles one request: appends the response to `out`, or only its head with `file` opened
/// when a file's content follows. Returns the status. Runs on the connection's fiber; may park
/// it (run_blocking for the file system).
int handle(const request& req, const route_context& ctx, connection_header conn, std::string& out, file_body& file);

/// Streams `file` to `s`, reading chunks through run_blocking. Parks the fiber.
void send_file(weft::net::tcp_stream& s, file_body& file, std::error_code& ec);

/// The Prometheus text exposition (version 0.0.4) of `rs` and `c`.
std::string metrics_text(const weft::runtime_stats& rs, const server_counters& c);

/// The listing of /debug/fibers: one line per fiber, id, status, name, what it waits on.
std::string fibers_text(const std::vector<weft::fiber_info>& fibers);

}  // namespace http
