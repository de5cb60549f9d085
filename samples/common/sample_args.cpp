// The samples' command line (sample_args.hpp).
#include "sample_args.hpp"

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

namespace {

void print_usage(std::FILE* f, const char* prog, const char* usage, const common_options& c,
                 const std::vector<flag>& extra) {
  std::fprintf(f, "usage: %s [--port N] [--bind ADDR]%s", prog, c.workers_flag ? " [--workers N]" : "");
  for (const flag& x : extra) {
    if (x.value_name.empty()) {
      std::fprintf(f, " [%s]", x.name.c_str());
    } else {
      std::fprintf(f, " [%s %s]", x.name.c_str(), x.value_name.c_str());
    }
  }
  std::fprintf(f, "\n");
  if (usage != nullptr && usage[0] != '\0') std::fprintf(f, "%s\n", usage);
  std::fprintf(f, "  %-16s TCP port (default %u; 0 picks a free one and prints it)\n", "--port N",
               static_cast<unsigned>(c.port));
  std::fprintf(f, "  %-16s address to listen on (default %s)\n", "--bind ADDR", c.bind.c_str());
  if (c.workers_flag) std::fprintf(f, "  %-16s runtime worker threads (default 0 = one per core)\n", "--workers N");
  for (const flag& x : extra) {
    std::string left = x.value_name.empty() ? x.name : x.name + " " + x.value_name;
    std::fprintf(f, "  %-16s %s\n", left.c_str(), x.help.c_str());
  }
  std::fprintf(f, "  %-16s this text\nSIGINT or SIGTERM stops it cleanly and prints a summary.\n",
               "--help");
}

}  // namespace

int parse_args(int argc, char** argv, const char* prog, const char* usage, common_options& c,
               std::vector<flag> extra) {
  for (int i = 1; i < argc; ++i) {
    std::string_view a = argv[i];
    if (a == "--help" || a == "-h") {
      print_usage(stdout, prog, usage, c, extra);
      return 0;
    }
    auto value = [&]() -> const char* { return i + 1 < argc ? argv[++i] : nullptr; };
    unsigned long v = 0;
    if (a == "--port") {
      if (!parse_uint(value(), 65535, v)) {
        std::fprintf(stderr, "%s: --port wants a port number 0..65535\n", prog);
        return 2;
      }
      c.port = static_cast<std::uint16_t>(v);
      continue;
    }
    if (a == "--workers" && c.workers_flag) {
      if (!parse_uint(value(), 1024, v)) {
        std::fprintf(stderr, "%s: --workers wants a thread count 0..1024 (0 = one per core)\n", prog);
        return 2;
      }
      c.workers = static_cast<unsigned>(v);
      continue;
    }
    if (a == "--bind") {
      const char* s = value();
      if (s == nullptr) {
        std::fprintf(stderr, "%s: --bind wants an address\n", prog);
        return 2;
      }
      c.bind = s;
      continue;
    }
    bool known = false;
    for (flag& x : extra) {
      if (a != x.name) continue;
      known = true;
      const char* s = x.value_name.empty() ? nullptr : value();
      if ((!x.value_name.empty() && s == nullptr) || !x.set(s)) {
        std::fprintf(stderr, "%s: %s wants %s\n", prog, x.name.c_str(), x.what.c_str());
        return 2;
      }
      break;
    }
    if (!known) {
      std::fprintf(stderr, "%s: unknown option '%s' (try --help)\n", prog, argv[i]);
      return 2;
    }
  }
  return -1;
}

}  // namespace sample
