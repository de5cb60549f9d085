// Helpers of the weft::posix tests (posix_test.cpp, posix_poll_test.cpp, ...): descriptors
// closed through weft::posix, socket pairs, pipes, messages passing a descriptor (also used by
// unix_udp_test.cpp), loopback listeners, a watchdog that unblocks a call that blocked its
// worker, and exact reads and writes.
#pragma once

#include <fcntl.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <cstring>
#include <fstream>
#include <functional>
#include <mutex>
#include <string>
#include <system_error>
#include <thread>
#include <utility>

#include <weft/posix.hpp>
#include <weft/weft.hpp>

namespace posix_test {

using namespace std::chrono_literals;
namespace posix = weft::posix;
using steady = std::chrono::steady_clock;

// A descriptor closed with weft::posix::close when it leaves scope. Declare it after the
// runtime: a registered descriptor must be closed while that runtime lives.
class unique_fd {
 public:
  explicit unique_fd(int fd = -1) noexcept : fd_(fd) {}
  ~unique_fd() { reset(); }
  unique_fd(unique_fd&& o) noexcept : fd_(std::exchange(o.fd_, -1)) {}
  unique_fd& operator=(unique_fd&& o) noexcept {
    reset();
    fd_ = std::exchange(o.fd_, -1);
    return *this;
  }
  int get() const noexcept { return fd_; }
  int release() noexcept { return std::exchange(fd_, -1); }
  void reset() noexcept {
    if (fd_ >= 0) posix::close(fd_);
    fd_ = -1;
  }

 private:
  int fd_;
};

inline void check(bool ok, const char* what) {
  if (!ok) throw std::system_error(errno, std::system_category(), what);
}

struct fd_pair {
  unique_fd a, b;
};

inline fd_pair make_socketpair(int type = SOCK_STREAM) {
  int sv[2];
  check(::socketpair(AF_UNIX, type, 0, sv) == 0, "socketpair");
  return {unique_fd(sv[0]), unique_fd(sv[1])};
}

// A message carrying `fd` as SCM_RIGHTS, with `data` as its bytes (one by default), ready for
// sendmsg(&msg). Not copyable: msg points into it.
struct fd_message {
  std::string bytes;
  ::iovec iov{};
  alignas(::cmsghdr) char control[CMSG_SPACE(sizeof(int))]{};
  ::msghdr msg{};
  explicit fd_message(int fd, std::string data = "F") : bytes(std::move(data)) {
    iov = {bytes.data(), bytes.size()};
    msg.msg_iov = &iov;
    msg.msg_iovlen = 1;
    msg.msg_control = control;
    msg.msg_controllen = sizeof control;
    ::cmsghdr* c = CMSG_FIRSTHDR(&msg);
    c->cmsg_level = SOL_SOCKET;
    c->cmsg_type = SCM_RIGHTS;
    c->cmsg_len = CMSG_LEN(sizeof(int));
    std::memcpy(CMSG_DATA(c), &fd, sizeof fd);
  }
  fd_message(const fd_message&) = delete;
  fd_message& operator=(const fd_message&) = delete;
};

inline fd_pair make_pipe() {
  int p[2];
  check(::pipe2(p, O_CLOEXEC) == 0, "pipe2");
  return {unique_fd(p[0]), unique_fd(p[1])};  // a reads, b writes
}

inline sockaddr_in loopback(std::uint16_t port = 0) {
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  a.sin_port = htons(port);
  return a;
}

inline const sockaddr* sa(const sockaddr_in& a) { return reinterpret_cast<const sockaddr*>(&a); }

// A socket bound to 127.0.0.1 on a free port; `addr` receives its address.
inline unique_fd bound_socket(int type, sockaddr_in& addr) {
  unique_fd s(::socket(AF_INET, type | SOCK_CLOEXEC, 0));
  check(s.get() >= 0, "socket");
  addr = loopback();
  check(::bind(s.get(), sa(addr), sizeof addr) == 0, "bind");
  socklen_t len = sizeof addr;
  check(::getsockname(s.get(), reinterpret_cast<sockaddr*>(&addr), &len) == 0, "getsockname");
  return s;
}

inline unique_fd tcp_listener(sockaddr_in& addr) {
  unique_fd s = bound_socket(SOCK_STREAM, addr);
  check(::listen(s.get(), 16) == 0, "listen");
  return s;
}

inline bool has_flag(int fd, int cmd, int flag) { return (::fcntl(fd, cmd) & flag) != 0; }

// Yields until `pred` holds or `limit` passes; returns whether it held. On a fiber.
template <class Pred>
inline bool yield_until(Pred pred, std::chrono::milliseconds limit = 10s) {
  steady::time_point deadline = steady::now() + limit;
  while (!pred()) {
    if (steady::now() > deadline) return false;
    weft::this_fiber::yield();
  }
  return true;
}

// Runs `rescue` on its own thread if done() is not called within `limit`, to unblock a call
// that blocked its worker (or never returned); the test then fails on fired().
class watchdog {
 public:
  explicit watchdog(std::function<void()> rescue, std::chrono::milliseconds limit = 10s)
      : thread_([this, rescue = std::move(rescue), limit] {
          std::unique_lock lk(mu_);
          if (!cv_.wait_for(lk, limit, [this] { return done_; })) {
            fired_ = true;
            lk.unlock();
            rescue();
          }
        }) {}
  ~watchdog() {
    done();
    thread_.join();
  }
  void done() {
    {
      std::lock_guard lk(mu_);
      done_ = true;
    }
    cv_.notify_all();
  }
  bool fired() {
    std::lock_guard lk(mu_);
    return fired_;
  }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  bool done_ = false;
  bool fired_ = false;
  std::thread thread_;
};

// The scheduling state letter of a thread of this process ('S': sleeping in the kernel).
inline char thread_state(pid_t tid) {
  std::ifstream f("/proc/self/task/" + std::to_string(tid) + "/stat");
  std::string s;
  std::getline(f, s);
  std::size_t p = s.rfind(')');
  return p == std::string::npos || p + 2 >= s.size() ? '?' : s[p + 2];
}

// Reads exactly `n` bytes (or fails) with weft::posix::read.
inline bool read_exact(int fd, void* buf, std::size_t n) {
  auto* p = static_cast<char*>(buf);
  while (n > 0) {
    ssize_t r = posix::read(fd, p, n);
    if (r <= 0) return false;
    p += r;
    n -= static_cast<std::size_t>(r);
  }
  return true;
}

inline bool write_all(int fd, const void* buf, std::size_t n) {
  const auto* p = static_cast<const char*>(buf);
  while (n > 0) {
    ssize_t r = posix::write(fd, p, n);
    if (r <= 0) return false;
    p += r;
    n -= static_cast<std::size_t>(r);
  }
  return true;
}

struct outcome {
  long result = 0;
  int error = 0;
};

// Sets SO_RCVTIMEO or SO_SNDTIMEO (`option`) of `fd` to `t` (0: none).
inline void set_timeout(int fd, int option, std::chrono::milliseconds t) {
  ::timeval tv{};
  tv.tv_sec = static_cast<time_t>(t.count() / 1000);
  tv.tv_usec = static_cast<suseconds_t>(t.count() % 1000 * 1000);
  check(::setsockopt(fd, SOL_SOCKET, option, &tv, sizeof tv) == 0, "setsockopt");
}

inline weft::runtime_options one_worker() { return weft::runtime_options{.workers = 1}; }

}  // namespace posix_test
