// weft::net::stream_socket: read_some / read_exact / write_all (plain and vectored) over a
// registered stream socket. Every transfer goes through io_do: try the syscall, park on EAGAIN.
#include <weft/net/stream.hpp>

#include <sys/uio.h>

#include <algorithm>
#include <vector>

#include "socket_util.hpp"

namespace weft::net {

using namespace weft::detail;
using detail_util::throw_if;

namespace {

std::size_t read_some_impl(io_desc* d, void* buf, std::size_t size, const std::stop_token* st,
                           std::error_code& ec) {
  if (size == 0) {
    ec.clear();
    return 0;
  }
  // On TCP a short read emptied the receive queue: remember the event count it started from,
  // so the next read waits for an event first (io_desc::read_drained_at). Other sockets (an
  // AF_UNIX read stops after a message carrying descriptors, the rest still queued) always
  // try the recv. d is valid here: the socket object holds it, and its record is not reused
  // before the object lets go (io_release), so the store below lands on this socket even if
  // it was closed meanwhile (io_do's guard only says whether it is open).
  const bool hint = d != nullptr && d->tcp;
  std::uint32_t seen = 0;
  long r = io_do(d, io_dir::read, st, ec, [&](int fd) { return ::recv(fd, buf, size, 0); },
                 hint ? d->read_drained_at.load(std::memory_order_relaxed) : 0, &seen);
  if (hint) {
    const bool short_read = r > 0 && static_cast<std::size_t>(r) < size;
    d->read_drained_at.store(short_read ? std::uint64_t{seen} + 1 : 0, std::memory_order_relaxed);
  }
  return r < 0 ? 0 : static_cast<std::size_t>(r);
}

std::size_t read_exact_impl(io_desc* d, void* buf, std::size_t size, const std::stop_token* st,
                            std::error_code& ec) {
  auto* p = static_cast<char*>(buf);
  std::size_t done = 0;
  ec.clear();
  while (done < size) {
    std::size_t n = read_some_impl(d, p + done, size - done, st, ec);
    if (ec) return done;
    if (n == 0) {
      ec = make_error_code(net_errc::end_of_stream);
      return done;
    }
    done += n;
  }
  return done;
}

// sendmsg with MSG_NOSIGNAL over `iov` (advanced in place as bytes go out).
std::size_t write_iov(io_desc* d, std::vector<::iovec>& iov, const std::stop_token* st, bool all,
                      std::error_code& ec) {
  std::size_t done = 0;
  std::size_t first = 0;
  ec.clear();
  while (first < iov.size()) {
    if (iov[first].iov_len == 0) {
      ++first;
      continue;
    }
    long r = io_do(d, io_dir::write, st, ec, [&](int fd) {
      ::msghdr m{};
      m.msg_iov = iov.data() + first;
      m.msg_iovlen = std::min<std::size_t>(iov.size() - first, IOV_MAX);
      return ::sendmsg(fd, &m, MSG_NOSIGNAL);
    });
    if (r < 0) return done;
    auto n = static_cast<std::size_t>(r);
    done += n;
    while (n > 0) {
      std::size_t k = std::min(n, iov[first].iov_len);
      iov[first].iov_base = static_cast<char*>(iov[first].iov_base) + k;
      iov[first].iov_len -= k;
      n -= k;
      if (iov[first].iov_len == 0) ++first;
    }
    if (!all) break;
  }
  return done;
}

std::size_t write_impl(io_desc* d, const void* buf, std::size_t size, const std::stop_token* st, bool all,
                       std::error_code& ec) {
  if (size == 0) {
    ec.clear();
    return 0;
  }
  std::size_t done = 0;
  ec.clear();
  while (done < size) {
    long r = io_do(d, io_dir::write, st, ec, [&](int fd) {
      return ::send(fd, static_cast<const char*>(buf) + done, size - done, MSG_NOSIGNAL);
    });
    if (r < 0) return done;
    done += static_cast<std::size_t>(r);
    if (!all) break;
  }
  return done;
}

std::size_t writev_impl(io_desc* d, std::span<const const_buffer> bufs, const std::stop_token* st,
                        std::error_code& ec) {
  std::vector<::iovec> iov;
  try {
    iov.reserve(bufs.size());
  } catch (const std::bad_alloc&) {
    ec = std::make_error_code(std::errc::not_enough_memory);
    return 0;
  }
  for (const auto& b : bufs) iov.push_back({const_cast<void*>(b.data), b.size});
  return write_iov(d, iov, st, /*all=*/true, ec);
}

}  // namespace

stream_socket stream_socket::adopt(int fd) { return stream_socket(socket::adopt(fd)); }

std::size_t stream_socket::read_some(void* buf, std::size_t size, std::error_code& ec) {
  return read_some_impl(desc_, buf, size, nullptr, ec);
}
std::size_t stream_socket::read_some(void* buf, std::size_t size, const std::stop_token& st, std::error_code& ec) {
  return read_some_impl(desc_, buf, size, &st, ec);
}
std::size_t stream_socket::read_some(void* buf, std::size_t size) {
  std::error_code ec;
  std::size_t n = read_some_impl(desc_, buf, size, nullptr, ec);
  throw_if(ec, "stream_socket::read_some", desc_);
  return n;
}
std::size_t stream_socket::read_some(void* buf, std::size_t size, const std::stop_token& st) {
  std::error_code ec;
  std::size_t n = read_some_impl(desc_, buf, size, &st, ec);
  throw_if(ec, "stream_socket::read_some", desc_);
  return n;
}

std::size_t stream_socket::read_exact(void* buf, std::size_t size, std::error_code& ec) {
  return read_exact_impl(desc_, buf, size, nullptr, ec);
}
std::size_t stream_socket::read_exact(void* buf, std::size_t size, const std::stop_token& st, std::error_code& ec) {
  return read_exact_impl(desc_, buf, size, &st, ec);
}
std::size_t stream_socket::read_exact(void* buf, std::size_t size) {
  std::error_code ec;
  std::size_t n = read_exact_impl(desc_, buf, size, nullptr, ec);
  throw_if(ec, "stream_socket::read_exact", desc_);
  return n;
}
std::size_t stream_socket::read_exact(void* buf, std::size_t size, const std::stop_token& st) {
  std::error_code ec;
  std::size_t n = read_exact_impl(desc_, buf, size, &st, ec);
  throw_if(ec, "stream_socket::read_exact", desc_);
  return n;
}

std::size_t stream_socket::write_all(const void* buf, std::size_t size, std::error_code& ec) {
  return write_impl(desc_, buf, size, nullptr, true, ec);
}
std::size_t stream_socket::write_all(const void* buf, std::size_t size, const std::stop_token& st, std::error_code& ec) {
  return write_impl(desc_, buf, size, &st, true, ec);
}
std::size_t stream_socket::write_all(const void* buf, std::size_t size) {
  std::error_code ec;
  std::size_t n = write_impl(desc_, buf, size, nullptr, true, ec);
  throw_if(ec, "stream_socket::write_all", desc_);
  return n;
}
std::size_t stream_socket::write_all(const void* buf, std::size_t size, const std::stop_token& st) {
  std::error_code ec;
  std::size_t n = write_impl(desc_, buf, size, &st, true, ec);
  throw_if(ec, "stream_socket::write_all", desc_);
  return n;
}

std::size_t stream_socket::write_all(std::span<const const_buffer> bufs, std::error_code& ec) {
  return writev_impl(desc_, bufs, nullptr, ec);
}
std::size_t stream_socket::write_all(std::span<const const_buffer> bufs, const std::stop_token& st, std::error_code& ec) {
  return writev_impl(desc_, bufs, &st, ec);
}
std::size_t stream_socket::write_all(std::span<const const_buffer> bufs) {
  std::error_code ec;
  std::size_t n = writev_impl(desc_, bufs, nullptr, ec);
  throw_if(ec, "stream_socket::write_all", desc_);
  return n;
}
std::size_t stream_socket::write_all(std::span<const const_buffer> bufs, const std::stop_token& st) {
  std::error_code ec;
  std::size_t n = writev_impl(desc_, bufs, &st, ec);
  throw_if(ec, "stream_socket::write_all", desc_);
  return n;
}

std::size_t stream_socket::write_some(const void* buf, std::size_t size, std::error_code& ec) {
  return write_impl(desc_, buf, size, nullptr, false, ec);
}
std::size_t stream_socket::write_some(const void* buf, std::size_t size) {
  std::error_code ec;
  std::size_t n = write_impl(desc_, buf, size, nullptr, false, ec);
  throw_if(ec, "stream_socket::write_some", desc_);
  return n;
}

void stream_socket::shutdown(shutdown_how how, std::error_code& ec) noexcept {
  io_op_guard g(desc_);
  if (!g) {
    ec = std::make_error_code(desc_ == nullptr ? std::errc::bad_file_descriptor : std::errc::operation_canceled);
    return;
  }
  if (::shutdown(g.fd(), static_cast<int>(how)) != 0) {
    ec.assign(io_errno(), std::system_category());
    return;
  }
  ec.clear();
}

void stream_socket::shutdown(shutdown_how how) {
  std::error_code ec;
  shutdown(how, ec);
  throw_if(ec, "stream_socket::shutdown", desc_);
}

}  // namespace weft::net
