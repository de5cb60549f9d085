// epoll_http_server: the hand-written baseline for samples/http_server (issue 5: "wrk -t1 -c100
// against http_server and against a hand-written epoll HTTP baseline with the same response").
// The epoll frame (a thread per worker with its own epoll instance, SO_REUSEPORT listeners,
// edge-triggered connections registered once, pending output, shutdown) is
// bench/compare/common/epoll_server.hpp; this file is HTTP/1.1 with keep-alive and pipelining:
// a readiness event reads until EAGAIN; every complete request in what arrived (head up to
// "\r\n\r\n", then Content-Length bytes of body) is answered, in order, and the answers of one
// read go out in one send. Every request gets the same answer, byte for byte what http_server
// sends for `GET /` (kHello below). Minimal checks, enough for a fair baseline: a request line
// of three parts with an HTTP/1.x version, well-formed header lines, a numeric Content-Length;
// otherwise 400 (505 for another HTTP version, 501 for Transfer-Encoding, 413 for a body over
// 1 MiB, 431 for a head over 64 KiB) and the connection closes after the answer. HTTP/1.0 and
// "Connection: close" close after the answer too. Runs until SIGINT or SIGTERM, then exits 0.
#include <unistd.h>

#include <cerrno>
#include <charconv>
#include <cstdint>
#include <cstring>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "echo_common.hpp"
#include "epoll_server.hpp"

namespace {

constexpr const char* prog = "epoll_http_server";
const std::string usage = std::string("usage: epoll_http_server [--port P] [--workers N] [--accept reuseport|shared]\n") +
                          epoll_baseline::common_usage +
                          "Answers every HTTP/1.1 request with 200 \"hello from weft\\n\". Runs until SIGINT or SIGTERM.\n";

// What samples/http_server answers to `GET /`; the benchmark compares the two on this response.
constexpr std::string_view kHello =
    "HTTP/1.1 200 OK\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: 16\r\n\r\nhello from weft\n";

constexpr std::size_t read_buffer_size = 64 * 1024;
constexpr std::size_t max_head = 64 * 1024;
constexpr std::size_t max_body = 1024 * 1024;

struct http_conn : epoll_baseline::connection {
  std::vector<char> in;  // the start of a request that has not fully arrived
  bool closing = false;  // close once the pending output is written
};

// What the head of one request says (status 0: well-formed).
struct request_head {
  int status = 0;
  std::size_t content_length = 0;
  bool keep_alive = true;
};

bool iequals(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (std::size_t i = 0; i < a.size(); ++i) {
    char x = a[i], y = b[i];
    if (x >= 'A' && x <= 'Z') x = char(x - 'A' + 'a');
    if (y >= 'A' && y <= 'Z') y = char(y - 'A' + 'a');
    if (x != y) return false;
  }
  return true;
}

std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

// True if the comma-separated list `value` holds `token` (case-insensitive).
bool has_token(std::string_view value, std::string_view token) {
  while (!value.empty()) {
    std::size_t comma = value.find(',');
    if (iequals(trim(value.substr(0, comma)), token)) return true;
    if (comma == std::string_view::npos) break;
    value.remove_prefix(comma + 1);
  }
  return false;
}

// Parses a request head: the request line and the header lines, each ending in "\r\n" (the
// blank line that ends the head is not part of `head`).
request_head parse_head(std::string_view head) {
  request_head h;
  std::size_t eol = head.find("\r\n");
  std::string_view line = head.substr(0, eol);
  std::size_t sp1 = line.find(' ');
  std::size_t sp2 = sp1 == std::string_view::npos ? sp1 : line.find(' ', sp1 + 1);
  if (sp1 == 0 || sp2 == std::string_view::npos || sp2 == sp1 + 1 || sp2 + 1 == line.size()) return {400};
  std::string_view version = line.substr(sp2 + 1);
  if (version == "HTTP/1.0") h.keep_alive = false;
  else if (version != "HTTP/1.1") return {version.substr(0, 5) == "HTTP/" ? 505 : 400};
  bool have_length = false;
  for (std::size_t pos = eol + 2; pos < head.size();) {
    std::size_t end = head.find("\r\n", pos);
    std::string_view field = head.substr(pos, end - pos);
    pos = end + 2;
    std::size_t colon = field.find(':');
    if (colon == 0 || colon == std::string_view::npos || field[colon - 1] == ' ' || field[colon - 1] == '\t') return {400};
    std::string_view name = field.substr(0, colon), value = trim(field.substr(colon + 1));
    if (iequals(name, "content-length")) {
      std::size_t n = 0;
      auto [p, ec] = std::from_chars(value.data(), value.data() + value.size(), n);
      if (value.empty() || ec != std::errc() || p != value.data() + value.size()) return {ec == std::errc::result_out_of_range ? 413 : 400};
      if (have_length && n != h.content_length) return {400};
      h.content_length = n;
      have_length = true;
    } else if (iequals(name, "transfer-encoding")) {
      return {501};
    } else if (iequals(name, "connection")) {
      if (has_token(value, "close")) h.keep_alive = false;
      else if (has_token(value, "keep-alive")) h.keep_alive = true;
    }
  }
  if (h.content_length > max_body) return {413};
  return h;
}

std::string_view error_response(int status) {
  switch (status) {
    case 413: return "HTTP/1.1 413 Content Too Large\r\nContent-Length: 0\r\nConnection: close\r\n\r\n";
    case 431: return "HTTP/1.1 431 Request Header Fields Too Large\r\nContent-Length: 0\r\nConnection: close\r\n\r\n";
    case 501: return "HTTP/1.1 501 Not Implemented\r\nContent-Length: 0\r\nConnection: close\r\n\r\n";
    case 505: return "HTTP/1.1 505 HTTP Version Not Supported\r\nContent-Length: 0\r\nConnection: close\r\n\r\n";
    default: return "HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\nConnection: close\r\n\r\n";
  }
}

// The requests at the front of some input that were answered.
struct answered {
  std::size_t consumed = 0;  // bytes of complete requests (and of blank lines before them)
  bool close = false;        // the last answer ends the connection
};

// Appends to `out` the answer to every complete request at the front of [p, p + len).
answered answer_requests(const char* p, std::size_t len, std::string& out) {
  answered a;
  while (a.consumed < len) {
    const char* start = p + a.consumed;
    std::size_t avail = len - a.consumed;
    // RFC 9112 2.2: ignore at least one empty line before a request line.
    if (avail >= 2 && start[0] == '\r' && start[1] == '\n') {
      a.consumed += 2;
      continue;
    }
    auto* end = static_cast<const char*>(memmem(start, avail, "\r\n\r\n", 4));
    if (end == nullptr) {
      if (avail > max_head) {
        out += error_response(431);
        a.close = true;
      }
      break;
    }
    request_head h = parse_head(std::string_view(start, std::size_t(end - start) + 2));
    if (h.status != 0) {
      out += error_response(h.status);
      a.close = true;
      break;
    }
    std::size_t whole = std::size_t(end - start) + 4 + h.content_length;
    if (whole > avail) break;  // the body is still on its way
    out += kHello;
    a.consumed += whole;
    if (!h.keep_alive) {
      a.close = true;
      break;
    }
  }
  return a;
}

class http_worker : public epoll_baseline::worker<http_worker, http_conn> {
 public:
  http_worker(const char* p, int listen_fd, int stop_fd, bool shared_accept)
      : worker(p, listen_fd, stop_fd, shared_accept) {}

  // Readiness in either direction (or an error, or the peer's FIN): flush pending output first;
  // read only when nothing is pending.
  void on_ready(http_conn* c, std::uint32_t) {
    if (!c->pending.empty() && !flush(c)) return;
    if (c->closing) {
      close_conn(c);
      return;
    }
    drain(c, buf_.get(), read_buffer_size, [this, c](const char* data, std::size_t n) { return on_data(c, data, n); });
  }

 private:
  // Answers what `data` completes; false if reading stops (closed, closing, or output pending).
  bool on_data(http_conn* c, const char* data, std::size_t n) {
    // The common case: nothing kept from before, so parse the read buffer in place.
    const char* p = data;
    std::size_t len = n;
    if (!c->in.empty()) {
      c->in.insert(c->in.end(), data, data + n);
      p = c->in.data();
      len = c->in.size();
    }
    out_.clear();
    answered a = answer_requests(p, len, out_);
    if (a.close) {
      c->in.clear();
      c->closing = true;
    } else if (p == data) {
      c->in.assign(data + a.consumed, data + n);
    } else {
      c->in.erase(c->in.begin(), c->in.begin() + std::ptrdiff_t(a.consumed));
    }
    // write_or_keep frees `c` when the send fails: nothing may touch it after a false.
    if (!out_.empty() && !write_or_keep(c, out_.data(), out_.size())) return false;
    if (c->closing) {
      close_conn(c);
      return false;
    }
    return true;
  }

  std::unique_ptr<char[]> buf_{new char[read_buffer_size]};
  std::string out_;  // the answers of one read; reused, so it keeps its capacity
};

}  // namespace

int main(int argc, char** argv) {
  epoll_baseline::options opts;
  echo_bench::args a(prog, usage, argc, argv);
  while (a.advance()) {
    if (!epoll_baseline::parse_common_flag(a, opts)) a.unknown();
  }
  return epoll_baseline::serve<http_worker>(prog, opts);
}
