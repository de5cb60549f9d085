// Stop signals, the accept loop and the summary helpers shared by the samples (sample_support.hpp).
#include "sample_support.hpp"

#include <malloc.h>
#include <netinet/in.h>
#include <pthread.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include <csignal>
#include <cstdio>
#include <stdexcept>
#include <string>
#include <system_error>

namespace sample {

stop_signals::stop_signals(std::stop_source stop) : stop_(std::move(stop)) {
  sigemptyset(&set_);
  sigaddset(&set_, SIGINT);
  sigaddset(&set_, SIGTERM);
  sigaddset(&set_, SIGUSR2);  // private: the destructor's wake-up
  // Blocked before any thread starts, so every thread inherits the mask and only the
  // watcher's sigwait receives them.
  pthread_sigmask(SIG_BLOCK, &set_, nullptr);
  // A closed stdout (`kv_server | head -1`) must not kill a server with SIGPIPE when it prints
  // its next line: the write fails with EPIPE instead and the server stops as usual. (Sockets
  // already send with MSG_NOSIGNAL.)
  std::signal(SIGPIPE, SIG_IGN);
  watcher_ = std::thread([this] {
    int sig = 0;
    sigwait(&set_, &sig);
    if (sig == SIGUSR2) return;
    // Ordering: release pairs with the acquire in received().
    received_.store(sig, std::memory_order_release);
    stop_.request_stop();
    // A second signal while connections still have their grace period: the user wants out
    // now (as a second Ctrl-C stops most servers). No summary; the exit status says which.
    sigwait(&set_, &sig);
    if (sig == SIGUSR2) return;
    static const char msg[] = "second stop signal: exiting now, without waiting for open connections\n";
    (void)!::write(STDERR_FILENO, msg, sizeof msg - 1);
    std::_Exit(128 + sig);
  });
}

stop_signals::~stop_signals() {
  // The watcher waits for a first signal or, after one, for a second: either way this ends it.
  pthread_kill(watcher_.native_handle(), SIGUSR2);
  watcher_.join();
}

std::string runtime_summary(const weft::runtime_stats& s) {
  char buf[256];
  std::snprintf(buf, sizeof buf,
                "runtime: workers=%u fibers spawned=%llu context_switches=%llu steals=%llu parks=%llu "
                "timers_fired=%llu",
                s.workers, static_cast<unsigned long long>(s.spawned),
                static_cast<unsigned long long>(s.context_switches),
                static_cast<unsigned long long>(s.steals), static_cast<unsigned long long>(s.parks),
                static_cast<unsigned long long>(s.timers_fired));
  return buf;
}

double seconds_since(std::chrono::steady_clock::time_point since) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - since).count();
}

void heap_trimmer::opened(std::size_t open) noexcept {
  std::size_t peak = peak_.load(std::memory_order_relaxed);
  while (open > peak && !peak_.compare_exchange_weak(peak, open, std::memory_order_relaxed)) {
  }
}

void heap_trimmer::closed(std::size_t open) {
  constexpr std::size_t kMinPeak = 256;  // below it there is little to give back
  std::size_t peak = peak_.load(std::memory_order_relaxed);
  // The exchange makes one caller of a burst the trimmer, and sets the next mark.
  if (peak >= kMinPeak && open <= peak / 2 && peak_.compare_exchange_strong(peak, open, std::memory_order_relaxed))
    weft::run_blocking([] { ::malloc_trim(0); });
}

bool input_waiting(const weft::net::tcp_stream& s) noexcept {
  int n = 0;
  return ::ioctl(s.native_handle(), FIONREAD, &n) == 0 && n > 0;
}

void linger(weft::net::tcp_stream& s, std::chrono::milliseconds wait) {
  std::error_code ec;
  s.shutdown(weft::net::shutdown_how::write, ec);
  s.set_read_deadline(weft::net::clock::now() + wait);
  char sink[4096];
  std::size_t total = 0;
  while (total < (1u << 20)) {
    std::size_t n = s.read_some(sink, sizeof sink, ec);
    if (ec || n == 0) break;
    total += n;
  }
}

int run_on_runtime(unsigned workers, weft::runtime_stats& stats, const std::function<int()>& body) {
  weft::runtime rt(weft::runtime_options{.workers = workers});
  int rc = rt.block_on([&body] { return body(); });
  stats = rt.stats();
  return rc;
}

tcp_server_result serve_tcp(const common_options& c, std::stop_token stop, const tcp_server_options& opts,
                            const std::function<void(weft::net::tcp_stream&)>& serve) {
  tcp_server_result result;
  weft::net::tcp_listener listener;
  weft::net::endpoint at;
  try {
    at = weft::net::endpoint::ip(c.bind, c.port);
  } catch (const std::invalid_argument&) {
    std::fprintf(stderr, "%s: --bind wants an IP address, not '%s'\n", opts.prog, c.bind.c_str());
    result.exit_code = 1;
    return result;
  }
  try {
    listener = weft::net::tcp_listener::bind(at);
  } catch (const std::system_error& e) {
    // The same line as threads_server's: what a user asked for and the errno text, not the
    // library call that failed. An IPv6 link-local address names no interface by itself.
    const auto* v6 = reinterpret_cast<const ::sockaddr_in6*>(at.data());
    const bool link_local = at.is_v6() && IN6_IS_ADDR_LINKLOCAL(&v6->sin6_addr) && v6->sin6_scope_id == 0;
    std::fprintf(stderr, "%s: cannot listen on %s: %s%s\n", opts.prog, at.to_string().c_str(),
                 e.code().message().c_str(),
                 link_local ? " (a link-local address needs its interface: --bind fe80::1%eth0)" : "");
    result.exit_code = 1;
    return result;
  }
  if (opts.on_listening) opts.on_listening(listener.local_endpoint());
  std::printf("listening on %s\n", listener.local_endpoint().to_string().c_str());
  std::fflush(stdout);

  connection_set<weft::net::tcp_stream> conns;
  weft::wait_group live;
  error_log accept_errors(opts.prog), connection_errors(opts.prog), spawn_errors(opts.prog);
  weft::this_fiber::set_name("accept loop");
  weft::this_fiber::set_waiting_on("accept");  // what it parks on, in runtime::fibers()
  for (;;) {
    std::error_code ec;
    weft::net::endpoint peer;
    weft::net::tcp_stream s = listener.accept(stop, ec, &peer);
    if (ec) {
      if (stop.stop_requested()) break;
      accept_errors.print("accept: %s", ec.message().c_str());
      weft::this_fiber::sleep_for(std::chrono::milliseconds(10));  // do not spin on a per-client error
      continue;
    }
    ++result.accepted;
    live.add(1);
    std::string name = std::string(opts.fiber_name) + " " + peer.to_string();  // spawn copies it
    try {
      weft::spawn(weft::spawn_options{.name = name.c_str()},
                  [&conns, &live, &serve, &connection_errors, s = std::move(s)]() mutable {
        conns.add(&s);
        try {
          try {
            s.set_nodelay(true);
          } catch (const std::system_error&) {
            // The peer is already gone; serve's first call says so.
          }
          serve(s);
        } catch (const std::exception& e) {  // not the runtime's forced unwind: that is no std::exception
          connection_errors.print("connection: %s", e.what());
        }
        conns.remove(&s);
        s.close();
        live.done();
      });
    } catch (const std::exception& e) {
      // No stack for this connection (memory, address space or vm.max_map_count ran out: the
      // message says which; std::bad_alloc from the pool's bookkeeping too). The callable, and
      // with it the socket, is gone: this client is closed, the others keep being served, and
      // the next accept tries again. (Not the runtime's forced unwind: no std::exception.)
      live.done();
      spawn_errors.print("cannot start a fiber for client %s, closing it: %s", peer.to_string().c_str(), e.what());
    }
  }
  listener.close();
  weft::this_fiber::set_waiting_on("connections to finish");
  if (opts.on_stop) opts.on_stop(conns);
  if (!live.wait_for(opts.grace)) {
    result.closed_after_grace = conns.close_all();
    std::fprintf(stderr, "%s: closed %zu connection(s) still open after the grace period\n", opts.prog,
                 result.closed_after_grace);
  }
  live.wait();
  accept_errors.flush();
  connection_errors.flush();
  spawn_errors.flush();
  return result;
}

}  // namespace sample
