// What epoll_echo_server needs beside its epoll loop: command-line flags ("--name value" or
// "--name=value"), error exits that name what failed, and the stop-signal mask. Header-only and
// free of weft, so the baseline shares no code with the runtime it is compared with.
// Invariant: every failure message starts with the program name and names the call or flag.
#pragma once

#include <signal.h>
#include <unistd.h>

#include <cerrno>
#include <charconv>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <string_view>
#include <system_error>

namespace echo_bench {

/// Prints "PROG: WHAT" to stderr and exits with status 2 (a usage or setup error).
[[noreturn]] inline void fail(std::string_view prog, std::string_view what) {
  std::fprintf(stderr, "%.*s: %.*s\n", int(prog.size()), prog.data(), int(what.size()), what.data());
  std::exit(2);
}

/// As fail, appending strerror(err): "PROG: WHAT: Address already in use".
[[noreturn]] inline void fail_errno(std::string_view prog, std::string_view what, int err) {
  fail(prog, std::string(what) + ": " + std::system_category().message(err));
}

/// Walks argv. `next(name)` matches the flag `name` at the current position and yields its value
/// ("--port 80" or "--port=80"); a flag without a value, or an unknown flag, ends the program
/// with the usage text.
class args {
 public:
  args(std::string_view prog, std::string_view usage, int argc, char** argv)
      : prog_(prog), usage_(usage), argc_(argc), argv_(argv) {}

  /// Moves to the next argument; false at the end.
  bool advance() {
    ++i_;
    if (i_ >= argc_) return false;
    cur_ = argv_[i_];
    if (cur_ == "-h" || cur_ == "--help") {
      std::printf("%.*s", int(usage_.size()), usage_.data());
      std::exit(0);
    }
    return true;
  }
  /// True if the current argument is the valueless flag `name`.
  bool is(std::string_view name) const { return cur_ == name; }
  /// If the current argument is `name` (with a value), stores the value in `out`.
  bool value(std::string_view name, std::string_view& out) {
    if (cur_.size() > name.size() && cur_.substr(0, name.size()) == name && cur_[name.size()] == '=') {
      out = cur_.substr(name.size() + 1);
      return true;
    }
    if (cur_ != name) return false;
    if (i_ + 1 >= argc_) bad(std::string(name) + " needs a value");
    out = argv_[++i_];
    return true;
  }
  /// An unsigned integer flag in [lo, hi].
  bool value(std::string_view name, unsigned long long& out, unsigned long long lo, unsigned long long hi) {
    std::string_view text;
    if (!value(name, text)) return false;
    unsigned long long v = 0;
    auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), v);
    if (ec != std::errc() || end != text.data() + text.size() || v < lo || v > hi)
      bad(std::string(name) + " wants an integer in [" + std::to_string(lo) + ", " + std::to_string(hi) +
          "], not \"" + std::string(text) + "\"");
    out = v;
    return true;
  }
  /// A non-negative number of seconds (fractions allowed).
  bool seconds(std::string_view name, double& out) {
    std::string_view text;
    if (!value(name, text)) return false;
    std::string s(text);
    char* end = nullptr;
    double v = std::strtod(s.c_str(), &end);
    if (s.empty() || end != s.c_str() + s.size() || !(v >= 0) || v > 1e6)
      bad(std::string(name) + " wants a number of seconds, not \"" + s + "\"");
    out = v;
    return true;
  }
  /// Ends the program: the current argument is not a known flag.
  [[noreturn]] void unknown() const { bad("unknown argument \"" + std::string(cur_) + "\""); }
  [[noreturn]] void bad(const std::string& what) const {
    std::fprintf(stderr, "%.*s: %s\n%.*s", int(prog_.size()), prog_.data(), what.c_str(), int(usage_.size()),
                 usage_.data());
    std::exit(2);
  }

 private:
  std::string_view prog_, usage_;
  int argc_;
  char** argv_;
  int i_ = 0;
  std::string_view cur_;
};

/// Blocks SIGINT and SIGTERM in the calling thread (and so in every thread it starts later) and
/// returns the set, for sigwait: the servers take the stop signal on one thread, synchronously.
inline sigset_t block_stop_signals(std::string_view prog) {
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGINT);
  sigaddset(&set, SIGTERM);
  if (int err = pthread_sigmask(SIG_BLOCK, &set, nullptr); err != 0) fail_errno(prog, "pthread_sigmask", err);
  return set;
}

/// Waits for SIGINT or SIGTERM (blocked by block_stop_signals) and returns its number.
inline int wait_stop_signal(std::string_view prog, const sigset_t& set) {
  int sig = 0;
  if (int err = sigwait(&set, &sig); err != 0) fail_errno(prog, "sigwait", err);
  return sig;
}

}  // namespace echo_bench
