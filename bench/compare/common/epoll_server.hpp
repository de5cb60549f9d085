// The frame of the hand-written epoll baselines (bench/compare/echo/epoll_echo_server.cpp,
// bench/compare/http/epoll_http_server.cpp): what an epoll server needs besides its protocol.
// N worker threads, each with its own epoll instance; every connection belongs to one worker for
// its whole life, is non-blocking and registered once, edge-triggered, for both directions (no
// epoll_ctl per operation). Output the socket does not take becomes the connection's pending
// output; the protocol stops reading while some is pending (back-pressure) and flushes it on the
// next readiness event. Accept: by default every worker has its own SO_REUSEPORT listener on the
// same port (the kernel spreads connections by hash); `shared_accept` puts one listener in every
// epoll with EPOLLEXCLUSIVE instead. serve() runs the whole program until SIGINT or SIGTERM, then
// closes everything and returns 0.
// Header-only and free of weft, so the baselines build without it.
// Invariant: a connection is touched only by its worker's thread, and freed only by close_conn.
#pragma once

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "echo_common.hpp"

namespace epoll_baseline {

/// What every baseline takes from its command line.
struct options {
  unsigned threads = 2;
  std::uint16_t port = 0;
  bool shared_accept = false;
};

/// One client connection; a protocol derives its own record from it.
/// Ownership: only its worker's thread touches it.
struct connection {
  int fd = -1;
  std::vector<char> pending;    // output the socket did not take yet
  std::size_t pending_off = 0;  // how many of `pending` have been written
  connection* prev = nullptr;   // the worker's list of live connections (for shutdown)
  connection* next = nullptr;
};

/// One worker thread's epoll loop (CRTP). `Derived` handles readiness with
/// `void on_ready(Conn* c, std::uint32_t events)`; `Conn` derives from `connection` and is
/// default-constructible.
template <class Derived, class Conn>
class worker {
 public:
  worker(const char* prog, int listen_fd, int stop_fd, bool shared_accept) : prog_(prog), listen_fd_(listen_fd) {
    ep_ = epoll_create1(EPOLL_CLOEXEC);
    if (ep_ < 0) echo_bench::fail_errno(prog_, "epoll_create1", errno);
    epoll_event ev{};
    ev.events = EPOLLIN | EPOLLET | (shared_accept ? EPOLLEXCLUSIVE : 0u);
    ev.data.ptr = &listen_tag_;
    if (epoll_ctl(ep_, EPOLL_CTL_ADD, listen_fd, &ev) != 0) echo_bench::fail_errno(prog_, "epoll_ctl(ADD listener)", errno);
    // Level-triggered and never read: once written, every worker sees it on each epoll_wait.
    ev.events = EPOLLIN;
    ev.data.ptr = &stop_tag_;
    if (epoll_ctl(ep_, EPOLL_CTL_ADD, stop_fd, &ev) != 0) echo_bench::fail_errno(prog_, "epoll_ctl(ADD eventfd)", errno);
  }
  worker(const worker&) = delete;
  worker& operator=(const worker&) = delete;

  ~worker() {
    while (live_ != nullptr) close_conn(static_cast<Conn*>(live_));
    ::close(ep_);
  }

  /// Serves connections until the stop eventfd is written.
  void run() {
    epoll_event events[256];
    for (;;) {
      int n = epoll_wait(ep_, events, 256, -1);
      if (n < 0) {
        if (errno == EINTR) continue;
        echo_bench::fail_errno(prog_, "epoll_wait", errno);
      }
      for (int i = 0; i < n; ++i) {
        void* tag = events[i].data.ptr;
        if (tag == &stop_tag_) return;
        if (tag == &listen_tag_) {
          accept_all();
        } else {
          static_cast<Derived*>(this)->on_ready(static_cast<Conn*>(tag), events[i].events);
        }
      }
    }
  }

  std::uint64_t accepted() const { return accepted_; }

 protected:
  /// Reads until EAGAIN, handing each chunk to `on_chunk(const char* data, std::size_t n)`; a
  /// false from it stops reading (it may have closed `c`). Closes `c` at end of stream or on an
  /// error (ECONNRESET, ...).
  template <class F>
  void drain(Conn* c, char* buf, std::size_t size, F&& on_chunk) {
    for (;;) {
      ssize_t r = ::read(c->fd, buf, size);
      if (r > 0) {
        if (!on_chunk(const_cast<const char*>(buf), std::size_t(r))) return;
        continue;
      }
      if (r < 0 && errno == EINTR) continue;
      if (r < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) return;
      close_conn(c);
      return;
    }
  }

  /// Writes `n` bytes; what the socket does not take becomes pending output. False if the
  /// connection is closed or output is now pending (the caller stops reading).
  bool write_or_keep(Conn* c, const char* data, std::size_t n) {
    std::size_t done = 0;
    while (done < n) {
      ssize_t w = ::send(c->fd, data + done, n - done, MSG_NOSIGNAL);
      if (w >= 0) {
        done += std::size_t(w);
        continue;
      }
      if (errno == EINTR) continue;
      if (errno == EAGAIN || errno == EWOULDBLOCK) {
        c->pending.assign(data + done, data + n);
        c->pending_off = 0;
        return false;
      }
      close_conn(c);
      return false;
    }
    return true;
  }

  /// Writes pending output; true once all of it is written (false: still pending, or closed).
  bool flush(Conn* c) {
    while (c->pending_off < c->pending.size()) {
      ssize_t w = ::send(c->fd, c->pending.data() + c->pending_off, c->pending.size() - c->pending_off, MSG_NOSIGNAL);
      if (w >= 0) {
        c->pending_off += std::size_t(w);
        continue;
      }
      if (errno == EINTR) continue;
      if (errno == EAGAIN || errno == EWOULDBLOCK) return false;
      close_conn(c);
      return false;
    }
    c->pending.clear();
    c->pending_off = 0;
    return true;
  }

  /// close() also removes the descriptor from the epoll set. An fd appears at most once in one
  /// epoll_wait batch, so no later event of this batch refers to `c`.
  void close_conn(Conn* c) {
    ::close(c->fd);
    if (c->prev != nullptr) c->prev->next = c->next; else live_ = c->next;
    if (c->next != nullptr) c->next->prev = c->prev;
    delete c;
  }

  const char* prog_;

 private:
  void accept_all() {
    for (;;) {
      int fd = accept4(listen_fd_, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
      if (fd < 0) {
        int err = errno;
        if (err == EAGAIN || err == EWOULDBLOCK) {
          out_of_fds_ = false;
          return;
        }
        if (err == EINTR || err == ECONNABORTED) continue;
        // Out of descriptors or memory: the connection stays in the backlog and is accepted on
        // the next edge (the next connection to arrive). Said once per episode, not per attempt.
        if (!out_of_fds_) std::fprintf(stderr, "%s: accept4: %s (connections wait in the backlog)\n", prog_, std::strerror(err));
        out_of_fds_ = true;
        return;
      }
      int one = 1;
      if (setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one) != 0)
        echo_bench::fail_errno(prog_, "setsockopt(TCP_NODELAY)", errno);
      Conn* c = new Conn;
      c->fd = fd;
      epoll_event ev{};
      // Both directions, edge-triggered, once: EPOLLOUT only matters while output is pending.
      ev.events = EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET;
      ev.data.ptr = c;
      if (epoll_ctl(ep_, EPOLL_CTL_ADD, fd, &ev) != 0) echo_bench::fail_errno(prog_, "epoll_ctl(ADD connection)", errno);
      c->next = live_;
      if (live_ != nullptr) live_->prev = c;
      live_ = c;
      ++accepted_;
    }
  }

  // Tags for the epoll data of the two descriptors that are not connections.
  char listen_tag_ = 0, stop_tag_ = 0;
  int ep_ = -1;
  int listen_fd_;
  connection* live_ = nullptr;
  bool out_of_fds_ = false;
  std::uint64_t accepted_ = 0;
};

/// A listening socket on 127.0.0.1:port (SO_REUSEPORT if asked), non-blocking.
inline int make_listener(const char* prog, std::uint16_t port, bool reuse_port) {
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) echo_bench::fail_errno(prog, "socket", errno);
  int one = 1;
  if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) != 0) echo_bench::fail_errno(prog, "setsockopt(SO_REUSEADDR)", errno);
  if (reuse_port && setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof one) != 0)
    echo_bench::fail_errno(prog, "setsockopt(SO_REUSEPORT)", errno);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(port);
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0)
    echo_bench::fail_errno(prog, "bind 127.0.0.1:" + std::to_string(port), errno);
  if (listen(fd, 4096) != 0) echo_bench::fail_errno(prog, "listen", errno);
  return fd;
}

/// The port a bound socket got (the one the kernel picked for port 0).
inline std::uint16_t bound_port(const char* prog, int fd) {
  sockaddr_in addr{};
  socklen_t len = sizeof addr;
  if (getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) != 0) echo_bench::fail_errno(prog, "getsockname", errno);
  return ntohs(addr.sin_port);
}

/// Runs a baseline: opens the listeners, starts `opts.threads` workers (each constructed as
/// `Worker(prog, listen_fd, stop_fd, shared_accept, extra...)`), prints
/// "listening on 127.0.0.1:PORT", waits for SIGINT or SIGTERM, stops and joins the workers,
/// prints a line with the connections each accepted on stderr, closes everything; returns 0.
/// Call it from main before starting any thread: it blocks the stop signals for all of them.
template <class Worker, class... Extra>
int serve(const char* prog, const options& opts, const Extra&... extra) {
  // Before any thread starts, so that every thread inherits the mask and only sigwait sees them.
  sigset_t stop_signals = echo_bench::block_stop_signals(prog);

  // All listeners exist before the line is printed: a client may connect at once.
  std::vector<int> listeners;
  listeners.push_back(make_listener(prog, opts.port, !opts.shared_accept));
  std::uint16_t port = bound_port(prog, listeners[0]);
  for (unsigned i = 1; i < opts.threads && !opts.shared_accept; ++i) listeners.push_back(make_listener(prog, port, true));

  int stop_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  if (stop_fd < 0) echo_bench::fail_errno(prog, "eventfd", errno);

  std::vector<std::unique_ptr<Worker>> workers;
  for (unsigned i = 0; i < opts.threads; ++i)
    workers.push_back(std::make_unique<Worker>(prog, listeners[opts.shared_accept ? 0 : i], stop_fd, opts.shared_accept, extra...));
  std::vector<std::thread> threads;
  for (auto& w : workers) threads.emplace_back([&w] { w->run(); });

  std::printf("listening on 127.0.0.1:%u\n", unsigned(port));
  std::fflush(stdout);

  int sig = echo_bench::wait_stop_signal(prog, stop_signals);
  std::uint64_t one = 1;
  if (::write(stop_fd, &one, sizeof one) != sizeof one) echo_bench::fail_errno(prog, "write(eventfd)", errno);
  for (auto& t : threads) t.join();

  std::string per_worker;
  for (auto& w : workers) {
    if (!per_worker.empty()) per_worker += ' ';
    per_worker += std::to_string(w->accepted());
  }
  std::fprintf(stderr, "%s: %s; connections accepted per worker: %s\n", prog, strsignal(sig), per_worker.c_str());
  workers.clear();  // closes every connection still open
  for (int fd : listeners) ::close(fd);
  ::close(stop_fd);
  return 0;
}

/// Parses the flags every baseline has (--port, --workers, --accept) at the current argument of
/// `a`; false if the current argument is none of them.
inline bool parse_common_flag(echo_bench::args& a, options& opts) {
  unsigned long long v = 0;
  std::string_view text;
  if (a.value("--port", v, 0, 65535)) {
    opts.port = std::uint16_t(v);
  } else if (a.value("--workers", v, 1, 1024)) {
    opts.threads = unsigned(v);
  } else if (a.value("--accept", text)) {
    if (text == "shared") opts.shared_accept = true;
    else if (text == "reuseport") opts.shared_accept = false;
    else a.bad("--accept wants reuseport or shared, not \"" + std::string(text) + "\"");
  } else {
    return false;
  }
  return true;
}

/// The usage lines of the flags parse_common_flag takes.
inline constexpr const char* common_usage =
    "  --port P             TCP port on 127.0.0.1; 0 (default) picks a free one. Prints\n"
    "                       \"listening on 127.0.0.1:PORT\" once it accepts connections.\n"
    "  --workers N          worker threads, each with its own epoll instance (default 2; the\n"
    "                       flag the weft samples take for their runtime's workers)\n"
    "  --accept MODE        reuseport (default): one SO_REUSEPORT listener per worker;\n"
    "                       shared: one listener in every worker's epoll with EPOLLEXCLUSIVE\n";

}  // namespace epoll_baseline
