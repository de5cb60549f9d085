// HTTP/1.1 request parsing (request_parser.hpp), strict where laxness lets requests be
// smuggled (RFC 9112 §6.3, §11.2): no whitespace before a field's colon, no obs-fold,
// Content-Length and Transfer-Encoding never together, one Content-Length value, CRLF in
// chunked framing. In the head a bare LF ends a line too (RFC 9112 §2.2 allows it, and a
// request typed into `nc` has them); a CR anywhere else in a head line is an error.
// Invariant: every error is decided by a prefix of the stream, never by how it was split — a
// line that ends past a limit fails the limit first, whatever else is wrong with it.
#include "request_parser.hpp"

#include <algorithm>
#include <cctype>
#include <cstring>

namespace http {
namespace {

bool is_tchar(unsigned char c) {
  if ((c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z')) return true;
  return std::strchr("!#$%&'*+-.^_`|~", c) != nullptr && c != '\0';
}

// Field-value characters: HTAB, SP, VCHAR, obs-text.
bool is_field_char(unsigned char c) { return c == '\t' || (c >= 0x20 && c != 0x7f); }

char lower(char c) { return (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : c; }

bool iequals(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (std::size_t i = 0; i < a.size(); ++i)
    if (lower(a[i]) != lower(b[i])) return false;
  return true;
}

std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

// Calls fn(token) for each element of a comma-separated list, trimmed, skipping empty ones.
template <class Fn>
void for_each_token(std::string_view list, Fn&& fn) {
  while (!list.empty()) {
    std::size_t comma = list.find(',');
    std::string_view t = trim(list.substr(0, comma));
    if (!t.empty()) fn(t);
    if (comma == std::string_view::npos) break;
    list.remove_prefix(comma + 1);
  }
}

constexpr std::size_t kMaxChunkLine = 4096;

}  // namespace

const std::string_view* request::find(std::string_view name) const noexcept {
  for (const header_field& h : headers)
    if (iequals(h.name, name)) return &h.value;
  return nullptr;
}

void request_parser::feed(const char* data, std::size_t size) {
  // Drop consumed bytes once they are at least half the buffer (amortised O(1) per byte).
  if (pos_ > 0 && pos_ * 2 >= buf_.size()) {
    buf_.erase(0, pos_);
    pos_ = 0;
  }
  buf_.append(data, size);
  fed_ += size;
}

parse_status request_parser::fail(int status, std::string msg) {
  // An Expect field may come before the field that fails the head (an oversize Content-Length):
  // a failed request is answered with its error alone, never invited to send its body.
  expect_continue_ = false;
  error_status_ = status;
  error_ = std::move(msg);
  return parse_status::error;
}

bool request_parser::take_line(std::string_view& line, bool& bad, bool bare_lf) {
  const std::size_t start = pos_ + cursor_;
  const void* nl = start < buf_.size() ? std::memchr(buf_.data() + start, '\n', buf_.size() - start) : nullptr;
  if (nl == nullptr) return false;
  std::size_t end = static_cast<std::size_t>(static_cast<const char*>(nl) - buf_.data());
  const bool cr = end > start && buf_[end - 1] == '\r';
  bad = !cr && !bare_lf;
  line = std::string_view(buf_.data() + start, cr ? end - 1 - start : end - start);
  cursor_ = end + 1 - pos_;
  return true;
}

parse_status request_parser::scan_head() {
  if (cursor_ == 0) {
    // RFC 9112 §2.2: ignore empty lines (CRLF, or a bare LF) before the request line.
    for (;;) {
      std::size_t left = buf_.size() - pos_;
      std::size_t skip = left >= 1 && buf_[pos_] == '\n' ? 1 : left >= 2 && buf_[pos_] == '\r' && buf_[pos_ + 1] == '\n' ? 2 : 0;
      if (skip == 0) break;
      pos_ += skip;
      consumed_ += skip;
    }
    if (buf_.size() - pos_ == 1 && buf_[pos_] == '\r') return parse_status::need_more;
  }
  for (;;) {
    const std::size_t line_start = cursor_;
    const bool first = line_start == 0;  // the request line
    if (first) {
      // Garbage fails at its first byte, not after a timeout: a request line holds printable
      // ASCII and spaces, and a CR before its LF. Only bytes within the limit are looked at,
      // so the outcome does not depend on how the stream was split.
      const std::size_t avail = std::min(buf_.size() - pos_, limits_.max_head);
      for (; scanned_ < avail && buf_[pos_ + scanned_] != '\n'; ++scanned_) {
        auto c = static_cast<unsigned char>(buf_[pos_ + scanned_]);
        if ((c < 0x20 && c != '\r') || c >= 0x7f) return fail(400, "invalid character in the request line");
      }
    }
    // Past the limit within the request line, the target is what is too long (414).
    auto too_long = [&] {
      return first ? fail(414, "request line longer than the limit") : fail(431, "request head larger than the limit");
    };
    std::string_view line;
    bool bad = false;
    if (!take_line(line, bad, true)) {
      if (buf_.size() - pos_ > limits_.max_head) return too_long();
      return parse_status::need_more;
    }
    if (cursor_ > limits_.max_head) return too_long();
    if (first) {
      if (parse_status st = parse_request_line(line); st == parse_status::error) return st;
      request_line_len_ = cursor_;
    } else if (line.empty()) {
      head_len_ = cursor_;
      head_text_len_ = line_start;
      return parse_head();
    }
  }
}

parse_status request_parser::parse_request_line(std::string_view line) {
  const char* base = buf_.data() + pos_;
  auto off = [base](std::string_view s) { return static_cast<std::size_t>(s.data() - base); };
  // request-line = method SP request-target SP HTTP-version
  std::size_t sp1 = line.find(' ');
  std::size_t sp2 = sp1 == std::string_view::npos ? sp1 : line.find(' ', sp1 + 1);
  if (sp2 == std::string_view::npos) return fail(400, "malformed request line");
  std::string_view method = line.substr(0, sp1);
  std::string_view target = line.substr(sp1 + 1, sp2 - sp1 - 1);
  std::string_view version = line.substr(sp2 + 1);
  if (method.empty() || !std::all_of(method.begin(), method.end(), [](char c) { return is_tchar(static_cast<unsigned char>(c)); }))
    return fail(400, "invalid method");
  if (target.empty() || !std::all_of(target.begin(), target.end(), [](char c) {
        auto u = static_cast<unsigned char>(c);
        return u > 0x20 && u < 0x7f;
      }))
    return fail(400, "invalid request target");
  if (version.size() != 8 || version.substr(0, 5) != "HTTP/" || version[6] != '.' || version[5] < '0' ||
      version[5] > '9' || version[7] < '0' || version[7] > '9')
    return fail(400, "invalid HTTP version");
  if (version[5] != '1') return fail(505, "this server speaks HTTP/1.0 and HTTP/1.1");
  method_ = {off(method), method.size()};
  target_ = {off(target), target.size()};
  version_minor_ = version[7] == '0' ? 0 : 1;
  return parse_status::need_more;
}

parse_status request_parser::parse_head() {
  const char* base = buf_.data() + pos_;
  // The header fields, without the request line (parsed already) and the blank line; every
  // line ends in LF.
  std::string_view head(base + request_line_len_, head_text_len_ - request_line_len_);
  auto off = [base](std::string_view s) { return static_cast<std::size_t>(s.data() - base); };
  auto next_line = [&head] {
    std::size_t eol = head.find('\n');
    std::string_view line = head.substr(0, eol);
    head.remove_prefix(eol == std::string_view::npos ? head.size() : eol + 1);
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    return line;
  };

  fields_.clear();
  bool have_length = false, chunked = false, have_te = false, close = false, keep_alive = false;
  int hosts = 0;
  std::uint64_t length = 0;
  expect_continue_ = false;
  while (!head.empty()) {
    std::string_view line = next_line();
    if (line.empty()) return fail(400, "header field without a name");  // a lone CR before the LF
    if (line.front() == ' ' || line.front() == '\t') return fail(400, "obsolete line folding");
    std::size_t colon = line.find(':');
    if (colon == 0 || colon == std::string_view::npos) return fail(400, "header field without a name");
    std::string_view name = line.substr(0, colon);
    if (!std::all_of(name.begin(), name.end(), [](char c) { return is_tchar(static_cast<unsigned char>(c)); }))
      return fail(400, "invalid header field name");
    std::string_view value = trim(line.substr(colon + 1));
    if (!std::all_of(value.begin(), value.end(), [](char c) { return is_field_char(static_cast<unsigned char>(c)); }))
      return fail(400, "invalid character in a header field value");
    if (fields_.size() == limits_.max_headers) return fail(431, "too many header fields");
    fields_.push_back({{off(name), name.size()}, {off(value), value.size()}});

    if (iequals(name, "content-length")) {
      if (value.empty() || !std::all_of(value.begin(), value.end(), [](char c) { return c >= '0' && c <= '9'; }))
        return fail(400, "invalid Content-Length");
      std::uint64_t v = 0;
      for (char c : value) {
        v = v * 10 + static_cast<std::uint64_t>(c - '0');
        if (v > limits_.max_body) return fail(413, "body larger than the limit");
      }
      if (have_length && v != length) return fail(400, "conflicting Content-Length values");
      have_length = true;
      length = v;
    } else if (iequals(name, "transfer-encoding")) {
      have_te = true;
      bool unknown = false, twice = false;
      for_each_token(value, [&](std::string_view t) {
        if (!iequals(t, "chunked")) {
          unknown = true;
        } else if (chunked) {
          twice = true;  // RFC 9112 §6.1: chunked is applied at most once
        }
        chunked = true;
      });
      if (unknown) return fail(501, "unsupported transfer coding");
      if (twice) return fail(400, "chunked applied more than once");
    } else if (iequals(name, "expect")) {
      // RFC 9110 §10.1.1: 100-continue is the only expectation; HTTP/1.0 ones are ignored.
      if (!iequals(value, "100-continue")) return fail(417, "unsupported expectation");
      expect_continue_ = version_minor_ == 1;
    } else if (iequals(name, "host")) {
      ++hosts;
      // RFC 9112 §3.2: a Host that is no uri-host[:port] is a 400. Blanks, '/', '@' and the
      // like have no place in one (a bracketed IPv6 literal, a name, an address, a port do).
      const bool valid = std::all_of(value.begin(), value.end(), [](char c) {
        return std::isalnum(static_cast<unsigned char>(c)) || std::string_view("-._~:[]!$&'()*+,;=%").find(c) !=
                                                                  std::string_view::npos;
      });
      if (!valid) return fail(400, "invalid Host");
    } else if (iequals(name, "connection")) {
      for_each_token(value, [&](std::string_view t) {
        if (iequals(t, "close")) close = true;
        if (iequals(t, "keep-alive")) keep_alive = true;
      });
    }
  }
  if (have_te && have_length) return fail(400, "both Content-Length and Transfer-Encoding");
  if (have_te && (!chunked || version_minor_ == 0)) return fail(400, "invalid Transfer-Encoding");
  if (version_minor_ == 1 && hosts != 1) return fail(400, hosts == 0 ? "missing Host" : "more than one Host");
  keep_alive_ = !close && (version_minor_ == 1 || keep_alive);

  cursor_ = head_len_;
  if (chunked) {
    chunked_body_.clear();
    trailer_bytes_ = 0;
    state_ = state::chunk_size;
  } else {
    body_left_ = length;
    state_ = state::body_length;
  }
  return parse_status::need_more;  // the caller goes on with the body state
}

parse_status request_parser::parse_chunked() {
  // Framing overhead is bounded too: tiny chunks must not let the raw request grow unbounded.
  const std::size_t max_raw = head_len_ + 2 * limits_.max_body + limits_.max_head;
  for (;;) {
    std::string_view line;
    bool bad = false;
    switch (state_) {
      case state::chunk_size: {
        const std::size_t line_start = cursor_;
        if (!take_line(line, bad)) {
          if (buf_.size() - pos_ - cursor_ > kMaxChunkLine) return fail(400, "chunk size line too long");
          return parse_status::need_more;
        }
        if (cursor_ - line_start > kMaxChunkLine) return fail(400, "chunk size line too long");
        if (bad) return fail(400, "line not ended by CRLF");
        std::size_t digits = 0;
        std::uint64_t size = 0;
        for (; digits < line.size(); ++digits) {
          char c = lower(line[digits]);
          int v = (c >= '0' && c <= '9') ? c - '0' : (c >= 'a' && c <= 'f') ? c - 'a' + 10 : -1;
          if (v < 0) break;
          size = size * 16 + static_cast<std::uint64_t>(v);
          if (size > limits_.max_body) return fail(413, "body larger than the limit");
        }
        std::string_view rest = trim(line.substr(digits));
        if (digits == 0 || (!rest.empty() && rest.front() != ';')) return fail(400, "invalid chunk size");
        if (chunked_body_.size() + size > limits_.max_body) return fail(413, "body larger than the limit");
        body_left_ = size;
        state_ = size == 0 ? state::trailers : state::chunk_data;
        break;
      }
      case state::chunk_data: {
        std::size_t avail = buf_.size() - pos_ - cursor_;
        std::size_t take = static_cast<std::size_t>(std::min<std::uint64_t>(avail, body_left_));
        chunked_body_.append(buf_, pos_ + cursor_, take);
        cursor_ += take;
        body_left_ -= take;
        if (body_left_ > 0) return parse_status::need_more;
        state_ = state::chunk_data_end;
        break;
      }
      case state::chunk_data_end: {
        std::size_t avail = buf_.size() - pos_ - cursor_;
        const char* p = buf_.data() + pos_ + cursor_;
        if (avail >= 1 && p[0] != '\r') return fail(400, "chunk data not followed by CRLF");
        if (avail >= 2 && p[1] != '\n') return fail(400, "chunk data not followed by CRLF");
        if (avail < 2) return parse_status::need_more;
        cursor_ += 2;
        state_ = state::chunk_size;
        break;
      }
      case state::trailers: {
        if (!take_line(line, bad)) {
          if (trailer_bytes_ + (buf_.size() - pos_ - cursor_) > limits_.max_head)
            return fail(431, "trailer section larger than the limit");
          return parse_status::need_more;
        }
        trailer_bytes_ += line.size() + 2;
        if (trailer_bytes_ > limits_.max_head) return fail(431, "trailer section larger than the limit");
        if (bad) return fail(400, "line not ended by CRLF");
        if (line.empty()) return parse_status::complete;
        if (line.front() == ' ' || line.front() == '\t' || line.find(':') == std::string_view::npos)
          return fail(400, "malformed trailer field");
        break;  // trailer fields are discarded
      }
      default:
        return fail(400, "internal parser state");
    }
    if (cursor_ > max_raw) return fail(413, "chunked body larger than the limit");
  }
}

parse_status request_parser::finish(request& out) {
  const char* base = buf_.data() + pos_;
  out.method = std::string_view(base + method_.off, method_.len);
  out.target = std::string_view(base + target_.off, target_.len);
  out.version_minor = version_minor_;
  out.keep_alive = keep_alive_;
  out.headers.clear();
  for (const field_span& f : fields_)
    out.headers.push_back({std::string_view(base + f.name.off, f.name.len), std::string_view(base + f.value.off, f.value.len)});
  if (state_ == state::body_length) {
    out.body = std::string_view(base + head_len_, cursor_ - head_len_);
  } else {
    out.body = chunked_body_;
  }
  pos_ += cursor_;
  consumed_ += cursor_;
  cursor_ = 0;
  scanned_ = 0;
  state_ = state::head;
  expect_continue_ = false;
  return parse_status::complete;
}

parse_status request_parser::next(request& out) {
  if (error_status_ != 0) return parse_status::error;
  if (state_ == state::head) {
    parse_status st = scan_head();
    if (st == parse_status::error) return st;
    if (state_ == state::head) return parse_status::need_more;
  }
  if (state_ == state::body_length) {
    std::size_t avail = buf_.size() - pos_ - cursor_;
    if (avail < body_left_) return parse_status::need_more;
    cursor_ += static_cast<std::size_t>(body_left_);
    body_left_ = 0;
    return finish(out);
  }
  parse_status st = parse_chunked();
  return st == parse_status::complete ? finish(out) : st;
}

}  // namespace http
