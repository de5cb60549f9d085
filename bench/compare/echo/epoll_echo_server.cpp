// epoll_echo_server: the hand-written baseline for weft's echo server (docs/design.md, "echo over
// loopback ... within 10% of a hand-written epoll server"). N worker threads, each with its own
// epoll instance; every connection belongs to one worker for its whole life, is non-blocking and
// registered once, edge-triggered, for both directions (no epoll_ctl per operation). A readiness
// event reads until EAGAIN and echoes each chunk at once; a short write keeps the rest as pending
// output, stops reading (back-pressure) and resumes on the next EPOLLOUT.
// Accept: by default every worker has its own SO_REUSEPORT listener on the same port (the kernel
// spreads connections by hash); --accept shared gives one listener in every epoll with
// EPOLLEXCLUSIVE instead (no faster here, and it can leave one worker with nearly all the
// connections). Runs until SIGINT or SIGTERM, then closes everything and exits 0.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "echo_common.hpp"

namespace {

constexpr const char* prog = "epoll_echo_server";
constexpr const char* usage =
    "usage: epoll_echo_server [--port P] [--workers N] [--accept reuseport|shared] [--stop-on-short-read]\n"
    "  --port P             TCP port on 127.0.0.1; 0 (default) picks a free one. Prints\n"
    "                       \"listening on 127.0.0.1:PORT\" once it accepts connections.\n"
    "  --workers N          worker threads, each with its own epoll instance (default 2; the\n"
    "                       flag echo_server takes for its runtime's workers)\n"
    "  --accept MODE        reuseport (default): one SO_REUSEPORT listener per worker;\n"
    "                       shared: one listener in every worker's epoll with EPOLLEXCLUSIVE\n"
    "  --stop-on-short-read end a drain at a read shorter than the buffer instead of reading on\n"
    "                       to EAGAIN (epoll(7): a short read means the buffer is empty); saves\n"
    "                       one recv per request\n"
    "Runs until SIGINT or SIGTERM.\n";

struct options {
  unsigned threads = 2;
  std::uint16_t port = 0;
  bool shared_accept = false;
  bool stop_on_short_read = false;
};

constexpr std::size_t read_buffer_size = 64 * 1024;

// One client connection. Ownership: only its worker's thread touches it.
struct conn {
  int fd = -1;
  std::vector<char> pending;    // echo bytes the socket did not take yet
  std::size_t pending_off = 0;  // how many of `pending` have been written
  conn* prev = nullptr;         // the worker's list of live connections (for shutdown)
  conn* next = nullptr;
};

// Tags for the epoll data of the two descriptors that are not connections.
char listen_tag, stop_tag;

class worker {
 public:
  worker(int listen_fd, int stop_fd, const options& opts) : listen_fd_(listen_fd), opts_(opts) {
    ep_ = epoll_create1(EPOLL_CLOEXEC);
    if (ep_ < 0) echo_bench::fail_errno(prog, "epoll_create1", errno);
    epoll_event ev{};
    ev.events = EPOLLIN | EPOLLET | (opts.shared_accept ? EPOLLEXCLUSIVE : 0u);
    ev.data.ptr = &listen_tag;
    if (epoll_ctl(ep_, EPOLL_CTL_ADD, listen_fd, &ev) != 0) echo_bench::fail_errno(prog, "epoll_ctl(ADD listener)", errno);
    // Level-triggered and never read: once written, every worker sees it on each epoll_wait.
    ev.events = EPOLLIN;
    ev.data.ptr = &stop_tag;
    if (epoll_ctl(ep_, EPOLL_CTL_ADD, stop_fd, &ev) != 0) echo_bench::fail_errno(prog, "epoll_ctl(ADD eventfd)", errno);
  }
  worker(const worker&) = delete;
  worker& operator=(const worker&) = delete;

  ~worker() {
    while (live_ != nullptr) close_conn(live_);
    ::close(ep_);
  }

  void run() {
    std::unique_ptr<char[]> buf(new char[read_buffer_size]);
    epoll_event events[256];
    for (;;) {
      int n = epoll_wait(ep_, events, 256, -1);
      if (n < 0) {
        if (errno == EINTR) continue;
        echo_bench::fail_errno(prog, "epoll_wait", errno);
      }
      for (int i = 0; i < n; ++i) {
        void* tag = events[i].data.ptr;
        if (tag == &stop_tag) return;
        if (tag == &listen_tag) {
          accept_all();
        } else {
          on_ready(static_cast<conn*>(tag), events[i].events, buf.get());
        }
      }
    }
  }

  std::uint64_t accepted() const { return accepted_; }

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
        if (!out_of_fds_) std::fprintf(stderr, "%s: accept4: %s (connections wait in the backlog)\n", prog, std::strerror(err));
        out_of_fds_ = true;
        return;
      }
      int one = 1;
      if (setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one) != 0)
        echo_bench::fail_errno(prog, "setsockopt(TCP_NODELAY)", errno);
      conn* c = new conn;
      c->fd = fd;
      epoll_event ev{};
      // Both directions, edge-triggered, once: EPOLLOUT only matters while output is pending.
      ev.events = EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET;
      ev.data.ptr = c;
      if (epoll_ctl(ep_, EPOLL_CTL_ADD, fd, &ev) != 0) echo_bench::fail_errno(prog, "epoll_ctl(ADD connection)", errno);
      c->next = live_;
      if (live_ != nullptr) live_->prev = c;
      live_ = c;
      ++accepted_;
    }
  }

  // Readiness in either direction (or an error, or the peer's FIN): flush pending output first;
  // read only when nothing is pending.
  void on_ready(conn* c, std::uint32_t events, char* buf) {
    if (!c->pending.empty() && !flush(c)) return;
    // The short-read shortcut would miss a FIN (or error) that came with the last data: after
    // one, read on to EOF. (One that comes later raises a new edge.)
    bool until_eagain = !opts_.stop_on_short_read || (events & (EPOLLRDHUP | EPOLLHUP | EPOLLERR)) != 0;
    for (;;) {
      ssize_t r = ::read(c->fd, buf, read_buffer_size);
      if (r > 0) {
        if (!write_or_keep(c, buf, std::size_t(r))) return;
        // A short read drained the receive buffer (epoll(7)); new data brings a new edge.
        if (std::size_t(r) < read_buffer_size && !until_eagain) return;
        continue;
      }
      if (r < 0 && errno == EINTR) continue;
      if (r < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) return;
      close_conn(c);  // EOF or an error (ECONNRESET, ...)
      return;
    }
  }

  // Writes `n` bytes; what the socket does not take becomes pending output. False if the
  // connection is closed or output is now pending (the caller stops reading).
  bool write_or_keep(conn* c, const char* data, std::size_t n) {
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

  // Writes pending output; true once all of it is written.
  bool flush(conn* c) {
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

  // close() also removes the descriptor from the epoll set. An fd appears at most once in one
  // epoll_wait batch, so no later event of this batch refers to `c`.
  void close_conn(conn* c) {
    ::close(c->fd);
    if (c->prev != nullptr) c->prev->next = c->next; else live_ = c->next;
    if (c->next != nullptr) c->next->prev = c->prev;
    delete c;
  }

  int ep_ = -1;
  int listen_fd_;
  const options& opts_;
  conn* live_ = nullptr;
  bool out_of_fds_ = false;
  std::uint64_t accepted_ = 0;
};

// A listening socket on 127.0.0.1:port (SO_REUSEPORT if asked), non-blocking.
int make_listener(std::uint16_t port, bool reuse_port) {
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

std::uint16_t bound_port(int fd) {
  sockaddr_in addr{};
  socklen_t len = sizeof addr;
  if (getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) != 0) echo_bench::fail_errno(prog, "getsockname", errno);
  return ntohs(addr.sin_port);
}

}  // namespace

int main(int argc, char** argv) {
  options opts;
  echo_bench::args a(prog, usage, argc, argv);
  while (a.advance()) {
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
    } else if (a.is("--stop-on-short-read")) {
      opts.stop_on_short_read = true;
    } else {
      a.unknown();
    }
  }

  // Before any thread starts, so that every thread inherits the mask and only sigwait sees them.
  sigset_t stop_signals = echo_bench::block_stop_signals(prog);

  // All listeners exist before the line is printed: a client may connect at once.
  std::vector<int> listeners;
  listeners.push_back(make_listener(opts.port, !opts.shared_accept));
  std::uint16_t port = bound_port(listeners[0]);
  for (unsigned i = 1; i < opts.threads && !opts.shared_accept; ++i) listeners.push_back(make_listener(port, true));

  int stop_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  if (stop_fd < 0) echo_bench::fail_errno(prog, "eventfd", errno);

  std::vector<std::unique_ptr<worker>> workers;
  for (unsigned i = 0; i < opts.threads; ++i)
    workers.push_back(std::make_unique<worker>(listeners[opts.shared_accept ? 0 : i], stop_fd, opts));
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
