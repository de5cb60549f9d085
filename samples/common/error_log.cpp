// The rate-limited error line (error_log.hpp).
#include "error_log.hpp"

#include <chrono>
#include <cstdarg>
#include <cstdio>

namespace sample {

void error_log::print(const char* format, ...) {
  std::int64_t now = std::chrono::steady_clock::now().time_since_epoch() / std::chrono::nanoseconds(1);
  // Ordering: relaxed throughout. The exchange only elects one printer per second among
  // concurrent callers; not_shown_ is a tally, read by whoever prints next.
  std::int64_t next = next_ns_.load(std::memory_order_relaxed);
  if (now < next || !next_ns_.compare_exchange_strong(next, now + 1'000'000'000, std::memory_order_relaxed)) {
    not_shown_.fetch_add(1, std::memory_order_relaxed);
    return;
  }
  char text[512];
  va_list args;
  va_start(args, format);
  std::vsnprintf(text, sizeof text, format, args);
  va_end(args);
  std::uint64_t skipped = not_shown_.exchange(0, std::memory_order_relaxed);
  if (skipped == 0) {
    std::fprintf(stderr, "%s: %s\n", prog_, text);
  } else {
    std::fprintf(stderr, "%s: %s (and %llu more errors not shown, at most one line a second)\n", prog_, text,
                 static_cast<unsigned long long>(skipped));
  }
}

void error_log::flush() {
  if (std::uint64_t skipped = not_shown_.exchange(0, std::memory_order_relaxed); skipped != 0)
    std::fprintf(stderr, "%s: %llu more errors not shown, at most one line a second\n", prog_,
                 static_cast<unsigned long long>(skipped));
}

}  // namespace sample
