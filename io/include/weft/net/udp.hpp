// UDP: datagrams to and from any endpoint, or, once connected, to one peer. Blocking calls park
// the calling fiber; errors and deadlines as in stream.hpp (the read deadline covers receives,
// the write deadline sends).
#pragma once

#include <weft/detail/cxx20.hpp>

#include <stop_token>

#include <weft/net/socket.hpp>

namespace weft::net {

class udp_socket : public socket {
 public:
  udp_socket() noexcept = default;
  /// A socket bound to `at` (port 0 picks one).
  static udp_socket bind(const endpoint& at);
  /// A socket connected to `peer` (bound to an ephemeral local port): send/recv use it.
  static udp_socket connect(const endpoint& peer);

  /// Sends one datagram; returns its size.
  std::size_t send_to(const void* buf, std::size_t size, const endpoint& to);
  std::size_t send_to(const void* buf, std::size_t size, const endpoint& to, std::error_code& ec);
  std::size_t send_to(const void* buf, std::size_t size, const endpoint& to, const std::stop_token& st);
  std::size_t send_to(const void* buf, std::size_t size, const endpoint& to, const std::stop_token& st, std::error_code& ec);
  /// Receives one datagram, parking until one arrives; `from` gets the sender. A datagram longer
  /// than `size` is truncated without notice and the rest discarded, as by recvfrom(2) (Go's
  /// ReadFrom too); weft::posix::recvfrom with MSG_TRUNC returns the full length.
  std::size_t recv_from(void* buf, std::size_t size, endpoint& from);
  std::size_t recv_from(void* buf, std::size_t size, endpoint& from, std::error_code& ec);
  std::size_t recv_from(void* buf, std::size_t size, endpoint& from, const std::stop_token& st);
  std::size_t recv_from(void* buf, std::size_t size, endpoint& from, const std::stop_token& st, std::error_code& ec);
  /// Connected mode.
  std::size_t send(const void* buf, std::size_t size);
  std::size_t send(const void* buf, std::size_t size, std::error_code& ec);
  std::size_t send(const void* buf, std::size_t size, const std::stop_token& st);
  std::size_t send(const void* buf, std::size_t size, const std::stop_token& st, std::error_code& ec);
  std::size_t recv(void* buf, std::size_t size);
  std::size_t recv(void* buf, std::size_t size, std::error_code& ec);
  std::size_t recv(void* buf, std::size_t size, const std::stop_token& st);
  std::size_t recv(void* buf, std::size_t size, const std::stop_token& st, std::error_code& ec);

 private:
  explicit udp_socket(socket&& s) noexcept : socket(std::move(s)) {}
};

}  // namespace weft::net
