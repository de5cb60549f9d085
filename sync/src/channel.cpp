// The channel protocol (see weft/channel.hpp) and select (weft/select.hpp), after Go's hchan
// and selectgo: one lock per channel; a sender hands its value straight to a parked receiver
// (or the buffer); a receiver takes from the buffer and refills it from a parked sender.
// Invariant: data moves into a waiter's slot before its ticket is claimed, with the channel
// lock held; if the claim fails (the waiter is leaving by timeout, stop, or another select case
// won) the move is undone under the same lock, so every value is received exactly once. A
// claimed waiter is resumed only after the lock is released (pending_wakes): it may destroy the
// channel as soon as it runs.
#include <weft/channel.hpp>
#include <weft/select.hpp>

#include <algorithm>
#include <new>
#include <cstdio>
#include <cstdlib>
#include <exception>

namespace weft {

const char* to_string(channel_status s) noexcept {
  switch (s) {
    case channel_status::ok: return "ok";
    case channel_status::closed: return "closed";
    case channel_status::empty: return "empty";
    case channel_status::full: return "full";
    case channel_status::timeout: return "timeout";
    case channel_status::canceled: return "canceled";
  }
  return "?";
}

namespace detail {

channel_status channel_core::try_send_locked(void* src, pending_wakes& wakes) {
  if (closed_) return channel_status::closed;
  while (waiter* w = recvq_.pop_front()) {
    transfer(w->slot, src);
    w->granted = true;
    if (wakes.claim(w)) return channel_status::ok;
    w->granted = false;
    untransfer(src, w->slot);
  }
  if (count_ < capacity_) {
    buffer_push(src);
    return channel_status::ok;
  }
  return channel_status::full;
}

channel_status channel_core::try_recv_locked(void* dst, pending_wakes& wakes) {
  if (count_ > 0) {
    buffer_pop(dst);
    while (waiter* w = sendq_.pop_front()) {  // a parked sender refills the slot we freed
      buffer_push(w->slot);
      w->granted = true;
      if (wakes.claim(w)) break;
      w->granted = false;
      buffer_unpush(w->slot);
    }
    return channel_status::ok;
  }
  while (waiter* w = sendq_.pop_front()) {
    transfer(dst, w->slot);
    w->granted = true;
    if (wakes.claim(w)) return channel_status::ok;
    w->granted = false;
    untransfer(w->slot, dst);
  }
  return closed_ ? channel_status::closed : channel_status::empty;
}

channel_status channel_core::try_send(void* src) {
  pending_wakes wakes;  // resumed after the unlock: a woken receiver may destroy the channel
  std::lock_guard lk(lock_);
  return try_send_locked(src, wakes);
}

channel_status channel_core::try_recv(void* dst) {
  pending_wakes wakes;
  std::lock_guard lk(lock_);
  return try_recv_locked(dst, wakes);
}

channel_status channel_core::send_wait(void* src, deadline_t deadline, const std::stop_token* st) {
  return wait_one(true, src, deadline, st);
}

channel_status channel_core::recv_wait(void* dst, deadline_t deadline, const std::stop_token* st) {
  return wait_one(false, dst, deadline, st);
}

channel_status channel_core::wait_one(bool send, void* slot, deadline_t deadline, const std::stop_token* st) {
  {
    pending_wakes wakes;  // resumed after the unlock: the woken side may destroy the channel
    lock_.lock();
    channel_status s = send ? try_send_locked(slot, wakes) : try_recv_locked(slot, wakes);
    if (s == channel_status::ok || s == channel_status::closed) {
      lock_.unlock();
      return s;
    }
    // full or empty: nothing was claimed, so `wakes` is empty and the lock stays held.
  }
  return park_locked(send, slot, deadline, st);
}

channel_status channel_core::park_locked(bool send, void* slot, deadline_t deadline, const std::stop_token* st) {
  // A select of one case without its generality (lock ordering, poll order, relocking after a
  // wake): a waker that completes our operation dequeues us and fills in `granted`/`tag` under
  // the lock before its wake succeeds, so a notified waiter reads them without the lock; only a
  // timeout or a stop relocks (wait_in) to leave the queue. Out of line, so the operations that
  // complete at once (the other half of every hand-off) carry no waiter record or stop guard.
  waiter node;
  node.ticket = prepare_wait(send ? "channel send" : "channel recv");
  node.slot = slot;
  wait_list& q = send ? sendq_ : recvq_;
  q.push_back(&node);
  stop_guard guard(st, node.ticket);
  wake_reason r = wake_reason::notified;
  void (*publish)(void*) = [](void* g) { static_cast<stop_guard*>(g)->published(); };
  // Without a token that can stop, the publish step is the unlock alone.
  bool granted = wait_in(lock_, q, node, deadline, guard.armed() ? publish : nullptr, &guard, &r);
  if (granted) return channel_status::ok;
  if (r == wake_reason::notified) {
    // Invariant: only a completed transfer (granted) or close() wakes a channel waiter.
    if (node.tag != woken_by_close) {
      std::fprintf(stderr, "weft: internal error: channel waiter woken without a value or a close\n");
      std::abort();
    }
    return channel_status::closed;
  }
  return r == wake_reason::timed_out ? channel_status::timeout : channel_status::canceled;
}

bool channel_core::close() noexcept {
  pending_wakes wakes;  // resumed after the unlock
  std::lock_guard lk(lock_);
  if (closed_) return false;
  closed_ = true;
  for (wait_list* q : {&recvq_, &sendq_}) {
    while (waiter* w = q->pop_front()) {
      w->tag = woken_by_close;
      w->granted = false;
      if (!wakes.claim(w)) w->tag = 0;  // it is leaving anyway (another case, timeout, stop)
    }
  }
  return true;
}

bool channel_core::is_closed() const noexcept {
  std::lock_guard lk(const_cast<spinlock&>(lock_));
  return closed_;
}

std::size_t channel_core::size() const noexcept {
  std::lock_guard lk(const_cast<spinlock&>(lock_));
  return count_;
}

namespace {

constexpr std::size_t max_select_ops = 64;

// Not inlined: select parks after calling it, and the thread-local state must be found on the
// thread that runs the next call.
[[gnu::noinline]] std::uint32_t poll_random() noexcept {
  static thread_local std::uint32_t s = 0x9e3779b9u ^ static_cast<std::uint32_t>(reinterpret_cast<std::uintptr_t>(&s));
  s ^= s << 13;
  s ^= s >> 17;
  s ^= s << 5;
  return s;
}

struct lock_set {
  channel_core* chans[max_select_ops];
  std::size_t n = 0;
  void lock() noexcept {
    for (std::size_t i = 0; i < n; ++i) chans[i]->lock_.lock();
  }
  void unlock() noexcept {
    for (std::size_t i = n; i-- > 0;) chans[i]->lock_.unlock();
  }
};

struct select_publish {
  lock_set* locks;
  stop_guard* guard;
};

}  // namespace

select_outcome select_ops(select_op* ops, std::size_t n, bool has_default, deadline_t deadline,
                          const std::stop_token* st) {
  if (n > max_select_ops) {
    std::fprintf(stderr, "weft::select: %zu channel cases; at most %zu are supported\n", n, max_select_ops);
    std::abort();
  }
  // Lock order: by address, each channel once (Go's lockorder), so selects cannot deadlock.
  lock_set locks;
  for (std::size_t i = 0; i < n; ++i) locks.chans[locks.n++] = ops[i].ch;
  std::sort(locks.chans, locks.chans + locks.n);
  locks.n = static_cast<std::size_t>(std::unique(locks.chans, locks.chans + locks.n) - locks.chans);
  // Poll order: random, so no ready case starves another (Go's pollorder).
  std::size_t order[max_select_ops];
  for (std::size_t i = 0; i < n; ++i) {
    std::size_t j = poll_random() % (i + 1);  // inside-out Fisher-Yates
    order[i] = i;
    std::swap(order[i], order[j]);
  }
  pending_wakes wakes;  // resumed after the unlocks
  locks.lock();
  for (std::size_t k = 0; k < n; ++k) {
    select_op& op = ops[order[k]];
    channel_status s = op.send ? op.ch->try_send_locked(op.slot, wakes) : op.ch->try_recv_locked(op.slot, wakes);
    if (s == channel_status::ok || s == channel_status::closed) {
      locks.unlock();
      return {static_cast<int>(order[k]), s};
    }
  }
  if (has_default) {
    locks.unlock();
    return {-1, n == 1 ? (ops[0].send ? channel_status::full : channel_status::empty) : channel_status::empty};
  }
  // Only the n records needed (a whole array of 64 would be zero-filled on every blocking op).
  alignas(waiter) unsigned char node_storage[sizeof(waiter) * max_select_ops];
  waiter* nodes = reinterpret_cast<waiter*>(node_storage);
  for (std::size_t i = 0; i < n; ++i) ::new (&nodes[i]) waiter();
  wait_ticket ticket = prepare_wait("select");
  for (std::size_t i = 0; i < n; ++i) {
    nodes[i].ticket = ticket;
    nodes[i].slot = ops[i].slot;
    (ops[i].send ? ops[i].ch->sendq_ : ops[i].ch->recvq_).push_back(&nodes[i]);
  }
  stop_guard guard(st, ticket);
  select_publish pub{&locks, &guard};
  struct unlink_on_unwind {
    lock_set& locks;
    waiter* nodes;
    select_op* ops;
    std::size_t n;
    bool armed = true;  // cleared once park() returned; still set if it threw forced_unwind
    ~unlink_on_unwind() {
      // Unwound at shutdown while parked: the nodes live on this dying stack.
      if (!armed) return;
      locks.lock();
      for (std::size_t i = 0; i < n; ++i)
        if (nodes[i].linked) (ops[i].send ? ops[i].ch->sendq_ : ops[i].ch->recvq_).remove(&nodes[i]);
      locks.unlock();
    }
  } undo{locks, nodes, ops, n};
  wake_reason r = park_until(ticket, deadline,
                       [](void* p) {
                         auto* sp = static_cast<select_publish*>(p);
                         // The guard and the lock set live on the parked stack: finish with
                         // them before the channel locks make the waiter visible. A stop seen
                         // here wakes the fiber, which then waits for the locks we still hold.
                         sp->guard->published();
                         lock_set copy;  // unlocking the first lock may let the fiber run
                         copy.n = sp->locks->n;
                         for (std::size_t i = 0; i < copy.n; ++i) copy.chans[i] = sp->locks->chans[i];
                         copy.unlock();
                       },
                       &pub);
  undo.armed = false;
  // Dequeue from every channel; at most one node was granted or closed-on.
  locks.lock();
  select_outcome out{-1, r == wake_reason::timed_out ? channel_status::timeout : channel_status::canceled};
  for (std::size_t i = 0; i < n; ++i) {
    waiter& w = nodes[i];
    if (w.linked) {
      (ops[i].send ? ops[i].ch->sendq_ : ops[i].ch->recvq_).remove(&w);
    } else if (w.granted) {
      out = {static_cast<int>(i), channel_status::ok};
    } else if (w.tag == woken_by_close) {
      out = {static_cast<int>(i), channel_status::closed};
    }
  }
  locks.unlock();
  return out;
}

}  // namespace detail
}  // namespace weft
