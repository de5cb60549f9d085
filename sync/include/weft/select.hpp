// weft::select: waits on several channel operations at once and completes exactly one, like
// Go's select. Cases: receive (case_recv), send (case_send), a timeout (case_timeout or
// case_deadline), a stop request (case_stop) and a non-blocking default (case_default). When
// several channel cases are ready one is chosen at random, so none starves. A stop already
// requested when select is called wins over ready channel cases (cancellation is prompt; Go,
// which treats ctx.Done() as one more case, picks at random). With several timeout cases the
// earliest fires. The calling fiber parks (a plain thread blocks) until a case completes.
//
//   int v;
//   weft::select_result r = weft::select(weft::case_recv(in, v), weft::case_send(out, 7),
//                                        weft::case_timeout(10ms));
//   if (r.index == 0 && r.status == weft::channel_status::ok) use(v);
#pragma once

#include <weft/detail/cxx20.hpp>

#include <chrono>
#include <cstddef>
#include <optional>
#include <stdexcept>
#include <stop_token>
#include <tuple>
#include <type_traits>
#include <utility>

#include <weft/channel.hpp>

namespace weft {

/// Which case completed (its position among select's arguments) and how: ok or closed for a
/// channel case, timeout for the timeout case, canceled for the stop case, empty for default.
struct select_result {
  std::size_t index;
  channel_status status;
};

namespace detail {
struct select_op {
  channel_core* ch;
  bool send;
  void* slot;  // send: T* to move from; receive: std::optional<T>* to move into
};
struct select_outcome {
  int index;  // into the ops array; -1 for default, timeout or stop
  channel_status status;
};
/// The select engine (channel.cpp).
select_outcome select_ops(select_op* ops, std::size_t n, bool has_default, deadline_t deadline,
                          const std::stop_token* st);
}  // namespace detail

template <class T>
struct recv_case {
  channel<T>& ch;
  T& out;
  std::optional<T> slot{};
};
template <class T>
struct send_case {
  channel<T>& ch;
  T* src;                 // an rvalue argument, moved from only if this case completes; or null:
  std::optional<T> own;   // the copy of an lvalue argument
};
struct timeout_case {
  std::chrono::steady_clock::time_point deadline;
};
struct stop_case {
  std::stop_token token;
};
struct default_case {};

/// A case that receives from `ch` into `out` (assigned only if this case completes with ok).
template <class T>
recv_case<T> case_recv(channel<T>& ch, T& out) {
  return {ch, out};
}
/// A case that sends `v` on `ch`. An rvalue `v` of type T (std::move(x), a temporary) is moved
/// from only if this case completes with ok, so a move-only value that was not sent stays with
/// the caller; the case refers to it, so pass the case straight to select, in the same
/// statement (select refuses a send case held in a variable; `select(std::move(c))` gets past
/// that check and is the caller's risk). One object may not be moved into two send cases
/// (select throws std::invalid_argument). Any other `v` is copied (or converted) into the case.
template <class T, class U>
send_case<T> case_send(channel<T>& ch, U&& v) {
  if constexpr (std::is_same_v<U, T>) {
    return {ch, &v, std::nullopt};
  } else {
    return {ch, nullptr, T(std::forward<U>(v))};
  }
}
/// A case that completes with `timeout` after `d`.
template <class Rep, class Period>
timeout_case case_timeout(const std::chrono::duration<Rep, Period>& d) {
  return {detail::deadline_after(d)};
}
template <class Clock, class Duration>
timeout_case case_deadline(const std::chrono::time_point<Clock, Duration>& t) {
  return {detail::to_steady(t)};
}
/// A case that completes with `canceled` once stop is requested on `st`.
inline stop_case case_stop(std::stop_token st) { return {std::move(st)}; }
/// Makes select non-blocking: when no other case is ready, it completes with `empty`.
inline default_case case_default() { return {}; }

namespace detail {
template <class C>
inline constexpr bool is_send_case = false;
template <class T>
inline constexpr bool is_send_case<send_case<T>> = true;

template <class C>
struct case_traits {
  static constexpr bool is_channel = false;
};
template <class T>
struct case_traits<recv_case<T>> {
  static constexpr bool is_channel = true;
  static select_op op(recv_case<T>& c) { return {&c.ch, false, &c.slot}; }
  static void finish(recv_case<T>& c) { c.out = std::move(*c.slot); }
};
template <class T>
struct case_traits<send_case<T>> {
  static constexpr bool is_channel = true;
  static select_op op(send_case<T>& c) { return {&c.ch, true, c.src != nullptr ? c.src : &*c.own}; }
  static void finish(send_case<T>&) {}
};
}  // namespace detail

/// Waits until one case completes and returns which (see select_result). At most one channel
/// case takes effect; the others leave their channels and values untouched.
template <class... Cases>
select_result select(Cases&&... cases) {
  constexpr std::size_t total = sizeof...(Cases);
  static_assert((0 + ... + std::is_same_v<std::remove_cvref_t<Cases>, stop_case>) <= 1,
                "weft::select: at most one case_stop (combine tokens with one std::stop_source)");
  static_assert((0 + ... + std::is_same_v<std::remove_cvref_t<Cases>, default_case>) <= 1,
                "weft::select: at most one case_default");
  static_assert((0 + ... + (detail::is_send_case<std::remove_cvref_t<Cases>> && std::is_lvalue_reference_v<Cases>)) == 0,
                "weft::select: pass case_send(ch, v) straight to select; it may refer to v, which a "
                "temporary outlives only until the end of the statement");
  std::tuple<Cases&...> all(cases...);
  detail::select_op ops[total > 0 ? total : 1];
  std::size_t arg_of_op[total > 0 ? total : 1];
  std::size_t n = 0;
  bool has_default = false;
  std::size_t default_index = 0, timeout_index = 0, stop_index = 0;
  detail::deadline_t deadline;
  const std::stop_token* st = nullptr;
  auto visit = [&]<std::size_t I>(std::integral_constant<std::size_t, I>) {
    using C = std::remove_cvref_t<std::tuple_element_t<I, std::tuple<Cases...>>>;
    auto& c = std::get<I>(all);
    if constexpr (detail::case_traits<C>::is_channel) {
      ops[n] = detail::case_traits<C>::op(c);
      arg_of_op[n++] = I;
    } else if constexpr (std::is_same_v<C, timeout_case>) {
      if (!deadline || c.deadline < *deadline) {  // the earliest timeout case is the one that fires
        deadline = c.deadline;
        timeout_index = I;
      }
    } else if constexpr (std::is_same_v<C, stop_case>) {
      st = &c.token;
      stop_index = I;
    } else {
      static_assert(std::is_same_v<C, default_case>, "weft::select: not a select case");
      has_default = true;
      default_index = I;
    }
  };
  [&]<std::size_t... I>(std::index_sequence<I...>) {
    (visit(std::integral_constant<std::size_t, I>{}), ...);
  }(std::make_index_sequence<total>{});
  // Two send cases given one object with std::move would both move from it (two receivers at
  // once): refused. The same lvalue in several cases is fine: each case holds its own copy.
  for (std::size_t i = 0; i < n; ++i)
    for (std::size_t j = 0; j < i; ++j)
      if (ops[i].send && ops[j].send && ops[i].slot == ops[j].slot)
        throw std::invalid_argument(
            "weft::select: one object given with std::move to two send cases; pass it as an lvalue (each case "
            "copies it) or give each case its own object");
  if (st != nullptr && st->stop_requested()) return {stop_index, channel_status::canceled};
  detail::select_outcome r = detail::select_ops(ops, n, has_default, deadline, st);
  if (r.index < 0) {
    if (has_default && r.status != channel_status::timeout && r.status != channel_status::canceled)
      return {default_index, channel_status::empty};
    return {r.status == channel_status::timeout ? timeout_index : stop_index, r.status};
  }
  std::size_t arg = arg_of_op[r.index];
  if (r.status == channel_status::ok) {
    [&]<std::size_t... I>(std::index_sequence<I...>) {
      ((I == arg ? [&] {
         using C = std::remove_cvref_t<std::tuple_element_t<I, std::tuple<Cases...>>>;
         if constexpr (detail::case_traits<C>::is_channel) detail::case_traits<C>::finish(std::get<I>(all));
       }() : void()), ...);
    }(std::make_index_sequence<total>{});
  }
  return {arg, r.status};
}

}  // namespace weft
