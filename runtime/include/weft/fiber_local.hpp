// weft::fiber_local<T>: the fiber-aware replacement for `thread_local T x;`. Each fiber (and each
// plain thread) sees its own T, default-constructed on first access and destroyed when the fiber
// ends (or the thread exits). A fiber may resume on another worker after any suspension point,
// so thread_local values (and errno, pthread_self()) must not be carried across one: see
// docs/porting.md.
#pragma once

#include <cstddef>
#include <new>

namespace weft {

namespace detail {
std::size_t fls_new_key() noexcept;
void* fls_get(std::size_t key) noexcept;
void fls_set(std::size_t key, void* value, void (*destroy)(void*));
}  // namespace detail

template <class T>
class fiber_local {
 public:
  fiber_local() noexcept : key_(detail::fls_new_key()) {}
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
  std::size_t key_;
};

}  // namespace weft
