// weft::channel<T>: Go's channels for fibers (and plain threads). Capacity 0 is a rendezvous:
// a send completes when a receiver takes the value. close() wakes every waiter; receivers drain
// what is buffered first and then get `closed`; a send on a closed channel returns `closed`.
// Results are statuses, never exceptions. weft::select (weft/select.hpp) waits on several.
#pragma once

#include <weft/detail/cxx20.hpp>

#include <chrono>
#include <cstddef>
#include <optional>
#include <stop_token>
#include <utility>
#include <vector>

#include <weft/detail/wait_list.hpp>

namespace weft {

/// The outcome of a channel operation.
enum class channel_status {
  ok,        ///< sent or received
  closed,    ///< the channel is closed (and, for a receive, drained)
  empty,     ///< try_recv: nothing to receive now
  full,      ///< try_send: no room and no receiver now
  timeout,   ///< the deadline passed
  canceled,  ///< stop was requested
};

const char* to_string(channel_status s) noexcept;

namespace detail {

/// The type-independent part of a channel: the lock, the waiter queues and the protocol.
/// Senders' waiter slots point at the value to send (T*); receivers' at a std::optional<T>.
class channel_core {
 public:
  explicit channel_core(std::size_t capacity) noexcept : capacity_(capacity) {}
  virtual ~channel_core() = default;
  channel_core(const channel_core&) = delete;
  channel_core& operator=(const channel_core&) = delete;

  // With lock_ held: complete a send of *src / a receive into *dst now if possible.
  // With lock_ held; a waiter handed a value is claimed into `wakes`, to be resumed after unlock.
  channel_status try_send_locked(void* src, pending_wakes& wakes);
  channel_status try_recv_locked(void* dst, pending_wakes& wakes);

  /// Sends or receives, parking until done, `deadline` or stop. `src`/`dst` as above.
  channel_status send_wait(void* src, deadline_t deadline, const std::stop_token* st);
  channel_status recv_wait(void* dst, deadline_t deadline, const std::stop_token* st);
  channel_status try_send(void* src);
  channel_status try_recv(void* dst);

  bool close() noexcept;
  bool is_closed() const noexcept;
  std::size_t size() const noexcept;
  std::size_t capacity() const noexcept { return capacity_; }

  spinlock lock_;
  wait_list recvq_;  // guarded by lock_
  wait_list sendq_;  // guarded by lock_

 protected:
  // Buffer operations, with lock_ held.
  virtual void buffer_push(void* src) = 0;     // move *(T*)src to the back
  virtual void buffer_pop(void* dst) = 0;      // move the front into *(optional<T>*)dst
  virtual void buffer_unpush(void* src) = 0;   // move the back out into *(T*)src (undo)
  virtual void transfer(void* dst, void* src) = 0;  // optional<T> dst <- move(T src)
  virtual void untransfer(void* src, void* dst) = 0;  // undo transfer
  std::size_t count_ = 0;  // guarded by lock_

 private:
  channel_status wait_one(bool send, void* slot, deadline_t deadline, const std::stop_token* st);
  // wait_one's parking half: with lock_ held, queues the caller and parks.
  [[gnu::noinline]] channel_status park_locked(bool send, void* slot, deadline_t deadline, const std::stop_token* st);
  const std::size_t capacity_;
  bool closed_ = false;  // guarded by lock_
};

/// Marks on a waiter, written under the channel lock before its ticket is woken.
constexpr std::uintptr_t woken_by_close = 1;

}  // namespace detail

template <class T>
class channel : public detail::channel_core {
 public:
  /// A channel with room for `capacity` values (0: rendezvous).
  explicit channel(std::size_t capacity) : channel_core(capacity), ring_(capacity) {}
  ~channel() override = default;

  /// Sends `v`, parking while there is neither room nor a receiver. Returns ok or closed. Every
  /// send leaves an rvalue `v` with the caller unless it returns ok: a move-only value that was
  /// not sent (closed, timeout, canceled, full) is still the caller's (a hand-off that loses a
  /// race with a timeout moves it out and back, so T must be move-assignable). An lvalue is
  /// copied.
  channel_status send(T&& v) { return send_wait(&v, std::nullopt, nullptr); }
  channel_status send(const T& v) { return send(T(v)); }
  /// As send(), and returns canceled once stop is requested on `st`.
  channel_status send(T&& v, const std::stop_token& st) { return send_wait(&v, std::nullopt, &st); }
  channel_status send(const T& v, const std::stop_token& st) { return send(T(v), st); }
  /// Sends only if it can complete at once: ok, closed or full.
  channel_status try_send(T&& v) { return channel_core::try_send(&v); }
  channel_status try_send(const T& v) { return try_send(T(v)); }
  /// As send(), and returns timeout once `d` has passed (or the time `t` is reached).
  template <class Rep, class Period>
  channel_status send_for(T&& v, const std::chrono::duration<Rep, Period>& d) {
    return send_wait(&v, detail::deadline_after(d), nullptr);
  }
  template <class Rep, class Period>
  channel_status send_for(const T& v, const std::chrono::duration<Rep, Period>& d) {
    return send_for(T(v), d);
  }
  template <class Clock, class Duration>
  channel_status send_until(T&& v, const std::chrono::time_point<Clock, Duration>& t) {
    return send_wait(&v, detail::to_steady(t), nullptr);
  }
  template <class Clock, class Duration>
  channel_status send_until(const T& v, const std::chrono::time_point<Clock, Duration>& t) {
    return send_until(T(v), t);
  }

  /// Receives into `out`, parking while the channel is empty and open. Returns ok, or closed
  /// once closed and drained. `out` is assigned only on ok.
  channel_status recv(T& out) { return receive(out, std::nullopt, nullptr); }
  /// As recv(), and returns canceled once stop is requested on `st`.
  channel_status recv(T& out, const std::stop_token& st) { return receive(out, std::nullopt, &st); }
  /// Receives only if a value (or the close) is there now: ok, closed or empty.
  channel_status try_recv(T& out) {
    std::optional<T> v;
    channel_status s = channel_core::try_recv(&v);
    if (s == channel_status::ok) out = std::move(*v);
    return s;
  }
  template <class Rep, class Period>
  channel_status recv_for(T& out, const std::chrono::duration<Rep, Period>& d) {
    return receive(out, detail::deadline_after(d), nullptr);
  }
  template <class Clock, class Duration>
  channel_status recv_until(T& out, const std::chrono::time_point<Clock, Duration>& t) {
    return receive(out, detail::to_steady(t), nullptr);
  }

  /// Closes the channel: wakes every waiter. Returns false if it was already closed.
  bool close() noexcept { return channel_core::close(); }
  bool closed() const noexcept { return is_closed(); }
  std::size_t size() const noexcept { return channel_core::size(); }
  std::size_t capacity() const noexcept { return channel_core::capacity(); }

  /// Range-for over received values until the channel is closed and drained.
  class iterator {
   public:
    iterator() = default;
    explicit iterator(channel* c) : c_(c) { ++*this; }
    T& operator*() { return *v_; }
    iterator& operator++() {
      v_.reset();  // received straight into the optional: T needs no default constructor
      if (c_->recv_wait(&v_, std::nullopt, nullptr) != channel_status::ok) c_ = nullptr;
      return *this;
    }
    bool operator==(const iterator& o) const { return c_ == o.c_; }

   private:
    channel* c_ = nullptr;
    std::optional<T> v_;
  };
  iterator begin() { return iterator(this); }
  iterator end() { return iterator(); }

 private:
  channel_status receive(T& out, detail::deadline_t deadline, const std::stop_token* st) {
    std::optional<T> v;  // per call: an operation that does not complete leaves `out` alone
    channel_status s = recv_wait(&v, deadline, st);
    if (s == channel_status::ok) out = std::move(*v);
    return s;
  }

  void buffer_push(void* src) override {
    ring_[(head_ + count_) % ring_.size()].emplace(std::move(*static_cast<T*>(src)));
    ++count_;
  }
  void buffer_pop(void* dst) override {
    static_cast<std::optional<T>*>(dst)->emplace(std::move(*ring_[head_]));
    ring_[head_].reset();
    head_ = (head_ + 1) % ring_.size();
    --count_;
  }
  void buffer_unpush(void* src) override {
    std::size_t back = (head_ + count_ - 1) % ring_.size();
    *static_cast<T*>(src) = std::move(*ring_[back]);
    ring_[back].reset();
    --count_;
  }
  void transfer(void* dst, void* src) override {
    static_cast<std::optional<T>*>(dst)->emplace(std::move(*static_cast<T*>(src)));
  }
  void untransfer(void* src, void* dst) override {
    auto* d = static_cast<std::optional<T>*>(dst);
    *static_cast<T*>(src) = std::move(**d);
    d->reset();
  }

  std::vector<std::optional<T>> ring_;  // guarded by lock_
  std::size_t head_ = 0;                // guarded by lock_
};

}  // namespace weft
