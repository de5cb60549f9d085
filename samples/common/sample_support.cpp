// Command line, stop signals and summary helpers shared by the samples (sample_support.hpp).
#include "sample_support.hpp"

#include <pthread.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <string_view>

namespace sample {

bool parse_uint(const char* s, unsigned long max, unsigned long& out) {
  if (s == nullptr || s[0] == '-' || s[0] == '+' || s[0] == '\0') return false;
  char* end = nullptr;
  errno = 0;
  unsigned long v = std::strtoul(s, &end, 10);
  if (errno != 0 || *end != '\0' || v > max) return false;
  out = v;
  return true;
}

bool split_host_port(std::string_view text, std::string& host, std::string& port) {
  auto colon = text.rfind(':');
  if (colon == std::string_view::npos || colon == 0 || colon + 1 == text.size()) return false;
  host = text.substr(0, colon);
  port = text.substr(colon + 1);
  if (host.size() > 2 && host.front() == '[' && host.back() == ']') host = host.substr(1, host.size() - 2);
  unsigned long p = 0;
  return parse_uint(port.c_str(), 65535, p) && p > 0;
}

bool parse_seconds(const char* s, double max_seconds, double& out) {
  if (s == nullptr || !(s[0] >= '0' && s[0] <= '9')) return false;
  char* end = nullptr;
  double v = std::strtod(s, &end);
  if (*end != '\0' || !(v >= 0) || v > max_seconds) return false;
  out = v;
  return true;
}

namespace {

void print_usage(std::FILE* f, const char* prog, const char* usage, const std::vector<flag>& flags,
                 const operand* arg, const char* footer) {
  std::fprintf(f, "usage: %s", prog);
  for (const flag& x : flags) {
    if (x.value_name.empty()) {
      std::fprintf(f, " [%s]", x.name.c_str());
    } else {
      std::fprintf(f, " [%s %s]", x.name.c_str(), x.value_name.c_str());
    }
  }
  if (arg != nullptr) std::fprintf(f, " %s", arg->name.c_str());
  std::fprintf(f, "\n");
  if (usage != nullptr && usage[0] != '\0') std::fprintf(f, "%s\n", usage);
  auto left = [](const flag& x) { return x.value_name.empty() ? x.name : x.name + " " + x.value_name; };
  int width = 16;  // the left column fits the longest flag
  for (const flag& x : flags) width = std::max(width, static_cast<int>(left(x).size()));
  if (arg != nullptr) std::fprintf(f, "  %-*s %s\n", width, arg->name.c_str(), arg->help.c_str());
  for (const flag& x : flags) std::fprintf(f, "  %-*s %s\n", width, left(x).c_str(), x.help.c_str());
  std::fprintf(f, "  %-*s this text\n", width, "--help");
  if (footer != nullptr && footer[0] != '\0') std::fprintf(f, "%s\n", footer);
}

}  // namespace

int parse_command_line(int argc, char** argv, const char* prog, const char* usage, std::vector<flag> flags,
                       const operand* arg, const char* footer) {
  bool have_arg = false;
  for (int i = 1; i < argc; ++i) {
    std::string_view a = argv[i];
    if (a == "--help" || a == "-h") {
      print_usage(stdout, prog, usage, flags, arg, footer);
      return 0;
    }
    if (a.size() > 1 && a[0] == '-') {
      flag* x = nullptr;
      for (flag& f : flags) {
        if (a == f.name) x = &f;
      }
      if (x == nullptr) {
        std::fprintf(stderr, "%s: unknown option '%s' (try --help)\n", prog, argv[i]);
        return 2;
      }
      const char* s = nullptr;
      if (!x->value_name.empty()) s = i + 1 < argc ? argv[++i] : nullptr;
      if ((!x->value_name.empty() && s == nullptr) || !x->set(s)) {
        std::fprintf(stderr, "%s: %s wants %s\n", prog, x->name.c_str(), x->what.c_str());
        return 2;
      }
      continue;
    }
    if (arg == nullptr || have_arg) {
      std::fprintf(stderr, "%s: unexpected argument '%s' (try --help)\n", prog, argv[i]);
      return 2;
    }
    if (!arg->set(argv[i])) {
      std::fprintf(stderr, "%s: %s wants %s, not '%s'\n", prog, arg->name.c_str(), arg->what.c_str(), argv[i]);
      return 2;
    }
    have_arg = true;
  }
  if (arg != nullptr && !have_arg) {
    std::fprintf(stderr, "%s: missing %s (try --help)\n", prog, arg->name.c_str());
    return 2;
  }
  return -1;
}

int parse_args(int argc, char** argv, const char* prog, const char* usage, common_options& c,
               std::vector<flag> extra) {
  std::vector<flag> flags = {
      {.name = "--port",
       .value_name = "N",
       .help = "TCP port (default " + std::to_string(c.port) + "; 0 picks a free one and prints it)",
       .what = "a port number 0..65535",
       .set = [&c](const char* s) {
         unsigned long v = 0;
         if (!parse_uint(s, 65535, v)) return false;
         c.port = static_cast<std::uint16_t>(v);
         return true;
       }},
      {.name = "--bind",
       .value_name = "ADDR",
       .help = "address to listen on (default " + c.bind + ")",
       .what = "an address",
       .set = [&c](const char* s) {
         c.bind = s;
         return true;
       }},
      {.name = "--workers",
       .value_name = "N",
       .help = "runtime worker threads (default 0 = one per core)",
       .what = "a thread count 0..1024 (0 = one per core)",
       .set = [&c](const char* s) {
         unsigned long v = 0;
         if (!parse_uint(s, 1024, v)) return false;
         c.workers = static_cast<unsigned>(v);
         return true;
       }}};
  for (flag& x : extra) flags.push_back(std::move(x));
  return parse_command_line(argc, argv, prog, usage, std::move(flags), nullptr,
                            "SIGINT or SIGTERM stops it cleanly and prints a summary.");
}

flag millis_flag(std::string name, std::string help, std::chrono::milliseconds& out) {
  return {.name = std::move(name),
          .value_name = "N",
          .help = std::move(help),
          .what = "a count of milliseconds 0..86400000",
          .set = [&out](const char* s) {
            unsigned long v = 0;
            if (!parse_uint(s, 86400000, v)) return false;
            out = std::chrono::milliseconds(v);
            return true;
          }};
}

bool listen(const char* prog, const common_options& c, weft::net::tcp_listener& out) {
  try {
    out = weft::net::tcp_listener::bind(weft::net::endpoint::ip(c.bind, c.port));
  } catch (const std::exception& e) {
    std::fprintf(stderr, "%s: %s\n", prog, e.what());
    return false;
  }
  std::printf("listening on %s\n", out.local_endpoint().to_string().c_str());
  std::fflush(stdout);
  return true;
}

stop_signals::stop_signals(std::stop_source stop) : stop_(std::move(stop)) {
  sigemptyset(&set_);
  sigaddset(&set_, SIGINT);
  sigaddset(&set_, SIGTERM);
  sigaddset(&set_, SIGUSR2);  // private: the destructor's wake-up
  // Blocked before any thread starts, so every thread inherits the mask and only the
  // watcher's sigwait receives them.
  pthread_sigmask(SIG_BLOCK, &set_, nullptr);
  watcher_ = std::thread([this] {
    int sig = 0;
    sigwait(&set_, &sig);
    if (sig == SIGUSR2) return;
    // Ordering: release pairs with the acquire in received().
    received_.store(sig, std::memory_order_release);
    stop_.request_stop();
  });
}

stop_signals::~stop_signals() {
  // A signal that already came has ended the watcher; this one then stays pending in a
  // thread-directed queue of a thread about to exit.
  if (received() == 0) pthread_kill(watcher_.native_handle(), SIGUSR2);
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

}  // namespace sample
