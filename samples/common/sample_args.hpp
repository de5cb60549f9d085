// The command line every sample takes: --help, --port, --bind and (for programs on a weft
// runtime) --workers, plus each sample's own flags. Standard C++ only, so that a sample written
// without weft (port_from_threads/threads_server) parses its flags the same way.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
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
/// returns false to reject it; `parse_args` then prints "<prog>: <name> wants <what>".
struct flag {
  std::string name;                      ///< "--root"
  std::string value_name;                ///< "DIR"; empty for a switch without a value
  std::string help;                      ///< one line, printed by --help
  std::string what;                      ///< for the error message: "a directory"
  std::function<bool(const char*)> set;  ///< stores the parsed value
};

/// Parses an unsigned decimal in [0, max] (no sign, no trailing characters).
bool parse_uint(const char* s, unsigned long max, unsigned long& out);

/// Parses argv into `common` and the sample's `extra` flags. `usage` is the text after the
/// usage line (what the program does; may be empty). Returns -1 to run, 0 after --help (the
/// caller exits 0), or 2 after a usage error (printed to stderr naming the flag).
int parse_args(int argc, char** argv, const char* prog, const char* usage, common_options& common,
               std::vector<flag> extra = {});

}  // namespace sample
