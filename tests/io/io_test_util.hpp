// Helpers shared by the I/O stress tests: time, CPU and descriptor accounting of this process.
#pragma once

#include <dirent.h>
#include <sys/resource.h>

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <vector>

namespace io_test {

inline long micros(std::chrono::steady_clock::duration d) { return static_cast<long>(std::chrono::duration_cast<std::chrono::microseconds>(d).count()); }

// User + system CPU time of the whole process, in microseconds.
inline long process_cpu_us() {
  ::rusage ru{};
  ::getrusage(RUSAGE_SELF, &ru);
  return (ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) * 1'000'000L + ru.ru_utime.tv_usec + ru.ru_stime.tv_usec;
}

// The descriptor numbers open in this process.
inline std::vector<int> open_fds() {
  std::vector<int> fds;
  DIR* dir = ::opendir("/proc/self/fd");
  if (dir == nullptr) return fds;
  int own = ::dirfd(dir);
  while (const ::dirent* e = ::readdir(dir)) {
    if (e->d_name[0] != '.' && std::atoi(e->d_name) != own) fds.push_back(std::atoi(e->d_name));
  }
  ::closedir(dir);
  return fds;
}

// Descriptor numbers still free below `limit` (RLIMIT_NOFILE bounds numbers, not counts, and a
// new descriptor takes the lowest free number; inherited strays may sit far above the rest).
inline long free_fds_below(long limit) {
  std::vector<int> fds = open_fds();
  return limit - std::count_if(fds.begin(), fds.end(), [&](int fd) { return fd < limit; });
}

}  // namespace io_test
