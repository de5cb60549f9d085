// The per-descriptor state every weft::net socket and weft::posix descriptor shares (Go's
// pollDesc + fdMutex): one reader and one writer slot, sticky deadlines, and the count of
// operations in flight that keeps the descriptor number alive until the last of them leaves.
//
// Invariants:
// - A slot is {event count, parked waiter}. An operation reads the slot's event count, then
//   tries its syscall; only on EAGAIN does it lock the descriptor and either see a newer count
//   (an event came after the syscall began: retry at once) or park with its ticket in the slot.
//   The poller bumps the count and wakes the waiter under the same lock, so a readiness event
//   between EAGAIN and the park is never lost. An event that arrived before the syscall began
//   causes no retry: the syscall already saw what it announced (a plain "ready" flag cost a
//   second EAGAIN syscall whenever data arrived while the fiber was running).
// - The fd number is closed only when `closing` is set and `ops` is 0; the record returns to the
//   table (and its generation changes) only after that and after its owner let go, so an event
//   or a wake-up for an old generation never reaches a new user.
// - Records are type-stable (chunks never freed): the poller may look one up by index from an
//   event of a descriptor closed meanwhile and finds a different generation.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <mutex>
#include <stop_token>
#include <system_error>

#include <weft/detail/spinlock.hpp>
#include <weft/mutex.hpp>
#include <weft/park.hpp>

namespace weft::detail {

struct runtime_impl;
class epoll_poller;

enum class io_dir : std::uint8_t { read = 0, write = 1 };

struct io_slot {
  // Readiness events delivered for this direction. Written (release) by the poller under the
  // record's lock; read (acquire) without it before each syscall. Wraps harmlessly: only
  // equality with the value read before the syscall matters.
  std::atomic<std::uint32_t> events{0};
  wait_ticket waiter;                     // pending park, or empty
  // Sticky absolute deadline (steady ns; INT64_MAX: none). Written under the record's lock;
  // read under it by waits, and without it (relaxed) by io_deadline_passed before a syscall.
  std::atomic<std::int64_t> deadline{INT64_MAX};
};

struct io_desc {
  spinlock lock;
  // Queues the fibers (or threads) that wait in the same direction: a slot parks one waiter, so
  // a second reader (twenty fibers accepting on one listener, two fibers reading one socket)
  // waits here, not in the slot. Taken only after an EAGAIN, never on the fast path; each
  // readiness event then wakes one waiter (no herd).
  weft::mutex turn[2];
  // --- guarded by lock ---
  int fd = -1;
  std::uint32_t gen = 0;                  // bumped each time the record is reused
  std::uint32_t ops = 0;                  // operations in flight (io_op_guard)
  bool closing = false;                   // close() called: new operations fail, waiters woken
  bool fd_released = false;               // ::close(fd) done (or handed to someone else)
  bool owned = false;                     // a socket object (or the posix table) holds it
  bool keep_fd = false;                   // release without closing the number (posix forget)
  io_slot slot[2];
  std::uint32_t wakeups[2] = {0, 0};      // waiters woken by readiness events (tests, diagnostics)
  // --- a hint, any thread (relaxed atomics) ---
  // TCP stream reads (`tcp` below): 1 + the read event count seen before the last recv that
  // came back short (it emptied the receive queue), or 0. While the count still has that value
  // no data has come since — data arriving after that recv raises an edge the poller has yet to
  // count — so the next read waits for an event instead of spending a recv on EAGAIN (a
  // request/response connection then costs one recv per request, not two). Invariant: trusted
  // only while a short read means the queue was empty (`tcp`, !read_hint_off); otherwise the
  // bytes left behind raise no edge and the read would wait until its deadline. Written and
  // read by read_some; reset when the record is reused.
  std::atomic<std::uint64_t> read_drained_at{0};
  // Set (before the read event count moves) once an event said that a short read may have
  // left something queued that no further edge will announce: the peer shut down or the socket
  // failed (EPOLLRDHUP, EPOLLHUP, EPOLLERR: an end of stream or an error pending), or TCP urgent
  // data came (EPOLLPRI: recv stops at the urgent mark with the bytes after it queued). From
  // then on read_drained_at is not trusted. Sticky for the record's use; reset when it is
  // reused. Ordering: relaxed store before the count's release store; read after the count's
  // acquire load (io_do).
  std::atomic<bool> read_hint_off{false};
  // Registered with this poller (null: not yet). Registration happens when a fiber first
  // creates or waits on the descriptor; a plain thread waiting on an unregistered descriptor
  // uses poll(2) in short slices (so close and deadlines still end its wait).
  epoll_poller* poller = nullptr;
  // The TCP peer's address as connect or accept saw it (peer_len 0: unknown), so an error
  // message can name the connection after a reset, when getpeername fails with ENOTCONN.
  // Written by the socket's creator before the socket object reaches anyone else, then read
  // only on error paths (socket_util.hpp, describe_socket); peer_len is cleared when the
  // record is reused. 28 bytes: a sockaddr_in6 (Unix peers stay readable with getpeername).
  alignas(8) unsigned char peer_addr[28];
  std::uint8_t peer_len = 0;
  // A TCP socket: the only kind whose short read read_some takes as "the receive queue is
  // empty" (read_drained_at). TCP stops a read early only at the urgent mark, which raises
  // EPOLLPRI (read_hint_off). An AF_UNIX stream read also stops after a message that carried
  // SCM_RIGHTS, between senders when SO_PASSCRED is on, and at a MSG_OOB byte, with the rest
  // already queued and no event to come; other protocols are not known to be safe. Written by
  // the socket's creator (open_socket, accept, socket::adopt) before the socket reaches anyone
  // else, like peer_addr; cleared when the record is reused.
  bool tcp = false;
  // --- set when the record is created, then read-only ---
  std::uint32_t index = 0;                // position in the table (epoll data)
};

/// Makes `fd` non-blocking, allocates its record and, on a fiber, registers it (edge-triggered,
/// both directions) with the poller of the fiber's runtime. On failure the fd is left open and
/// `ec` says why (EPERM: a regular file, which epoll cannot watch).
io_desc* io_register(int fd, std::error_code& ec) noexcept;

/// Marks the descriptor closed: wakes both slots with `canceled` and closes the fd once no
/// operation is in flight. Idempotent; never blocks. `close_fd` false releases the record
/// without closing the number (someone else owns it); with `unwatch` the number, which still
/// names the record's open file, leaves the poller's set at once (it is about to be
/// registered anew).
void io_close(io_desc* d, bool close_fd = true, bool unwatch = false) noexcept;
/// Sets the function called with each fd number a record closes, right after its ::close
/// (weft::posix's poll uses it to wake fibers polling that number). Any thread; set once.
void io_on_fd_closed(void (*fn)(int fd) noexcept) noexcept;
/// Closes (if still open) and drops the owner's hold; the record is recycled once unused.
void io_release(io_desc* d) noexcept;
bool io_is_closing(io_desc* d) noexcept;

/// Sets the sticky deadline of one direction (or both) and wakes a parked waiter so it
/// re-evaluates against the new deadline. Any thread.
void io_set_deadline(io_desc* d, io_dir dir, std::int64_t deadline_ns) noexcept;
void io_set_deadline_both(io_desc* d, std::int64_t deadline_ns) noexcept;

/// The event count of `dir`, to read before a syscall whose EAGAIN leads to io_wait.
inline std::uint32_t io_events(io_desc* d, io_dir dir) noexcept {
  return d->slot[static_cast<int>(dir)].events.load(std::memory_order_acquire);
}

/// Waits (parks the fiber; blocks a plain thread) until `dir` may be ready, after the syscall
/// returned EAGAIN; `seen` is io_events() read before that syscall. Returns {} to retry the
/// syscall, or timed_out / operation_canceled.
std::error_code io_wait(io_desc* d, io_dir dir, const std::stop_token* st, std::uint32_t seen);

/// The poller `p` is going away with its runtime: records registered with it fall back to
/// poll(2) waits, and threads parked on them are woken to notice.
void io_detach_poller(epoll_poller* p) noexcept;

/// The poller's side: readiness for `dir` on the record at `index` if it still has
/// generation `gen`. Wakes the parked waiter or leaves `ready` for the next attempt.
/// `hint_off`: the event was a hang-up, an error or urgent data (io_desc::read_hint_off).
void io_ready(std::uint32_t index, std::uint32_t gen, bool read, bool write, bool hint_off = false) noexcept;

/// How many parked waiters readiness events have woken in `dir` since the record was created
/// (the accept-herd test's measure: at most one per event). Any thread.
std::uint32_t io_wakeups(io_desc* d, io_dir dir) noexcept;

/// errno, read through a call the compiler cannot treat as const: glibc declares
/// __errno_location const, so its address could be cached across a park after which the fiber
/// runs on another thread (design.md, "thread_local and migration").
int io_errno() noexcept;

/// Holds the descriptor open for one operation (the fdMutex part).
class io_op_guard {
 public:
  explicit io_op_guard(io_desc* d) noexcept;
  ~io_op_guard();
  io_op_guard(const io_op_guard&) = delete;
  io_op_guard& operator=(const io_op_guard&) = delete;
  /// False if the descriptor is closed (or null): the operation must fail with
  /// operation_canceled (bad_file_descriptor for a never-opened socket).
  explicit operator bool() const noexcept { return ok_; }
  int fd() const noexcept { return fd_; }

 private:
  io_desc* d_;
  int fd_ = -1;
  bool ok_ = false;
};

/// True once the sticky deadline of `dir` has passed. Any thread.
inline bool io_deadline_passed(io_desc* d, io_dir dir) noexcept {
  // Ordering: relaxed; a deadline moved concurrently is seen by this call or by the wait,
  // which reads it again under the lock.
  std::int64_t dl = d->slot[static_cast<int>(dir)].deadline.load(std::memory_order_relaxed);
  return dl != INT64_MAX &&
         std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::steady_clock::now().time_since_epoch())
                 .count() >= dl;
}

/// Runs `call(fd)` (a syscall returning -1 + errno on failure) until it succeeds, fails with
/// something other than EAGAIN/EINTR, or the wait fails. Returns the call's result, or -1
/// with `ec` set. errno is copied right after the call, before anything can switch fibers.
/// May throw detail::forced_unwind (runtime shutdown) from the wait, hence not noexcept.
/// `drained`: 1 + an event count at which `dir` was known empty (io_desc::read_drained_at), or
/// 0: while the count is unchanged, wait for an event before the first call. `seen_out`, if
/// given, receives the event count read before the call that succeeded.
template <class Call>
long io_do(io_desc* d, io_dir dir, const std::stop_token* st, std::error_code& ec, Call&& call,
           std::uint64_t drained = 0, std::uint32_t* seen_out = nullptr) {
  io_op_guard g(d);
  if (!g) {
    ec = std::make_error_code(d == nullptr ? std::errc::bad_file_descriptor : std::errc::operation_canceled);
    return -1;
  }
  std::unique_lock<weft::mutex> turn(d->turn[static_cast<int>(dir)], std::defer_lock);
  for (;;) {
    // A deadline that has passed fails the call before its syscall, even with data ready (as
    // Go's): "the next call fails at once until the deadline is moved" (docs/io.md). Checked
    // on every round, so a waiter woken because its deadline moved into the past fails too.
    if (io_deadline_passed(d, dir)) {
      ec = std::make_error_code(std::errc::timed_out);
      return -1;
    }
    std::uint32_t seen = io_events(d, dir);
    if (drained != 0) {
      // Ordering: the relaxed read_hint_off load follows io_events' acquire load of `seen`,
      // which pairs with io_ready's release store of the count made after it set the flag.
      const bool empty = static_cast<std::uint32_t>(drained - 1) == seen &&
                         !d->read_hint_off.load(std::memory_order_relaxed);
      drained = 0;
      if (empty) {  // nothing came since the queue was emptied: wait as after an EAGAIN
        if (!turn.owns_lock()) turn.lock();
        ec = io_wait(d, dir, st, seen);
        if (ec) return -1;
        continue;
      }
    }
    long r = call(g.fd());
    if (seen_out != nullptr) *seen_out = seen;
    if (r >= 0) {
      ec.clear();
      return r;
    }
    int err = io_errno();
    if (err == EINTR) continue;
    if (err != EAGAIN && err != EWOULDBLOCK) {
      ec.assign(err, std::system_category());
      return -1;
    }
    // Queue behind any other waiter in this direction. No second syscall after getting the
    // turn: io_wait retries at once if an event came since `seen` (one another waiter left
    // behind included), and parks otherwise.
    if (!turn.owns_lock()) turn.lock();
    ec = io_wait(d, dir, st, seen);
    if (ec) return -1;
  }
}

/// Steady-clock nanoseconds of a time_point (INT64_MAX for time_point::max()): deadline_t's
/// representation, which io_wait hands back to park_until.
inline std::int64_t deadline_ns(std::chrono::steady_clock::time_point t) noexcept { return deadline_t(t).ns(); }

}  // namespace weft::detail
