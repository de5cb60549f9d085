// weft::net::tcp_stream and tcp_listener, plus the accept loop shared with unix_listener
// (listener_socket): back-off on descriptor exhaustion instead of spinning, one log line per
// episode.
#include <weft/net/tcp.hpp>

#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/resource.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <cstdio>

#include <weft/fiber.hpp>

#include "socket_util.hpp"

namespace weft::net {

using namespace weft::detail;
using detail_util::throw_if;

namespace {

// Connects the fresh socket `d` to `to`: connect(2), then wait for writability within `dl`.
void connect_desc(io_desc* d, const endpoint& to, deadline dl, const std::stop_token* st, std::error_code& ec) {
  io_op_guard g(d);
  if (!g) {
    ec = std::make_error_code(std::errc::operation_canceled);
    return;
  }
  std::uint32_t seen = io_events(d, io_dir::write);
  if (::connect(g.fd(), to.data(), to.size()) == 0) {
    ec.clear();
    return;
  }
  int err = io_errno();
  if (err != EINPROGRESS && err != EINTR && err != EAGAIN) {
    ec.assign(err, std::system_category());
    return;
  }
  io_set_deadline(d, io_dir::write, deadline_ns(dl));
  for (;;) {
    ec = io_wait(d, io_dir::write, st, seen);
    if (ec) break;
    seen = io_events(d, io_dir::write);  // before looking at the socket's state
    int so_error = 0;
    ::socklen_t len = sizeof so_error;
    if (::getsockopt(g.fd(), SOL_SOCKET, SO_ERROR, &so_error, &len) != 0) so_error = io_errno();
    if (so_error == 0) {
      // Writable and no error: connected, unless the wake-up was not about this socket yet.
      ::sockaddr_storage peer;
      ::socklen_t plen = sizeof peer;
      if (::getpeername(g.fd(), reinterpret_cast<::sockaddr*>(&peer), &plen) == 0) break;
      if (io_errno() != ENOTCONN) {
        ec.assign(io_errno(), std::system_category());
        break;
      }
      continue;
    }
    ec.assign(so_error, std::system_category());
    break;
  }
  io_set_deadline(d, io_dir::write, INT64_MAX);
}

template <class Stream>
Stream connect_to(const endpoint& to, deadline dl, const std::stop_token* st, std::error_code& ec,
                  Stream (*wrap)(io_desc*)) {
  if (!detail_util::check_endpoint(to, ec)) return Stream();
  if (to.is_unix()) {  // a Unix socket typed as TCP would answer TCP options with errors later
    ec = std::make_error_code(std::errc::address_family_not_supported);
    return Stream();
  }
  io_desc* d = detail_util::open_socket(to.family(), SOCK_STREAM, 0, ec);
  if (d == nullptr) return Stream();
  detail_util::remember_peer(d, to);
  Stream s = wrap(d);
  connect_desc(d, to, dl, st, ec);
  if (ec) return Stream();
  return s;
}

bool out_of_descriptors(const std::error_code& ec) {
  return ec == std::errc::too_many_files_open || ec == std::errc::too_many_files_open_in_system ||
         ec == std::errc::no_buffer_space || ec == std::errc::not_enough_memory;
}

}  // namespace

// tcp_stream ---------------------------------------------------------------------------------

tcp_stream tcp_stream::adopt(int fd) { return tcp_stream(socket::adopt(fd)); }

tcp_stream tcp_stream::connect(const endpoint& to, deadline d, const std::stop_token& st, std::error_code& ec) {
  return connect_to<tcp_stream>(to, d, &st, ec, [](io_desc* x) { return tcp_stream(x); });
}
tcp_stream tcp_stream::connect(const endpoint& to, deadline d, std::error_code& ec) {
  return connect_to<tcp_stream>(to, d, nullptr, ec, [](io_desc* x) { return tcp_stream(x); });
}
tcp_stream tcp_stream::connect(const endpoint& to, deadline d) {
  std::error_code ec;
  tcp_stream s = connect(to, d, ec);
  throw_if(ec, "tcp_stream::connect", to);
  return s;
}
tcp_stream tcp_stream::connect(const endpoint& to, deadline d, const std::stop_token& st) {
  std::error_code ec;
  tcp_stream s = connect(to, d, st, ec);
  throw_if(ec, "tcp_stream::connect", to);
  return s;
}

tcp_stream tcp_stream::connect(std::string_view host, std::string_view service, deadline d) {
  std::vector<endpoint> eps = resolve(host, service);
  std::error_code ec = std::make_error_code(std::errc::host_unreachable);
  endpoint last;
  for (const endpoint& e : eps) {
    tcp_stream s = connect(e, d, ec);
    if (!ec) return s;
    last = e;
    // The caller's deadline passed (weft's own timed_out, generic_category): no time is left
    // for the next address. The kernel's ETIMEDOUT (system_category) moves on to it.
    if (ec == std::error_code(std::make_error_code(std::errc::timed_out))) break;
  }
  throw std::system_error(ec, "weft::net::tcp_stream::connect " + std::string(host) + ":" + std::string(service) +
                                  (last.empty() ? std::string() : " (last tried " + last.to_string() + ")") +
                                  detail_util::outcome_why(ec, false, nullptr));
}

void tcp_stream::set_nodelay(bool on) { set_option(IPPROTO_TCP, TCP_NODELAY, on ? 1 : 0); }

void tcp_stream::set_keepalive(bool on, int idle_seconds) {
  set_option(SOL_SOCKET, SO_KEEPALIVE, on ? 1 : 0);
  if (on && idle_seconds > 0) set_option(IPPROTO_TCP, TCP_KEEPIDLE, idle_seconds);
}

// listener_socket ----------------------------------------------------------------------------

socket listener_socket::listen_on(const endpoint& at, const listen_options& opts, const char* who,
                                  const char* in_use_hint) {
  std::error_code ec;
  if (!detail_util::check_endpoint(at, ec)) throw_if(ec, who, at);
  io_desc* d = detail_util::open_socket(at.family(), SOCK_STREAM, 0, ec);
  throw_if(ec, who, at);
  socket s = wrap(d);
  io_op_guard g(d);
  int one = 1;
  if (!at.is_unix()) {
    if (::setsockopt(g.fd(), SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) != 0) ec.assign(io_errno(), std::system_category());
    if (!ec && opts.reuse_port && ::setsockopt(g.fd(), SOL_SOCKET, SO_REUSEPORT, &one, sizeof one) != 0)
      ec.assign(io_errno(), std::system_category());
    int v6only = opts.v6_only ? 1 : 0;
    if (!ec && at.is_v6() && ::setsockopt(g.fd(), IPPROTO_IPV6, IPV6_V6ONLY, &v6only, sizeof v6only) != 0)
      ec.assign(io_errno(), std::system_category());
  }
  if (!ec && ::bind(g.fd(), at.data(), at.size()) != 0) ec.assign(io_errno(), std::system_category());
  if (!ec && ::listen(g.fd(), opts.backlog) != 0) ec.assign(io_errno(), std::system_category());
  if (ec == std::errc::address_in_use && in_use_hint != nullptr) {
    detail_util::throw_net(ec, std::string(who) + " " + at.to_string() + in_use_hint);
  }
  throw_if(ec, who, at);
  return s;
}

namespace {
// True at most once per 10 s across the process: whether to print the out-of-descriptors
// warning now. Ordering: relaxed; the CAS only decides which caller prints, no data rides on it.
bool accept_warning_due() {
  static std::atomic<std::int64_t> next_ns{0};
  std::int64_t now = std::chrono::duration_cast<std::chrono::nanoseconds>(
                         std::chrono::steady_clock::now().time_since_epoch()).count();
  std::int64_t due = next_ns.load(std::memory_order_relaxed);
  return now >= due &&
         next_ns.compare_exchange_strong(due, now + 10'000'000'000, std::memory_order_relaxed);
}
}  // namespace

stream_socket listener_socket::accept_stream(endpoint* peer, const std::stop_token* st, std::error_code& ec) {
  using namespace std::chrono_literals;
  auto backoff = 5ms;
  for (;;) {
    endpoint from;
    ::socklen_t len = endpoint::capacity();
    long fd = io_do(desc_, io_dir::read, st, ec, [&](int lfd) {
      len = endpoint::capacity();
      return static_cast<long>(::accept4(lfd, from.data(), &len, SOCK_NONBLOCK | SOCK_CLOEXEC));
    });
    if (fd >= 0) {
      from.resize(len);
      if (peer != nullptr) *peer = from;
      io_desc* d = detail_util::adopt_fd(static_cast<int>(fd), ec);
      if (d == nullptr) return stream_socket();
      d->tcp = desc_->tcp;  // a TCP listener's connections are TCP, a Unix one's are not
      detail_util::remember_peer(d, from);
      return stream_socket(wrap(d));
    }
    // The peer gave up between the SYN and accept: take the next one.
    if (ec == std::errc::connection_aborted || ec == std::errc::protocol_error) continue;
    if (!out_of_descriptors(ec)) return stream_socket();
    // Out of descriptors: the pending connection stays in the backlog and readiness would
    // report it again at once, so retrying now would spin. Back off (5 ms doubling to
    // 100 ms), say so at most once per 10 s for the whole process (a server near its limit
    // runs in and out of descriptors many times a second), and stop if the listener is
    // closed or stopped.
    if (accept_warning_due()) {
      ::rlimit lim{};
      ::getrlimit(RLIMIT_NOFILE, &lim);
      std::error_code e2;
      endpoint at = local_endpoint(e2);
      std::fprintf(stderr,
                   "weft::net: accept on %s: %s; backing off and retrying until descriptors free up "
                   "(RLIMIT_NOFILE is %llu: raise `ulimit -n` or close idle connections; "
                   "this message is repeated at most every 10 s)\n",
                   at.to_string().c_str(), ec.message().c_str(), static_cast<unsigned long long>(lim.rlim_cur));
    }
    auto until = std::chrono::steady_clock::now() + backoff;
    while (std::chrono::steady_clock::now() < until) {
      if (desc_ == nullptr || io_is_closing(desc_) || (st != nullptr && st->stop_requested())) {
        ec = std::make_error_code(std::errc::operation_canceled);
        return stream_socket();
      }
      weft::this_fiber::sleep_for(std::min<std::chrono::steady_clock::duration>(until - std::chrono::steady_clock::now(), 5ms));
    }
    backoff = std::min<std::chrono::milliseconds>(backoff * 2, 100ms);
  }
}

// tcp_listener -------------------------------------------------------------------------------

tcp_listener tcp_listener::bind(const endpoint& at, const listen_options& opts) {
  if (at.is_unix()) throw_if(std::make_error_code(std::errc::address_family_not_supported), "tcp_listener::bind", at);
  return tcp_listener(listen_on(at, opts, "tcp_listener::bind"));
}

tcp_stream tcp_listener::accept(const std::stop_token& st, std::error_code& ec, endpoint* peer) {
  return tcp_stream(accept_stream(peer, &st, ec));
}
tcp_stream tcp_listener::accept(std::error_code& ec, endpoint* peer) {
  return tcp_stream(accept_stream(peer, nullptr, ec));
}
tcp_stream tcp_listener::accept(endpoint* peer) {
  std::error_code ec;
  tcp_stream s = accept(ec, peer);
  throw_if(ec, "tcp_listener::accept", desc_);
  return s;
}
tcp_stream tcp_listener::accept(const std::stop_token& st, endpoint* peer) {
  std::error_code ec;
  tcp_stream s = accept(st, ec, peer);
  throw_if(ec, "tcp_listener::accept", desc_);
  return s;
}

}  // namespace weft::net
