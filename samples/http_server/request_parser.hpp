// An incremental HTTP/1.1 request parser (RFC 9112), independent of the runtime so it can be
// tested and fuzzed byte by byte. Bytes are fed as they arrive; next() yields complete requests:
// request line, header fields, and a body framed by Content-Length or chunked transfer coding.
// Invariant: feed() only appends (compacting bytes already consumed); next() consumes whole
// requests from the front and keeps the state of a partly received one, so a request split at
// any byte, or many pipelined in one read, parse the same as one request per read. After an
// error the parser stays failed: the connection must answer error_status() and close.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace http {

/// Size limits of one request.
struct request_limits {
  std::size_t max_head = 8 * 1024;     ///< request line + header fields + blank line; beyond: 431
  std::size_t max_body = 1024 * 1024;  ///< body bytes (after dechunking); beyond: 413
  std::size_t max_headers = 100;       ///< header fields; beyond: 431
};

/// One header field; views into the parser (see request).
struct header_field {
  std::string_view name;
  std::string_view value;  ///< without leading and trailing whitespace
};

/// A complete request. Every view points into the parser and stays valid until the next call
/// of feed() or next() on it.
struct request {
  std::string_view method;
  std::string_view target;  ///< as sent, e.g. "/static/a.txt?x=1"
  int version_minor = 1;    ///< HTTP/1.<minor>: 0 or 1
  std::vector<header_field> headers;
  std::string_view body;
  bool keep_alive = true;   ///< HTTP/1.1 unless "Connection: close"; HTTP/1.0 only with "keep-alive"

  /// The value of the first field named `name` (case-insensitive), or null.
  const std::string_view* find(std::string_view name) const noexcept;
};

/// What next() found.
enum class parse_status {
  need_more,  ///< no complete request buffered; feed more bytes
  complete,   ///< a request was stored in the output argument
  error,      ///< malformed or oversize: answer error_status() and close
};

/// Splits a byte stream into requests. Not thread-safe; one per connection.
class request_parser {
 public:
  explicit request_parser(request_limits limits = {}) : limits_(limits) {}

  /// Appends received bytes. Never blocks. Invalidates the views of the last request.
  void feed(const char* data, std::size_t size);
  void feed(std::string_view data) { feed(data.data(), data.size()); }

  /// Parses the next request into `out`. Returns need_more until a whole request (head and
  /// body) is buffered, then complete; error once the stream is known to be bad (and from then
  /// on). Never reads past the bytes fed.
  parse_status next(request& out);

  /// After error: the status to answer (400 malformed, 413 body too large, 414 request line too
  /// long, 417 an Expect other than 100-continue, 431 head too large, 501 unsupported transfer
  /// coding, 505 unsupported version); 0 before any error.
  int error_status() const noexcept { return error_status_; }
  /// After error: what was wrong, e.g. "invalid header field name".
  const std::string& error() const noexcept { return error_; }

  /// True once for a request whose head asked for "Expect: 100-continue" (HTTP/1.1) while its
  /// body has not all arrived: the caller answers "HTTP/1.1 100 Continue" so the client sends it.
  /// Never after an error (an oversize Content-Length is answered 413 without the 100).
  bool take_continue() noexcept { return std::exchange(expect_continue_, false); }

  /// True while part of a request is buffered (a request is in flight).
  bool has_partial() const noexcept { return pos_ < buf_.size() || state_ != state::head; }
  /// True once the head of the request in flight is complete and its body is being read.
  bool reading_body() const noexcept { return state_ != state::head; }
  /// While reading_body(): the method and target of that request (views valid until the next
  /// feed() or next()), so a caller can refuse it before its body arrives.
  std::string_view pending_method() const noexcept { return std::string_view(buf_).substr(pos_ + method_.off, method_.len); }
  std::string_view pending_target() const noexcept { return std::string_view(buf_).substr(pos_ + target_.off, target_.len); }
  /// Bytes fed so far, and bytes consumed by the requests returned so far (consumed() <= fed()).
  std::uint64_t fed() const noexcept { return fed_; }
  std::uint64_t consumed() const noexcept { return consumed_; }

 private:
  enum class state { head, body_length, chunk_size, chunk_data, chunk_data_end, trailers };
  struct span {
    std::size_t off = 0;  // relative to pos_ (the start of the current request)
    std::size_t len = 0;
  };
  struct field_span {
    span name, value;
  };

  parse_status fail(int status, std::string msg);
  parse_status scan_head();
  parse_status parse_request_line(std::string_view line);
  parse_status parse_head();
  parse_status parse_chunked();
  parse_status finish(request& out);
  // The next line starting at cursor_, without its "\r\n"; false if incomplete. A bare LF ends
  // it too with `bare_lf`, else it is an error (returned through `bad`).
  bool take_line(std::string_view& line, bool& bad, bool bare_lf = false);

  request_limits limits_;
  std::string buf_;
  std::size_t pos_ = 0;     // first byte of the current request in buf_
  std::size_t cursor_ = 0;  // parse position relative to pos_
  state state_ = state::head;
  std::uint64_t fed_ = 0;
  std::uint64_t consumed_ = 0;

  // The current request, as offsets into buf_ relative to pos_ (feed() may move buf_).
  span method_, target_;
  int version_minor_ = 1;
  std::vector<field_span> fields_;
  bool keep_alive_ = true;
  std::size_t scanned_ = 0;           // bytes of the request line checked so far (scan_head)
  std::size_t request_line_len_ = 0;  // with its line end
  std::size_t head_len_ = 0;       // the head with its blank line
  std::size_t head_text_len_ = 0;  // the head without it
  bool expect_continue_ = false;   // set by parse_head, cleared by take_continue() and finish()
  std::uint64_t body_left_ = 0;  // Content-Length bytes, or bytes left of the current chunk
  std::string chunked_body_;     // the dechunked body
  std::size_t trailer_bytes_ = 0;

  int error_status_ = 0;
  std::string error_;
};

}  // namespace http
