// weft::net::unix_stream and unix_listener: Unix-domain stream sockets over the same accept
// and transfer code as TCP. The listener owns its socket file: a stale one is removed before
// bind, and the file is removed when the listener is closed or goes away (only while it still
// listens: after that, another listener may own the path).
#include <weft/net/unix.hpp>

#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>

#include <weft/fiber.hpp>

#include "socket_util.hpp"

namespace weft::net {

using namespace weft::detail;
using detail_util::throw_if;

unix_stream unix_stream::connect_impl(const endpoint& to, deadline d, const std::stop_token* st, std::error_code& ec) {
  if (!detail_util::check_endpoint(to, ec)) return unix_stream();
  if (!to.is_unix()) {
    ec = std::make_error_code(std::errc::address_family_not_supported);
    return unix_stream();
  }
  io_desc* desc = detail_util::open_socket(AF_UNIX, SOCK_STREAM, 0, ec);
  if (desc == nullptr) return unix_stream();
  unix_stream s(desc);
  // A full listener backlog makes a non-blocking Unix connect fail with EAGAIN, and the socket
  // is then not connecting: no readiness event will ever say "there is room now" (unlike TCP's
  // EINPROGRESS). So retry connect(2) with a capped back-off (1 ms doubling to 10 ms) until it
  // succeeds, the deadline passes or the socket is closed.
  auto backoff = std::chrono::milliseconds(1);
  for (;;) {
    int err = 0;
    std::uint32_t seen = io_events(desc, io_dir::write);
    {
      io_op_guard g(desc);
      if (::connect(g.fd(), to.data(), to.size()) == 0) return s;
      err = io_errno();
    }
    if (err == EINTR) continue;
    if (err == EISCONN) break;
    if (err == EINPROGRESS || err == EALREADY) {
      // Not what Linux does for AF_UNIX, but the portable answer: wait for writability.
      io_set_deadline(desc, io_dir::write, deadline_ns(d));
      ec = io_wait(desc, io_dir::write, st, seen);
      io_set_deadline(desc, io_dir::write, INT64_MAX);
      if (ec) return unix_stream();
      continue;
    }
    if (err != EAGAIN) {
      ec.assign(err, std::system_category());
      return unix_stream();
    }
    if (io_is_closing(desc) || (st != nullptr && st->stop_requested())) {
      ec = std::make_error_code(std::errc::operation_canceled);
      return unix_stream();
    }
    auto now = std::chrono::steady_clock::now();
    if (now >= d) {
      ec = std::make_error_code(std::errc::timed_out);
      return unix_stream();
    }
    weft::this_fiber::sleep_for(std::min<std::chrono::steady_clock::duration>(backoff, d - now));
    backoff = std::min(backoff * 2, std::chrono::milliseconds(10));
  }
  ec.clear();
  return s;
}

unix_stream unix_stream::connect(const endpoint& to, deadline d, std::error_code& ec) {
  return connect_impl(to, d, nullptr, ec);
}
unix_stream unix_stream::connect(const endpoint& to, deadline d, const std::stop_token& st, std::error_code& ec) {
  return connect_impl(to, d, &st, ec);
}
unix_stream unix_stream::connect(const endpoint& to, deadline d) {
  std::error_code ec;
  unix_stream s = connect_impl(to, d, nullptr, ec);
  throw_if(ec, "unix_stream::connect", to);
  return s;
}
unix_stream unix_stream::connect(const endpoint& to, deadline d, const std::stop_token& st) {
  std::error_code ec;
  unix_stream s = connect_impl(to, d, &st, ec);
  throw_if(ec, "unix_stream::connect", to);
  return s;
}

std::pair<unix_stream, unix_stream> unix_stream::pair() {
  int fds[2];
  std::error_code ec;
  if (::socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, fds) != 0) {
    ec.assign(io_errno(), std::system_category());
    throw_if(ec, "unix_stream::pair");
  }
  io_desc* a = detail_util::adopt_fd(fds[0], ec);
  if (a == nullptr) {
    ::close(fds[1]);
    throw_if(ec, "unix_stream::pair");
  }
  unix_stream first(a);
  io_desc* b = detail_util::adopt_fd(fds[1], ec);
  throw_if(ec, "unix_stream::pair");
  return {std::move(first), unix_stream(b)};
}

unix_listener::unix_listener(unix_listener&& other) noexcept
    : listener_socket(std::move(other)),
      path_(std::move(other.path_)),
      file_dev_(other.file_dev_),
      file_ino_(other.file_ino_),
      owns_file_(other.owns_file_.exchange(false, std::memory_order_relaxed)) {}

unix_listener& unix_listener::operator=(unix_listener&& other) noexcept {
  if (this != &other) {
    remove_file();
    listener_socket::operator=(std::move(other));
    path_ = std::move(other.path_);
    file_dev_ = other.file_dev_;
    file_ino_ = other.file_ino_;
    owns_file_.store(other.owns_file_.exchange(false, std::memory_order_relaxed), std::memory_order_relaxed);
  }
  return *this;
}

unix_listener::~unix_listener() { remove_file(); }

void unix_listener::close() noexcept {
  remove_file();
  listener_socket::close();
}

void unix_listener::remove_file() noexcept {
  // Ordering: relaxed; the exchange only picks which of two racing closes removes the file
  // (path_ and the identity are written before the listener is shared and never again).
  if (!owns_file_.exchange(false, std::memory_order_relaxed)) return;
  // Only while this listener is open: its bound socket pins the file's inode, so a file at
  // the path with that identity is the one its bind made. Once closed (through a base-class
  // reference, say), another listener may have bound the path, and the file system may have
  // given its file the same inode number: leave the file; a later bind treats it as stale.
  struct ::stat st{};
  if (is_open() && ::lstat(path_.c_str(), &st) == 0 && S_ISSOCK(st.st_mode) && st.st_dev == file_dev_ &&
      st.st_ino == file_ino_) {
    ::unlink(path_.c_str());
  }
}

unix_listener unix_listener::bind(const endpoint& at, const listen_options& opts) {
  if (!at.is_unix()) {
    throw_if(std::make_error_code(std::errc::address_family_not_supported), "unix_listener::bind", at);
  }
  std::string path = at.path();
  bool abstract = !path.empty() && path[0] == '@';
  // EADDRINUSE alone reads as "a server is there"; say what is in the way.
  const char* in_the_way = abstract ? " (another socket has this name)" : " (a server is listening on it)";
  if (!abstract && !path.empty()) {
    // A socket file nobody listens on (a crashed server's) would make bind fail with
    // EADDRINUSE: remove it, but only if connecting to it is refused.
    struct ::stat st{};
    if (::lstat(path.c_str(), &st) == 0) {
      if (S_ISSOCK(st.st_mode)) {
        std::error_code probe;
        unix_stream::connect(at, std::chrono::steady_clock::now() + std::chrono::milliseconds(100), probe);
        if (probe == std::errc::connection_refused) ::unlink(path.c_str());
      } else {
        in_the_way = " (the path exists and is not a socket: remove it or choose another path)";
      }
    }
  }
  unix_listener l(listen_on(at, opts, "unix_listener::bind", in_the_way));
  struct ::stat st{};
  if (!abstract && ::lstat(path.c_str(), &st) == 0) {  // the file bind made, to remove it (only it) later
    l.path_ = path;
    l.file_dev_ = st.st_dev;
    l.file_ino_ = st.st_ino;
    l.owns_file_.store(true, std::memory_order_relaxed);
  }
  return l;
}

unix_stream unix_listener::accept(const std::stop_token& st, std::error_code& ec, endpoint* peer) {
  return unix_stream(accept_stream(peer, &st, ec));
}
unix_stream unix_listener::accept(std::error_code& ec, endpoint* peer) {
  return unix_stream(accept_stream(peer, nullptr, ec));
}
unix_stream unix_listener::accept(endpoint* peer) {
  std::error_code ec;
  unix_stream s = accept(ec, peer);
  throw_if(ec, "unix_listener::accept", desc_);
  return s;
}
unix_stream unix_listener::accept(const std::stop_token& st, endpoint* peer) {
  std::error_code ec;
  unix_stream s = accept(st, ec, peer);
  throw_if(ec, "unix_listener::accept", desc_);
  return s;
}

}  // namespace weft::net
