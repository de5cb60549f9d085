// wait_in / wake_one / wake_all (see weft/detail/wait_list.hpp for the protocol).
#include <weft/detail/wait_list.hpp>

#include <exception>

namespace weft::detail {

namespace {
struct publish_arg {
  spinlock* lock;
  void (*also)(void*);
  void* arg;
};
}  // namespace

bool wait_in(spinlock& lock, wait_list& list, waiter& w, deadline_t deadline, void (*also)(void*), void* arg,
             wake_reason* reason) {
  publish_arg p{&lock, also, arg};
  struct unlink_on_unwind {
    spinlock& lock;
    wait_list& list;
    waiter& w;
    bool armed = true;  // cleared once park() returned; still set if it threw forced_unwind
    ~unlink_on_unwind() {
      // Unwound at shutdown while parked: the record lives on this dying stack, so it must
      // leave the queue (what it may have been granted is abandoned with the runtime).
      if (!armed) return;
      lock.lock();
      if (w.linked) list.remove(&w);
      lock.unlock();
    }
  } undo{lock, list, w};
  wake_reason r = park_until(w.ticket, deadline,
                       [](void* a) {
                         auto* pa = static_cast<publish_arg*>(a);
                         // First `also` (e.g. a condition variable's user lock: the waiter is
                         // queued already, so a notify after it cannot be missed), then the
                         // queue lock, which makes the waiter visible; after that nothing on
                         // the parked stack may be touched.
                         if (pa->also != nullptr) pa->also(pa->arg);
                         pa->lock->unlock();
                       },
                       &p);
  undo.armed = false;
  if (reason != nullptr) *reason = r;
  if (r == wake_reason::notified) return w.granted;  // the waker unlinked us before waking
  // Timed out or canceled: either still queued, or a waker popped us but lost the wake race
  // (it then took any grant back). Either way decide under the lock.
  lock.lock();
  if (w.linked) list.remove(&w);
  bool granted = w.granted;
  lock.unlock();
  return granted;
}

bool wake_one(wait_list& list, pending_wakes& wakes, bool grant, wake_reason reason) noexcept {
  while (waiter* w = list.pop_front()) {
    w->granted = grant;
    if (wakes.claim(w, reason)) return true;
    w->granted = false;  // it is leaving by timeout or cancellation
  }
  return false;
}

std::size_t wake_all(wait_list& list, pending_wakes& wakes, wake_reason reason) noexcept {
  std::size_t n = 0;
  while (waiter* w = list.pop_front()) n += wakes.claim(w, reason) ? 1 : 0;
  return n;
}

}  // namespace weft::detail
