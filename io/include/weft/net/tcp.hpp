// TCP: tcp_stream (connect with a deadline, nodelay, keep-alive) and tcp_listener (bind,
// backlog, SO_REUSEADDR always, SO_REUSEPORT on request, accept). Blocking calls park the
// calling fiber; see stream.hpp for the error conventions shared by every socket.
#pragma once

#include <weft/detail/cxx20.hpp>

#include <weft/net/stream.hpp>

namespace weft::net {

class tcp_stream : public stream_socket {
 public:
  tcp_stream() noexcept = default;
  /// Takes ownership of a connected TCP socket `fd`.
  static tcp_stream adopt(int fd);

  /// Connects to `to`, parking until connected, `d` passes (timed_out) or `st` is stopped
  /// (operation_canceled). Errors name the address: "weft::net::tcp_stream::connect
  /// 127.0.0.1:9: Connection refused".
  static tcp_stream connect(const endpoint& to, deadline d = no_deadline);
  static tcp_stream connect(const endpoint& to, deadline d, const std::stop_token& st);
  static tcp_stream connect(const endpoint& to, deadline d, std::error_code& ec);
  static tcp_stream connect(const endpoint& to, deadline d, const std::stop_token& st, std::error_code& ec);
  /// Resolves `host`:`service` and tries each address in turn until one connects.
  static tcp_stream connect(std::string_view host, std::string_view service, deadline d = no_deadline);

  /// TCP_NODELAY and SO_KEEPALIVE (with idle seconds before the first probe; 0 keeps the system's).
  void set_nodelay(bool on);
  void set_keepalive(bool on, int idle_seconds = 0);

 private:
  friend class tcp_listener;
  explicit tcp_stream(detail::io_desc* d) noexcept : stream_socket(d) {}
  explicit tcp_stream(socket&& s) noexcept : stream_socket(std::move(s)) {}
};

struct listen_options {
  int backlog = 1024;
  bool reuse_port = false;  ///< SO_REUSEPORT: several listeners share the port
  bool v6_only = false;     ///< IPV6_V6ONLY for [::] listeners
};

/// Shared accept logic of tcp_listener and unix_listener.
class listener_socket : public socket {
 public:
  listener_socket() noexcept = default;
  /// Accepts the next connection as a raw registered stream; parks until one arrives, the
  /// listener's read deadline passes or `st` is stopped. On EMFILE/ENFILE/ENOBUFS/ENOMEM it
  /// backs off (5 ms doubling to 100 ms), prints a line naming the listener and RLIMIT_NOFILE
  /// to stderr (at most one every 10 s for the whole process), and keeps trying: a listener
  /// out of descriptors does not spin and serves again once descriptors free up.
  /// `peer` (optional) receives the peer's address.
  stream_socket accept_stream(endpoint* peer, const std::stop_token* st, std::error_code& ec);

 protected:
  explicit listener_socket(socket&& s) noexcept : socket(std::move(s)) {}
  /// A listening socket on `at`; errors throw naming `who` and `at`, with `in_use_hint`
  /// after them when the address is in use.
  static socket listen_on(const endpoint& at, const listen_options& opts, const char* who,
                          const char* in_use_hint = nullptr);
};

class tcp_listener : public listener_socket {
 public:
  tcp_listener() noexcept = default;
  /// Binds and listens on `at` (port 0 picks a free port: see local_endpoint()). Throws
  /// std::system_error naming the address ("weft::net::tcp_listener::bind 0.0.0.0:80:
  /// Permission denied").
  static tcp_listener bind(const endpoint& at, const listen_options& opts = {});

  /// Accepts the next connection (see listener_socket::accept_stream).
  tcp_stream accept(endpoint* peer = nullptr);
  tcp_stream accept(std::error_code& ec, endpoint* peer = nullptr);
  tcp_stream accept(const std::stop_token& st, endpoint* peer = nullptr);
  tcp_stream accept(const std::stop_token& st, std::error_code& ec, endpoint* peer = nullptr);

 private:
  explicit tcp_listener(socket&& s) noexcept : listener_socket(std::move(s)) {}
};

}  // namespace weft::net
