// proc_stats: what echo_client reads about the server it measures (--server-pid): resident
// memory and CPU time, from /proc. Plain Linux, no weft.
#pragma once

#include <unistd.h>

#include <cstdlib>
#include <fstream>
#include <string>

namespace echo_sample {

/// VmRSS of process `pid` in KiB (from /proc/PID/status), or -1 if it cannot be read.
inline long read_rss_kib(long pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/status");
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind("VmRSS:", 0) == 0) return std::strtol(line.c_str() + 6, nullptr, 10);
  }
  return -1;
}

/// User + system CPU seconds of process `pid` (from /proc/PID/stat, clock-tick resolution), or
/// -1 if it cannot be read.
inline double read_cpu_seconds(long pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/stat");
  std::string stat;
  std::getline(in, stat);
  // The command name (field 2) may hold spaces: count fields after its closing parenthesis.
  auto close = stat.rfind(')');
  if (close == std::string::npos) return -1;
  const char* p = stat.c_str() + close + 1;
  unsigned long long utime = 0, stime = 0;
  // After ')' come field 3 (state) ... field 14 utime, field 15 stime.
  for (int field = 3; field <= 15; ++field) {
    while (*p == ' ') ++p;
    if (*p == '\0') return -1;
    if (field == 14) utime = std::strtoull(p, nullptr, 10);
    if (field == 15) stime = std::strtoull(p, nullptr, 10);
    while (*p != ' ' && *p != '\0') ++p;
  }
  long hz = sysconf(_SC_CLK_TCK);
  return hz > 0 ? double(utime + stime) / double(hz) : -1;
}

}  // namespace echo_sample
