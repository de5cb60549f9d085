// Mapping fiber stacks from the kernel, with a guard page below each one. Platform code lives in
// linux/stack_mmap.cpp behind this interface.
#pragma once

#include <cstddef>
#include <string>

namespace weft::detail {

enum class guard_kind : unsigned char { none, madvise_guard, mprotect };

struct mapped_stack {
  void* base = nullptr;      // lowest address of the mapping (the guard page, if any)
  std::size_t total = 0;     // bytes mapped, guard included
  std::size_t guard = 0;     // bytes of guard at `base`
  guard_kind kind = guard_kind::none;
};

/// Maps `count` adjacent stacks of `usable` bytes each (rounded up to pages), each with a guard
/// page below it when `guarded`, in one mapping. Returns the whole mapping; stack i starts at
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
