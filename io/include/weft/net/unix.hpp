// Unix-domain stream sockets: unix_stream (connect, socket pairs) and unix_listener (bind
// removes a stale socket file first; the file is removed again when the listener is destroyed
// or assigned over, not by close() alone). Blocking calls park the calling fiber; errors and
// deadlines as in stream.hpp.
#pragma once

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
  unix_listener(unix_listener&&) noexcept = default;
  unix_listener& operator=(unix_listener&&) noexcept;
  /// Removes the socket file (not for abstract names).
  ~unix_listener();
  /// Binds and listens on a Unix path; an existing socket file at the path that nobody listens
  /// on is removed first. Throws std::system_error naming the path.
  static unix_listener bind(const endpoint& at, const listen_options& opts = {});

  unix_stream accept();
  unix_stream accept(std::error_code& ec);
  unix_stream accept(const std::stop_token& st);
  unix_stream accept(const std::stop_token& st, std::error_code& ec);

 private:
  explicit unix_listener(socket&& s) noexcept : listener_socket(std::move(s)) {}
  std::string path_;  // file to unlink on destruction ("" for abstract names)
};

}  // namespace weft::net
