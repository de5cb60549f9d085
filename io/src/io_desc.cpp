// Descriptor records (io_desc.hpp): the type-stable table, registration, the wait protocol of
// the reader and writer slots, close with the in-flight count, and deadlines.
#include "io_desc.hpp"

#include <fcntl.h>
#include <poll.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <mutex>
#include <optional>
#include <utility>
#include <vector>

#include "epoll_poller.hpp"

namespace weft::detail {

namespace {

std::int64_t steady_now_ns() noexcept {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

// The record table: chunks of 256 records allocated on demand and never freed, so a lookup by
// index from a stale event always reads a valid record (and then compares the generation).
class desc_table {
 public:
  static constexpr std::uint32_t chunk_size = 256;
  static constexpr std::uint32_t max_chunks = 1u << 16;  // 16M records

  io_desc* allocate() {
    std::lock_guard lk(mu_);
    if (free_.empty()) {
      std::uint32_t c = chunks_used_;
      if (c == max_chunks) return nullptr;
      auto* chunk = new io_desc[chunk_size];
      for (std::uint32_t i = 0; i < chunk_size; ++i) {
        chunk[i].index = c * chunk_size + i;
        free_.push_back(&chunk[chunk_size - 1 - i]);
      }
      // Ordering: release publishes the initialised chunk to lookup()'s acquire load.
      chunks_[c].store(chunk, std::memory_order_release);
      chunks_used_ = c + 1;
    }
    io_desc* d = free_.back();
    free_.pop_back();
    return d;
  }
  void recycle(io_desc* d) {
    std::lock_guard lk(mu_);
    free_.push_back(d);
  }
  io_desc* lookup(std::uint32_t index) noexcept {
    std::uint32_t c = index / chunk_size;
    if (c >= max_chunks) return nullptr;
    // Ordering: acquire pairs with the release store in allocate().
    io_desc* chunk = chunks_[c].load(std::memory_order_acquire);
    return chunk == nullptr ? nullptr : &chunk[index % chunk_size];
  }

 private:
  std::mutex mu_;
  std::vector<io_desc*> free_;  // guarded by mu_
  std::uint32_t chunks_used_ = 0;  // guarded by mu_
  std::array<std::atomic<io_desc*>, max_chunks> chunks_{};
};

desc_table& table() {
  static desc_table* t = new desc_table();  // never destroyed: pollers may run during exit
  return *t;
}

// Registers `d` with `p` if it is not registered yet. Called with d->lock held.
void register_locked(io_desc* d, epoll_poller* p) noexcept {
  if (d->poller != nullptr || p == nullptr || d->fd < 0) return;
  std::uint64_t data = (static_cast<std::uint64_t>(d->gen) << 32) | d->index;
  if (!p->add(d->fd, data)) d->poller = p;
  // On failure (a regular file: EPERM) the descriptor stays unregistered and waits use poll(2).
}

// Called after a record closes its number (io_on_fd_closed). Ordering: seq_cst store (once)
// and loads: a poller sets it before it registers and adds its descriptors, a closer reads it
// after its ::close, the same store-then-load pattern as poll_waiter_list::count (posix.cpp).
std::atomic<void (*)(int) noexcept> fd_closed_hook{nullptr};

// Closes the fd number if the descriptor is closing and nobody uses it; recycles the record if
// its owner let go too. Called with d->lock held; unlocks it.
void settle_and_unlock(io_desc* d) noexcept {
  int to_close = -1;
  bool recycle = false;
  if (d->closing && d->ops == 0 && !d->fd_released) {
    d->fd_released = true;
    if (!d->keep_fd) to_close = d->fd;
  }
  if (d->fd_released && !d->owned && d->ops == 0) {
    recycle = true;
    ++d->gen;  // events and tickets of this use now miss
    d->fd = -1;
    d->poller = nullptr;
    for (io_slot& sl : d->slot) {
      sl.waiter = wait_ticket{};
      sl.deadline.store(INT64_MAX, std::memory_order_relaxed);  // the event count runs on: only changes of it matter
    }
    d->wakeups[0] = d->wakeups[1] = 0;
    d->read_drained_at.store(0, std::memory_order_relaxed);
    d->read_hint_off.store(false, std::memory_order_relaxed);
  }
  d->lock.unlock();
  // Closing the number removes it from the epoll set (unless the open file lives on in a dup
  // or a child process; then stale events still carry the old generation and are dropped).
  if (to_close >= 0) {
    ::close(to_close);
    if (auto* hook = fd_closed_hook.load(std::memory_order_seq_cst)) hook(to_close);
  }
  if (recycle) table().recycle(d);
}

// A plain thread waiting on a descriptor no poller watches: poll(2) in slices short enough
// that close() and a new deadline are noticed promptly.
std::error_code wait_unregistered(io_desc* d, io_dir dir, const std::stop_token* st, std::uint32_t seen) {
  constexpr std::int64_t slice_ns = 10'000'000;
  for (;;) {
    d->lock.lock();
    bool closing = d->closing;
    int fd = d->fd;
    std::int64_t dl = d->slot[static_cast<int>(dir)].deadline.load(std::memory_order_relaxed);
    bool ready = d->slot[static_cast<int>(dir)].events.load(std::memory_order_relaxed) != seen;
    d->lock.unlock();
    if (closing) return std::make_error_code(std::errc::operation_canceled);
    if (ready) return {};
    if (st != nullptr && st->stop_requested()) return std::make_error_code(std::errc::operation_canceled);
    std::int64_t now = steady_now_ns();
    if (now >= dl) return std::make_error_code(std::errc::timed_out);
    std::int64_t wait = std::min(slice_ns, dl - now);
    pollfd p{fd, static_cast<short>(dir == io_dir::read ? POLLIN : POLLOUT), 0};
    int r = ::poll(&p, 1, static_cast<int>((wait + 999'999) / 1'000'000));
    if (r > 0) return {};
  }
}

}  // namespace

[[gnu::noinline]] int io_errno() noexcept {
  // Not inlined: glibc's __errno_location is const, so once inlined (LTO inlines across
  // files) a caller could reuse an address computed before a park, on another thread.
  int* p = &errno;
  // Launder the address so no caller can reuse one computed on another thread.
  asm volatile("" : "+r"(p));
  return *p;
}

void io_detach_poller(epoll_poller* p) noexcept {
  desc_table& t = table();
  for (std::uint32_t i = 0;; ++i) {
    io_desc* d = t.lookup(i);
    if (d == nullptr) break;
    wait_ticket w[2];
    d->lock.lock();
    if (d->poller == p) {
      d->poller = nullptr;
      w[0] = std::exchange(d->slot[0].waiter, wait_ticket{});
      w[1] = std::exchange(d->slot[1].waiter, wait_ticket{});
    }
    d->lock.unlock();
    // Plain threads parked on a slot retry, and wait with poll(2) from now on.
    w[0].wake();
    w[1].wake();
  }
}

io_desc* io_register(int fd, std::error_code& ec) noexcept {
  int flags = ::fcntl(fd, F_GETFL);
  if (flags < 0 || ((flags & O_NONBLOCK) == 0 && ::fcntl(fd, F_SETFL, flags | O_NONBLOCK) < 0)) {
    ec.assign(io_errno(), std::system_category());
    return nullptr;
  }
  io_desc* d = nullptr;
  try {
    d = table().allocate();
  } catch (const std::bad_alloc&) {
  }
  if (d == nullptr) {
    ec = std::make_error_code(std::errc::not_enough_memory);
    return nullptr;
  }
  epoll_poller* p = epoll_poller::current();
  d->lock.lock();
  d->fd = fd;
  d->ops = 0;
  d->closing = false;
  d->fd_released = false;
  d->keep_fd = false;
  d->owned = true;
  d->peer_len = 0;
  d->tcp = false;
  register_locked(d, p);
  d->lock.unlock();
  ec.clear();
  return d;
}

bool io_is_closing(io_desc* d) noexcept {
  std::lock_guard lk(d->lock);
  return d->closing;
}

void io_close(io_desc* d, bool close_fd, bool unwatch) noexcept {
  d->lock.lock();
  if (d->closing) {
    d->lock.unlock();
    return;
  }
  d->closing = true;
  d->keep_fd = !close_fd;
  // A number kept open that still names the record's open file leaves the epoll set now, not
  // when the record settles: by then the same file may be registered anew under the same
  // number (weft::posix re-registering a descriptor whose flags changed), whose item an
  // EPOLL_CTL_DEL would remove. Closing waiters need no more events: they are woken below.
  // A number that names another file now is left alone: its item, if any, is someone else's.
  if (!close_fd && unwatch && d->poller != nullptr) d->poller->remove(d->fd);
  wait_ticket r = std::exchange(d->slot[0].waiter, wait_ticket{});
  wait_ticket w = std::exchange(d->slot[1].waiter, wait_ticket{});
  settle_and_unlock(d);
  // Outside the lock: a woken fiber re-locks the record when it leaves io_wait. Waking a
  // ticket whose wait already ended is a no-op.
  r.wake(wake_reason::canceled);
  w.wake(wake_reason::canceled);
}

void io_on_fd_closed(void (*fn)(int fd) noexcept) noexcept { fd_closed_hook.store(fn, std::memory_order_seq_cst); }

void io_release(io_desc* d) noexcept {
  io_close(d);
  d->lock.lock();
  d->owned = false;
  settle_and_unlock(d);
}

void io_set_deadline(io_desc* d, io_dir dir, std::int64_t deadline) noexcept {
  d->lock.lock();
  io_slot& s = d->slot[static_cast<int>(dir)];
  s.deadline.store(deadline, std::memory_order_relaxed);  // Ordering: relaxed; see io_slot
  wait_ticket t = std::exchange(s.waiter, wait_ticket{});
  d->lock.unlock();
  // The waiter wakes "notified", retries its call and parks again against the new deadline.
  t.wake();
}

void io_set_deadline_both(io_desc* d, std::int64_t deadline) noexcept {
  io_set_deadline(d, io_dir::read, deadline);
  io_set_deadline(d, io_dir::write, deadline);
}

std::error_code io_wait(io_desc* d, io_dir dir, const std::stop_token* st, std::uint32_t seen) {
  io_slot& s = d->slot[static_cast<int>(dir)];
  d->lock.lock();
  if (d->poller == nullptr && current_fiber() != nullptr) {
    // First wait of a descriptor created on a plain thread: register it with this fiber's
    // runtime. Edge-triggered, so epoll reports the current state as a first event; the call
    // may have raced it, so retry once before parking.
    d->lock.unlock();
    epoll_poller* p = epoll_poller::current();
    d->lock.lock();
    register_locked(d, p);
    if (d->poller != nullptr) {
      d->lock.unlock();
      return {};
    }
  }
  if (d->poller == nullptr) {
    // Nobody polls this descriptor (a plain thread before any fiber touched it, or a file
    // epoll cannot watch): wait with poll(2) on this thread.
    d->lock.unlock();
    return wait_unregistered(d, dir, st, seen);
  }
  d->lock.unlock();

  wait_ticket t = prepare_wait(dir == io_dir::read ? "I/O read" : "I/O write");
  d->lock.lock();
  if (d->closing) {
    d->lock.unlock();
    return std::make_error_code(std::errc::operation_canceled);
  }
  // Ordering: relaxed under the lock that the poller's increment was made under.
  if (s.events.load(std::memory_order_relaxed) != seen) {
    d->lock.unlock();
    return {};  // an event came after the syscall began: retry it
  }
  std::int64_t dl = s.deadline.load(std::memory_order_relaxed);
  if (dl != INT64_MAX && steady_now_ns() >= dl) {
    d->lock.unlock();
    return std::make_error_code(std::errc::timed_out);
  }
  if (st != nullptr && st->stop_requested()) {
    d->lock.unlock();
    return std::make_error_code(std::errc::operation_canceled);
  }
  s.waiter = t;
  // A stop request wakes the ticket only once park() has published it (stop_guard): a wake
  // before the park would queue this fiber while it still runs. One requested from here on,
  // even inline by the registration itself, is acted on by the publish step.
  stop_guard on_stop(st, t);

  // Takes the ticket back out of the slot however the park ends (a timeout, a stop, or the
  // forced unwind of runtime shutdown); a notify cleared it already. A notified waiter retries
  // its call, reading the event count first, so the event that woke it causes no extra retry.
  struct unslot {
    io_desc* d;
    io_slot& s;
    wait_ticket t;
    ~unslot() {
      std::lock_guard lk(d->lock);
      if (s.waiter == t) s.waiter = wait_ticket{};
    }
  } guard{d, s, t};
  struct publish_arg {
    io_desc* d;
    stop_guard* on_stop;
  } pa{d, &on_stop};
  wake_reason r = detail::park_until(
      t, detail::deadline_t::from_ns(dl),
      [](void* p) {
        auto* a = static_cast<publish_arg*>(p);
        io_desc* desc = a->d;  // read before the ticket can be woken
        // Still under the descriptor's lock, so a woken fiber cannot leave io_wait (its unslot
        // takes that lock) before the lock is released below: `a` stays valid.
        a->on_stop->published();
        desc->lock.unlock();
      },
      &pa);
  switch (r) {
    case wake_reason::notified:
      return {};
    case wake_reason::timed_out:
      return std::make_error_code(std::errc::timed_out);
    case wake_reason::canceled:
      break;
  }
  return std::make_error_code(std::errc::operation_canceled);
}

void io_ready(std::uint32_t index, std::uint32_t gen, bool read, bool write, bool hint_off) noexcept {
  io_desc* d = table().lookup(index);
  if (d == nullptr) return;
  wait_ticket w[2];
  d->lock.lock();
  if (d->gen != gen || d->fd_released) {
    d->lock.unlock();  // an event for an earlier use of this record: drop it
    return;
  }
  // Ordering: relaxed, published by the release store of the read count below.
  if (hint_off) d->read_hint_off.store(true, std::memory_order_relaxed);
  if (read) {
    // Ordering: release, paired with io_events' acquire load before the next syscall.
    d->slot[0].events.store(d->slot[0].events.load(std::memory_order_relaxed) + 1, std::memory_order_release);
    w[0] = std::exchange(d->slot[0].waiter, wait_ticket{});
    if (w[0]) ++d->wakeups[0];
  }
  if (write) {
    d->slot[1].events.store(d->slot[1].events.load(std::memory_order_relaxed) + 1, std::memory_order_release);
    w[1] = std::exchange(d->slot[1].waiter, wait_ticket{});
    if (w[1]) ++d->wakeups[1];
  }
  d->lock.unlock();
  // The woken operation retries its call. A wake that loses to a timeout still leaves the
  // count bumped, and every operation tries its syscall before waiting anyway.
  w[0].wake();
  w[1].wake();
}

std::uint32_t io_wakeups(io_desc* d, io_dir dir) noexcept {
  std::lock_guard lk(d->lock);
  return d->wakeups[static_cast<int>(dir)];
}

io_op_guard::io_op_guard(io_desc* d) noexcept : d_(d) {
  if (d == nullptr) return;
  std::lock_guard lk(d->lock);
  if (d->closing) return;
  ++d->ops;
  fd_ = d->fd;
  ok_ = true;
}

io_op_guard::~io_op_guard() {
  if (!ok_) return;
  d_->lock.lock();
  --d_->ops;
  settle_and_unlock(d_);
}

}  // namespace weft::detail
