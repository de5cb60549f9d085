// Helpers shared by the socket sources: throwing on an error_code with the operation's name,
// and creating registered sockets.
#pragma once

#include <sys/resource.h>
#include <sys/socket.h>

#include <cstring>
#include <string>
#include <system_error>

#include <weft/net/endpoint.hpp>

#include "io_desc.hpp"

namespace weft::net::detail_util {

/// What to do about an error that means "out of descriptors", to follow the operation's name
/// (throw_net) or the error's message (weft::net::describe):
/// " (out of descriptors: RLIMIT_NOFILE is N; raise `ulimit -n` or close idle connections)";
/// "" for any other error.
inline std::string descriptor_hint(const std::error_code& ec) {
  if (ec == std::errc::too_many_files_open) {
    ::rlimit lim{};
    ::getrlimit(RLIMIT_NOFILE, &lim);
    return " (out of descriptors: RLIMIT_NOFILE is " + std::to_string(lim.rlim_cur) +
           "; raise `ulimit -n` or close idle connections)";
  }
  if (ec == std::errc::too_many_files_open_in_system) return " (the system's file table is full: see fs.file-max)";
  return {};
}

/// Throws std::system_error "weft::net::<what><hint>: <message>", the hint saying what to do
/// when out of descriptors (descriptor_hint). Every throw_if ends here.
[[noreturn]] inline void throw_net(const std::error_code& ec, const std::string& what) {
  throw std::system_error(ec, "weft::net::" + what + descriptor_hint(ec));
}

/// Throws std::system_error "weft::net::<what>: <message>" if `ec` is set.
inline void throw_if(const std::error_code& ec, const char* what) {
  if (ec) throw_net(ec, what);
}
/// Which socket `d` is, for an error message: its type as the user knows it ("tcp_stream",
/// "tcp_listener", "udp_socket", "unix_stream", "unix_listener"; null when the socket is
/// closed or null) and where it is ("peer 127.0.0.1:40312", "on 0.0.0.0:8080", or "").
/// Syscalls: error paths only.
struct socket_description {
  const char* kind = nullptr;
  std::string where;
};
socket_description describe_socket(weft::detail::io_desc* d);

/// Remembers a TCP peer in `d` for describe_socket (see io_desc::peer_addr). Only before the
/// socket reaches its user.
inline void remember_peer(weft::detail::io_desc* d, const endpoint& peer) noexcept {
  if (peer.size() <= sizeof d->peer_addr && !peer.is_unix()) {
    std::memcpy(d->peer_addr, peer.data(), peer.size());
    d->peer_len = static_cast<std::uint8_t>(peer.size());
  }
}

/// Why weft itself ended a call, to follow its name (see throw_if below); "" when the error is
/// the kernel's (system_category) or has no such reason. `on_socket`: the call was made on
/// the socket whose record is `d` (null: the socket is not open); otherwise (connect,
/// resolve) there was no socket yet.
inline const char* outcome_why(const std::error_code& ec, bool on_socket, weft::detail::io_desc* d) {
  if (ec.category() != std::generic_category()) return "";  // weft's own outcomes only
  if (ec == std::errc::timed_out) return ": the deadline passed";
  if (ec == std::errc::operation_canceled) {
    return on_socket && d != nullptr && weft::detail::io_is_closing(d) ? ": the socket was closed"
                                                                       : ": stop requested, or the runtime is shutting down";
  }
  if (ec == std::errc::bad_file_descriptor && on_socket && d == nullptr) {
    return ": the socket is not open (default-constructed or moved from)";
  }
  return "";
}

/// As throw_if, for an operation on the socket whose record is `d`, naming the socket
/// (describe_socket): "weft::net::tcp_stream::read_some (peer 10.0.0.7:51234): <message>". When
/// weft itself ended the call, the message says why, since the error's own text reads as a
/// network failure:
/// "<what>: the deadline passed: Connection timed out" (a deadline; the kernel's ETIMEDOUT has
/// no such words), "<what>: the socket was closed: Operation canceled", "<what>: stop
/// requested, or the runtime is shutting down: Operation canceled", and "<what>: the socket
/// is not open (default-constructed or moved from): Bad file descriptor".
inline void throw_if(const std::error_code& ec, const char* what, weft::detail::io_desc* d) {
  if (!ec) return;
  const char* why = outcome_why(ec, true, d);
  // The call as the user spelled it: the base classes' names become the concrete type.
  std::string call = what;
  socket_description sd = describe_socket(d);
  if (sd.kind != nullptr) {
    for (const char* base : {"stream_socket::", "listener_socket::", "socket::"}) {
      if (call.starts_with(base)) {
        call = sd.kind + call.substr(call.find("::"));
        break;
      }
    }
    if (!sd.where.empty()) call += " (" + sd.where + ")";
  }
  throw_net(ec, call + why);
}
/// "<what> <endpoint>" for the endpoint forms of throw_if below.
inline std::string call_at(const char* what, const endpoint& ep) {
  std::string at = ep.to_string();
  if (at.empty()) at = "(an empty endpoint: give an address, e.g. endpoint::loopback_v4(port))";
  return std::string(what) + " " + at;
}
/// As throw_if, naming an endpoint: "weft::net::<what> <endpoint>: <message>", with the
/// reason when weft ended the call ("tcp_stream::connect 10.0.0.7:80: the deadline passed: ...").
/// For calls that make their socket (connect, bind): nobody else can close it meanwhile.
inline void throw_if(const std::error_code& ec, const char* what, const endpoint& ep) {
  if (ec) throw_net(ec, call_at(what, ep) + outcome_why(ec, false, nullptr));
}
/// As above, for a call on the socket whose record is `d` (null: not open) that names its
/// destination (udp_socket::send_to): the reason then says when the socket was closed or never
/// opened ("udp_socket::send_to 127.0.0.1:53: the socket was closed: Operation canceled").
inline void throw_if(const std::error_code& ec, const char* what, const endpoint& ep, weft::detail::io_desc* d) {
  if (ec) throw_net(ec, call_at(what, ep) + outcome_why(ec, true, d));
}

/// socket(2) with SOCK_NONBLOCK | SOCK_CLOEXEC, registered. Null + ec on failure. The error
/// for descriptor exhaustion says which limit was hit.
weft::detail::io_desc* open_socket(int family, int type, int protocol, std::error_code& ec) noexcept;

/// Registers an fd that is already open (accept4, socketpair); closes it on failure.
weft::detail::io_desc* adopt_fd(int fd, std::error_code& ec) noexcept;

/// Rejects an empty endpoint with invalid_argument.
inline bool check_endpoint(const endpoint& e, std::error_code& ec) noexcept {
  if (e.empty()) {
    ec = std::make_error_code(std::errc::invalid_argument);
    return false;
  }
  return true;
}

}  // namespace weft::net::detail_util
