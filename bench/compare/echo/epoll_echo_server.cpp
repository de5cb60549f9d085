// epoll_echo_server: the hand-written baseline for weft's echo server (docs/design.md, "echo over
// loopback ... within 10% of a hand-written epoll server"). The epoll frame (worker threads with
// an epoll instance each, edge-triggered connections registered once, SO_REUSEPORT or shared
// accept, pending output, shutdown) is bench/compare/common/epoll_server.hpp; this file is the
// echo itself: a readiness event reads until EAGAIN and echoes each chunk at once; a short write
// keeps the rest as pending output, stops reading (back-pressure) and resumes on the next
// EPOLLOUT. Runs until SIGINT or SIGTERM, then closes everything and exits 0.
#include <sys/epoll.h>
#include <unistd.h>

#include <cerrno>
#include <cstdint>
#include <memory>
#include <string>

#include "echo_common.hpp"
#include "epoll_server.hpp"

namespace {

constexpr const char* prog = "epoll_echo_server";
const std::string usage =
    std::string("usage: epoll_echo_server [--port P] [--workers N] [--accept reuseport|shared] [--stop-on-short-read]\n") +
    epoll_baseline::common_usage +
    "  --stop-on-short-read end a drain at a read shorter than the buffer instead of reading on\n"
    "                       to EAGAIN (epoll(7): a short read means the buffer is empty); saves\n"
    "                       one recv per request\n"
    "Runs until SIGINT or SIGTERM.\n";

constexpr std::size_t read_buffer_size = 64 * 1024;

class echo_worker : public epoll_baseline::worker<echo_worker, epoll_baseline::connection> {
 public:
  echo_worker(const char* p, int listen_fd, int stop_fd, bool shared_accept, bool stop_on_short_read)
      : worker(p, listen_fd, stop_fd, shared_accept), stop_on_short_read_(stop_on_short_read) {}

  // Readiness in either direction (or an error, or the peer's FIN): flush pending output first;
  // read only when nothing is pending.
  void on_ready(epoll_baseline::connection* c, std::uint32_t events) {
    if (!c->pending.empty() && !flush(c)) return;
    // The short-read shortcut would miss a FIN (or error) that came with the last data: after
    // one, read on to EOF. (One that comes later raises a new edge.)
    bool until_eagain = !stop_on_short_read_ || (events & (EPOLLRDHUP | EPOLLHUP | EPOLLERR)) != 0;
    drain(c, buf_.get(), read_buffer_size, [this, c, until_eagain](const char* data, std::size_t n) {
      if (!write_or_keep(c, data, n)) return false;
      // A short read drained the receive buffer (epoll(7)); new data brings a new edge.
      return n == read_buffer_size || until_eagain;
    });
  }

 private:
  bool stop_on_short_read_;
  std::unique_ptr<char[]> buf_{new char[read_buffer_size]};
};

}  // namespace

int main(int argc, char** argv) {
  epoll_baseline::options opts;
  bool stop_on_short_read = false;
  echo_bench::args a(prog, usage, argc, argv);
  while (a.advance()) {
    if (epoll_baseline::parse_common_flag(a, opts)) continue;
    if (a.is("--stop-on-short-read")) {
      stop_on_short_read = true;
    } else {
      a.unknown();
    }
  }
  return epoll_baseline::serve<echo_worker>(prog, opts, stop_on_short_read);
}
