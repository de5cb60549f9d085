// Unix-domain stream sockets: unix_stream (connect, socket pairs) and unix_listener (bind
// removes a stale socket file first; the file is removed again when the listener is closed,
// destroyed or assigned over, if it still listens then).
// Blocking calls park the calling fiber; errors and
// deadlines as in stream.hpp.
#pragma once

#include <weft/detail/cxx20.hpp>

#include <atomic>
#include <cstdint>
#include <stop_token>
#include <string>
#include <utility>

#include <weft/net/stream.hpp>
#include <weft/net/tcp.hpp>

namespace weft::net {

class unix_stream : public stream_socket {
 public:
  unix_stream() noexcept = default;
  /// Connects to a listening Unix socket (endpoint::unix_path or "unix:/path").
  static unix_stream connect(const endpoint& to, deadline d = no_deadline);
  static unix_stream connect(const endpoint& to, deadline d, std::error_code& ec);
  /// As above; a stop request ends the wait with operation_canceled.
  static unix_stream connect(const endpoint& to, deadline d, const std::stop_token& st);
  static unix_stream connect(const endpoint& to, deadline d, const std::stop_token& st, std::error_code& ec);
  /// A connected pair (socketpair(AF_UNIX, SOCK_STREAM)).
  static std::pair<unix_stream, unix_stream> pair();

 private:
  friend class unix_listener;
  static unix_stream connect_impl(const endpoint& to, deadline d, const std::stop_token* st, std::error_code& ec);
  explicit unix_stream(detail::io_desc* d) noexcept : stream_socket(d) {}
  explicit unix_stream(socket&& s) noexcept : stream_socket(std::move(s)) {}
};

class unix_listener : public listener_socket {
 public:
  unix_listener() noexcept = default;
  unix_listener(unix_listener&&) noexcept;
  unix_listener& operator=(unix_listener&&) noexcept;
  /// Removes the socket file its bind made (not for abstract names), as close() does.
  ~unix_listener();
  /// Removes the socket file (not for abstract names; as Go's UnixListener.Close), then closes
  /// the listener as listener_socket::close() does. Once closed, the file is never removed
  /// by this object: another server may have bound the path since.
  void close() noexcept;
  /// Binds and listens on a Unix path; an existing socket file at the path that nobody listens
  /// on is removed first. Throws std::system_error naming the path.
  static unix_listener bind(const endpoint& at, const listen_options& opts = {});

  /// Accepts the next connection (see listener_socket::accept_stream). `peer` (optional)
  /// receives the client's address: unnamed (`path()` empty, printed `unix:`) unless the
  /// client bound its socket to a name.
  unix_stream accept(endpoint* peer = nullptr);
  unix_stream accept(std::error_code& ec, endpoint* peer = nullptr);
  unix_stream accept(const std::stop_token& st, endpoint* peer = nullptr);
  unix_stream accept(const std::stop_token& st, std::error_code& ec, endpoint* peer = nullptr);

 private:
  explicit unix_listener(socket&& s) noexcept : listener_socket(std::move(s)) {}
  void remove_file() noexcept;
  std::string path_;                           // the socket file bind made ("" for abstract names)
  std::uint64_t file_dev_ = 0, file_ino_ = 0;  // its identity (lstat after bind)
  std::atomic<bool> owns_file_{false};         // not yet removed by close, destruction or a move
};

}  // namespace weft::net
