// Blocking-style byte streams (TCP and Unix): read_some, read_exact, write_all (also vectored),
// shutdown. Every call parks the calling fiber (blocks a plain thread) until it completes, the
// socket's deadline passes (std::errc::timed_out), the stop_token is stopped or the socket is
// closed (std::errc::operation_canceled). Each call has four forms: throwing
// (std::system_error), with std::error_code&, and both with a std::stop_token. The
// error_code forms return the bytes moved before the error (read_exact's are consumed); the
// throwing forms cannot, so use those where a partial transfer matters.
// Writes never raise SIGPIPE (MSG_NOSIGNAL): a write to a reset peer fails with broken_pipe or
// connection_reset. EINTR is retried inside.
#pragma once

#include <weft/detail/cxx20.hpp>

#include <span>
#include <utility>

#include <weft/net/error.hpp>
#include <weft/net/socket.hpp>

namespace weft::net {

class stream_socket : public socket {
 public:
  stream_socket() noexcept = default;
  /// Takes ownership of a connected stream socket `fd` (see socket::adopt).
  static stream_socket adopt(int fd);

  /// Reads at least one byte into `buf` (at most `size`); returns the count, 0 at end of
  /// stream (the peer shut down its side). A `size` of 0 returns 0 at once.
  std::size_t read_some(void* buf, std::size_t size);
  std::size_t read_some(void* buf, std::size_t size, std::error_code& ec);
  std::size_t read_some(void* buf, std::size_t size, const std::stop_token& st);
  std::size_t read_some(void* buf, std::size_t size, const std::stop_token& st, std::error_code& ec);

  /// Reads exactly `size` bytes. End of stream first is net_errc::end_of_stream (the error_code
  /// forms return the count read so far).
  std::size_t read_exact(void* buf, std::size_t size);
  std::size_t read_exact(void* buf, std::size_t size, std::error_code& ec);
  std::size_t read_exact(void* buf, std::size_t size, const std::stop_token& st);
  std::size_t read_exact(void* buf, std::size_t size, const std::stop_token& st, std::error_code& ec);

  /// Writes all `size` bytes (completing partial writes); returns `size`, or in the
  /// error_code forms the count written before the error.
  std::size_t write_all(const void* buf, std::size_t size);
  std::size_t write_all(const void* buf, std::size_t size, std::error_code& ec);
  std::size_t write_all(const void* buf, std::size_t size, const std::stop_token& st);
  std::size_t write_all(const void* buf, std::size_t size, const std::stop_token& st, std::error_code& ec);

  /// Writes every buffer in order with writev/sendmsg, completing partial writes.
  std::size_t write_all(std::span<const const_buffer> bufs);
  std::size_t write_all(std::span<const const_buffer> bufs, std::error_code& ec);
  std::size_t write_all(std::span<const const_buffer> bufs, const std::stop_token& st);
  std::size_t write_all(std::span<const const_buffer> bufs, const std::stop_token& st, std::error_code& ec);

  /// Writes what the socket takes without waiting for all of it (at least one byte unless an
  /// error); returns the count.
  std::size_t write_some(const void* buf, std::size_t size);
  std::size_t write_some(const void* buf, std::size_t size, std::error_code& ec);

  /// shutdown(2): the peer reads end of stream after `write`. Never blocks.
  void shutdown(shutdown_how how);
  void shutdown(shutdown_how how, std::error_code& ec) noexcept;

 protected:
  friend class listener_socket;
  explicit stream_socket(detail::io_desc* d) noexcept : socket(d) {}
  explicit stream_socket(socket&& s) noexcept : socket(std::move(s)) {}
};

}  // namespace weft::net
