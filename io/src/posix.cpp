// weft::posix (posix.hpp): the process-wide table from descriptor number to registered record,
// and the POSIX-shaped calls on top of io_desc (poll in posix_poll.cpp). Invariant: a table entry is set only by a
// fiber's first call on a pollable descriptor and cleared only by weft::posix::close, and the
// number it names stays open while any call holds the record (io_op_guard), so a call never
// reaches a reused number through its own entry.
//
// errno discipline (design.md, "thread_local and migration"): a fiber may resume on another
// worker after any park, and the compilers cache errno's address within a function. So every
// errno read goes through last_errno() right after its syscall, results travel as
// {value, error} pairs, and errno is written once, by set_errno(), just before returning.
#include <weft/posix.hpp>

#include <fcntl.h>
#include <sys/epoll.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <climits>
#include <cstdint>
#include <cstdio>
#include <mutex>
#include <new>
#include <optional>
#include <system_error>
#include <utility>
#include <vector>

#include <weft/detail/core.hpp>
#include <weft/fiber.hpp>
#include <weft/mutex.hpp>

#include "io_desc.hpp"
#include "posix_support.hpp"

namespace weft::posix {

namespace {

using namespace impl;
using detail::io_desc;
using detail::io_dir;
using detail::io_op_guard;

// errno, io_result, stay_on_thread: posix_support.hpp.

int errno_of(const std::error_code& ec) noexcept {
  // io_desc reports syscall errors in system_category and its own outcomes (timed_out,
  // operation_canceled, bad_file_descriptor) as std::errc, whose values are errno values.
  if (ec.category() == std::system_category() || ec.category() == std::generic_category()) return ec.value();
  return EIO;
}


// ---- the descriptor table ----------------------------------------------------------------

// An entry's word: the record pointer with two flags in its low bits (records are 8-aligned),
// so one load gives a consistent snapshot.
constexpr std::uintptr_t user_nonblock_bit = 1;  // O_NONBLOCK was set before weft saw the fd
constexpr std::uintptr_t socket_bit = 2;         // S_ISSOCK: writes use send(MSG_NOSIGNAL)
constexpr std::uintptr_t private_bit = 4;        // the record holds a private description (reopen_private)
constexpr std::uintptr_t flag_bits = 7;
static_assert(alignof(io_desc) > flag_bits);
// The word of a number weft::posix::close released while calls on it were still in flight: the
// number stays open until the last leaves (io_release), and a registration of it meanwhile
// would read the O_NONBLOCK weft set as the user's and outlive the number. Calls fail with
// EBADF until the record closes the number (number_closed), or fstat shows it names another
// description already (closing_done).
constexpr std::uintptr_t closing_word = user_nonblock_bit;  // no record: never a registration's

struct fd_entry {
  std::atomic<std::uintptr_t> word{0};
  // io_desc has one waiter per direction (a second park would overwrite the first's ticket),
  // while POSIX lets any number of callers block on one descriptor (several fibers accept()
  // on one listener). Fibers that must park take this first, so they wait in line.
  weft::timed_mutex wait_mu[2];
  // A socket error that a blocking write consumed after it had moved some bytes (whole_op):
  // libc returns the count then and the error on the next call, so the next call does too.
  // Ordering: relaxed; it travels with the descriptor's calls, which the caller orders.
  std::atomic<int> deferred_error{0};
  // The open file description the registration is for (fstat's st_dev, st_ino), to tell it
  // from another one that got the number after a plain close(). Written before the word is
  // published. Ordering: relaxed; a torn pair during a re-registration only costs a retry.
  std::atomic<std::uint64_t> dev{0}, ino{0};
};

// `watched_socket`: a socket weft registered and waits for. Calls on it pass MSG_DONTWAIT, so
// they never block the worker even if the number now names another, blocking socket (closed
// with a plain close() and reused): the wait path notices that and registers the new one.
enum class fd_kind : std::uint8_t { unknown, socket, other, watched_socket };

struct fd_ref {
  fd_entry* entry = nullptr;
  io_desc* desc = nullptr;  // null: not registered, use libc
  bool user_nonblock = false;
  fd_kind kind = fd_kind::unknown;
  std::uintptr_t word = 0;  // the entry's word this was decoded from
  bool private_desc = false;  // the record's descriptor is weft's own (reopen_private), not `fd`
  bool closing = false;       // closing_word: being closed by weft::posix::close (EBADF)
};

// The kind a call on `r` is made with (see fd_kind).
fd_kind call_kind(const fd_ref& r) noexcept {
  return r.desc != nullptr && r.kind == fd_kind::socket ? fd_kind::watched_socket : r.kind;
}
// MSG_DONTWAIT for a watched socket, else 0.
int dontwait_flag(fd_kind k) noexcept { return k == fd_kind::watched_socket ? MSG_DONTWAIT : 0; }

// An io_op_guard on `r`'s record that holds only while the record is still the one `r`'s entry
// publishes. A weft::posix::close between the lookup and the guard may release the record,
// which is then recycled at once for another descriptor: a guard on it alone would run the
// call on that other descriptor (another connection's data). Once the guard holds, the record
// cannot be recycled, and the entry still naming it says it was not: close takes the entry's
// word before it releases the record.
// Ordering: the guard takes the record's lock, which a recycling (release, then register)
// also took after close's exchange of the word, so the acquire load below sees that exchange.
class entry_guard {
 public:
  explicit entry_guard(const fd_ref& r) noexcept
      : g_(r.desc), ok_(static_cast<bool>(g_) && r.entry->word.load(std::memory_order_acquire) == r.word) {}
  /// False if the record is closed or no longer `fd`'s: the call fails with ECANCELED.
  explicit operator bool() const noexcept { return ok_; }
  int fd() const noexcept { return g_.fd(); }

 private:
  io_op_guard g_;
  bool ok_;
};

// Chunks of entries indexed by descriptor number, allocated on demand and never freed, so a
// lookup is two acquire loads without a lock and a stale entry pointer is always valid memory.
// Numbers beyond the table (4M) are never registered: they get the libc calls.
class fd_table {
 public:
  static constexpr unsigned chunk_bits = 10;
  static constexpr unsigned chunk_size = 1u << chunk_bits;
  static constexpr unsigned max_chunks = 4096;

  fd_entry* find(int fd) noexcept {
    if (fd < 0) return nullptr;
    auto n = static_cast<unsigned>(fd);
    if ((n >> chunk_bits) >= max_chunks) return nullptr;
    // Ordering: acquire pairs with the release store in grow(): the chunk's entries are built.
    fd_entry* c = chunks_[n >> chunk_bits].load(std::memory_order_acquire);
    return c == nullptr ? nullptr : &c[n & (chunk_size - 1)];
  }

  // Called with mu held.
  fd_entry* grow(int fd) noexcept {
    if (fd < 0) return nullptr;
    auto n = static_cast<unsigned>(fd);
    if ((n >> chunk_bits) >= max_chunks) return nullptr;
    std::atomic<fd_entry*>& slot = chunks_[n >> chunk_bits];
    fd_entry* c = slot.load(std::memory_order_relaxed);  // only writers hold mu
    if (c == nullptr) {
      c = new (std::nothrow) fd_entry[chunk_size];
      if (c == nullptr) return nullptr;
      // Ordering: release publishes the constructed entries to find()'s acquire load.
      slot.store(c, std::memory_order_release);
    }
    return &c[n & (chunk_size - 1)];
  }

  // Serialises registrations (so one number gets one record) and the probe descriptor.
  std::mutex mu;
  int probe_epfd = -1;  // guarded by mu; a scratch epoll set to ask "can epoll watch this?"

 private:
  std::array<std::atomic<fd_entry*>, max_chunks> chunks_{};
};

fd_table& table() {
  static fd_table* t = new fd_table();  // never destroyed: calls may run during exit
  return *t;
}

fd_ref decode(fd_entry* e, std::uintptr_t w) noexcept {
  fd_ref r;
  r.entry = e;
  if (w == closing_word) {
    r.closing = true;
    r.word = w;
    return r;
  }
  r.desc = reinterpret_cast<io_desc*>(w & ~flag_bits);
  r.user_nonblock = (w & user_nonblock_bit) != 0;
  r.private_desc = (w & private_bit) != 0;
  r.kind = (w & socket_bit) != 0 ? fd_kind::socket : fd_kind::other;
  r.word = w;
  return r;
}

fd_ref lookup(int fd) noexcept {
  fd_entry* e = table().find(fd);
  if (e == nullptr) return {};
  // Ordering: acquire pairs with the release store in lookup_or_register(), so the flags and
  // the record's set-up are visible (the record's own fields are also under its lock).
  std::uintptr_t w = e->word.load(std::memory_order_acquire);
  if (w == 0) return {};
  return decode(e, w);
}

// Character devices may refuse epoll (EPERM: /dev/null); ask a scratch set before touching the
// descriptor's flags, so a refused one is never switched to non-blocking. Called with mu held.
bool epoll_accepts(fd_table& t, int fd) noexcept {
  if (t.probe_epfd < 0) t.probe_epfd = ::epoll_create1(EPOLL_CLOEXEC);
  if (t.probe_epfd < 0) return true;  // cannot ask; registration below checks again
  ::epoll_event ev{};
  if (::epoll_ctl(t.probe_epfd, EPOLL_CTL_ADD, fd, &ev) != 0) return last_errno() != EPERM;
  ::epoll_ctl(t.probe_epfd, EPOLL_CTL_DEL, fd, &ev);
  return true;
}

// A pipe, FIFO or terminal is usually shared: stdio in this process writes to the same
// stdout, a shell and the other programs of a pipeline hold the same open file description,
// and O_NONBLOCK is a flag of that description. Switching it made stdio's own writes fail with
// EAGAIN (output lost) and left the terminal non-blocking after the program exited. So weft
// opens a second description of the same pipe or terminal (/proc/self/fd/N), non-blocking and
// close-on-exec, and makes its calls there; the caller's description is never touched.
// Only for these: opening another character device may make a new instance of it (a pty
// master opens a new pty; likewise tun, fuse, uinput) or have effects (a watchdog arms).
bool reopens_privately(int fd, const struct ::stat& st) noexcept {
  if (S_ISFIFO(st.st_mode)) return true;
  if (!S_ISCHR(st.st_mode) || ::isatty(fd) == 0) return false;
  unsigned int pty = 0;
  return ::ioctl(fd, TIOCGPTN, &pty) != 0;  // a pty master answers with its number
}

// The private description of `fd` (see above), numbered 3 or more so that a daemon's
// redirection of its standard streams (dup2 onto 0, 1, 2) cannot close it from under weft.
// -1 if it cannot be opened (no /proc, a terminal of another user, out of descriptors).
int reopen_private(int fd, int flags) noexcept {
  char path[32];
  std::snprintf(path, sizeof path, "/proc/self/fd/%d", fd);
  int p;
  do {
    p = ::open(path, (flags & O_ACCMODE) | O_NONBLOCK | O_CLOEXEC | O_NOCTTY);
  } while (p < 0 && last_errno() == EINTR);
  if (p >= 0 && p < 3) {
    int high = ::fcntl(p, F_DUPFD_CLOEXEC, 3);
    ::close(p);
    p = high;
  }
  return p;
}

// True if the number of an entry left at closing_word names another description than the
// one being closed (`st`: its fstat now): the close is done, and the entry is cleared for a
// registration of the new one. Called with the table's mu held: no registration (and so no
// close of one, which would leave closing_word again) can come between the check and the
// clear.
bool closing_done(fd_entry* e, const struct ::stat& st) noexcept {
  if (static_cast<std::uint64_t>(st.st_dev) == e->dev.load(std::memory_order_relaxed) &&
      static_cast<std::uint64_t>(st.st_ino) == e->ino.load(std::memory_order_relaxed))
    return false;
  std::uintptr_t w = closing_word;
  // Ordering: relaxed; the registration that follows publishes with its own release store.
  e->word.compare_exchange_strong(w, 0, std::memory_order_relaxed);
  return true;
}

// The fiber's way in: the entry of `fd`, registering it on first use if it is a socket, pipe,
// FIFO, anonymous inode (eventfd, timerfd, ...) or character device epoll accepts. A number
// weft::posix::close is still closing gets the closing entry (EBADF). Anything else (a regular file, a bad number) gets
// an empty desc and the libc call; nothing is remembered for it, so a file closed with
// ::close never leaves a stale entry behind. A socket or another character device is switched
// to non-blocking itself; a pipe, FIFO or terminal gets a private description
// (reopens_privately), or, where none can be opened, the libc call (which blocks the worker,
// as for a regular file).
fd_ref lookup_or_register(int fd) noexcept {
  fd_ref found = lookup(fd);
  if (found.desc != nullptr) return found;
  struct ::stat st;
  if (fd < 0 || ::fstat(fd, &st) != 0) return {};
  bool sock = S_ISSOCK(st.st_mode);
  // An anonymous inode (no file type: eventfd, timerfd, signalfd, inotify) is pollable, and is
  // this process's own: switched like a socket.
  const bool anon = (st.st_mode & S_IFMT) == 0;
  if (!sock && !anon && !S_ISFIFO(st.st_mode) && !S_ISCHR(st.st_mode)) return fd_ref{nullptr, nullptr, false, fd_kind::other};
  fd_kind kind = sock ? fd_kind::socket : fd_kind::other;

  fd_table& t = table();
  std::lock_guard lk(t.mu);
  fd_entry* e = t.grow(fd);
  if (e == nullptr) return fd_ref{nullptr, nullptr, false, kind};
  // Only writers hold mu, so a relaxed load sees every earlier registration. Ordering:
  // acquire all the same, for a word close left (it is not written under mu).
  if (std::uintptr_t w = e->word.load(std::memory_order_acquire); w != 0) {
    if (w != closing_word || !closing_done(e, st)) return decode(e, w);
  }
  if ((S_ISCHR(st.st_mode) || anon) && !epoll_accepts(t, fd)) return fd_ref{nullptr, nullptr, false, kind};
  int flags = ::fcntl(fd, F_GETFL);
  if (flags < 0) return {};
  bool user_nonblock = (flags & O_NONBLOCK) != 0;
  // Already non-blocking for everyone who shares it: nothing to change, so no private copy.
  const bool private_desc = !sock && !user_nonblock && reopens_privately(fd, st);
  const int io_fd = private_desc ? reopen_private(fd, flags) : fd;
  if (io_fd < 0) return fd_ref{nullptr, nullptr, false, kind};
  std::error_code ec;
  io_desc* d = detail::io_register(io_fd, ec);
  if (d == nullptr || !registered_with_poller(d)) {
    // No poller (its creation failed) or epoll refused after all: parking would block the
    // worker in poll(2) slices, so undo and use libc.
    if (!user_nonblock && !private_desc) ::fcntl(fd, F_SETFL, flags);
    if (d != nullptr) {
      detail::io_close(d, /*close_fd=*/private_desc);
      detail::io_release(d);
    } else if (private_desc) {
      ::close(io_fd);
    }
    return fd_ref{nullptr, nullptr, false, kind};
  }
  e->deferred_error.store(0, std::memory_order_relaxed);  // a fresh description has none
  e->dev.store(static_cast<std::uint64_t>(st.st_dev), std::memory_order_relaxed);
  e->ino.store(static_cast<std::uint64_t>(st.st_ino), std::memory_order_relaxed);
  std::uintptr_t w = reinterpret_cast<std::uintptr_t>(d) | (user_nonblock ? user_nonblock_bit : 0) |
                     (sock ? socket_bit : 0) | (private_desc ? private_bit : 0);
  // Ordering: release publishes the flags and the registered record to lookup()'s acquire.
  e->word.store(w, std::memory_order_release);
  return decode(e, w);
}

}  // namespace

// A record closed the number `fd` (io_on_fd_closed): an entry weft::posix::close left at
// closing_word is cleared, so the number can be registered again, and fibers polling it wake.
// Not under the table's mu (a record may close its number inside lookup_or_register): the
// mark is cleared only while the number is not open or names another file than the entry's,
// so a mark left by a later close of a new registration of the number (this hook late) stays.
void impl::number_closed(int fd) noexcept {
  if (fd_entry* e = table().find(fd); e != nullptr && e->word.load(std::memory_order_acquire) == closing_word) {
    struct ::stat st;
    if (::fstat(fd, &st) != 0 || static_cast<std::uint64_t>(st.st_dev) != e->dev.load(std::memory_order_relaxed) ||
        static_cast<std::uint64_t>(st.st_ino) != e->ino.load(std::memory_order_relaxed)) {
      std::uintptr_t w = closing_word;
      // Ordering: release, so a registration that sees 0 sees the number closed before it.
      e->word.compare_exchange_strong(w, 0, std::memory_order_release, std::memory_order_relaxed);
    }
  }
  wake_pollers(fd);
}

namespace {

// ---- waiting -----------------------------------------------------------------------------

std::int64_t steady_now_ns() noexcept {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(steady::now().time_since_epoch()).count();
}

// A plain thread on a descriptor weft made non-blocking waits in poll(2). It cannot be woken
// by close, so it waits in slices and gives up once the record is closing; the last slice
// ends at the call's deadline (ns, none: no deadline), so a timeout is not overshot.
constexpr int thread_slice_ms = 20;

// False if the descriptor was closed meanwhile.
bool thread_wait(io_desc* d, int fd, short events, std::int64_t deadline) noexcept {
  if (detail::io_is_closing(d)) return false;
  int slice = thread_slice_ms;
  if (deadline != detail::deadline_t::none) {
    std::int64_t left_ns = deadline - steady_now_ns();
    std::int64_t left_ms = left_ns <= 0 ? 0 : (left_ns + 999'999) / 1'000'000;  // round up
    if (left_ms < slice) slice = static_cast<int>(left_ms);
  }
  ::pollfd p{fd, events, 0};
  ::poll(&p, 1, slice);
  return !detail::io_is_closing(d);
}

short poll_events(io_dir dir) noexcept { return dir == io_dir::read ? POLLIN : POLLOUT; }

// A socket's SO_RCVTIMEO (`dir` read: recv, read, accept) or SO_SNDTIMEO (write: send, write,
// connect) as an absolute steady-clock deadline from now in ns; deadline_t::none without one.
// Thread code sets them as idle timeouts, and each libc blocking call gives up after them on
// its own (EAGAIN; EINPROGRESS for connect), so ours do too.
std::int64_t socket_deadline_ns(const fd_ref& r, int fd, io_dir dir) noexcept {
  constexpr std::int64_t none = detail::deadline_t::none;
  if (r.kind != fd_kind::socket) return none;
  ::timeval tv{};
  ::socklen_t len = sizeof tv;
  if (::getsockopt(fd, SOL_SOCKET, dir == io_dir::read ? SO_RCVTIMEO : SO_SNDTIMEO, &tv, &len) != 0) return none;
  if (tv.tv_sec <= 0 && tv.tv_usec <= 0) return none;
  constexpr std::int64_t max_sec = 100LL * 365 * 24 * 3600;  // beyond: no deadline (saturate)
  if (tv.tv_sec >= max_sec) return none;
  return steady_now_ns() + static_cast<std::int64_t>(tv.tv_sec) * 1'000'000'000 +
         static_cast<std::int64_t>(tv.tv_usec) * 1000;
}

// For one fiber wait: the record's deadline in `dir` is the socket's (`deadline`, from
// socket_deadline_ns), cleared again on destruction. The caller holds the direction's wait_mu
// (so no other weft::posix waiter uses that deadline meanwhile; weft::posix and weft::net never
// share a record) and an io_op_guard (so the record cannot be recycled under us by a close).
class socket_timeout_scope {
 public:
  socket_timeout_scope(io_desc* d, io_dir dir, std::int64_t deadline) noexcept : d_(d), dir_(dir) {
    if (deadline == detail::deadline_t::none) return;
    detail::io_set_deadline(d_, dir_, deadline);
    armed_ = true;
  }
  ~socket_timeout_scope() {
    if (armed_) detail::io_set_deadline(d_, dir_, detail::deadline_t::none);
  }
  socket_timeout_scope(const socket_timeout_scope&) = delete;
  socket_timeout_scope& operator=(const socket_timeout_scope&) = delete;
  /// The errno for a wait that failed with `ec`: weft's own timeout (generic_category; not a
  /// connection's ETIMEDOUT from the kernel) is `timeout_errno`, as libc's.
  int errno_for(const std::error_code& ec, int timeout_errno) const noexcept {
    return armed_ && ec == std::error_code(ETIMEDOUT, std::generic_category()) ? timeout_errno : errno_of(ec);
  }

 private:
  io_desc* d_;
  io_dir dir_;
  bool armed_ = false;
};

// Takes `mu` (a direction's queue of waiters) by `deadline` (ns; none: waits as long as it
// takes). False if the deadline passed first.
bool lock_by(weft::timed_mutex& mu, std::int64_t deadline) {
  if (deadline == detail::deadline_t::none) {
    mu.lock();
    return true;
  }
  return mu.try_lock_until(steady::time_point(std::chrono::nanoseconds(deadline)));
}

// What one blocking call has learnt across its rounds (a write repeats run_op until every
// byte is gone): the socket's timeout, computed once so it bounds the whole call as libc's
// does, and whether weft emulates blocking for the descriptor.
struct op_state {
  static constexpr std::int64_t unknown = 0;
  std::int64_t deadline = unknown;  // from socket_deadline_ns, once the call first waits
  bool emulated = false;            // registered, blocking for the caller: weft does the waiting
  std::int64_t deadline_of(const fd_ref& r, int fd, io_dir dir) noexcept {
    if (deadline == unknown) deadline = socket_deadline_ns(r, fd, dir);
    return deadline;
  }
};

// The descriptor's entry as a call of this thread sees it (a fiber registers it on first use).
fd_ref entry_for_call(int fd) noexcept { return on_fiber() ? lookup_or_register(fd) : lookup(fd); }

// The slices of a socket's wait, between two checks of its registration (run_op_on).
constexpr std::int64_t stale_check_first_ns = 100'000'000;
constexpr std::int64_t stale_check_max_ns = 30'000'000'000;

// True if `fd` now names another open file description than the one `r` was registered for:
// closed with a plain close() and the number reused. One fstat (about 0.7 us here: made only
// when a slice of a socket's wait ends, and per call on a private record). A number that is
// not open is stale only for a private record, whose calls would otherwise run on weft's own
// descriptor; a socket's call runs on the number itself and reports EBADF.
bool registration_stale(const fd_ref& r, int fd) noexcept {
  struct ::stat st;
  if (::fstat(fd, &st) != 0) return r.private_desc;
  return static_cast<std::uint64_t>(st.st_dev) != r.entry->dev.load(std::memory_order_relaxed) ||
         static_cast<std::uint64_t>(st.st_ino) != r.entry->ino.load(std::memory_order_relaxed);
}

// Drops the stale registration `r` of `fd`: its record is released without closing the number
// (it belongs to the new description), waking whoever waits on it with ECANCELED. Then the
// entry as this thread sees it: a fiber registers the new description, a plain thread gets
// the libc calls. `same_file`: the number still names the registered file (its flags changed:
// made_blocking_again), which leaves the poller's set before it is registered anew.
fd_ref forget_stale(const fd_ref& r, int fd, bool same_file = false) noexcept {
  std::uintptr_t w = r.word;
  // Ordering: acq_rel, as weft::posix::close's exchange: of two threads that found it stale,
  // one releases the record.
  if (r.entry->word.compare_exchange_strong(w, 0, std::memory_order_acq_rel, std::memory_order_relaxed)) {
    // A private description is weft's; `same_file`: the number is registered anew right after.
    detail::io_close(r.desc, /*close_fd=*/r.private_desc, /*unwatch=*/same_file && !r.private_desc);
    detail::io_release(r.desc);
  }
  return entry_for_call(fd);
}

// True if the caller cleared O_NONBLOCK on a descriptor that was non-blocking when weft
// registered it. One fcntl, only after an EAGAIN on such a descriptor.
bool made_blocking_again(int fd) noexcept {
  int flags = ::fcntl(fd, F_GETFL);
  return flags >= 0 && (flags & O_NONBLOCK) == 0;
}

// Runs `call(fd, kind)` (a syscall: -1 + errno on failure) on the entry `r` of `fd` (from
// entry_for_call) with blocking semantics:
// - not registered: the libc call as is (a plain thread, a regular file);
// - non-blocking for the caller (the user's O_NONBLOCK, or `dontwait`): one call;
// - a fiber: the call, and on EAGAIN a park in the record's slot (io_do) until ready;
// - a plain thread: the call, and on EAGAIN poll(2) until ready.
// `r` is updated when the registration turns out to be stale (see registration_stale).
template <class Call>
io_result run_op_on(fd_ref& r, int fd, io_dir dir, bool dontwait, Call&& call, op_state& st) {
  bool fiber = on_fiber();
  st.emulated = false;
  // A private description stays on the old pipe when the number is closed with a plain
  // close() or replaced by dup2(): its calls would read the old pipe, and keep it open (no
  // EOF, EPIPE or SIGPIPE for its other end). One fstat per call (pipes and terminals, not the
  // socket path) notices, and the number is registered anew.
  // A number closed with a plain close() and not reused is stale too: the call then gets
  // EBADF from libc, not data from the old pipe.
  if (r.desc != nullptr && r.private_desc && registration_stale(r, fd)) r = forget_stale(r, fd);
  if (r.closing) return fail(EBADF);
  if (r.desc == nullptr) return from_syscall(call(fd, r.kind));
  if (r.entry->deferred_error.load(std::memory_order_relaxed) != 0) {
    if (int e = r.entry->deferred_error.exchange(0, std::memory_order_relaxed); e != 0) return fail(e);
  }
  bool made_blocking = false;
  {
    entry_guard g(r);
    if (!g) return fail(ECANCELED);
    st.emulated = !r.user_nonblock && !dontwait;
    for (;;) {
      long n = call(g.fd(), call_kind(r));
      if (n >= 0) return ok(n);
      int e = last_errno();
      if (!st.emulated) {
        if ((e == EAGAIN || e == EWOULDBLOCK) && r.user_nonblock && !dontwait && made_blocking_again(g.fd())) {
          made_blocking = true;
          break;
        }
        return fail(e);
      }
      if (e == EINTR) continue;
      if (e != EAGAIN && e != EWOULDBLOCK) return fail(e);
      if (fiber) break;
      if (steady_now_ns() >= st.deadline_of(r, g.fd(), dir)) return fail(EAGAIN);
      if (!thread_wait(r.desc, g.fd(), poll_events(dir), st.deadline_of(r, g.fd(), dir))) return fail(ECANCELED);
    }
  }
  if (made_blocking) {
    // Registered while the user had it non-blocking (so weft kept libc's EAGAIN), and made
    // blocking since (the idiom: connect non-blocking, poll, clear O_NONBLOCK, then block in
    // recv). Registered anew, it gets blocking semantics: switched back, or reopened privately.
    r = forget_stale(r, fd, /*same_file=*/true);
    return run_op_on(r, fd, dir, dontwait, std::forward<Call>(call), st);
  }
  // The fast path found nothing: wait in line for the direction's slot, then io_do retries
  // the call first and parks only on EAGAIN (readiness may have come while we queued). The
  // socket's timeout bounds the whole wait, queueing included.
  {
    entry_guard g(r);
    if (!g) return fail(ECANCELED);
    const std::int64_t deadline = st.deadline_of(r, g.fd(), dir);
    weft::timed_mutex& queue = r.entry->wait_mu[static_cast<int>(dir)];
    if (!lock_by(queue, deadline)) return fail(EAGAIN);
    std::lock_guard lk(queue, std::adopt_lock);
    // A wait on the number itself (a socket, eventfd, character device: not a private
    // description, whose calls check it every time) is cut into slices that grow from 100 ms
    // to 30 s; when one ends, one fstat checks that the number still names the registered
    // description. Closed with a plain close() and reused, it does not, and epoll will never
    // report for it again.
    std::int64_t slice = !r.private_desc ? stale_check_first_ns : detail::deadline_t::none;
    for (;;) {
      const std::int64_t now = steady_now_ns();
      const bool last = slice == detail::deadline_t::none || deadline - now <= slice;
      socket_timeout_scope timeout(r.desc, dir, last ? deadline : now + slice);
      std::error_code ec;
      long n = detail::io_do(r.desc, dir, nullptr, ec, [&](int f) { return call(f, call_kind(r)); });
      if (n >= 0) return ok(n);
      if (last || ec != std::error_code(ETIMEDOUT, std::generic_category())) return fail(timeout.errno_for(ec, EAGAIN));
      if (registration_stale(r, fd)) break;
      slice = std::min(slice * 2, stale_check_max_ns);
    }
  }
  // Stale: the guard is released, so the old record may go. The call starts again on what
  // the number names now (registered anew).
  r = forget_stale(r, fd);
  st.deadline = op_state::unknown;
  return run_op_on(r, fd, dir, dontwait, std::forward<Call>(call), st);
}

template <class Call>
io_result run_op(int fd, io_dir dir, bool dontwait, Call&& call) {
  op_state st;
  fd_ref r = entry_for_call(fd);
  return run_op_on(r, fd, dir, dontwait, std::forward<Call>(call), st);
}

// A transfer that libc finishes inside one blocking call (a write, or a read with
// MSG_WAITALL): `call(fd, kind, done)` moves what is left after the first `done` of `len`
// bytes. Where weft emulates the blocking, a short transfer is followed by another until all
// `len` bytes went (or EOF). As from libc, a failure or timeout after some bytes returns their
// count (the error shows on the next call), and a non-blocking caller gets the first short
// count. A datagram goes whole or not at all, so it takes one round.
// The entry is looked up once and an io_op_guard held across the rounds, so a
// weft::posix::close between two rounds ends the call (ECANCELED, or the count so far) and
// the descriptor number cannot be closed and reused under it.
// `stop`, if given, is set by `call` when the transfer must end with its round (a recvmsg that
// received ancillary data, as libc's MSG_WAITALL read does).
template <class Call>
io_result whole_op(int fd, io_dir dir, std::size_t len, bool dontwait, Call&& call, const bool* stop = nullptr) {
  fd_ref entry = entry_for_call(fd);
  std::optional<io_op_guard> hold;
  if (entry.desc != nullptr) hold.emplace(entry.desc);
  op_state st;
  std::size_t done = 0;
  for (;;) {
    io_desc* const held = entry.desc;
    io_result r = run_op_on(
        entry, fd, dir, dontwait, [&](int f, fd_kind k) -> long { return call(f, k, done); }, st);
    if (entry.desc != held) {
      // The registration was stale and replaced: hold the new record for the next rounds.
      hold.reset();
      if (entry.desc != nullptr) hold.emplace(entry.desc);
    }
    if (r.value < 0) {
      if (done == 0) return r;
      // As libc: the count now, a socket error (reset, ...) on the next call. A timeout or a
      // close is not an error of the socket: libc reports nothing more for it either.
      // Only for the description the earlier bytes went to (the number may name another now,
      // or nothing weft registered: no entry).
      if (r.error != EAGAIN && r.error != EWOULDBLOCK && r.error != ECANCELED && r.error != EINTR &&
          entry.entry != nullptr && entry.desc == held)
        entry.entry->deferred_error.store(r.error, std::memory_order_relaxed);
      return ok(static_cast<long>(done));
    }
    done += static_cast<std::size_t>(r.value);
    if (done >= len || r.value == 0 || !st.emulated || (stop != nullptr && *stop)) return ok(static_cast<long>(done));
  }
}

template <class Call>
io_result write_op(int fd, std::size_t len, bool dontwait, Call&& call) {
  return whole_op(fd, io_dir::write, len, dontwait, std::forward<Call>(call));
}

// True for a stream socket, where MSG_WAITALL waits for the whole length (a datagram or
// seqpacket read ends with its message whatever the flag says).
bool is_stream_socket(int fd) noexcept {
  int type = 0;
  ::socklen_t len = sizeof type;
  return ::getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &len) == 0 && type == SOCK_STREAM;
}

// A receive with `flags`: with MSG_WAITALL on a stream socket (without MSG_PEEK), as libc's
// blocking recv, it returns once `len` bytes arrived, or fewer at EOF, an error or a timeout
// after some (the count so far).
// MSG_ERRQUEUE never waits: an empty error queue is EAGAIN from libc too, and no readiness
// event announces a queued error the way data is announced.
template <class Call>
io_result recv_op(int fd, std::size_t len, int flags, Call&& call, const bool* stop = nullptr) {
  const bool dontwait = (flags & (MSG_DONTWAIT | MSG_ERRQUEUE)) != 0;
  if ((flags & MSG_WAITALL) != 0 && (flags & MSG_PEEK) == 0 && !dontwait && is_stream_socket(fd))
    return whole_op(fd, io_dir::read, len, false, std::forward<Call>(call), stop);
  return run_op(fd, io_dir::read, dontwait, [&](int f, fd_kind k) -> long { return call(f, k, 0); });
}

// The total byte count of `iov` (saturating: the kernel rejects an overflowing one anyway).
std::size_t iov_bytes(const ::iovec* iov, std::size_t iovcnt) noexcept {
  std::size_t total = 0;
  for (std::size_t i = 0; i < iovcnt; ++i) total = iov[i].iov_len > SIZE_MAX - total ? SIZE_MAX : total + iov[i].iov_len;
  return total;
}

// The buffers of a scatter/gather call left after its first `done` bytes moved, for the next
// round of a whole transfer (whole_op): the iovecs that went whole are skipped and the one
// cut short starts where it stopped (a copy; the caller's array is never written).
class iov_rest {
 public:
  iov_rest(const ::iovec* iov, std::size_t count) noexcept : iov_(iov), count_(count) {}
  /// The buffers after `done` bytes, valid until the next call.
  std::pair<const ::iovec*, std::size_t> after(std::size_t done) {
    std::size_t skip = 0;
    while (skip < count_ && done >= iov_[skip].iov_len) done -= iov_[skip++].iov_len;
    if (skip == 0 && done == 0) return {iov_, count_};
    rest_.assign(iov_ + skip, iov_ + count_);
    if (!rest_.empty()) {
      rest_[0].iov_base = static_cast<char*>(rest_[0].iov_base) + done;
      rest_[0].iov_len -= done;
    }
    return {rest_.data(), rest_.size()};
  }
  /// A message of the buffers after `done` bytes, with no address or ancillary data.
  ::msghdr message_after(std::size_t done) {
    auto [v, n] = after(done);
    ::msghdr m{};
    m.msg_iov = const_cast<::iovec*>(v);  // the calls write through the buffers, not the array
    m.msg_iovlen = n;
    return m;
  }

 private:
  const ::iovec* iov_;
  std::size_t count_;
  std::vector<::iovec> rest_;
};

// ---- connect -----------------------------------------------------------------------------

// The outcome of a connect in progress: 0 connected, EINPROGRESS not yet, or the error.
int connect_outcome(int fd) noexcept {
  int so_error = 0;
  ::socklen_t len = sizeof so_error;
  if (::getsockopt(fd, SOL_SOCKET, SO_ERROR, &so_error, &len) != 0) return last_errno();
  if (so_error != 0) return so_error;
  // Writable without an error may be a wake-up from before the connection (the state at
  // registration is reported as a first event): connected only once there is a peer.
  ::sockaddr_storage peer;
  ::socklen_t plen = sizeof peer;
  if (::getpeername(fd, reinterpret_cast<::sockaddr*>(&peer), &plen) == 0) return 0;
  int e = last_errno();
  return e == ENOTCONN ? EINPROGRESS : e;
}

// Parks the fiber (blocks a plain thread) for `wait`, then doubles it up to 10 ms.
void backoff_sleep(steady::duration& wait) {
  this_fiber::sleep_for(wait);
  wait = std::min<steady::duration>(wait * 2, std::chrono::milliseconds(10));
}

io_result connect_impl(int fd, const ::sockaddr* addr, ::socklen_t addrlen) {
  bool fiber = on_fiber();
  fd_ref r = fiber ? lookup_or_register(fd) : lookup(fd);
  if (r.closing) return fail(EBADF);
  if (r.desc == nullptr) return from_syscall(::connect(fd, addr, addrlen));
  entry_guard g(r);
  if (!g) return fail(ECANCELED);
  // SO_SNDTIMEO bounds the whole connect, as libc's: EINPROGRESS after it (EAGAIN while an
  // AF_UNIX listener's backlog stays full).
  const std::int64_t deadline = r.user_nonblock ? detail::deadline_t::none : socket_deadline_ns(r, g.fd(), io_dir::write);
  steady::duration wait = std::chrono::milliseconds(1);
  std::uint32_t seen = 0;
  for (;;) {
    seen = detail::io_events(r.desc, io_dir::write);
    if (::connect(g.fd(), addr, addrlen) == 0) return ok(0);
    int e = last_errno();
    if (r.user_nonblock) return fail(e);
    // A non-blocking connect interrupted by a signal goes on in the background, as one that
    // returned EINPROGRESS does.
    if (e == EINPROGRESS || e == EINTR) break;
    if (e != EAGAIN) return fail(e);
    // AF_UNIX with the listener's backlog full: a blocking connect waits for room, which no
    // readiness event announces; retry with a short backoff.
    if (detail::io_is_closing(r.desc)) return fail(ECANCELED);
    if (steady_now_ns() >= deadline) return fail(EAGAIN);
    backoff_sleep(wait);
  }
  if (!fiber) {
    for (;;) {
      if (steady_now_ns() >= deadline) return fail(EINPROGRESS);
      if (!thread_wait(r.desc, g.fd(), POLLOUT, deadline)) return fail(ECANCELED);
      int e = connect_outcome(g.fd());
      if (e == 0) return ok(0);
      if (e != EINPROGRESS) return fail(e);
    }
  }
  weft::timed_mutex& queue = r.entry->wait_mu[static_cast<int>(io_dir::write)];
  if (!lock_by(queue, deadline)) return fail(EINPROGRESS);
  std::lock_guard lk(queue, std::adopt_lock);
  socket_timeout_scope timeout(r.desc, io_dir::write, deadline);
  for (;;) {
    if (std::error_code ec = detail::io_wait(r.desc, io_dir::write, nullptr, seen))
      return fail(timeout.errno_for(ec, EINPROGRESS));
    seen = detail::io_events(r.desc, io_dir::write);  // before looking at the socket's state
    int e = connect_outcome(g.fd());
    if (e == 0) return ok(0);
    if (e != EINPROGRESS) return fail(e);
  }
}

// ---- sleeping ----------------------------------------------------------------------------

// Sleeps until `deadline` on a fiber; returns the time left (0 unless the runtime shut down).
steady::duration sleep_on_fiber(steady::time_point deadline) {
  this_fiber::sleep_until(deadline);
  steady::time_point now = steady::now();
  return now < deadline ? deadline - now : steady::duration::zero();
}

}  // namespace

// ---- the calls ---------------------------------------------------------------------------

::ssize_t read(int fd, void* buf, std::size_t count) {
  stay_on_thread pin;  // errno is set on the thread the call started on
  return pin.finish(run_op(fd, io_dir::read, false, [=](int f, fd_kind k) -> long {
    // recv with no flags is read, for a socket; MSG_DONTWAIT: see fd_kind.
    // A zero-length read returns 0 at once; recv of 0 bytes would wait for data.
    return k == fd_kind::watched_socket && count != 0 ? ::recv(f, buf, count, MSG_DONTWAIT) : ::read(f, buf, count);
  }));
}

::ssize_t write(int fd, const void* buf, std::size_t count) {
  stay_on_thread pin;  // errno is set on the thread the call started on
  return pin.finish(write_op(fd, count, false, [=](int f, fd_kind k, std::size_t done) -> long {
    const char* p = static_cast<const char*>(buf) + done;
    std::size_t n = count - done;
    if (k == fd_kind::socket || k == fd_kind::watched_socket) return ::send(f, p, n, MSG_NOSIGNAL | dontwait_flag(k));
    if (k == fd_kind::other) return ::write(f, p, n);
    // Unknown (a plain thread on a descriptor no fiber registered): try the socket call, so
    // a socket never raises SIGPIPE; anything else answers ENOTSOCK without side effects.
    long r = ::send(f, p, n, MSG_NOSIGNAL);
    if (r < 0 && last_errno() == ENOTSOCK) r = ::write(f, p, n);
    return r;
  }));
}

::ssize_t readv(int fd, const ::iovec* iov, int iovcnt) {
  stay_on_thread pin;  // errno is set on the thread the call started on
  return pin.finish(run_op(fd, io_dir::read, false, [=](int f, fd_kind k) -> long {
    // As read: buffers of zero bytes in all return 0 at once, where recvmsg would wait.
    if (k != fd_kind::watched_socket || std::all_of(iov, iov + std::max(iovcnt, 0), [](const ::iovec& v) { return v.iov_len == 0; }))
      return ::readv(f, iov, iovcnt);
    ::msghdr m{};
    m.msg_iov = const_cast<::iovec*>(iov);  // recvmsg writes through the buffers, not the array
    m.msg_iovlen = static_cast<std::size_t>(iovcnt);
    return ::recvmsg(f, &m, MSG_DONTWAIT);
  }));
}

::ssize_t writev(int fd, const ::iovec* iov, int iovcnt) {
  stay_on_thread pin;  // errno is set on the thread the call started on
  // sendmsg says EMSGSIZE where writev says EINVAL; check first so both paths agree.
  if (iovcnt < 0 || iovcnt > IOV_MAX) return pin.finish(fail(EINVAL));
  iov_rest rest(iov, static_cast<std::size_t>(iovcnt));
  return pin.finish(write_op(fd, iov_bytes(iov, static_cast<std::size_t>(iovcnt)), false,
                             [&](int f, fd_kind k, std::size_t done) -> long {
    if (k == fd_kind::other) {
      auto [v, cnt] = rest.after(done);
      return ::writev(f, v, static_cast<int>(cnt));
    }
    ::msghdr m = rest.message_after(done);
    long r = ::sendmsg(f, &m, MSG_NOSIGNAL | dontwait_flag(k));
    if (k == fd_kind::unknown && r < 0 && last_errno() == ENOTSOCK) r = ::writev(f, m.msg_iov, static_cast<int>(m.msg_iovlen));
    return r;
  }));
}

::ssize_t recvmsg(int fd, ::msghdr* msg, int flags) {
  stay_on_thread pin;  // errno is set on the thread the call started on
  if (msg == nullptr || (msg->msg_iov == nullptr && msg->msg_iovlen != 0)) return pin.finish(fail(EFAULT));
  iov_rest rest(msg->msg_iov, msg->msg_iovlen);
  void* const control = msg->msg_control;
  const std::size_t control_len = msg->msg_controllen;
  bool got_control = false;  // a MSG_WAITALL read ends with the round that brought ancillary data
  return pin.finish(recv_op(
      fd, iov_bytes(msg->msg_iov, msg->msg_iovlen), flags,
      [&](int f, fd_kind k, std::size_t done) -> long {
        // The first bytes into the caller's message (address, ancillary data, flags: the kernel
        // writes them back only on success); the rest of a MSG_WAITALL into what is left of its
        // buffers, with its control buffer while no ancillary data has come.
        if (done == 0) {
          long r = ::recvmsg(f, msg, flags | dontwait_flag(k));
          got_control = r > 0 && msg->msg_controllen > 0;
          return r;
        }
        ::msghdr m = rest.message_after(done);
        m.msg_control = control;
        m.msg_controllen = control_len;
        long r = ::recvmsg(f, &m, flags | dontwait_flag(k));
        if (r > 0) {
          msg->msg_flags |= m.msg_flags;
          if (m.msg_controllen > 0) {
            msg->msg_controllen = m.msg_controllen;
            got_control = true;
          }
        }
        return r;
      },
      &got_control));
}

::ssize_t sendmsg(int fd, const ::msghdr* msg, int flags) {
  stay_on_thread pin;  // errno is set on the thread the call started on
  if (msg == nullptr || (msg->msg_iov == nullptr && msg->msg_iovlen != 0)) return pin.finish(fail(EFAULT));
  iov_rest rest(msg->msg_iov, msg->msg_iovlen);
  return pin.finish(write_op(fd, iov_bytes(msg->msg_iov, msg->msg_iovlen), (flags & MSG_DONTWAIT) != 0,
                             [&](int f, fd_kind k, std::size_t done) -> long {
    const int how = flags | MSG_NOSIGNAL | dontwait_flag(k);
    if (done == 0) return ::sendmsg(f, msg, how);
    // The ancillary data (and the address of a connected socket) went with the first bytes.
    ::msghdr m = rest.message_after(done);
    return ::sendmsg(f, &m, how);
  }));
}

::ssize_t recv(int fd, void* buf, std::size_t len, int flags) {
  stay_on_thread pin;  // errno is set on the thread the call started on
  return pin.finish(recv_op(fd, len, flags, [=](int f, fd_kind k, std::size_t done) -> long {
    return ::recv(f, static_cast<char*>(buf) + done, len - done, flags | dontwait_flag(k));
  }));
}

::ssize_t send(int fd, const void* buf, std::size_t len, int flags) {
  stay_on_thread pin;  // errno is set on the thread the call started on
  return pin.finish(write_op(fd, len, (flags & MSG_DONTWAIT) != 0, [=](int f, fd_kind k, std::size_t done) -> long {
    return ::send(f, static_cast<const char*>(buf) + done, len - done, flags | MSG_NOSIGNAL | dontwait_flag(k));
  }));
}

::ssize_t recvfrom(int fd, void* buf, std::size_t len, int flags, ::sockaddr* src, ::socklen_t* addrlen) {
  stay_on_thread pin;  // errno is set on the thread the call started on
  return pin.finish(recv_op(fd, len, flags, [=](int f, fd_kind k, std::size_t done) -> long {
    return ::recvfrom(f, static_cast<char*>(buf) + done, len - done, flags | dontwait_flag(k), src, addrlen);
  }));
}

::ssize_t sendto(int fd, const void* buf, std::size_t len, int flags, const ::sockaddr* dest, ::socklen_t addrlen) {
  stay_on_thread pin;  // errno is set on the thread the call started on
  return pin.finish(write_op(fd, len, (flags & MSG_DONTWAIT) != 0, [=](int f, fd_kind k, std::size_t done) -> long {
    return ::sendto(f, static_cast<const char*>(buf) + done, len - done, flags | MSG_NOSIGNAL | dontwait_flag(k), dest,
                    addrlen);
  }));
}

int accept(int fd, ::sockaddr* addr, ::socklen_t* addrlen) { return weft::posix::accept4(fd, addr, addrlen, 0); }

int accept4(int fd, ::sockaddr* addr, ::socklen_t* addrlen, int flags) {
  stay_on_thread pin;  // errno is set on the thread the call started on
  // Linux never passes the listener's O_NONBLOCK on to the accepted descriptor, so without
  // SOCK_NONBLOCK it is blocking, whatever weft did to the listener.
  return static_cast<int>(pin.finish(run_op(fd, io_dir::read, false, [=](int f, fd_kind) -> long {
    return ::accept4(f, addr, addrlen, flags);
  })));
}

int connect(int fd, const ::sockaddr* addr, ::socklen_t addrlen) {
  stay_on_thread pin;  // errno is set on the thread the call started on
  return static_cast<int>(pin.finish(connect_impl(fd, addr, addrlen)));
}

int close(int fd) {
  stay_on_thread pin;  // errno is set on the thread the call started on
  static const bool hooked = (detail::io_on_fd_closed(&number_closed), true);  // before any closing_word
  (void)hooked;
  fd_entry* e = table().find(fd);
  // Ordering: acquire pairs with the release store in lookup_or_register() (the record is
  // set up); a compare-exchange so that of two racing closes exactly one releases the record.
  // A socket's entry is left at closing_word until its number is closed; a private record's
  // number is closed below, before this returns.
  std::uintptr_t w = 0;
  for (;;) {
    w = e != nullptr ? e->word.load(std::memory_order_acquire) : 0;
    while (w != 0 && w != closing_word &&
           !e->word.compare_exchange_weak(w, (w & private_bit) != 0 ? 0 : closing_word, std::memory_order_acquire,
                                          std::memory_order_acquire)) {
    }
    if (w != closing_word) break;
    // Another close has it, unless the number was closed and reused since (then this closes
    // the new description). Under mu, as every clear of the mark but number_closed's.
    std::lock_guard lk(table().mu);
    if (e->word.load(std::memory_order_acquire) != closing_word) continue;  // changed: look again
    struct ::stat st;
    if (::fstat(fd, &st) != 0 || !closing_done(e, st)) return static_cast<int>(pin.finish(fail(EBADF)));
    w = 0;
    break;
  }
  if (w == 0) {
    io_result r = from_syscall(::close(fd));
    if (r.value == 0) wake_pollers(fd);  // a fiber polling it returns, POLLNVAL for it
    return static_cast<int>(pin.finish(r));
  }
  // Wakes parked fibers with ECANCELED; the number is closed once no call is in flight, and
  // then fibers polling it are woken and the entry cleared (io_on_fd_closed: number_closed).
  fd_ref r = decode(e, w);
  detail::io_release(r.desc);
  if (!r.private_desc) return static_cast<int>(pin.finish(ok(0)));
  // The record held weft's own description (closed as above); the caller's number is closed
  // now: no call runs on it, they all used the private one.
  io_result c = from_syscall(::close(fd));
  if (c.value == 0) wake_pollers(fd);
  return static_cast<int>(pin.finish(c));
}

unsigned int sleep(unsigned int seconds) {
  stay_on_thread pin;  // errno is set on the thread the call started on
  if (!on_fiber()) return ::sleep(seconds);
  steady::duration left = sleep_on_fiber(detail::deadline_after(std::chrono::seconds(seconds)));
  pin.finish(ok(0));  // errno as the caller left it (sleep(3) sets none)
  return static_cast<unsigned int>(std::chrono::ceil<std::chrono::seconds>(left).count());
}

int usleep(::useconds_t usec) {
  stay_on_thread pin;  // errno is set on the thread the call started on
  if (!on_fiber()) return ::usleep(usec);
  if (sleep_on_fiber(detail::deadline_after(std::chrono::microseconds(usec))) > steady::duration::zero())
    return static_cast<int>(pin.finish(fail(EINTR)));
  return static_cast<int>(pin.finish(ok(0)));
}

int nanosleep(const ::timespec* req, ::timespec* rem) {
  stay_on_thread pin;  // errno is set on the thread the call started on
  if (!on_fiber()) return ::nanosleep(req, rem);
  if (req == nullptr) return static_cast<int>(pin.finish(fail(EFAULT)));
  if (req->tv_sec < 0 || req->tv_nsec < 0 || req->tv_nsec >= 1'000'000'000) return static_cast<int>(pin.finish(fail(EINVAL)));
  std::chrono::nanoseconds d = std::chrono::nanoseconds::max();
  if (req->tv_sec < std::chrono::duration_cast<std::chrono::seconds>(d).count() - 1)
    d = std::chrono::seconds(req->tv_sec) + std::chrono::nanoseconds(req->tv_nsec);
  steady::duration left = sleep_on_fiber(detail::deadline_after(d));
  if (left <= steady::duration::zero()) {
    if (rem != nullptr) *rem = ::timespec{0, 0};
    return static_cast<int>(pin.finish(ok(0)));
  }
  if (rem != nullptr) {
    auto ns = std::chrono::duration_cast<std::chrono::nanoseconds>(left).count();
    rem->tv_sec = static_cast<::time_t>(ns / 1'000'000'000);
    rem->tv_nsec = static_cast<long>(ns % 1'000'000'000);
  }
  return static_cast<int>(pin.finish(fail(EINTR)));
}

}  // namespace weft::posix
