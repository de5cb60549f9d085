// RESP2 request parsing, following Redis 7's processMultibulkBuffer/processInlineBuffer: the
// same limits checks in the same order and the same "Protocol error: ..." texts. Invariant:
// bytes before pos_ belong to requests already returned (or to pending_).
#include "resp_parser.hpp"

#include <cctype>
#include <climits>
#include <utility>

namespace kv {

bool parse_int64(std::string_view s, std::int64_t& out) {
  if (s.empty() || s.size() > 20) {
    return false;
  }
  std::size_t i = 0;
  bool neg = false;
  if (s[0] == '-') {
    neg = true;
    i = 1;
    if (s.size() == 1) {
      return false;
    }
  }
  if (s[i] == '0') {
    if (s.size() == 1) {
      out = 0;
      return true;
    }
    return false;  // leading zero or "-0"
  }
  std::uint64_t v = 0;
  for (; i < s.size(); ++i) {
    if (s[i] < '0' || s[i] > '9') {
      return false;
    }
    std::uint64_t d = static_cast<std::uint64_t>(s[i] - '0');
    if (v > (UINT64_MAX - d) / 10) {
      return false;
    }
    v = v * 10 + d;
  }
  if (neg) {
    if (v > static_cast<std::uint64_t>(INT64_MAX) + 1) {
      return false;
    }
    out = static_cast<std::int64_t>(0 - v);
  } else {
    if (v > static_cast<std::uint64_t>(INT64_MAX)) {
      return false;
    }
    out = static_cast<std::int64_t>(v);
  }
  return true;
}

namespace {

int hex_value(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

bool is_space(char c) { return c == ' ' || c == '\n' || c == '\r' || c == '\t' || c == '\v' || c == '\f'; }

}  // namespace

bool split_inline(std::string_view line, std::vector<std::string>& out) {
  out.clear();
  std::size_t i = 0;
  const std::size_t n = line.size();
  for (;;) {
    while (i < n && is_space(line[i])) ++i;
    if (i == n) return true;
    std::string cur;
    bool in_dq = false, in_sq = false, done = false;
    while (!done) {
      if (in_dq) {
        if (i == n) return false;
        char c = line[i];
        if (c == '\\' && i + 3 < n && line[i + 1] == 'x' && hex_value(line[i + 2]) >= 0 &&
            hex_value(line[i + 3]) >= 0) {
          cur.push_back(static_cast<char>(hex_value(line[i + 2]) * 16 + hex_value(line[i + 3])));
          i += 3;
        } else if (c == '\\' && i + 1 < n) {
          ++i;
          switch (line[i]) {
            case 'n': cur.push_back('\n'); break;
            case 'r': cur.push_back('\r'); break;
            case 't': cur.push_back('\t'); break;
            case 'b': cur.push_back('\b'); break;
            case 'a': cur.push_back('\a'); break;
            default: cur.push_back(line[i]); break;
          }
        } else if (c == '"') {
          // A closing quote must be followed by a space or the end.
          if (i + 1 < n && !is_space(line[i + 1])) return false;
          done = true;
        } else {
          cur.push_back(c);
        }
      } else if (in_sq) {
        if (i == n) return false;
        char c = line[i];
        if (c == '\\' && i + 1 < n && line[i + 1] == '\'') {
          ++i;
          cur.push_back('\'');
        } else if (c == '\'') {
          if (i + 1 < n && !is_space(line[i + 1])) return false;
          done = true;
        } else {
          cur.push_back(c);
        }
      } else {
        if (i == n) break;
        char c = line[i];
        if (is_space(c)) {
          done = true;
        } else if (c == '"') {
          in_dq = true;
        } else if (c == '\'') {
          in_sq = true;
        } else {
          cur.push_back(c);
        }
      }
      if (i < n) ++i;
    }
    out.push_back(std::move(cur));
  }
}

void resp_parser::feed(const char* data, std::size_t size) {
  compact();
  buf_.append(data, size);
}

void resp_parser::compact() {
  // Drop consumed bytes once they dominate, so pipelined traffic does not grow the buffer.
  if (pos_ > 0 && (pos_ == buf_.size() || pos_ >= 4096)) {
    buf_.erase(0, pos_);
    pos_ = 0;
  }
}

resp_status resp_parser::fail(std::string msg) {
  error_ = std::move(msg);
  buf_.clear();
  pos_ = 0;
  return resp_status::error;
}

bool resp_parser::read_line(std::string_view& line) { return take_line(buf_.find('\r', pos_), line); }

bool resp_parser::take_line(std::size_t cr, std::string_view& line) {
  if (cr == std::string::npos || cr + 1 >= buf_.size()) {
    return false;
  }
  line = std::string_view(buf_).substr(pos_, cr - pos_);
  pos_ = cr + 2;
  return true;
}

resp_status resp_parser::parse_inline(std::vector<std::string>& args) {
  std::size_t nl = buf_.find('\n', pos_);
  if (nl == std::string::npos) {
    if (buf_.size() - pos_ > limits_.max_inline) {
      return fail("Protocol error: too big inline request");
    }
    return resp_status::need_more;
  }
  std::string_view line = std::string_view(buf_).substr(pos_, nl - pos_);
  if (!line.empty() && line.back() == '\r') {
    line.remove_suffix(1);
  }
  if (!split_inline(line, args)) {
    return fail("Protocol error: unbalanced quotes in request");
  }
  pos_ = nl + 1;
  return resp_status::command;
}

resp_status resp_parser::next(std::vector<std::string>& args) {
  resp_status st = next_request(args);
  if (st != resp_status::command) {
    // args is emptied, but its strings are kept (beyond the request being received) for the
    // next request to overwrite: one request per read allocates nothing per argument either.
    for (std::string& a : args) {
      if (a.capacity() <= kept_capacity) pending_.push_back(std::move(a));
    }
    args.clear();
  }
  return st;
}

resp_status resp_parser::next_request(std::vector<std::string>& args) {
  if (!error_.empty()) {
    return resp_status::error;
  }
  for (;;) {
    if (multibulk_left_ == 0) {
      if (pos_ >= buf_.size()) {
        compact();
        return resp_status::need_more;
      }
      if (buf_[pos_] != '*') {
        resp_status st = parse_inline(args);
        if (st == resp_status::command && args.empty()) {
          continue;  // blank line
        }
        return st;
      }
      std::size_t start = pos_;
      std::string_view line;
      if (!read_line(line)) {
        if (buf_.size() - pos_ > limits_.max_inline) {
          return fail("Protocol error: too big mbulk count string");
        }
        return resp_status::need_more;
      }
      std::int64_t count = 0;
      if (!parse_int64(line.substr(1), count) || count > limits_.max_multibulk) {
        pos_ = start;
        return fail("Protocol error: invalid multibulk length");
      }
      if (count <= 0) {
        continue;  // "*0" and "*-1" are empty requests
      }
      multibulk_left_ = count;
      pending_count_ = 0;
      pending_.reserve(static_cast<std::size_t>(count < 1024 ? count : 1024));
      bulk_len_ = -1;
    }
    while (multibulk_left_ > 0) {
      if (bulk_len_ < 0) {
        if (pos_ >= buf_.size()) {
          compact();
          return resp_status::need_more;
        }
        std::size_t cr = buf_.find('\r', pos_);
        if (cr == std::string::npos) {
          if (buf_.size() - pos_ > limits_.max_inline) {
            return fail("Protocol error: too big bulk count string");
          }
          compact();
          return resp_status::need_more;
        }
        if (buf_[pos_] != '$') {
          return fail(std::string("Protocol error: expected '$', got '") + buf_[pos_] + "'");
        }
        std::string_view line;
        if (!take_line(cr, line)) {
          compact();
          return resp_status::need_more;
        }
        std::int64_t len = 0;
        if (!parse_int64(line.substr(1), len) || len < 0 ||
            static_cast<std::uint64_t>(len) > limits_.max_bulk) {
          return fail("Protocol error: invalid bulk length");
        }
        bulk_len_ = len;
      }
      std::size_t need = static_cast<std::size_t>(bulk_len_) + 2;
      if (buf_.size() - pos_ < need) {
        compact();
        if (buf_.capacity() < pos_ + need) {
          buf_.reserve(pos_ + need);  // one allocation for a big argument
        }
        return resp_status::need_more;
      }
      if (pending_count_ < pending_.size()) {
        pending_[pending_count_].assign(buf_.data() + pos_, static_cast<std::size_t>(bulk_len_));
      } else {
        pending_.emplace_back(buf_.data() + pos_, static_cast<std::size_t>(bulk_len_));
      }
      ++pending_count_;
      pos_ += need;
      bulk_len_ = -1;
      --multibulk_left_;
    }
    pending_.resize(pending_count_);
    args.swap(pending_);  // pending_ takes args' strings, to be overwritten by the next request
    pending_count_ = 0;
    // ...except big ones (a big argument, or the buffer of a value SET replaced, which a move
    // assignment hands back): an idle connection must not pin them.
    for (std::string& a : pending_) {
      if (a.capacity() > kept_capacity) std::string().swap(a);
    }
    return resp_status::command;
  }
}

}  // namespace kv
