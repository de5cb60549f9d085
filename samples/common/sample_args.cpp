// The samples' command line (sample_args.hpp).
#include "sample_args.hpp"

#include <arpa/inet.h>
#include <netinet/in.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>
#include <utility>

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

bool parse_seconds(const char* s, double max_seconds, double& out) {
  if (s == nullptr || !(s[0] >= '0' && s[0] <= '9')) return false;
  char* end = nullptr;
  double v = std::strtod(s, &end);
  if (*end != '\0' || !(v >= 0) || v > max_seconds) return false;
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
      // "--port 8080" and "--port=8080" (GNU style) both work.
      std::string_view name = a;
      const char* inline_value = nullptr;
      if (auto eq = a.find('='); a.starts_with("--") && eq != std::string_view::npos) {
        name = a.substr(0, eq);
        inline_value = argv[i] + eq + 1;
      }
      flag* x = nullptr;
      for (flag& f : flags) {
        if (name == f.name) x = &f;
      }
      if (x == nullptr) {
        std::fprintf(stderr, "%s: unknown option '%.*s' (try --help)\n", prog, static_cast<int>(name.size()),
                     name.data());
        return 2;
      }
      if (x->value_name.empty() && inline_value != nullptr) {
        std::fprintf(stderr, "%s: %s takes no value\n", prog, x->name.c_str());
        return 2;
      }
      const char* s = inline_value;
      if (!x->value_name.empty() && s == nullptr) s = i + 1 < argc ? argv[++i] : nullptr;
      if (!x->value_name.empty() && s == nullptr) {
        std::fprintf(stderr, "%s: %s wants %s\n", prog, x->name.c_str(), x->what.c_str());
        return 2;
      }
      if (!x->set(s)) {
        std::fprintf(stderr, "%s: %s wants %s, not '%s'\n", prog, x->name.c_str(), x->what.c_str(), s);
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
       .help = "address to listen on: an IPv4 or IPv6 address, or localhost (default " + c.bind + ")",
       .what = "an IP address (127.0.0.1, 0.0.0.0, ::1) or localhost",
       .set = [&c](const char* s) {
         // Checked here, so a bad one is a usage error (exit 2) like every other flag's.
         std::string addr = std::string_view(s) == "localhost" ? "127.0.0.1" : s;
         std::string v6 = addr.substr(0, addr.find('%'));  // an IPv6 zone (fe80::1%eth0) is the socket's business
         in6_addr buf{};
         if (::inet_pton(AF_INET, addr.c_str(), &buf) != 1 && ::inet_pton(AF_INET6, v6.c_str(), &buf) != 1) {
           return false;
         }
         c.bind = addr;
         return true;
       }}};
  if (c.workers_flag) {
    flags.push_back({.name = "--workers",
                     .value_name = "N",
                     .help = "runtime worker threads (default 0 = one per core)",
                     .what = "a thread count 0..1024 (0 = one per core)",
                     .set = [&c](const char* s) {
                       unsigned long v = 0;
                       if (!parse_uint(s, 1024, v)) return false;
                       c.workers = static_cast<unsigned>(v);
                       return true;
                     }});
  }
  for (flag& x : extra) flags.push_back(std::move(x));
  return parse_command_line(argc, argv, prog, usage, std::move(flags), nullptr,
                            "SIGINT or SIGTERM stops it cleanly and prints a summary.");
}

flag count_flag(std::string name, std::string help, unsigned long min, unsigned long max,
                std::function<void(unsigned long)> store) {
  std::string what = "a number " + std::to_string(min) + ".." + std::to_string(max);
  return {.name = std::move(name),
          .value_name = "N",
          .help = std::move(help),
          .what = std::move(what),
          .set = [=, store = std::move(store)](const char* s) {
            unsigned long v = 0;
            if (!parse_uint(s, max, v) || v < min) return false;
            store(v);
            return true;
          }};
}

flag millis_flag(std::string name, std::string help, std::chrono::milliseconds& out, unsigned long min,
                 unsigned long max) {
  flag f = count_flag(std::move(name), std::move(help), min, max,
                      [&out](unsigned long v) { out = std::chrono::milliseconds(v); });
  f.what = "a count of milliseconds " + std::to_string(min) + ".." + std::to_string(max);
  return f;
}

flag grace_flag(const std::string& what, std::chrono::milliseconds& out) {
  return millis_flag("--grace-ms",
                     "on SIGINT/SIGTERM, how long " + what + " (default " + std::to_string(out.count()) + ")", out);
}

}  // namespace sample
