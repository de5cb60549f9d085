// Routes of the http_server sample (routes.hpp).
#include "routes.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <climits>
#include <cstdio>
#include <cstdlib>
#include <memory>

namespace http {
namespace {

constexpr std::string_view kAllow = "Allow: GET, HEAD, OPTIONS\r\n";

struct opened {
  int status = 0;  // 0 = ok
  int fd = -1;
  std::uint64_t size = 0;
};

// The status for a failed realpath/open: the file's absence or a forbidden path is the
// client's business (404, 403); running out of descriptors or memory is the server's, and
// temporary (503); anything else is a server error (500), never a misleading 404.
int status_for_errno(int e) {
  switch (e) {
    case ENOENT: case ENOTDIR: case ENAMETOOLONG: case ELOOP: return 404;
    case EACCES: case EPERM: return 403;
    case EMFILE: case ENFILE: case ENOMEM: return 503;
    default: return 500;
  }
}

// Resolves `rel` under `root` and opens it. Runs on a blocking-pool thread.
opened open_under_root(const std::string& root, const std::string& rel) {
  std::string candidate = root + "/" + rel;
  std::unique_ptr<char, decltype(&std::free)> real(::realpath(candidate.c_str(), nullptr), &std::free);
  if (!real) return {status_for_errno(errno)};
  if (!is_inside(real.get(), root)) return {403};  // a symlink pointing out of the root
  // O_NONBLOCK: opening a FIFO for reading would otherwise wait for a writer, holding a
  // blocking-pool thread (and the request) forever. It does not affect reading regular files,
  // the only kind served.
  int fd = ::open(real.get(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK);
  if (fd < 0) return {status_for_errno(errno)};
  struct stat st{};
  if (::fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
    const bool dir = S_ISDIR(st.st_mode);
    ::close(fd);
    return {dir ? 301 : 404};  // a directory named without its '/': send the client there
  }
  return {0, fd, static_cast<std::uint64_t>(st.st_size)};
}

// `query`: the target's "?..." part, or empty; a redirect keeps it.
int serve_static(std::string_view path, std::string_view query, bool with_body, const route_context& ctx,
                 connection_header conn, std::string& out, file_body& file) {
  std::string rel;
  int status = ctx.root.empty() ? 404 : static_relative_path(path, rel);
  if (status == 0) {
    weft::this_fiber::set_waiting_on("open file (run_blocking)");
    opened o = weft::run_blocking([&] { return open_under_root(ctx.root, rel); });
    status = o.status;
    if (status == 0) {
      append_head(out, 200, content_type_for(rel), o.size, conn);
      file.size = o.size;
      if (with_body) {
        file.fd = o.fd;
      } else {
        ::close(o.fd);
      }
      return 200;
    }
  }
  // A directory named with its '/' already (so "index.html" is itself a directory) is no
  // file: redirecting again would loop.
  if (status == 301 && (path.empty() || path.back() == '/')) status = 404;
  if (status == 301) {
    // Relative links in the directory's index.html resolve against the '/'-ended URL only.
    std::string location = "Location: /static/" + std::string(path) + "/" + std::string(query) + "\r\n";
    append_error(out, 301, conn, with_body, {}, location);
    return 301;
  }
  append_error(out, status, conn, with_body,
               status == 400 ? "the path has an invalid %-escape or an encoded NUL (%00)" : std::string_view{});
  return status;
}

void add_metric(std::string& out, const char* name, const char* type, const char* help, std::uint64_t v,
                const char* labels = "") {
  char buf[512];
  int n = std::snprintf(buf, sizeof buf, "# HELP %s %s\n# TYPE %s %s\n%s%s %llu\n", name, help, name, type, name, labels,
                        static_cast<unsigned long long>(v));
  out.append(buf, static_cast<std::size_t>(n));
}

}  // namespace

void local_counters::flush(server_counters& to) {
  if (requests != 0) to.requests.fetch_add(requests, std::memory_order_relaxed);
  for (int i = 0; i < 6; ++i)
    if (responses[i] != 0) to.responses[i].fetch_add(responses[i], std::memory_order_relaxed);
  *this = local_counters{};
}

file_body::~file_body() {
  if (fd >= 0) ::close(fd);
}

int refusal(std::string_view method, std::string_view target) {
  std::string_view path = path_of(target);
  const bool options = method == "OPTIONS";
  if (path == "*") return options ? 0 : 400;  // the asterisk-form: the server as a whole, OPTIONS only
  if (!path.starts_with('/')) return 400;  // not origin-form, http(s) absolute-form or "*"
  const bool known = path == "/" || path == "/metrics" || path == "/debug/fibers" || path.starts_with("/static/");
  if (!known) return 404;
  if (options) return 0;
  if (method != "GET" && method != "HEAD") return 405;
  return 0;
}

void append_refusal(std::string& out, int status, std::string_view target, connection_header conn, bool head) {
  switch (status) {
    case 400:
      append_error(out, 400, conn, !head,
                   target == "*" ? "the target * is for OPTIONS only"
                                 : "the request target must be a path (/...), an absolute URL (http://host/path) "
                                   "or * (OPTIONS)");
      break;
    case 405: append_error(out, 405, conn, true, {}, kAllow); break;
    default: append_error(out, status, conn, !head); break;
  }
}

int handle(const request& req, const route_context& ctx, connection_header conn, std::string& out, file_body& file) {
  std::string_view path = path_of(req.target);
  const bool get = req.method == "GET";
  const bool head = req.method == "HEAD";
  if (path == "/" && get && conn == connection_header::none) {
    out += kHelloResponse;  // the benchmark's path: one append
    return 200;
  }
  if (int status = refusal(req.method, req.target); status != 0) {
    append_refusal(out, status, req.target, conn, head);
    return status;
  }
  if (req.method == "OPTIONS") {  // of the server ("*") or of a known resource
    append_head(out, 200, {}, 0, conn, kAllow);
    return 200;
  }
  if (path == "/") {
    append_text(out, 200, kHelloBody, conn, get);
  } else if (path == "/metrics") {
    append_text(out, 200, metrics_text(weft::runtime::current()->stats(), *ctx.counters), conn, get,
                "text/plain; version=0.0.4; charset=utf-8");
  } else if (path == "/debug/fibers") {
    append_text(out, 200, fibers_text(weft::runtime::current()->fibers()), conn, get);
  } else {
    const std::size_t q = req.target.find('?');
    const std::string_view query = q == std::string_view::npos ? std::string_view() : req.target.substr(q);
    return serve_static(path.substr(8), query, get, ctx, conn, out, file);
  }
  return 200;
}

void send_file(weft::net::tcp_stream& s, file_body& file, std::error_code& ec) {
  std::vector<char> chunk(256 * 1024);
  std::uint64_t off = 0;
  while (off < file.size && !ec) {
    std::size_t want = static_cast<std::size_t>(std::min<std::uint64_t>(chunk.size(), file.size - off));
    weft::this_fiber::set_waiting_on("read file (run_blocking)");
    ssize_t n = weft::run_blocking([&] { return ::pread(file.fd, chunk.data(), want, static_cast<off_t>(off)); });
    if (n <= 0) {  // the file shrank or failed: the promised length cannot be kept, so close
      ec = std::make_error_code(std::errc::io_error);
      return;
    }
    weft::this_fiber::set_waiting_on("write file");
    s.write_all(chunk.data(), static_cast<std::size_t>(n), ec);
    off += static_cast<std::uint64_t>(n);
  }
}

std::string metrics_text(const weft::runtime_stats& rs, const server_counters& c) {
  std::string out;
  out.reserve(4096);
  add_metric(out, "weft_fibers_spawned_total", "counter", "Fibers spawned.", rs.spawned);
  add_metric(out, "weft_fibers_finished_total", "counter", "Fibers finished.", rs.finished);
  add_metric(out, "weft_context_switches_total", "counter", "Fiber context switches.", rs.context_switches);
  add_metric(out, "weft_steals_total", "counter", "Fibers stolen from another worker's queue.", rs.steals);
  add_metric(out, "weft_worker_parks_total", "counter", "Times a worker went to sleep for lack of work.", rs.parks);
  add_metric(out, "weft_timers_fired_total", "counter", "Runtime timers fired.", rs.timers_fired);
  add_metric(out, "weft_fibers_live", "gauge", "Fibers whose stack is in use.", rs.live_fibers);
  add_metric(out, "weft_stacks_mapped", "gauge", "Fiber stacks mapped by the pool.", rs.stacks_mapped);
  add_metric(out, "weft_stacks_cold", "gauge", "Free fiber stacks whose pages went back to the kernel.",
             rs.stacks_cold);
  add_metric(out, "weft_workers", "gauge", "Runtime worker threads.", rs.workers);
  add_metric(out, "http_connections_total", "counter", "Connections accepted.",
             c.connections.load(std::memory_order_relaxed));
  add_metric(out, "http_connections_open", "gauge", "Connections open.",
             static_cast<std::uint64_t>(std::max<std::int64_t>(0, c.open_connections.load(std::memory_order_relaxed))));
  add_metric(out, "http_requests_total", "counter", "Requests answered, malformed and timed-out ones included.",
             c.requests.load(std::memory_order_relaxed));
  out += "# HELP http_responses_total Responses sent, by status class.\n# TYPE http_responses_total counter\n";
  for (int k = 1; k <= 5; ++k) {
    char buf[96];
    int n = std::snprintf(buf, sizeof buf, "http_responses_total{class=\"%dxx\"} %llu\n", k,
                          static_cast<unsigned long long>(c.responses[k].load(std::memory_order_relaxed)));
    out.append(buf, static_cast<std::size_t>(n));
  }
  return out;
}

std::string fibers_text(const std::vector<weft::fiber_info>& fibers) {
  std::string out;
  char buf[256];
  int n = std::snprintf(buf, sizeof buf, "%zu live fibers\n%8s  %-9s %-32s %s\n", fibers.size(), "ID", "STATE", "NAME",
                        "WAITING ON");
  out.append(buf, static_cast<std::size_t>(n));
  for (const weft::fiber_info& f : fibers) {
    const char* st = "created";
    switch (f.status) {
      case weft::fiber_status::created: st = "created"; break;
      case weft::fiber_status::runnable: st = "runnable"; break;
      case weft::fiber_status::running: st = "running"; break;
      case weft::fiber_status::parked: st = "parked"; break;
    }
    n = std::snprintf(buf, sizeof buf, "%8llu  %-9s %-32s %s", static_cast<unsigned long long>(f.id), st,
                      f.name.empty() ? "-" : f.name.c_str(), f.waiting_on.c_str());
    std::string_view line(buf, std::min<std::size_t>(static_cast<std::size_t>(n), sizeof buf - 1));
    while (!line.empty() && line.back() == ' ') line.remove_suffix(1);  // no padding after the last column
    out += line;
    out += '\n';
  }
  return out;
}

}  // namespace http
