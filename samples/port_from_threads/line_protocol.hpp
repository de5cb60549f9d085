// The line protocol of port_from_threads, shared by threads_server.cpp and fibers_server.cpp:
// splitting a request line into its words, and the commands that touch no shared state.
// Standard C++ only, no I/O and no locks: what blocks or shares state lives in the servers.
#pragma once

#include <cctype>
#include <charconv>
#include <cstddef>
#include <string>
#include <string_view>
#include <system_error>

namespace line_protocol {

/// A request line: `VERB key rest...`. `verb` is upper-cased; `args` is everything after the
/// verb and `rest` everything after the key, leading blanks removed (a SET value may contain
/// blanks).
struct request {
  std::string verb;
  std::string_view args;
  std::string_view key;
  std::string_view rest;
};

inline bool is_blank(char c) { return c == ' ' || c == '\t'; }

inline std::string_view skip_blanks(std::string_view s) {
  while (!s.empty() && is_blank(s.front())) s.remove_prefix(1);
  return s;
}

// The next blank-separated word of `s`, removed from `s`.
inline std::string_view next_word(std::string_view& s) {
  s = skip_blanks(s);
  std::size_t n = 0;
  while (n < s.size() && !is_blank(s[n])) ++n;
  std::string_view w = s.substr(0, n);
  s.remove_prefix(n);
  return w;
}

inline std::string upper(std::string_view s) {
  std::string out(s);
  for (char& c : out) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  return out;
}

/// Splits `line` (without its '\n'; a trailing '\r' is dropped) into a request.
inline request parse(std::string_view line) {
  if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
  request r;
  r.verb = upper(next_word(line));
  r.args = skip_blanks(line);
  r.key = next_word(line);
  r.rest = skip_blanks(line);
  return r;
}

/// The number of blank-separated words in `s`.
inline std::size_t count_words(std::string_view s) {
  std::size_t n = 0;
  while (!next_word(s).empty()) ++n;
  return n;
}

/// Parses a decimal count of milliseconds in [0, max]; false if `s` is anything else.
inline bool parse_millis(std::string_view s, long max, long& out) {
  long v = 0;
  auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (ec != std::errc() || end != s.data() + s.size() || v < 0 || v > max) return false;
  out = v;
  return true;
}

}  // namespace line_protocol
