// weft::net::udp_socket: datagrams with send_to / recv_from, and connected send / recv.
#include <weft/net/udp.hpp>

#include "socket_util.hpp"

namespace weft::net {

using namespace weft::detail;
using detail_util::throw_if;

namespace {

std::size_t send_impl(io_desc* d, const void* buf, std::size_t size, const endpoint* to, const std::stop_token* st,
                      std::error_code& ec) {
  if (to != nullptr && !detail_util::check_endpoint(*to, ec)) return 0;
  long r = io_do(d, io_dir::write, st, ec, [&](int fd) {
    return to != nullptr ? ::sendto(fd, buf, size, MSG_NOSIGNAL, to->data(), to->size())
                         : ::send(fd, buf, size, MSG_NOSIGNAL);
  });
  return r < 0 ? 0 : static_cast<std::size_t>(r);
}

std::size_t recv_impl(io_desc* d, void* buf, std::size_t size, endpoint* from, const std::stop_token* st,
                      std::error_code& ec) {
  long r = io_do(d, io_dir::read, st, ec, [&](int fd) {
    if (from == nullptr) return ::recv(fd, buf, size, 0);
    ::socklen_t len = endpoint::capacity();
    ssize_t n = ::recvfrom(fd, buf, size, 0, from->data(), &len);
    if (n >= 0) from->resize(len);
    return n;
  });
  return r < 0 ? 0 : static_cast<std::size_t>(r);
}

}  // namespace

udp_socket udp_socket::bind(const endpoint& at) {
  std::error_code ec;
  if (!detail_util::check_endpoint(at, ec)) throw_if(ec, "udp_socket::bind", at);
  io_desc* d = detail_util::open_socket(at.family(), SOCK_DGRAM, 0, ec);
  throw_if(ec, "udp_socket::bind", at);
  udp_socket s(wrap(d));
  io_op_guard g(d);
  if (::bind(g.fd(), at.data(), at.size()) != 0) ec.assign(io_errno(), std::system_category());
  throw_if(ec, "udp_socket::bind", at);
  return s;
}

udp_socket udp_socket::connect(const endpoint& peer) {
  std::error_code ec;
  if (!detail_util::check_endpoint(peer, ec)) throw_if(ec, "udp_socket::connect", peer);
  io_desc* d = detail_util::open_socket(peer.family(), SOCK_DGRAM, 0, ec);
  throw_if(ec, "udp_socket::connect", peer);
  udp_socket s(wrap(d));
  io_op_guard g(d);
  // A datagram connect never waits: it only fixes the peer address.
  if (::connect(g.fd(), peer.data(), peer.size()) != 0) ec.assign(io_errno(), std::system_category());
  throw_if(ec, "udp_socket::connect", peer);
  return s;
}

std::size_t udp_socket::send_to(const void* buf, std::size_t size, const endpoint& to, std::error_code& ec) {
  return send_impl(desc_, buf, size, &to, nullptr, ec);
}
std::size_t udp_socket::send_to(const void* buf, std::size_t size, const endpoint& to, const std::stop_token& st,
                                std::error_code& ec) {
  return send_impl(desc_, buf, size, &to, &st, ec);
}
std::size_t udp_socket::send_to(const void* buf, std::size_t size, const endpoint& to) {
  std::error_code ec;
  std::size_t n = send_impl(desc_, buf, size, &to, nullptr, ec);
  throw_if(ec, "udp_socket::send_to", to, desc_);
  return n;
}
std::size_t udp_socket::send_to(const void* buf, std::size_t size, const endpoint& to, const std::stop_token& st) {
  std::error_code ec;
  std::size_t n = send_impl(desc_, buf, size, &to, &st, ec);
  throw_if(ec, "udp_socket::send_to", to, desc_);
  return n;
}
std::size_t udp_socket::recv_from(void* buf, std::size_t size, endpoint& from, std::error_code& ec) {
  return recv_impl(desc_, buf, size, &from, nullptr, ec);
}
std::size_t udp_socket::recv_from(void* buf, std::size_t size, endpoint& from, const std::stop_token& st,
                                  std::error_code& ec) {
  return recv_impl(desc_, buf, size, &from, &st, ec);
}
std::size_t udp_socket::recv_from(void* buf, std::size_t size, endpoint& from) {
  std::error_code ec;
  std::size_t n = recv_impl(desc_, buf, size, &from, nullptr, ec);
  throw_if(ec, "udp_socket::recv_from", desc_);
  return n;
}
std::size_t udp_socket::recv_from(void* buf, std::size_t size, endpoint& from, const std::stop_token& st) {
  std::error_code ec;
  std::size_t n = recv_impl(desc_, buf, size, &from, &st, ec);
  throw_if(ec, "udp_socket::recv_from", desc_);
  return n;
}
std::size_t udp_socket::send(const void* buf, std::size_t size, std::error_code& ec) {
  return send_impl(desc_, buf, size, nullptr, nullptr, ec);
}
std::size_t udp_socket::send(const void* buf, std::size_t size, const std::stop_token& st, std::error_code& ec) {
  return send_impl(desc_, buf, size, nullptr, &st, ec);
}
std::size_t udp_socket::send(const void* buf, std::size_t size) {
  std::error_code ec;
  std::size_t n = send_impl(desc_, buf, size, nullptr, nullptr, ec);
  throw_if(ec, "udp_socket::send", desc_);
  return n;
}
std::size_t udp_socket::send(const void* buf, std::size_t size, const std::stop_token& st) {
  std::error_code ec;
  std::size_t n = send_impl(desc_, buf, size, nullptr, &st, ec);
  throw_if(ec, "udp_socket::send", desc_);
  return n;
}
std::size_t udp_socket::recv(void* buf, std::size_t size, std::error_code& ec) {
  return recv_impl(desc_, buf, size, nullptr, nullptr, ec);
}
std::size_t udp_socket::recv(void* buf, std::size_t size, const std::stop_token& st, std::error_code& ec) {
  return recv_impl(desc_, buf, size, nullptr, &st, ec);
}
std::size_t udp_socket::recv(void* buf, std::size_t size) {
  std::error_code ec;
  std::size_t n = recv_impl(desc_, buf, size, nullptr, nullptr, ec);
  throw_if(ec, "udp_socket::recv", desc_);
  return n;
}
std::size_t udp_socket::recv(void* buf, std::size_t size, const std::stop_token& st) {
  std::error_code ec;
  std::size_t n = recv_impl(desc_, buf, size, nullptr, &st, ec);
  throw_if(ec, "udp_socket::recv", desc_);
  return n;
}

}  // namespace weft::net
