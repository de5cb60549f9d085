// Mapping fiber stacks from the kernel, with a guard region below each one. Platform code lives
// in linux/stack_mmap.cpp behind this interface.
#pragma once

#include <cstddef>
#include <string>

namespace weft::detail {

enum class guard_kind : unsigned char { none, madvise_guard, mprotect };

/// Bytes of guard below each stack (at least a page). One page is not enough: a function whose
/// frame is larger than the guard (a `char buf[16384]` of socket code, recursion the compiler
/// inlined into one big frame) moves the stack pointer past it without touching it, and writes
/// into the stack below, silently ("stack clash"; GCC probes large frames only with
/// -fstack-clash-protection). 64 KiB catches frames up to that size. It costs address space:
/// MADV_GUARD_INSTALL and PROT_NONE commit no memory, and a PROT_NONE range is one mapping
/// whatever its length; but a `ulimit -v` counts it, and so does strict overcommit
/// (vm.overcommit_memory=2), which charges the whole mapping.
inline constexpr std::size_t stack_guard_bytes = 64 * 1024;

struct mapped_stack {
  void* base = nullptr;      // lowest address of the mapping (the guard region, if any)
  std::size_t total = 0;     // bytes mapped, guard included
  std::size_t guard = 0;     // bytes of guard at `base`
  guard_kind kind = guard_kind::none;
};

/// Maps `count` adjacent stacks of `usable` bytes each (rounded up to pages), each with a guard
/// region (stack_guard_bytes) below it when `guarded`, in one mapping. Returns the whole mapping; stack i starts at
/// base + i * (total / count). `force_mprotect` skips MADV_GUARD_INSTALL (tests). Throws
/// std::system_error naming the limit and the remedies.
mapped_stack map_stacks(std::size_t count, std::size_t usable, bool guarded, bool force_mprotect);
/// Returns the whole mapping to the kernel.
void unmap_stack(const mapped_stack& s) noexcept;
/// Drops the resident pages of [lo, hi) (the memory stays mapped and reads as zeros).
void release_pages(void* lo, void* hi) noexcept;
/// True if MADV_GUARD_INSTALL works on this kernel.
bool kernel_has_madvise_guard() noexcept;
/// Number of memory mappings of this process and the vm.max_map_count limit.
std::size_t process_mapping_count() noexcept;
std::size_t max_map_count() noexcept;
std::size_t page_size() noexcept;

}  // namespace weft::detail
