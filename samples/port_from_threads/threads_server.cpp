// A line-based key-value server written the way thread code usually is: one std::thread per
// connection, kept in a registry and joined; a table under a std::mutex; a
// std::condition_variable on which WAIT sleeps (wait_for, with a timeout) until another client
// SETs the key; blocking POSIX socket calls (::poll, ::accept, ::recv, ::send, ::close).
// threads_server.cpp is the original; fibers_server.cpp is that file put through
// scripts/port_to_weft.sh and nothing else (tests/samples/port_from_threads_rename.sh checks
// it), so the same code runs on weft fibers, each blocking call parking a fiber, not a thread.
//
// Protocol: one request a line ("\n", or "\r\n"; the last may end at end of stream), one
// reply line each; verbs in any case.
//   SET key value...   -> OK                 GET key     -> VALUE value | NOTFOUND
//   DEL key            -> OK | NOTFOUND      WAIT key ms -> VALUE value | TIMEOUT
//   UPPER text         -> the text in upper case         COUNT text  -> WORDS n
//   STATS              -> STATS keys=N waiting=N         QUIT        -> BYE, then close
// WAIT answers at once if the key exists, else when a SET creates it or after `ms`. A line over
// 64 KiB is answered "ERR line too long" and the connection closed.
//
// Shutdown: SIGINT/SIGTERM are blocked in every thread; main() takes them with sigwait and
// closes the write end of a pipe that every poll below watches, then wakes the WAITs. The
// acceptor returns and the listener closes; idle connections close; a connection with a line
// half received has --grace-ms to finish it; a WAIT answers "ERR shutting down". main() joins
// every thread, prints a summary line and returns 0.
#include "error_log.hpp"
#include "line_protocol.hpp"
#include "sample_args.hpp"

#include <fcntl.h>
#include <netinet/in.h>
#include <netdb.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <climits>
#include <condition_variable>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <iterator>
#include <list>
#include <mutex>
#include <string>
#include <string_view>
#include <system_error>
#include <thread>
#include <unordered_map>

namespace {

using namespace std::chrono_literals;
using steady = std::chrono::steady_clock;

constexpr std::size_t kMaxLine = 64 * 1024;
constexpr long kMaxWaitMs = 600000;
constexpr auto kSendTimeout = 5s;  // a client that reads none of its replies this long is dropped

const char* const kUsage =
    "A line-based key-value server, one std::thread per connection. Requests, one a line:\n"
    "SET key value, GET key, DEL key, WAIT key ms (its value once key exists, TIMEOUT after ms),\n"
    "UPPER text, COUNT text, STATS, QUIT.";

struct options {
  sample::common_options common{.port = 7071, .workers_flag = false};
  std::chrono::milliseconds idle{60000};
  std::chrono::milliseconds grace{1000};
};

struct server {
  const char* prog = "";
  options opts;
  int listen_fd = -1;
  int stop_pipe[2] = {-1, -1};  // main() closes [1] at stop: [0] is readable from then on
  std::atomic<bool> stopping{false};

  std::mutex table_mu;
  std::condition_variable table_changed;               // notified on SET and at stop
  std::unordered_map<std::string, std::string> table;  // guarded by table_mu
  int waiting = 0;                                     // clients in WAIT; guarded by table_mu

  struct worker {
    std::thread thread;
    bool done = false;  // guarded by registry_mu; the thread's last act sets it
  };
  std::mutex registry_mu;
  std::list<worker> registry;  // guarded by registry_mu

  std::atomic<std::uint64_t> connections{0}, commands{0}, waits{0}, wait_timeouts{0};
};

// Returns -1 to run, or an exit code (0 after --help, 2 after a usage error).
int parse_args(int argc, char** argv, server& srv) {
  return sample::parse_args(
      argc, argv, srv.prog, kUsage, srv.opts.common,
      {sample::millis_flag("--idle-ms", "close a connection silent this long (default 60000)", srv.opts.idle, 1),
       sample::grace_flag("a half-received line may take", srv.opts.grace)});
}

enum class ready { io, stop, timeout, error };

// Waits until `fd` has one of `events`, the stop pipe is readable (if `stoppable`) or
// `deadline` passes. Every blocking socket call below is preceded by this wait.
ready wait_ready(server& srv, int fd, short events, steady::time_point deadline, bool stoppable) {
  for (;;) {
    long long left = std::chrono::ceil<std::chrono::milliseconds>(deadline - steady::now()).count();
    if (left <= 0) return ready::timeout;
    pollfd fds[2] = {{fd, events, 0}, {srv.stop_pipe[0], POLLIN, 0}};
    int n = ::poll(fds, stoppable ? 2 : 1, static_cast<int>(std::min<long long>(left, INT_MAX)));
    int err = errno;  // now: a later call may change it
    if (n < 0 && err != EINTR) return ready::error;
    if (n <= 0) continue;
    if (stoppable && fds[1].revents != 0) return ready::stop;
    if (fds[0].revents != 0) return ready::io;
  }
}

// Sends all of `out`; false if the client is gone or reads nothing for kSendTimeout.
bool send_all(server& srv, int fd, std::string_view out) {
  steady::time_point deadline = steady::now() + kSendTimeout;
  while (!out.empty()) {
    ssize_t n = ::send(fd, out.data(), out.size(), MSG_DONTWAIT | MSG_NOSIGNAL);
    int err = errno;
    if (n >= 0) {
      out.remove_prefix(static_cast<std::size_t>(n));
      continue;
    }
    if (err != EAGAIN && err != EWOULDBLOCK && err != EINTR) return false;
    if (wait_ready(srv, fd, POLLOUT, deadline, false) != ready::io) return false;
  }
  return true;
}

// Closes our side after a last reply without losing it: a close with unread input resets the
// connection, which can destroy the reply in the client's queue. Shuts down writing, then
// discards input until the client closes, at most 200 ms and 1 MiB.
void linger(server& srv, int fd) {
  ::shutdown(fd, SHUT_WR);
  steady::time_point deadline = steady::now() + 200ms;
  char sink[4096];
  std::size_t total = 0;
  while (total < (1u << 20) && wait_ready(srv, fd, POLLIN, deadline, false) == ready::io) {
    ssize_t n = ::recv(fd, sink, sizeof sink, MSG_DONTWAIT);
    int err = errno;
    if (n == 0 || (n < 0 && err != EAGAIN && err != EWOULDBLOCK && err != EINTR)) break;
    if (n > 0) total += static_cast<std::size_t>(n);
  }
}

// WAIT: sleeps on table_changed until `key` exists, the server stops, or `ms` pass.
void wait_for_key(server& srv, const std::string& key, long ms, std::string& out) {
  srv.waits.fetch_add(1, std::memory_order_relaxed);
  std::unique_lock<std::mutex> lk(srv.table_mu);
  ++srv.waiting;
  auto it = srv.table.end();
  srv.table_changed.wait_for(lk, std::chrono::milliseconds(ms), [&] {
    it = srv.table.find(key);
    return it != srv.table.end() || srv.stopping.load();
  });
  --srv.waiting;
  if (it != srv.table.end()) {
    out += "VALUE " + it->second + "\n";
  } else if (srv.stopping.load()) {
    out += "ERR shutting down\n";
  } else {
    srv.wait_timeouts.fetch_add(1, std::memory_order_relaxed);
    out += "TIMEOUT\n";
  }
}

// Runs one request line and appends its reply to `out`; false if the connection must close
// after the reply (QUIT).
bool execute(server& srv, std::string_view line, std::string& out) {
  line_protocol::request r = line_protocol::parse(line);
  srv.commands.fetch_add(1, std::memory_order_relaxed);
  std::string key(r.key);
  long ms = 0;
  if (r.verb == "SET" && !key.empty() && !r.rest.empty()) {
    {
      std::lock_guard<std::mutex> lk(srv.table_mu);
      srv.table[key] = std::string(r.rest);
    }
    srv.table_changed.notify_all();
    out += "OK\n";
  } else if (r.verb == "GET" && !key.empty() && r.rest.empty()) {
    std::lock_guard<std::mutex> lk(srv.table_mu);
    auto it = srv.table.find(key);
    out += it != srv.table.end() ? "VALUE " + it->second + "\n" : "NOTFOUND\n";
  } else if (r.verb == "DEL" && !key.empty() && r.rest.empty()) {
    std::lock_guard<std::mutex> lk(srv.table_mu);
    out += srv.table.erase(key) != 0 ? "OK\n" : "NOTFOUND\n";
  } else if (r.verb == "WAIT" && !key.empty() && line_protocol::parse_millis(r.rest, kMaxWaitMs, ms)) {
    wait_for_key(srv, key, ms, out);
  } else if (r.verb == "UPPER") {
    out += line_protocol::upper(r.args) + "\n";
  } else if (r.verb == "COUNT") {
    out += "WORDS " + std::to_string(line_protocol::count_words(r.args)) + "\n";
  } else if (r.verb == "STATS") {
    std::lock_guard<std::mutex> lk(srv.table_mu);
    out += "STATS keys=" + std::to_string(srv.table.size()) + " waiting=" + std::to_string(srv.waiting) + "\n";
  } else if (r.verb == "QUIT") {
    out += "BYE\n";
    return false;
  } else if (r.verb == "SET" || r.verb == "GET" || r.verb == "DEL" || r.verb == "WAIT") {
    out += "ERR usage: " + r.verb + (r.verb == "SET" ? " key value\n" : r.verb == "WAIT" ? " key ms\n" : " key\n");
  } else if (r.verb.empty()) {
    out += "ERR empty line\n";
  } else {
    out += "ERR unknown command '" + r.verb + "'\n";
  }
  return true;
}

// Serves one client until it quits, stays silent for --idle-ms, fails, or the server stops.
void serve(server& srv, int fd) {
  std::string in;  // received, not yet a whole line
  char buf[16 * 1024];
  steady::time_point deadline = steady::now() + srv.opts.idle;
  bool finishing = false;  // stop came with a line half received; deadline is the grace period's
  for (;;) {
    ready r = wait_ready(srv, fd, POLLIN, deadline, !finishing);
    if (r == ready::stop) {
      if (in.empty()) return;
      finishing = true;
      deadline = steady::now() + srv.opts.grace;
      continue;
    }
    if (r != ready::io) return;
    ssize_t n = ::recv(fd, buf, sizeof buf, MSG_DONTWAIT);
    int err = errno;
    if (n == 0) {
      // End of stream: a last line without its "\n" is still a request (as `printf 'GET k' | nc`).
      std::string out;
      if (!in.empty() && in.size() <= kMaxLine) execute(srv, in, out);
      if (!out.empty()) send_all(srv, fd, out);
      return;
    }
    if (n < 0) {
      if (err == EAGAIN || err == EWOULDBLOCK || err == EINTR) continue;
      return;
    }
    if (!finishing) deadline = steady::now() + srv.opts.idle;
    in.append(buf, static_cast<std::size_t>(n));
    std::string out;
    bool keep = true;
    std::size_t start = 0;
    for (std::size_t nl = in.find('\n'); keep && nl != std::string::npos; nl = in.find('\n', start)) {
      keep = execute(srv, std::string_view(in).substr(start, nl - start), out);
      start = nl + 1;
    }
    in.erase(0, start);
    if (keep && in.size() > kMaxLine) {
      out += "ERR line too long\n";
      keep = false;
    }
    if (!out.empty() && !send_all(srv, fd, out)) return;
    if (!keep) {
      linger(srv, fd);
      return;
    }
    if (finishing && in.empty()) return;  // the half-received line is done
  }
}

// Starts a thread serving `fd` and registers it; the thread closes `fd`. False (and `fd`
// closed, the error printed to `errors`) when no thread can be started.
bool start_connection(server& srv, int fd, sample::error_log& errors) {
  int one = 1;
  ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  srv.connections.fetch_add(1, std::memory_order_relaxed);
  std::lock_guard<std::mutex> lk(srv.registry_mu);
  auto self = srv.registry.emplace(srv.registry.end());
  try {
    self->thread = std::thread([&srv, fd, self] {
      serve(srv, fd);
      ::close(fd);
      std::lock_guard<std::mutex> lk(srv.registry_mu);
      self->done = true;
    });
  } catch (const std::system_error& e) {
    errors.print("cannot start a thread for a client: %s", e.what());
    srv.registry.erase(self);
    ::close(fd);
    return false;
  }
  return true;
}

// Joins the registered threads: those that have finished, or all of them (at stop, once no
// thread can be added).
void join_threads(server& srv, bool all) {
  std::list<server::worker> joining;
  {
    std::lock_guard<std::mutex> lk(srv.registry_mu);
    for (auto it = srv.registry.begin(); it != srv.registry.end();) {
      auto next = std::next(it);
      if (all || it->done) joining.splice(joining.end(), srv.registry, it);
      it = next;
    }
  }
  for (server::worker& w : joining) w.thread.join();
}

// Accepts clients until stop, a thread each; joins finished threads as it goes. Its errors
// repeat with every client while they last (out of descriptors, out of threads), so each kind
// is printed at most once a second.
void accept_loop(server& srv) {
  sample::error_log accept_errors(srv.prog), thread_errors(srv.prog);
  for (;;) {
    ready r = wait_ready(srv, srv.listen_fd, POLLIN, steady::time_point::max(), true);
    join_threads(srv, false);
    if (r == ready::stop) break;
    if (r != ready::io) {
      accept_errors.print("poll on the listener failed");
      std::this_thread::sleep_for(100ms);
      continue;
    }
    int fd = ::accept(srv.listen_fd, nullptr, nullptr);
    int err = errno;
    if (fd >= 0) {
      if (!start_connection(srv, fd, thread_errors)) std::this_thread::sleep_for(100ms);  // out of threads: let some end
    } else if (err != EAGAIN && err != EWOULDBLOCK && err != EINTR && err != ECONNABORTED) {
      accept_errors.print("accept: %s", std::strerror(err));
      std::this_thread::sleep_for(100ms);  // out of descriptors: let some connections end
    }
  }
  accept_errors.flush();
  thread_errors.flush();
}

// Binds and listens on --bind:--port (IPv4 or IPv6), prints "listening on ADDR:PORT" (an IPv6
// address in brackets); false after an error.
bool open_listener(server& srv) {
  const char* host = srv.opts.common.bind.c_str();
  const std::string port = std::to_string(srv.opts.common.port);
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = AI_NUMERICHOST | AI_NUMERICSERV | AI_PASSIVE;  // no name lookup: --bind is an address
  addrinfo* found = nullptr;
  if (int rc = ::getaddrinfo(host, port.c_str(), &hints, &found); rc != 0) {
    std::fprintf(stderr, "%s: cannot listen on %s: %s\n", srv.prog, host, ::gai_strerror(rc));
    return false;
  }
  sockaddr_storage addr{};
  socklen_t len = found->ai_addrlen;
  std::memcpy(&addr, found->ai_addr, len);
  const bool v6 = found->ai_family == AF_INET6;
  ::freeaddrinfo(found);
  srv.listen_fd = ::socket(addr.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
  int one = 1;
  // Non-blocking, so that an accept after the client gave up returns EAGAIN instead of blocking.
  if (srv.listen_fd < 0 || ::setsockopt(srv.listen_fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) != 0 ||
      ::bind(srv.listen_fd, reinterpret_cast<sockaddr*>(&addr), len) != 0 ||
      ::listen(srv.listen_fd, SOMAXCONN) != 0 || ::fcntl(srv.listen_fd, F_SETFL, O_NONBLOCK) != 0 ||
      ::getsockname(srv.listen_fd, reinterpret_cast<sockaddr*>(&addr), &len) != 0 ||
      ::pipe2(srv.stop_pipe, O_CLOEXEC) != 0) {
    std::fprintf(stderr, "%s: cannot listen on %s%s%s:%s: %s\n", srv.prog, v6 ? "[" : "", host, v6 ? "]" : "",
                 port.c_str(), std::strerror(errno));
    return false;
  }
  const in_port_t bound = v6 ? reinterpret_cast<sockaddr_in6*>(&addr)->sin6_port
                             : reinterpret_cast<sockaddr_in*>(&addr)->sin_port;
  std::printf("listening on %s%s%s:%u\n", v6 ? "[" : "", host, v6 ? "]" : "", static_cast<unsigned>(ntohs(bound)));
  std::fflush(stdout);
  return true;
}

}  // namespace

int main(int argc, char** argv) {
  server srv;
  const char* slash = std::strrchr(argv[0], '/');
  srv.prog = slash != nullptr ? slash + 1 : argv[0];
  if (int rc = parse_args(argc, argv, srv); rc >= 0) return rc;

  // Blocked before any thread starts, so every thread inherits the mask and only the
  // sigwait below receives them.
  sigset_t stop_signals;
  sigemptyset(&stop_signals);
  sigaddset(&stop_signals, SIGINT);
  sigaddset(&stop_signals, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &stop_signals, nullptr);
  // A closed stdout (`threads_server | head -1`) makes the summary's write fail with EPIPE
  // instead of killing the server. (Sockets send with MSG_NOSIGNAL.)
  ::signal(SIGPIPE, SIG_IGN);

  if (!open_listener(srv)) return 1;
  steady::time_point started = steady::now();
  std::thread acceptor([&srv] { accept_loop(srv); });

  int sig = 0;
  sigwait(&stop_signals, &sig);
  srv.stopping.store(true);
  ::close(srv.stop_pipe[1]);  // wakes every poll that watches the stop pipe
  {
    // Taken and released so that no WAIT is between its predicate and its sleep.
    std::lock_guard<std::mutex> lk(srv.table_mu);
  }
  srv.table_changed.notify_all();
  acceptor.join();
  ::close(srv.listen_fd);  // from here on new clients are refused
  join_threads(srv, true);
  ::close(srv.stop_pipe[0]);
  std::printf("%s: served %llu connections, %llu commands, %llu waits (%llu timed out), %zu keys at exit in %.1f s\n",
              srv.prog, static_cast<unsigned long long>(srv.connections.load()),
              static_cast<unsigned long long>(srv.commands.load()),
              static_cast<unsigned long long>(srv.waits.load()),
              static_cast<unsigned long long>(srv.wait_timeouts.load()), srv.table.size(),
              std::chrono::duration<double>(steady::now() - started).count());
  return 0;
}
