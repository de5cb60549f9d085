// The part every weft::net socket shares: an owned, non-blocking descriptor registered once
// with the runtime's poller, Go-style sticky deadlines, close, and socket options.
// Invariant: a socket object is used by at most one reading and one writing fiber at a time
// (as Go's net.Conn: one reader and one writer may run concurrently; close may come from any
// fiber or thread and wakes both with operation_canceled).
#pragma once

#include <weft/detail/cxx20.hpp>

#include <chrono>
#include <cstddef>
#include <stop_token>
#include <system_error>

#include <weft/net/endpoint.hpp>

namespace weft::detail {
struct io_desc;
}

namespace weft::net {

using clock = std::chrono::steady_clock;
/// An absolute deadline; no_deadline (the default) means "wait as long as it takes".
using deadline = clock::time_point;
inline constexpr deadline no_deadline = deadline::max();

/// A buffer for vectored writes.
struct const_buffer {
  const void* data;
  std::size_t size;
};

/// Direction for shutdown().
enum class shutdown_how { read = 0, write = 1, both = 2 };

/// Base of every socket type; not used directly.
class socket {
 public:
  socket() noexcept = default;
  socket(socket&& other) noexcept;
  socket& operator=(socket&& other) noexcept;
  socket(const socket&) = delete;
  socket& operator=(const socket&) = delete;
  /// Closes the socket (see close()).
  ~socket();

  /// Takes ownership of `fd` (any socket), makes it non-blocking and registers it with the
  /// current runtime's poller (without a runtime, waits use poll(2) on the calling thread).
  /// Throws std::system_error if `fd` is not a socket (not_a_socket; `fd` stays the
  /// caller's) or cannot be registered.
  static socket adopt(int fd);

  /// True until close() (or a move from it).
  bool is_open() const noexcept;
  /// The descriptor, or -1. Still owned by the socket.
  int native_handle() const noexcept;
  /// Closes the socket. Fibers or threads blocked in it return operation_canceled; the
  /// descriptor number is released only after the last of them has left, so it cannot be
  /// reused under them. Never blocks; idempotent.
  void close() noexcept;

  /// Sets a sticky absolute deadline for every later (and every pending) read / write; an
  /// operation past it fails with std::errc::timed_out, even when data is ready (as Go's).
  /// no_deadline clears it. Any thread.
  void set_deadline(deadline d) noexcept;
  void set_read_deadline(deadline d) noexcept;
  void set_write_deadline(deadline d) noexcept;

  /// The bound address (getsockname) and the peer's (getpeername). A TCP stream's peer is
  /// the one connect or accept saw, still returned after a reset made the kernel forget it.
  endpoint local_endpoint() const;
  endpoint local_endpoint(std::error_code& ec) const noexcept;
  endpoint peer_endpoint() const;
  endpoint peer_endpoint(std::error_code& ec) const noexcept;

  /// setsockopt helpers (throw std::system_error naming the option on failure).
  void set_option(int level, int name, int value);
  int get_option(int level, int name) const;
  /// SO_RCVBUF / SO_SNDBUF.
  void set_receive_buffer(int bytes) { set_option(SOL_SOCKET, SO_RCVBUF, bytes); }
  void set_send_buffer(int bytes) { set_option(SOL_SOCKET, SO_SNDBUF, bytes); }

 protected:
  explicit socket(detail::io_desc* d) noexcept : desc_(d) {}
  static socket wrap(detail::io_desc* d) noexcept { return socket(d); }
  detail::io_desc* desc_ = nullptr;
};

}  // namespace weft::net
