// weft::fiber_local<T>: the fiber-aware replacement for `thread_local T x;`. Each fiber (and each
// plain thread) sees its own T, default-constructed on first access and destroyed when the fiber
// ends (or the thread exits). A fiber may resume on another worker after any suspension point,
// so thread_local values (and errno, pthread_self()) must not be carried across one: see
// docs/porting.md.
#pragma once

#include <weft/detail/cxx20.hpp>

#include <cstddef>
#include <cstdint>
#include <new>

namespace weft {

namespace detail {
/// A fiber_local's identity: `index` into each fiber's slot table, reused after the fiber_local
/// is destroyed; `gen` unique per fiber_local, so a reused index never finds the value a
/// destroyed fiber_local left in a fiber that is still running.
struct fls_key {
  std::size_t index;
  std::uint64_t gen;
};
fls_key fls_new_key() noexcept;
void fls_free_key(fls_key key) noexcept;
void* fls_get(fls_key key) noexcept;
void fls_set(fls_key key, void* value, void (*destroy)(void*));
}  // namespace detail

template <class T>
class fiber_local {
 public:
  fiber_local() noexcept : key_(detail::fls_new_key()) {}
  /// Gives the key back for reuse. Values it created stay with their fibers (and threads) and
  /// are destroyed when those end, or earlier when a later fiber_local with the same index is
  /// first used on them, so the number of slots per fiber is bounded by the fiber_locals alive
  /// at once, not by how many were ever created.
  ~fiber_local() { detail::fls_free_key(key_); }
  fiber_local(const fiber_local&) = delete;
  fiber_local& operator=(const fiber_local&) = delete;

  /// The calling fiber's (or thread's) value, created on first use. Call it again after a
  /// suspension point rather than keeping the reference across one only if the fiber_local
  /// object itself may be destroyed meanwhile; the value itself does not move.
  T& get() {
    void* p = detail::fls_get(key_);
    if (p == nullptr) {
      T* v = new T();
      detail::fls_set(key_, v, [](void* q) { delete static_cast<T*>(q); });
      p = v;
    }
    return *static_cast<T*>(p);
  }
  T& operator*() { return get(); }
  T* operator->() { return &get(); }

 private:
  detail::fls_key key_;
};

}  // namespace weft
