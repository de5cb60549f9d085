// The epoll backend of the runtime's io_driver: one edge-triggered epoll instance per runtime,
// an eventfd to interrupt a blocking poll, and dispatch of events to descriptor records by
// (index, generation) carried in epoll_event.data.
#pragma once

#include <cstdint>
#include <system_error>

#include "io_driver.hpp"

namespace weft::detail {

struct runtime_impl;

class epoll_poller final : public io_driver {
 public:
  /// Throws std::system_error naming epoll_create1/eventfd on failure.
  epoll_poller();
  ~epoll_poller() override;
  std::uint32_t poll(std::int64_t timeout_ns) noexcept override;
  void wake() noexcept override;
  /// Adds `fd` for both directions, edge-triggered; `data` = gen << 32 | index.
  std::error_code add(int fd, std::uint64_t data) noexcept;
  /// Removes `fd` (best effort: closing the descriptor removes it too).
  void remove(int fd) noexcept;

  /// The poller of `rt`, created on first use.
  static epoll_poller* of(runtime_impl* rt);
  /// The poller of the calling fiber's runtime; null on a plain thread.
  static epoll_poller* current() noexcept;

 private:
  int epfd_ = -1;
  int wakefd_ = -1;
};

}  // namespace weft::detail
