// weft::posix::poll on a fiber (and ppoll, select and pselect on top of it): a private,
// level-triggered epoll set registered with the runtime's poller, and the waiter list by which
// a close of a watched number ends the wait.
#include <weft/posix.hpp>

#include <poll.h>
#include <sys/epoll.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstdint>
#include <mutex>
#include <new>
#include <optional>
#include <system_error>
#include <vector>

#include "io_desc.hpp"
#include "posix_support.hpp"

namespace weft::posix {

namespace impl {
namespace {

using detail::io_desc;
using detail::io_dir;

// poll and epoll share the event bit values on Linux, so a pollfd's events go straight into
// an epoll_event.
static_assert(POLLIN == EPOLLIN && POLLPRI == EPOLLPRI && POLLOUT == EPOLLOUT && POLLRDNORM == EPOLLRDNORM &&
              POLLRDBAND == EPOLLRDBAND && POLLWRNORM == EPOLLWRNORM && POLLWRBAND == EPOLLWRBAND &&
              POLLRDHUP == EPOLLRDHUP);
constexpr unsigned watchable_events =
    POLLIN | POLLPRI | POLLOUT | POLLRDNORM | POLLRDBAND | POLLWRNORM | POLLWRBAND | POLLRDHUP;

io_result poll_now(::pollfd* fds, ::nfds_t nfds) noexcept { return from_syscall(::poll(fds, nfds, 0)); }

// What the epoll set watches for fds[i]'s number: the union of what its entries up to `upto`
// ask for (a number may appear more than once).
::epoll_event watched_events(const ::pollfd* fds, ::nfds_t i, ::nfds_t upto) noexcept {
  ::epoll_event ev{};
  for (::nfds_t j = 0; j < upto; ++j)
    if (fds[j].fd == fds[i].fd) ev.events |= static_cast<unsigned>(fds[j].events) & watchable_events;
  return ev;
}

// Adds every descriptor of `fds` to the epoll set `ep`, level-triggered. False if one cannot
// be watched for a reason other than being always ready (EPERM: a regular file).
bool watch_all(int ep, const ::pollfd* fds, ::nfds_t nfds) noexcept {
  for (::nfds_t i = 0; i < nfds; ++i) {
    if (fds[i].fd < 0) continue;  // poll(2) ignores negative numbers
    ::epoll_event ev = watched_events(fds, i, i + 1);
    if (::epoll_ctl(ep, EPOLL_CTL_ADD, fds[i].fd, &ev) == 0) continue;
    int e = last_errno();
    if (e == EPERM) continue;
    if (e != EEXIST) return false;
    if (::epoll_ctl(ep, EPOLL_CTL_MOD, fds[i].fd, &ev) != 0) return false;  // the same number again
  }
  return true;
}

// The fallback when no epoll set can be built (out of descriptors or watches, nesting too
// deep): zero-timeout polls between sleeps of 1 ms doubling to 10 ms, so readiness is seen at
// most ~10 ms late.
io_result poll_backoff(::pollfd* fds, ::nfds_t nfds, steady::time_point deadline) {
  steady::duration wait = std::chrono::milliseconds(1);
  for (;;) {
    steady::time_point now = steady::now();
    if (now >= deadline) return poll_now(fds, nfds);
    this_fiber::sleep_until(std::min(now + wait, deadline));
    wait = std::min<steady::duration>(wait * 2, std::chrono::milliseconds(10));
    if (io_result r = poll_now(fds, nfds); r.value != 0) return r;
  }
}

// Fibers in poll_on_fiber, so that a close of a number they watch can wake them: the kernel
// drops a closed descriptor from the private epoll set without an event, and a poll(-1) would
// wait forever. Two places close numbers: weft::posix::close (a descriptor weft never
// registered), and io_desc's settle step (a registered one, at once or when the last call in
// flight on it leaves), through the io_on_fd_closed hook. A kick only says "a number you
// watch was closed": the waiter then asks its own epoll set, with EPOLL_CTL_MOD, whether each
// watched descriptor is still the one it added (EBADF: closed; ENOENT: the number names
// another description now), so a number closed and reused by someone else's poll meanwhile
// is never reported closed to that poll.
//
// Waiters are listed by number, in poll_bucket_count buckets (number % count), so a close
// walks only the waiters that may watch its number: a ported server with thousands of fibers
// in poll does not walk all of them, under one lock, at every close. A waiter is on one list
// per bucket its numbers fall in, through one poll_link each.
// Invariant: a waiter is on the lists only while its private record `d` is registered (it
// leaves before releasing it), so a kick may touch `d`.
constexpr std::size_t poll_bucket_count = 64;

std::size_t bucket_of(int fd) noexcept { return static_cast<unsigned>(fd) % poll_bucket_count; }

struct poll_waiter;

struct poll_link {
  poll_waiter* w = nullptr;
  std::size_t bucket = 0;
  poll_link* prev = nullptr;
  poll_link* next = nullptr;
};

struct poll_waiter {
  const ::pollfd* fds;
  ::nfds_t nfds;
  io_desc* d;
  int ep;  // the private epoll set
  // Set by a kick, taken by the waiter's next round. Ordering: release by the kick, which
  // follows the ::close; acquire by the waiter before its EPOLL_CTL_MOD checks.
  std::atomic<bool> kicked{false};
};

struct alignas(64) poll_bucket {  // a cache line each: closes of different buckets do not collide
  std::mutex mu;  // guards the list; held for edits and walks only, never across a park
  poll_link* head = nullptr;
  // Waiters on the list, so that a close skips the lock while nobody polls its bucket.
  // Ordering: seq_cst on both sides. A waiter increments it, then adds its descriptors to its
  // set; a closer closes the number, then reads it. If the read sees 0, the increment (a
  // locked RMW, a full barrier), and so the waiter's epoll_ctl ADD after it, come after the
  // closer's ::close returned; the kernel's file-table lock orders the two syscalls. ADD then
  // fails with EBADF (the poll falls back and reports the number as poll(2) would) or adds the
  // number's new description, the right one.
  std::atomic<long> count{0};
};

poll_bucket* poll_buckets() {
  static auto* b = new poll_bucket[poll_bucket_count];  // never destroyed: calls may run during exit
  return b;
}

}  // namespace

// Kicks the waiters that watch `fd`, which was just closed. Any thread; never blocks for long.
void wake_pollers(int fd) noexcept {
  if (fd < 0) return;
  poll_bucket& b = poll_buckets()[bucket_of(fd)];
  if (b.count.load(std::memory_order_seq_cst) == 0) return;
  std::lock_guard lk(b.mu);
  for (poll_link* l = b.head; l != nullptr; l = l->next) {
    poll_waiter* w = l->w;
    if (std::none_of(w->fds, w->fds + w->nfds, [fd](const ::pollfd& p) { return p.fd == fd; })) continue;
    w->kicked.store(true, std::memory_order_release);
    std::uint32_t gen;
    {
      std::lock_guard dl(w->d->lock);
      gen = w->d->gen;
    }
    // Under the bucket's lock, so the waiter cannot leave and release `d` first. Lock order: a
    // bucket's mu, then the record's lock (io_ready takes it); nothing takes them the other way
    // round, and nobody holds two buckets' locks at once.
    detail::io_ready(w->d->index, gen, /*read=*/true, /*write=*/false);
  }
}

namespace {

class poll_registration {
 public:
  // Throws std::bad_alloc (nothing listed then) when a poll spans more buckets than fit inline.
  explicit poll_registration(poll_waiter& w) : w_(w) {
    static const bool hooked = (detail::io_on_fd_closed(&number_closed), true);
    (void)hooked;
    std::size_t n = 0;
    for (::nfds_t i = 0; i < w.nfds; ++i) {
      if (w.fds[i].fd < 0) continue;
      const std::size_t b = bucket_of(w.fds[i].fd);
      if (std::none_of(links_.begin(), links_.begin() + n, [b](const poll_link& l) { return l.bucket == b; }) &&
          std::none_of(more_.begin(), more_.end(), [b](const poll_link& l) { return l.bucket == b; })) {
        poll_link l{&w, b};
        if (n < links_.size()) links_[n++] = l; else more_.push_back(l);
      }
    }
    n_inline_ = n;
    for (std::size_t i = 0; i < n_inline_; ++i) link(links_[i]);
    for (poll_link& l : more_) link(l);
  }
  ~poll_registration() {
    for (std::size_t i = 0; i < n_inline_; ++i) unlink(links_[i]);
    for (poll_link& l : more_) unlink(l);
  }
  poll_registration(const poll_registration&) = delete;
  poll_registration& operator=(const poll_registration&) = delete;

  // `r` is poll_now's outcome. After a kick, entries whose descriptor left the private set
  // (closed, or the number reused for another description) get POLLNVAL, as a poll begun after
  // the close would give them while the number stays closed, and count as ready.
  io_result with_closed(::pollfd* fds, ::nfds_t nfds, io_result r) {
    if (r.value < 0 || !w_.kicked.exchange(false, std::memory_order_acquire)) return r;
    for (::nfds_t i = 0; i < nfds; ++i) {
      if (fds[i].fd < 0) continue;
      ::epoll_event ev = watched_events(fds, i, nfds);  // the same mask: MOD changes nothing
      if (::epoll_ctl(w_.ep, EPOLL_CTL_MOD, fds[i].fd, &ev) == 0) continue;
      int e = last_errno();
      if (e != EBADF && e != ENOENT) continue;  // EPERM: never in the set (a regular file)
      if (fds[i].revents == 0) ++r.value;
      fds[i].revents = POLLNVAL;
    }
    return r;
  }

 private:
  static void link(poll_link& l) {
    poll_bucket& b = poll_buckets()[l.bucket];
    std::lock_guard lk(b.mu);
    l.next = b.head;
    if (b.head != nullptr) b.head->prev = &l;
    b.head = &l;
    b.count.fetch_add(1, std::memory_order_seq_cst);
  }
  static void unlink(poll_link& l) {
    poll_bucket& b = poll_buckets()[l.bucket];
    std::lock_guard lk(b.mu);
    if (l.prev != nullptr) l.prev->next = l.next; else b.head = l.next;
    if (l.next != nullptr) l.next->prev = l.prev;
    b.count.fetch_sub(1, std::memory_order_seq_cst);
  }

  poll_waiter& w_;
  std::array<poll_link, 4> links_{};  // the common case: a few descriptors, no allocation
  std::size_t n_inline_ = 0;
  std::vector<poll_link> more_;       // filled before any link is listed: never moves after
};

}  // namespace

// Parks until one of `fds` is ready or `deadline` passes. The descriptors go into a private,
// level-triggered epoll set, which is itself readable while any of them is ready; that set is
// registered with the runtime's poller like a socket, so the fiber parks in its read slot and
// is woken by the first readiness, with no polling interval. Costs per blocking call: one
// epoll_create1, one epoll_ctl per descriptor, one registration. It leaves the descriptors'
// own registrations and slots alone, so it composes with fibers reading them.
io_result poll_on_fiber(::pollfd* fds, ::nfds_t nfds, steady::time_point deadline) {
  if (io_result r = poll_now(fds, nfds); r.value != 0 || deadline <= steady::now()) return r;
  if (nfds == 0) {
    // A pure sleep. sleep_until(max) may end early at shutdown, hence the loop.
    while (steady::now() < deadline) this_fiber::sleep_until(deadline);
    return ok(0);
  }
  int ep = ::epoll_create1(EPOLL_CLOEXEC);
  if (ep < 0) return poll_backoff(fds, nfds, deadline);
  std::error_code ec;
  io_desc* d = detail::io_register(ep, ec);
  if (d == nullptr) {
    ::close(ep);
    return poll_backoff(fds, nfds, deadline);
  }
  struct release_guard {
    io_desc* d;
    ~release_guard() { detail::io_release(d); }  // closes `ep`
  } guard{d};
  if (!registered_with_poller(d)) return poll_backoff(fds, nfds, deadline);
  // Listed before the descriptors go into the set, so every close from then on kicks it.
  poll_waiter me{fds, nfds, d, ep};
  std::optional<poll_registration> listed;  // leaves the lists before `guard` releases d
  try {
    listed.emplace(me);
  } catch (const std::bad_alloc&) {
    return poll_backoff(fds, nfds, deadline);
  }
  if (!watch_all(ep, fds, nfds)) return poll_backoff(fds, nfds, deadline);
  if (deadline != steady::time_point::max()) detail::io_set_deadline(d, io_dir::read, detail::deadline_ns(deadline));
  std::error_code wait_ec;
  for (;;) {
    // The count first, then the zero-timeout poll (what is ready now), then the wait: an event
    // after the poll makes the wait return at once. A wake-up says the set was readable at
    // some point (or a watched number was closed); another fiber may have consumed it, so
    // poll again and maybe park again.
    std::uint32_t seen = detail::io_events(d, io_dir::read);
    if (io_result r = listed->with_closed(fds, nfds, poll_now(fds, nfds)); r.value != 0) return r;
    if (wait_ec) return ok(0);  // the deadline passed (or the runtime shuts down)
    wait_ec = detail::io_wait(d, io_dir::read, nullptr, seen);
  }
}

namespace {

// The deadline of a poll(2) timeout in ms: negative waits forever.
steady::time_point deadline_after_ms(int timeout) noexcept {
  return timeout < 0 ? steady::time_point::max() : steady::now() + std::chrono::milliseconds(timeout);
}

// The deadline of a timespec timeout (null waits forever), or nullopt for a negative or
// unnormalised one (EINVAL). Far deadlines saturate to forever.
std::optional<steady::time_point> deadline_after(const ::timespec* t) noexcept {
  if (t == nullptr) return steady::time_point::max();
  if (t->tv_sec < 0 || t->tv_nsec < 0 || t->tv_nsec >= 1'000'000'000) return std::nullopt;
  const steady::time_point now = steady::now();
  constexpr std::int64_t max_s = 100LL * 365 * 24 * 3600;  // beyond a century is forever
  if (t->tv_sec >= max_s) return steady::time_point::max();
  return now + std::chrono::seconds(t->tv_sec) + std::chrono::nanoseconds(t->tv_nsec);
}

// What is left of `deadline` in `*t` (zero once passed), as Linux writes back select's timeout.
void store_time_left(steady::time_point deadline, ::timeval* t) noexcept {
  if (t == nullptr || deadline == steady::time_point::max()) return;
  const auto left = std::max(deadline - steady::now(), steady::duration::zero());
  const auto us = std::chrono::ceil<std::chrono::microseconds>(left).count();
  t->tv_sec = static_cast<::time_t>(us / 1'000'000);
  t->tv_usec = static_cast<::suseconds_t>(us % 1'000'000);
}

// select(2) on the poll path: the three sets become one pollfd per descriptor, and the
// outcome is mapped back as Linux's select maps poll bits (readable: POLLIN, POLLHUP or
// POLLERR; writable: POLLOUT or POLLERR; exceptional: POLLPRI). A descriptor not open is
// EBADF, and the sets are then left as they were. Returns the count of bits set.
io_result select_on_fiber(int nfds, ::fd_set* rd, ::fd_set* wr, ::fd_set* ex, steady::time_point deadline) {
  std::vector<::pollfd> fds;
  for (int fd = 0; fd < nfds; ++fd) {
    short events = 0;
    if (rd != nullptr && FD_ISSET(fd, rd)) events |= POLLIN;
    if (wr != nullptr && FD_ISSET(fd, wr)) events |= POLLOUT;
    if (ex != nullptr && FD_ISSET(fd, ex)) events |= POLLPRI;
    if (events != 0) fds.push_back({fd, events, 0});
  }
  auto readable = [](const ::pollfd& p) { return (p.events & POLLIN) != 0 && (p.revents & (POLLIN | POLLHUP | POLLERR)) != 0; };
  auto writable = [](const ::pollfd& p) { return (p.events & POLLOUT) != 0 && (p.revents & (POLLOUT | POLLERR)) != 0; };
  auto urgent = [](const ::pollfd& p) { return (p.events & POLLPRI) != 0 && (p.revents & POLLPRI) != 0; };
  for (;;) {
    io_result r = poll_on_fiber(fds.data(), fds.size(), deadline);
    if (r.value < 0) return r;
    long count = 0;
    for (const ::pollfd& p : fds) {
      if ((p.revents & POLLNVAL) != 0) return fail(EBADF);
      count += readable(p) + writable(p) + urgent(p);
    }
    if (count == 0 && r.value > 0 && steady::now() < deadline) {
      // Ready only in a way select does not report (a hang-up on a descriptor asked for
      // exceptional conditions alone): Linux keeps waiting, so do we, without the descriptors
      // that woke us (poll would report their state at once again). A number of -1 is skipped.
      for (::pollfd& p : fds)
        if (p.revents != 0) p.fd = -1;
      continue;
    }
    for (const ::pollfd& p : fds) {
      if (p.fd < 0) continue;
      if (rd != nullptr && (p.events & POLLIN) != 0 && !readable(p)) FD_CLR(p.fd, rd);
      if (wr != nullptr && (p.events & POLLOUT) != 0 && !writable(p)) FD_CLR(p.fd, wr);
      if (ex != nullptr && (p.events & POLLPRI) != 0 && !urgent(p)) FD_CLR(p.fd, ex);
    }
    if (count == 0) {  // a timeout: every set empty (the descriptors set aside above included)
      if (rd != nullptr) FD_ZERO(rd);
      if (wr != nullptr) FD_ZERO(wr);
      if (ex != nullptr) FD_ZERO(ex);
    }
    return ok(count);
  }
}

}  // namespace

}  // namespace impl

int poll(::pollfd* fds, ::nfds_t nfds, int timeout) {
  impl::stay_on_thread pin;  // errno is set on the thread the call started on
  if (!impl::on_fiber()) return ::poll(fds, nfds, timeout);
  return static_cast<int>(pin.finish(impl::poll_on_fiber(fds, nfds, impl::deadline_after_ms(timeout))));
}

int ppoll(::pollfd* fds, ::nfds_t nfds, const ::timespec* timeout, const ::sigset_t* sigmask) {
  impl::stay_on_thread pin;  // errno is set on the thread the call started on
  // A signal mask is set for the thread, atomically with its wait: no fiber can do that.
  if (!impl::on_fiber() || sigmask != nullptr) return ::ppoll(fds, nfds, timeout, sigmask);
  std::optional<impl::steady::time_point> deadline = impl::deadline_after(timeout);
  if (!deadline) return static_cast<int>(pin.finish(impl::fail(EINVAL)));
  return static_cast<int>(pin.finish(impl::poll_on_fiber(fds, nfds, *deadline)));
}

int select(int nfds, ::fd_set* readfds, ::fd_set* writefds, ::fd_set* exceptfds, ::timeval* timeout) {
  impl::stay_on_thread pin;  // errno is set on the thread the call started on
  if (!impl::on_fiber()) return ::select(nfds, readfds, writefds, exceptfds, timeout);
  if (nfds < 0) return static_cast<int>(pin.finish(impl::fail(EINVAL)));
  nfds = std::min(nfds, FD_SETSIZE);  // as Linux clamps it to its table (an fd_set holds no more)
  std::optional<impl::steady::time_point> deadline = impl::steady::time_point::max();
  if (timeout != nullptr) {
    // As Linux: whole seconds in tv_usec carry over; a negative part is EINVAL.
    const ::timespec ts{timeout->tv_sec + timeout->tv_usec / 1'000'000,
                        static_cast<long>(timeout->tv_usec % 1'000'000) * 1000};
    deadline = impl::deadline_after(&ts);
    if (!deadline) return static_cast<int>(pin.finish(impl::fail(EINVAL)));
  }
  impl::io_result r = impl::select_on_fiber(nfds, readfds, writefds, exceptfds, *deadline);
  impl::store_time_left(*deadline, timeout);
  return static_cast<int>(pin.finish(r));
}

int pselect(int nfds, ::fd_set* readfds, ::fd_set* writefds, ::fd_set* exceptfds, const ::timespec* timeout,
            const ::sigset_t* sigmask) {
  impl::stay_on_thread pin;  // errno is set on the thread the call started on
  if (!impl::on_fiber() || sigmask != nullptr) return ::pselect(nfds, readfds, writefds, exceptfds, timeout, sigmask);
  if (nfds < 0) return static_cast<int>(pin.finish(impl::fail(EINVAL)));
  nfds = std::min(nfds, FD_SETSIZE);
  std::optional<impl::steady::time_point> deadline = impl::deadline_after(timeout);
  if (!deadline) return static_cast<int>(pin.finish(impl::fail(EINVAL)));
  return static_cast<int>(pin.finish(impl::select_on_fiber(nfds, readfds, writefds, exceptfds, *deadline)));
}

}  // namespace weft::posix
