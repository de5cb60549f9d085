// Linux stack mapping: mmap(MAP_NORESERVE) plus a guard region (stack_guard_bytes) installed with
// madvise(MADV_GUARD_INSTALL) (Linux >= 6.13: no extra VMA) or, failing that, mprotect (one more
// VMA per stack, counted against vm.max_map_count). Every result is checked: a stack is never
// handed out silently unguarded.
#include "../stack_memory.hpp"

#include <sys/mman.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <fstream>
#include <mutex>
#include <string>
#include <system_error>

#ifndef MADV_GUARD_INSTALL
#define MADV_GUARD_INSTALL 102  // missing from Debian 12's kernel headers
#endif

#if defined(WEFT_ASAN)
#include <sanitizer/asan_interface.h>
#endif

namespace weft::detail {
namespace {

// -1 unknown, 0 no, 1 yes. Ordering: relaxed; a race only repeats the probe.
std::atomic<int> g_guard_probe{-1};

// process_mapping_count() reads all of /proc/self/maps: 20-30 ms at 65k mappings. A tree of
// fibers hitting the limit together failed thousands of spawns, each counting anew, and the
// process stalled for minutes before its error showed. The count is taken at most once a
// second, process-wide (callers meanwhile wait for the one counting, then share its figure);
// a message may be a second stale, which does not change its advice.
std::size_t recent_mapping_count() {
  static std::mutex mu;
  static std::chrono::steady_clock::time_point taken;  // guarded by mu
  static std::size_t count = 0;                        // guarded by mu
  std::lock_guard lk(mu);
  const auto now = std::chrono::steady_clock::now();
  if (count == 0 || now - taken >= std::chrono::seconds(1)) {
    count = process_mapping_count();
    taken = now;
  }
  return count;
}

[[noreturn]] void throw_mapping_error(const char* what, int err, std::size_t count, std::size_t bytes,
                                      bool mprotect_guard) {
  std::size_t maps = recent_mapping_count();
  std::size_t limit = max_map_count();
  // Near the map limit, only fewer mappings help; otherwise memory or address space ran out,
  // which smaller stacks do help with.
  const bool at_map_limit = limit != 0 && maps + 2 * count + 16 >= limit;
  const char* remedies =
      !at_map_limit ? "keep fewer fibers alive at once, or use a smaller runtime_options::stack_size (memory or "
                      "address space ran out: see ulimit -v and vm.overcommit_memory)"
      : mprotect_guard ? "raise the limit (sysctl -w vm.max_map_count=262144), keep fewer fibers alive at once, "
                         "or set runtime_options::guard_pages = false"
                       : "raise the limit (sysctl -w vm.max_map_count=262144), or keep fewer fibers alive at once";
  char msg[768];
  std::snprintf(msg, sizeof msg,
                "weft: cannot map fiber stacks: %s failed (%zu stack(s), %zu KiB). The process has "
                "%zu memory mappings and vm.max_map_count is %zu (each guarded stack costs %s). "
                "Remedies: %s",
                what, count, bytes / 1024, maps, limit,
                mprotect_guard ? "2 mappings with the mprotect guard" : "no extra mapping with MADV_GUARD_INSTALL",
                remedies);
  throw std::system_error(err, std::generic_category(), msg);
}

}  // namespace

std::size_t page_size() noexcept {
  static const std::size_t ps = static_cast<std::size_t>(::sysconf(_SC_PAGESIZE));
  return ps;
}

bool kernel_has_madvise_guard() noexcept {
  int v = g_guard_probe.load(std::memory_order_relaxed);
  if (v >= 0) return v == 1;
  std::size_t ps = page_size();
  void* p = ::mmap(nullptr, 2 * ps, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
  if (p == MAP_FAILED) return false;
  v = ::madvise(p, ps, MADV_GUARD_INSTALL) == 0 ? 1 : 0;
  ::munmap(p, 2 * ps);
  g_guard_probe.store(v, std::memory_order_relaxed);
  return v == 1;
}

mapped_stack map_stacks(std::size_t count, std::size_t usable, bool guarded, bool force_mprotect) {
  const std::size_t ps = page_size();
  usable = (usable + ps - 1) / ps * ps;
  mapped_stack s;
  s.guard = guarded ? (stack_guard_bytes + ps - 1) / ps * ps : 0;
  const std::size_t stride = usable + s.guard;
  s.total = stride * count;
  void* p = ::mmap(nullptr, s.total, PROT_READ | PROT_WRITE,
                   MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE | MAP_STACK, -1, 0);
  bool use_madvise = !force_mprotect && kernel_has_madvise_guard();
  if (p == MAP_FAILED) throw_mapping_error("mmap", errno, count, s.total, guarded && !use_madvise);
  s.base = p;
  if (!guarded) return s;
  s.kind = use_madvise ? guard_kind::madvise_guard : guard_kind::mprotect;
  for (std::size_t i = 0; i < count; ++i) {
    char* guard = static_cast<char*>(p) + i * stride;
    if (use_madvise && ::madvise(guard, s.guard, MADV_GUARD_INSTALL) == 0) continue;
    if (::mprotect(guard, s.guard, PROT_NONE) != 0) {
      int err = errno;
      ::munmap(p, s.total);
      throw_mapping_error("mprotect of a guard region", err, count, s.total, true);
    }
    s.kind = guard_kind::mprotect;
  }
  return s;
}

void unmap_stack(const mapped_stack& s) noexcept {
  if (s.base == nullptr) return;
#if defined(WEFT_ASAN)
  // Leave no poisoned shadow behind for whatever is mapped here next (see stack_pool::acquire).
  ASAN_UNPOISON_MEMORY_REGION(s.base, s.total);
#endif
  ::munmap(s.base, s.total);
}

void release_pages(void* lo, void* hi) noexcept {
  if (hi > lo) ::madvise(lo, static_cast<char*>(hi) - static_cast<char*>(lo), MADV_DONTNEED);
}

std::size_t process_mapping_count() noexcept {
  std::ifstream maps("/proc/self/maps");
  std::size_t n = 0;
  std::string line;
  while (std::getline(maps, line)) ++n;
  return n;
}

std::size_t max_map_count() noexcept {
  std::ifstream f("/proc/sys/vm/max_map_count");
  std::size_t n = 0;
  f >> n;
  return n;
}

}  // namespace weft::detail
