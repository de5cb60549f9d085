// The command line of every sample: one parser for servers (--help, --port, --bind and, for
// programs on a weft runtime, --workers, plus each sample's own flags) and for clients (their
// flags and one operand such as HOST:PORT), with helpers for the usual kinds of flag.
// Standard C++ only, so that a sample written without weft (port_from_threads/threads_server)
// parses its flags the same way.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <string>
#include <string_view>
#include <vector>

namespace sample {

/// The options every server sample takes.
struct common_options {
  std::uint16_t port = 0;
  std::string bind = "127.0.0.1";
  unsigned workers = 0;  ///< 0 = one per core
  bool workers_flag = true;  ///< false: a program without a runtime; no --workers
};

/// A sample-specific command-line flag. `set` receives the value (nullptr for a switch) and
/// returns false to reject it; the parser then prints "<prog>: <name> wants <what>".
struct flag {
  std::string name;                      ///< "--root"
  std::string value_name;                ///< "DIR"; empty for a switch without a value
  std::string help;                      ///< one line, printed by --help
  std::string what;                      ///< for the error message: "a directory"
  std::function<bool(const char*)> set;  ///< stores the parsed value
};

/// A positional argument, such as a client's target "HOST:PORT". `set` returns false to reject
/// it; the parser then prints "<prog>: <name> wants <what>, not '<value>'".
struct operand {
  std::string name;                      ///< "HOST:PORT"
  std::string help;                      ///< one line, printed by --help
  std::string what;                      ///< for the error message: "a host and a port"
  std::function<bool(const char*)> set;  ///< stores the parsed value
};

/// Parses an unsigned decimal in [0, max] (no sign, no trailing characters).
bool parse_uint(const char* s, unsigned long max, unsigned long& out);

/// Parses a duration in seconds in [0, max_seconds] ("10", "0.5"; no sign, no trailing characters).
bool parse_seconds(const char* s, double max_seconds, double& out);

/// Splits "HOST:PORT" ("127.0.0.1:7007", "localhost:7007", "[::1]:7007"; brackets dropped)
/// into its parts; false unless the host is non-empty and the port is in 1..65535.
bool split_host_port(std::string_view text, std::string& host, std::string& port);

/// The general parser, for programs that are not servers (a client): `flags`, and when `arg`
/// is given exactly one operand. --help prints the usage line, `usage`, the flags and `footer`
/// (each may be empty) to stdout. Returns -1 to run, 0 after --help (the caller exits 0), or 2
/// after a usage error (printed to stderr naming the flag).
int parse_command_line(int argc, char** argv, const char* prog, const char* usage, std::vector<flag> flags,
                       const operand* arg = nullptr, const char* footer = nullptr);

/// parse_command_line for a server: --port, --bind and (unless `common.workers_flag` is false)
/// --workers into `common`, then the sample's `extra` flags; no operand. `usage` is the text
/// after the usage line (what the program does; may be empty). Returns as parse_command_line.
int parse_args(int argc, char** argv, const char* prog, const char* usage, common_options& common,
               std::vector<flag> extra = {});

/// A flag taking an unsigned decimal in [min, max] ("--queue N"); `store` receives the value.
/// A value out of range is a usage error naming the range ("--queue wants a number 1..1000").
flag count_flag(std::string name, std::string help, unsigned long min, unsigned long max,
                std::function<void(unsigned long)> store);

/// The longest a millisecond flag takes by default: a day.
inline constexpr unsigned long max_millis = 86400000;

/// A "--name N" flag that stores a count of milliseconds in [min, max] in `out` ("--idle-ms
/// wants a count of milliseconds 0..86400000").
flag millis_flag(std::string name, std::string help, std::chrono::milliseconds& out, unsigned long min = 0,
                 unsigned long max = max_millis);

/// The "--grace-ms N" flag of every server, one definition so that all accept the same range
/// (0..max_millis): on SIGINT/SIGTERM, how long `what` may take before it is cut off. The help
/// line reads "on SIGINT/SIGTERM, how long <what> (default <out>)", `out` holding the default.
flag grace_flag(const std::string& what, std::chrono::milliseconds& out);

}  // namespace sample
