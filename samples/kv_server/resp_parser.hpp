// An incremental parser of Redis requests (RESP2 multibulk and inline commands), independent of
// the runtime so it can be tested byte by byte. Invariant: feed() only appends; next() consumes
// whole requests from the front and keeps the state of a partly received one, so a request
// split at any byte, or many pipelined in one read, parse the same as one request per read.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace kv {

/// Size limits of one request; a request beyond them is a protocol error.
struct resp_limits {
  std::size_t max_bulk = 64u << 20;         ///< bytes of one argument ($ length)
  std::int64_t max_multibulk = 1024 * 1024;  ///< arguments of one request (* count)
  std::size_t max_inline = 64u << 10;        ///< bytes of an inline line or a * / $ header line
};

/// What next() found.
enum class resp_status {
  need_more,  ///< no complete request buffered; feed more bytes
  command,    ///< a request was stored in the output argument
  error,      ///< a protocol error (error()); the connection must be closed, as Redis does
};

/// Splits a byte stream into requests. Not thread-safe; one per connection.
class resp_parser {
 public:
  explicit resp_parser(resp_limits limits = {}) : limits_(limits) {}

  /// Appends received bytes. Never blocks.
  void feed(const char* data, std::size_t size);
  void feed(std::string_view data) { feed(data.data(), data.size()); }

  /// Parses the next request into `args` (cleared first). Empty requests ("*0", "*-1", blank
  /// inline lines) are skipped, as Redis does. After `error` the parser stays failed.
  resp_status next(std::vector<std::string>& args);

  /// The message of the protocol error, e.g. "Protocol error: invalid multibulk length".
  const std::string& error() const noexcept { return error_; }

  /// True while part of a request is buffered (a request is in flight).
  bool has_partial() const noexcept { return pos_ < buf_.size() || multibulk_left_ > 0; }

 private:
  resp_status next_request(std::vector<std::string>& args);  // next() but leaves args on failure
  resp_status fail(std::string msg);
  resp_status parse_inline(std::vector<std::string>& args);
  // Reads a "\r\n"-terminated line from pos_; false when incomplete.
  bool read_line(std::string_view& line);
  // As read_line, with the line's '\r' (or npos) already found at `cr`.
  bool take_line(std::size_t cr, std::string_view& line);
  void compact();

  resp_limits limits_;
  std::string buf_;
  std::size_t pos_ = 0;              // first unconsumed byte of buf_
  std::int64_t multibulk_left_ = 0;  // arguments still expected by the current request
  std::int64_t bulk_len_ = -1;       // length of the argument being read, -1 before its header
  // Arguments of the request being received: the first pending_count_ entries. The strings
  // after them are kept from earlier requests (with their capacity, when it is at most
  // kept_capacity) and overwritten next, so requests of the same shape allocate nothing per
  // argument, pipelined or not.
  static constexpr std::size_t kept_capacity = 4096;
  std::vector<std::string> pending_;
  std::size_t pending_count_ = 0;
  std::string error_;
};

/// Splits an inline command line as Redis's sdssplitargs does (quotes, \xHH escapes); false
/// for unbalanced quotes.
bool split_inline(std::string_view line, std::vector<std::string>& out);

/// Parses a signed 64-bit decimal strictly as Redis's string2ll (no spaces, no '+', no leading
/// zeros, no "-0").
bool parse_int64(std::string_view s, std::int64_t& out);

}  // namespace kv
