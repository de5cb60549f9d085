// error_log: an error line that can repeat with every client, printed at most once a second.
// Standard C++ only, so that port_from_threads/threads_server (no weft) limits its accept
// errors with the same code as the servers on weft (serve_tcp, proxy).
// Invariant: every error passed to print() is either printed or counted, and a count is
// printed by the next line or by flush().
#pragma once

#include <atomic>
#include <cstdint>

namespace sample {

/// Prints a repeating error at most once a second: a listener out of descriptors fails every
/// accept, a proxy whose upstream is down fails every client. The first line of a second is
/// printed to stderr ("<prog>: <text>"); the rest are counted, and the next printed line, or
/// flush(), says how many were not shown. One instance per kind of error. Never blocks on more
/// than the write to stderr; any fiber or thread, concurrently.
class error_log {
 public:
  /// `prog` prefixes every line and must outlive the error_log.
  explicit error_log(const char* prog) noexcept : prog_(prog) {}
  error_log(const error_log&) = delete;
  error_log& operator=(const error_log&) = delete;

  /// Prints "<prog>: <format...>" unless a line was printed less than a second ago, in which
  /// case it only counts it.
  void print(const char* format, ...) __attribute__((format(printf, 2, 3)));
  /// Reports the errors counted but not shown yet, if any (at shutdown).
  void flush();

 private:
  const char* prog_;
  std::atomic<std::int64_t> next_ns_{0};  // steady clock: the earliest the next line may print
  std::atomic<std::uint64_t> not_shown_{0};
};

}  // namespace sample
