// weft::net::socket: ownership of a registered descriptor, close, deadlines, addresses and
// options (the parts every socket type shares).
#include <weft/net/socket.hpp>

#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/stat.h>
#include <unistd.h>

#include <string>
#include <utility>

#include "socket_util.hpp"

namespace weft::net {

using namespace weft::detail;
using detail_util::throw_if;

namespace detail_util {

io_desc* adopt_fd(int fd, std::error_code& ec) noexcept {
  io_desc* d = io_register(fd, ec);
  if (d == nullptr) ::close(fd);
  return d;
}

io_desc* open_socket(int family, int type, int protocol, std::error_code& ec) noexcept {
  int fd = ::socket(family, type | SOCK_NONBLOCK | SOCK_CLOEXEC, protocol);
  if (fd < 0) {
    ec.assign(io_errno(), std::system_category());
    return nullptr;
  }
  io_desc* d = adopt_fd(fd, ec);
  if (d != nullptr) {
    d->tcp = (family == AF_INET || family == AF_INET6) && type == SOCK_STREAM &&
             (protocol == 0 || protocol == IPPROTO_TCP);
  }
  return d;
}

}  // namespace detail_util

socket::socket(socket&& other) noexcept : desc_(std::exchange(other.desc_, nullptr)) {}

socket& socket::operator=(socket&& other) noexcept {
  if (this != &other) {
    if (desc_ != nullptr) io_release(desc_);
    desc_ = std::exchange(other.desc_, nullptr);
  }
  return *this;
}

socket::~socket() {
  if (desc_ != nullptr) io_release(desc_);
}

socket socket::adopt(int fd) {
  std::error_code ec;
  // A pipe or a terminal would register (epoll watches them) and fail only at the first
  // socket call: refuse it here. The fd stays the caller's on failure.
  struct ::stat st{};
  if (::fstat(fd, &st) != 0) {
    ec.assign(io_errno(), std::system_category());
  } else if (!S_ISSOCK(st.st_mode)) {
    ec = std::make_error_code(std::errc::not_a_socket);
  }
  throw_if(ec, "socket::adopt");
  io_desc* d = io_register(fd, ec);
  throw_if(ec, "socket::adopt");
  int protocol = 0;
  ::socklen_t len = sizeof protocol;
  d->tcp = ::getsockopt(fd, SOL_SOCKET, SO_PROTOCOL, &protocol, &len) == 0 && protocol == IPPROTO_TCP;
  return socket(d);
}

bool socket::is_open() const noexcept { return desc_ != nullptr && !io_is_closing(desc_); }

int socket::native_handle() const noexcept {
  if (desc_ == nullptr) return -1;
  std::lock_guard lk(desc_->lock);
  return desc_->closing ? -1 : desc_->fd;
}

void socket::close() noexcept {
  if (desc_ != nullptr) io_close(desc_);
}

void socket::set_deadline(deadline d) noexcept {
  if (desc_ != nullptr) io_set_deadline_both(desc_, deadline_ns(d));
}
void socket::set_read_deadline(deadline d) noexcept {
  if (desc_ != nullptr) io_set_deadline(desc_, io_dir::read, deadline_ns(d));
}
void socket::set_write_deadline(deadline d) noexcept {
  if (desc_ != nullptr) io_set_deadline(desc_, io_dir::write, deadline_ns(d));
}

namespace {
template <class Get>
endpoint address_of(io_desc* d, std::error_code& ec, Get get) noexcept {
  io_op_guard g(d);
  if (!g) {
    ec = std::make_error_code(d == nullptr ? std::errc::bad_file_descriptor : std::errc::operation_canceled);
    return endpoint();
  }
  endpoint e;
  ::socklen_t len = endpoint::capacity();
  if (get(g.fd(), e.data(), &len) != 0) {
    ec.assign(io_errno(), std::system_category());
    return endpoint();
  }
  e.resize(len);
  ec.clear();
  return e;
}

// The TCP peer connect or accept saw (io_desc::peer_addr), or an empty endpoint.
endpoint remembered_peer(io_desc* d) {
  if (d->peer_len == 0) return endpoint();
  return endpoint(reinterpret_cast<const ::sockaddr*>(d->peer_addr), d->peer_len);
}
}  // namespace

endpoint socket::local_endpoint(std::error_code& ec) const noexcept { return address_of(desc_, ec, ::getsockname); }
endpoint socket::peer_endpoint(std::error_code& ec) const noexcept {
  endpoint e = address_of(desc_, ec, ::getpeername);
  // After a reset the kernel forgets the peer (ENOTCONN); the address connect or accept saw
  // still names it, as Go's RemoteAddr does.
  if (ec == std::errc::not_connected && desc_->peer_len != 0) {
    e = remembered_peer(desc_);
    ec.clear();
  }
  return e;
}

namespace detail_util {
socket_description describe_socket(io_desc* d) {
  io_op_guard g(d);
  if (!g) return {};
  int domain = 0, type = 0, listening = 0;
  ::socklen_t len = sizeof(int);
  if (::getsockopt(g.fd(), SOL_SOCKET, SO_DOMAIN, &domain, &len) != 0) return {};
  len = sizeof(int);
  if (::getsockopt(g.fd(), SOL_SOCKET, SO_TYPE, &type, &len) != 0) return {};
  len = sizeof(int);
  if (::getsockopt(g.fd(), SOL_SOCKET, SO_ACCEPTCONN, &listening, &len) != 0) listening = 0;
  const bool is_unix = domain == AF_UNIX;
  socket_description out;
  if (domain != AF_UNIX && domain != AF_INET && domain != AF_INET6) {
    out.kind = "socket";  // adopted: netlink, packet, ...
  } else if (type == SOCK_DGRAM) {
    out.kind = is_unix ? "unix datagram socket" : "udp_socket";
  } else if (type != SOCK_STREAM) {
    out.kind = is_unix ? "unix seqpacket socket" : "socket";
  } else {
    out.kind = listening != 0 ? (is_unix ? "unix_listener" : "tcp_listener") : (is_unix ? "unix_stream" : "tcp_stream");
  }
  // An unnamed Unix address (the accepted side's peer, a client's own) is the family alone.
  auto named = [](const endpoint& e) {
    return !e.empty() && !(e.is_unix() && e.size() <= sizeof(::sa_family_t));
  };
  std::error_code ec;
  if (listening == 0) {
    endpoint peer = address_of(d, ec, ::getpeername);
    if (ec) peer = remembered_peer(d);
    if (named(peer)) {
      out.where = "peer " + peer.to_string();
      return out;
    }
  }
  endpoint local = address_of(d, ec, ::getsockname);
  if (!ec && named(local)) out.where = "on " + local.to_string();
  return out;
}
}  // namespace detail_util

endpoint socket::local_endpoint() const {
  std::error_code ec;
  endpoint e = local_endpoint(ec);
  throw_if(ec, "socket::local_endpoint");
  return e;
}

endpoint socket::peer_endpoint() const {
  std::error_code ec;
  endpoint e = peer_endpoint(ec);
  throw_if(ec, "socket::peer_endpoint");
  return e;
}

namespace {
// "SOL_SOCKET, SO_RCVBUF" for an error message; numbers for what is not in the table.
std::string option_name(int level, int name) {
  struct entry {
    int level, name;
    const char* text;
  };
#define WEFT_OPT(l, n) entry{l, n, #l ", " #n}
  static constexpr entry known[] = {
      WEFT_OPT(SOL_SOCKET, SO_REUSEADDR),    WEFT_OPT(SOL_SOCKET, SO_REUSEPORT),
      WEFT_OPT(SOL_SOCKET, SO_KEEPALIVE),    WEFT_OPT(SOL_SOCKET, SO_RCVBUF),
      WEFT_OPT(SOL_SOCKET, SO_SNDBUF),       WEFT_OPT(SOL_SOCKET, SO_BROADCAST),
      WEFT_OPT(SOL_SOCKET, SO_LINGER),       WEFT_OPT(SOL_SOCKET, SO_RCVLOWAT),
      WEFT_OPT(SOL_SOCKET, SO_SNDLOWAT),     WEFT_OPT(SOL_SOCKET, SO_PRIORITY),
      WEFT_OPT(SOL_SOCKET, SO_ERROR),        WEFT_OPT(SOL_SOCKET, SO_TYPE),
      WEFT_OPT(SOL_SOCKET, SO_DOMAIN),       WEFT_OPT(SOL_SOCKET, SO_ACCEPTCONN),
      WEFT_OPT(IPPROTO_TCP, TCP_NODELAY),    WEFT_OPT(IPPROTO_TCP, TCP_KEEPIDLE),
      WEFT_OPT(IPPROTO_TCP, TCP_KEEPINTVL),  WEFT_OPT(IPPROTO_TCP, TCP_KEEPCNT),
      WEFT_OPT(IPPROTO_TCP, TCP_CORK),       WEFT_OPT(IPPROTO_TCP, TCP_QUICKACK),
      WEFT_OPT(IPPROTO_TCP, TCP_USER_TIMEOUT), WEFT_OPT(IPPROTO_TCP, TCP_DEFER_ACCEPT),
      WEFT_OPT(IPPROTO_TCP, TCP_MAXSEG),     WEFT_OPT(IPPROTO_TCP, TCP_NOTSENT_LOWAT),
      WEFT_OPT(IPPROTO_TCP, TCP_FASTOPEN),   WEFT_OPT(IPPROTO_IP, IP_TTL),
      WEFT_OPT(IPPROTO_IP, IP_TOS),          WEFT_OPT(IPPROTO_IP, IP_MULTICAST_TTL),
      WEFT_OPT(IPPROTO_IP, IP_MULTICAST_LOOP), WEFT_OPT(IPPROTO_IPV6, IPV6_V6ONLY),
      WEFT_OPT(IPPROTO_IPV6, IPV6_UNICAST_HOPS),
  };
#undef WEFT_OPT
  for (const entry& e : known) {
    if (e.level == level && e.name == name) return e.text;
  }
  return "level " + std::to_string(level) + ", option " + std::to_string(name);
}
}  // namespace

void socket::set_option(int level, int name, int value) {
  io_op_guard g(desc_);
  std::error_code ec;
  if (!g) {
    ec = std::make_error_code(desc_ == nullptr ? std::errc::bad_file_descriptor : std::errc::operation_canceled);
  } else if (::setsockopt(g.fd(), level, name, &value, sizeof value) != 0) {
    ec.assign(io_errno(), std::system_category());
  }
  if (ec) {
    const std::string what = "socket::set_option(" + option_name(level, name) + ", " + std::to_string(value) + ")";
    throw_if(ec, what.c_str(), desc_);
  }
}

int socket::get_option(int level, int name) const {
  io_op_guard g(desc_);
  std::error_code ec;
  int value = 0;
  ::socklen_t len = sizeof value;
  if (!g) {
    ec = std::make_error_code(desc_ == nullptr ? std::errc::bad_file_descriptor : std::errc::operation_canceled);
  } else if (::getsockopt(g.fd(), level, name, &value, &len) != 0) {
    ec.assign(io_errno(), std::system_category());
  }
  if (ec) {
    const std::string what = "socket::get_option(" + option_name(level, name) + ")";
    throw_if(ec, what.c_str(), desc_);
  }
  return value;
}

}  // namespace weft::net
