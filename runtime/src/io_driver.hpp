// The seam between the scheduler and an I/O poller (io/ provides the epoll one). The runtime
// knows only this interface: workers poll it without blocking before they park and every
// global_queue_interval ticks while busy, and one parked worker at a time blocks in it until
// the earliest timer. Installed lazily by io/ on first use, so a runtime without I/O pays one
// relaxed load per idle pass.
#pragma once

#include <cstdint>

namespace weft::detail {

class io_driver {
 public:
  virtual ~io_driver() = default;
  /// Waits up to `timeout_ns` (0: do not block; < 0: no limit) for readiness and makes the
  /// fibers (or threads) waiting on ready descriptors runnable. Called only from a worker
  /// thread of the owning runtime; several workers may poll with timeout 0 at once, at most
  /// one at a time with a timeout (runtime_impl::poll_owner). Returns the count woken.
  virtual std::uint32_t poll(std::int64_t timeout_ns) noexcept = 0;
  /// Makes a poll() blocked with a timeout return promptly. Any thread; never blocks.
  virtual void wake() noexcept = 0;
};

}  // namespace weft::detail
