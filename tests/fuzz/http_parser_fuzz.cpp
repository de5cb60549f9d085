// libFuzzer target for the http_server sample's request parser. The first bytes choose the
// limits and up to 16 split points; the rest is the byte stream. Checked on every input:
// - the parser never consumes more than it was fed; an error is sticky and consumes nothing more;
// - every request respects the limits (head, body, header count) and is well formed;
// - split invariance: the stream fed in pieces yields the same requests and the same final
//   status as the stream fed at once (errors are decided by a prefix, never by the split);
// - round trip: a request written back out (Content-Length framing) parses to itself;
// - "100 Continue" is offered only while a request's body is awaited, never after an error.
#include "request_parser.hpp"

#include "fuzz_support.hpp"

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

namespace {

struct owned {
  std::string method, target, body;
  int version_minor = 0;
  bool keep_alive = false;
  std::vector<std::pair<std::string, std::string>> headers;
  bool operator==(const owned&) const = default;
};

struct outcome {
  std::vector<owned> requests;
  int error_status = 0;
};

void check_request(const http::request& r, const http::request_limits& lim) {
  FUZZ_CHECK(!r.method.empty() && !r.target.empty());
  FUZZ_CHECK(r.version_minor == 0 || r.version_minor == 1);
  // The shortest head around them: "M T HTTP/1.x\n\n" (bare LF is accepted, RFC 9112 §2.2).
  FUZZ_CHECK(r.method.size() + r.target.size() + 12 <= lim.max_head);
  FUZZ_CHECK(r.headers.size() <= lim.max_headers);
  FUZZ_CHECK(r.body.size() <= lim.max_body);
  for (const auto& h : r.headers) {
    FUZZ_CHECK(!h.name.empty());
    FUZZ_CHECK(h.name.find_first_of(" \t\r\n:") == std::string_view::npos);
    FUZZ_CHECK(h.value.find_first_of("\r\n") == std::string_view::npos);
  }
}

owned own(const http::request& r) {
  owned o{std::string(r.method), std::string(r.target), std::string(r.body), r.version_minor, r.keep_alive, {}};
  for (const auto& h : r.headers) o.headers.emplace_back(std::string(h.name), std::string(h.value));
  return o;
}

// Feeds `in` cut at `cuts`, draining after each piece, checking the invariants on the way.
outcome run(const std::string& in, const std::vector<std::size_t>& cuts, const http::request_limits& lim) {
  http::request_parser p(lim);
  http::request r;
  outcome out;
  fuzz::for_each_piece(in, cuts, [&](std::string_view piece) {
    p.feed(piece);
    for (;;) {
      std::uint64_t before = p.consumed();
      http::parse_status st = p.next(r);
      FUZZ_CHECK(p.consumed() <= p.fed());
      if (st == http::parse_status::need_more) {
        FUZZ_CHECK(!p.take_continue() || p.reading_body());  // 100 Continue only for an awaited body
        if (p.reading_body()) {
          // The awaited request's head, as the server reads it to refuse the request early.
          FUZZ_CHECK(!p.pending_method().empty() && p.pending_method().find(' ') == std::string_view::npos);
          FUZZ_CHECK(!p.pending_target().empty() && p.pending_target().find(' ') == std::string_view::npos);
        }
        return true;
      }
      FUZZ_CHECK(!p.take_continue());  // never for a finished request, nor after an error
      if (st == http::parse_status::error) {
        // Only empty lines before a request line may have been consumed on the way.
        FUZZ_CHECK(p.consumed() - before <= in.size());
        const std::uint64_t at_error = p.consumed();
        int s = p.error_status();
        FUZZ_CHECK(s == 400 || s == 413 || s == 414 || s == 417 || s == 431 || s == 501 || s == 505);
        p.feed("GET / HTTP/1.1\r\nHost: x\r\n\r\n");
        FUZZ_CHECK(p.next(r) == http::parse_status::error && p.error_status() == s && p.consumed() == at_error);
        out.error_status = s;
        return false;
      }
      FUZZ_CHECK(p.consumed() > before);
      check_request(r, lim);
      out.requests.push_back(own(r));
    }
  });
  return out;
}

// Writes `r` back out with Content-Length framing (Transfer-Encoding and Content-Length dropped).
std::string serialize(const owned& r, std::size_t& head_size) {
  std::string s = r.method + " " + r.target + (r.version_minor == 0 ? " HTTP/1.0\r\n" : " HTTP/1.1\r\n");
  for (const auto& [n, v] : r.headers) {
    std::string lower = n;
    for (char& c : lower) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    if (lower == "content-length" || lower == "transfer-encoding") continue;
    s += n + ": " + v + "\r\n";
  }
  if (!r.body.empty()) s += "Content-Length: " + std::to_string(r.body.size()) + "\r\n";
  s += "\r\n";
  head_size = s.size();
  return s + r.body;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  FuzzedDataProvider fdp(data, size);
  http::request_limits lim;
  switch (fdp.ConsumeIntegralInRange<int>(0, 3)) {
    case 1: lim = {.max_head = 64, .max_body = 16, .max_headers = 3}; break;
    case 2: lim = {.max_head = 300, .max_body = 100, .max_headers = 8}; break;
    default: break;
  }
  auto [in, cuts] = fuzz::consume_split_input(fdp);

  outcome whole = run(in, {}, lim);
  outcome split = run(in, cuts, lim);
  FUZZ_CHECK(whole.requests == split.requests);
  FUZZ_CHECK(whole.error_status == split.error_status);

  for (const owned& r : whole.requests) {
    std::size_t head_size = 0;
    std::string again = serialize(r, head_size);
    if (head_size > lim.max_head || r.headers.size() + 1 > lim.max_headers) continue;
    outcome o = run(again, {}, lim);
    FUZZ_CHECK(o.error_status == 0 && o.requests.size() == 1);
    owned back = o.requests[0];
    FUZZ_CHECK(back.method == r.method && back.target == r.target && back.body == r.body);
    FUZZ_CHECK(back.version_minor == r.version_minor && back.keep_alive == r.keep_alive);
  }
  return 0;
}
