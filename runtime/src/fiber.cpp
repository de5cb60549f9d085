// Fiber lifecycle (create, start, exit, join, release) and the public fiber, this_fiber and
// runtime entry points. Exit protocol: the body runs, fiber_local values are destroyed, the
// joiner is woken, then the fiber switches to the next one and its "running" reference is
// dropped on the next context (the stack returns to the pool only when the handle is gone too).
#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <cstdio>
#include <exception>
#include <cstring>
#include <thread>

#include <weft/fiber.hpp>
#include <weft/runtime.hpp>

#include "scheduler.hpp"

namespace weft::detail {

void fls_destroy_fiber(fiber_cb* f) noexcept;

namespace {

void set_name_bytes(fiber_cb* f, const char* name, std::size_t n) noexcept {
  n = std::min(n, sizeof f->name - 1);
  std::memcpy(f->name, name, n);
  f->name[n] = '\0';
}

void after_exit(void* arg) noexcept {
  auto* f = static_cast<fiber_cb*>(arg);
  f->state.store(fiber_state::done, std::memory_order_relaxed);
  f->rt->release_ref(f);
}

}  // namespace

std::uint64_t reserve_task_ids(std::uint64_t n) noexcept {
  static std::atomic<std::uint64_t> next{1};  // Ordering: relaxed, uniqueness only
  return next.fetch_add(n, std::memory_order_relaxed);
}

std::uint64_t current_task_id() noexcept {
  if (fiber_cb* f = current_fiber()) return f->id;
  static thread_local std::uint64_t id = reserve_task_ids(1);
  return id;
}

fiber_cb* current_fiber() noexcept {
  thread_state* ts = thread_state_ptr();
  return ts->w != nullptr ? ts->w->current : ts->unwinding;
}

bool current_runtime_unwinding() noexcept { return thread_state_ptr()->unwinding != nullptr; }

runtime_impl* unwinding_runtime() noexcept {
  fiber_cb* f = thread_state_ptr()->unwinding;
  return f != nullptr ? f->rt : nullptr;
}

exit_target fiber_main(void* arg) noexcept {
  auto* f = static_cast<fiber_cb*>(arg);
  runtime_impl* rt = f->rt;
  f->started = true;
  // Ordering: acquire pairs with the release store in runtime_impl::unwind_all.
  if (!rt->unwinding.load(std::memory_order_acquire)) {
    try {
      f->body->run();
    } catch (const forced_unwind&) {
      f->unwound = true;
    }
  } else {
    f->unwound = true;
  }
  fls_destroy_fiber(f);
  // Ordering: acq_rel: release publishes the result to join(); acquire reads the joiner's ticket.
  std::uintptr_t joiner = f->join_word.exchange(1, std::memory_order_acq_rel);
  // The joiner runs next, or after its other children queued here (wake_joiner).
  if (joiner > 1) {
    wake_joiner(*reinterpret_cast<const wait_ticket*>(joiner));
    // Ordering: release pairs with the acquire load in fiber_join's undo.
    f->joiner_released.store(true, std::memory_order_release);
  }
  // The body (a detached fiber's result) is destroyed by whichever of the fiber and its handle
  // lets go of it last: here, on the fiber, if the handle is gone; else by the handle's release
  // (fiber_release), which sees refs_exited. Never in the exit hook (after_exit), which runs
  // on the next context, where a destructor that waits would park a fiber not its own.
  // A count of 1 is this fiber's own reference: the handle is gone and cannot come back, so
  // the common detached case needs no read-modify-write.
  // Ordering: the load's acquire and the fetch_or's acq_rel pair with the handle's CAS
  // decrement in fiber_release (its writes are seen before the body goes here); the
  // fetch_or's release pairs with that CAS loop's acquire load, so a handle that sees
  // refs_exited sees the finished body. Once refs_exited is set with the handle still held,
  // this fiber no longer touches the body.
  std::uint32_t refs = f->refs.load(std::memory_order_acquire);
  if ((refs & refs_count) != 1) refs = f->refs.fetch_or(refs_exited, std::memory_order_acq_rel);
  if ((refs & refs_count) == 1 && f->body != nullptr) {
    f->body->destroy();
    f->body = nullptr;
  }
  thread_state* ts = thread_state_ptr();
  worker* w = ts->w;
  if (w == nullptr) {  // unwound at shutdown by a plain thread
    rt->finished_outside.fetch_add(1, std::memory_order_relaxed);
    return {ts->unwind_return, after_exit, f};
  }
  worker_counters::bump(w->counters.finished);
  worker_counters::bump(w->counters.switches);
  fiber_cb* next = w->next_local();
  if (next != nullptr) {
    worker::check_resumable(next);
    w->current = next;
    w->running_hint.store(next, std::memory_order_relaxed);
    next->state.store(fiber_state::running, std::memory_order_relaxed);
    next->last_worker = w->index;
    return {&next->ctx, after_exit, f};
  }
  w->current = nullptr;
  w->running_hint.store(nullptr, std::memory_order_relaxed);
  return {&w->main_ctx, after_exit, f};
}

fiber_cb* fiber_create(const spawn_params& params, void** payload) {
  runtime_impl* rt = params.rt;
  if (rt == nullptr) {
    fiber_cb* cur = current_fiber();
    rt = cur != nullptr ? cur->rt : default_runtime_impl();
  }
  // Ordering: acquire pairs with the release store in runtime_impl::stop_workers.
  if (rt->stopping.load(std::memory_order_acquire))
    throw std::system_error(std::make_error_code(std::errc::operation_canceled),
                            "weft: cannot spawn a fiber: its runtime is shutting down");
  worker* w = this_worker();
  if (w != nullptr && w->rt != rt) w = nullptr;
  fiber_cb* f = rt->pool.acquire(w != nullptr ? &w->stacks : nullptr);
  f->rt = rt;
  f->body = nullptr;
  if (w != nullptr && w->next_id == w->id_limit) {
    w->next_id = reserve_task_ids(1024);
    w->id_limit = w->next_id + 1024;
  }
  {
    std::lock_guard lk(f->diag_mu);  // see fiber_cb::diag_mu
    f->id = w != nullptr ? w->next_id++ : reserve_task_ids(1);
    f->state.store(fiber_state::created, std::memory_order_relaxed);
    if (params.name != nullptr) set_name_bytes(f, params.name, std::strlen(params.name)); else f->name[0] = '\0';
  }
  f->waiting_on.store(nullptr, std::memory_order_relaxed);
  f->refs.store(2, std::memory_order_relaxed);
  f->join_word.store(0, std::memory_order_relaxed);
  f->joiner_released.store(false, std::memory_order_relaxed);
  {
    fiber_cb* spawner = w != nullptr ? w->current : nullptr;
    f->spawner_id.store(spawner != nullptr ? spawner->id : 0, std::memory_order_relaxed);
  }
  f->home_worker = params.pinned ? static_cast<int>(w != nullptr ? w->index : 0) : -1;
  f->unwound = false;
  f->started = false;
  f->fls = nullptr;
  f->fiber = f;
  auto hi = reinterpret_cast<std::uintptr_t>(stack_pool::stack_high(f));
  std::uintptr_t align = params.payload_align < 16 ? 16 : params.payload_align;
  std::uintptr_t body_at = (hi - params.payload_size) & ~(align - 1);
  *payload = reinterpret_cast<void*>(body_at);
  std::uintptr_t ctx_top = (body_at - 64) & ~std::uintptr_t{63};
  context_make(f->ctx, stack_pool::stack_low(f), reinterpret_cast<void*>(ctx_top), fiber_main, f);
  return f;
}

void fiber_start(fiber_cb* f, fiber_body* body) {
  f->body = body;
  worker* w = this_worker();
  if (w != nullptr && w->rt == f->rt) {
    worker_counters::bump(w->counters.spawned);
  } else {
    f->rt->spawned_outside.fetch_add(1, std::memory_order_relaxed);
  }
  f->rt->schedule(f, /*lifo=*/true);
}

void fiber_release(fiber_cb* f) noexcept {
  if (fiber_orphaned(f)) return;  // its runtime is gone (stack_pool::~stack_pool)
  if (f->body == nullptr && f->refs.load(std::memory_order_relaxed) == 2) {
    // Created but never started (the body's constructor threw): nothing runs, drop both.
    f->refs.store(1, std::memory_order_relaxed);
    f->state.store(fiber_state::done, std::memory_order_relaxed);
    f->rt->release_ref(f);
    return;
  }
  // Who destroys the body (see fiber_main): the fiber, if this decrement comes before its
  // fetch_or of refs_exited; else this handle, before its reference goes (the body lives on
  // the fiber's stack, which the last reference frees).
  // Ordering: acquire (load and failed CAS) pairs with fiber_main's acq_rel fetch_or; the
  // successful CAS is acq_rel so that the fiber, seeing the count at 1, sees this thread's
  // last use of the result (join's take) before it destroys it. Not exited, the fiber still
  // holds its reference: this decrement is never the last one.
  std::uint32_t r = f->refs.load(std::memory_order_acquire);
  while ((r & refs_exited) == 0) {
    if (f->refs.compare_exchange_weak(r, r - 1, std::memory_order_acq_rel, std::memory_order_acquire)) return;
  }
  if (f->body != nullptr) f->body->destroy();
  f->body = nullptr;
  f->rt->release_ref(f);
}

bool fiber_was_unwound(const fiber_cb* f) noexcept { return f->unwound; }
bool fiber_orphaned(const fiber_cb* f) noexcept { return f->rt == nullptr; }
std::uint64_t fiber_id(const fiber_cb* f) noexcept { return f->id; }

void fiber_join(fiber_cb* f) {
  // Ordering: acquire pairs with the exchange in fiber_main (the result is visible).
  if (f->join_word.load(std::memory_order_acquire) == 1) return;
  if (unwinding_runtime() == f->rt) {
    unwind_join(thread_state_ptr()->unwinding, f);  // shutdown: finish it now instead of waiting
    return;
  }
  wait_ticket t = prepare_wait("join");
  struct publish_arg {
    fiber_cb* f;
    const wait_ticket* t;
    bool stored = false;  // the ticket went into join_word (written by the publish step)
  } arg{f, &t};
  struct unpublish_on_unwind {
    fiber_cb* f;
    const publish_arg* a;
    bool armed = true;  // cleared once park() returned; still set if it threw forced_unwind
    ~unpublish_on_unwind() {
      // Unwound at shutdown while waiting: take our ticket (on this dying stack) back out of
      // the joined fiber's join_word, or its exit would wake freed memory.
      if (!armed || !a->stored) return;
      std::uintptr_t expected = reinterpret_cast<std::uintptr_t>(a->t);
      if (f->join_word.compare_exchange_strong(expected, 0, std::memory_order_acq_rel, std::memory_order_relaxed))
        return;
      // Too late: the fiber (of another runtime, or finishing on another thread) has taken the
      // ticket and its exit step is reading it. Ordering: acquire pairs with its release.
      while (!f->joiner_released.load(std::memory_order_acquire)) std::this_thread::yield();
    }
  } undo{f, &arg};
  park(t, std::nullopt,
       [](void* p) {
         auto* a = static_cast<publish_arg*>(p);
         std::uintptr_t expected = 0;
         // Written before the CAS: once it succeeds, the fiber's exit may resume us at once,
         // and nothing of our stack may be touched from here after that.
         a->stored = true;
         // Ordering: release publishes the ticket to the exiting fiber's acq_rel exchange.
         if (!a->f->join_word.compare_exchange_strong(expected, reinterpret_cast<std::uintptr_t>(a->t),
                                                      std::memory_order_acq_rel, std::memory_order_acquire)) {
           a->stored = false;
           a->t->wake();  // already finished
         }
       },
       &arg);
  undo.armed = false;
  // Ordering: the waker's CAS on our wait_word (acq_rel) follows its acquire of join_word.
  while (f->join_word.load(std::memory_order_acquire) != 1) {
    // Only reachable when the wait was canceled by shutdown; unwinding has finished it.
    if (unwinding_runtime() == f->rt) {
      unwind_join(thread_state_ptr()->unwinding, f);
      return;
    }
    std::this_thread::yield();
  }
}

void terminate_escaped_exception(const char* what) noexcept {
  fiber_cb* f = current_fiber();
  std::fprintf(stderr, "weft: exception escaped fiber %llu \"%s\": %s\n",
               static_cast<unsigned long long>(f != nullptr ? f->id : 0), f != nullptr ? f->name : "", what);
  std::fflush(stderr);
  std::terminate();
}

spawn_params to_params(const spawn_options& o) noexcept {
  spawn_params p;
  p.rt = o.runtime != nullptr ? runtime_of(*o.runtime) : nullptr;
  p.name = o.name;
  p.pinned = o.pinned;
  return p;
}

join_guard::join_guard(fiber_cb* f) noexcept : counted_(nullptr) {
  fiber_cb* me = current_fiber();
  if (me == nullptr || me->rt != f->rt) {
    counted_ = f->rt;
    counted_->outside_joiners.fetch_add(1, std::memory_order_relaxed);
  }
}

join_guard::~join_guard() {
  // Ordering: release pairs with the acquire load in runtime_impl::shutdown; nothing of the
  // runtime is touched after this.
  if (counted_ != nullptr) counted_->outside_joiners.fetch_sub(1, std::memory_order_release);
}

runtime_impl* runtime_of(const runtime& rt) noexcept { return rt.impl_; }
runtime_impl* default_runtime_impl() { return runtime_of(runtime::default_runtime()); }

}  // namespace weft::detail

namespace weft {

using namespace weft::detail;

runtime::runtime(runtime_options options) : impl_(new runtime_impl(options)) { impl_->facade = this; }
runtime::~runtime() { delete impl_; }
runtime_stats runtime::stats() const { return impl_->stats(); }
const runtime_options& runtime::options() const noexcept { return impl_->opts; }

std::vector<fiber_info> runtime::fibers() const {
  std::vector<fiber_cb*> blocks;
  blocks.reserve(impl_->pool.mapped() + 64);
  impl_->pool.for_each([&](fiber_cb* f) { blocks.push_back(f); });
  // Control blocks are type-stable (fiber_cb.hpp), so they may be read after the pool's lock
  // is released; each one's id and name are read together under its diag_mu.
  std::vector<fiber_info> out;
  for (fiber_cb* f : blocks) {
    fiber_info info;
    fiber_state s;
    {
      std::lock_guard lk(f->diag_mu);
      s = f->state.load(std::memory_order_relaxed);
      info.id = f->id;
      info.name = f->name;
    }
    switch (s) {
      case fiber_state::created: info.status = fiber_status::created; break;
      case fiber_state::runnable: info.status = fiber_status::runnable; break;
      case fiber_state::running: info.status = fiber_status::running; break;
      case fiber_state::parked:
      case fiber_state::parked_unwinding:
      case fiber_state::unwind_suspended: info.status = fiber_status::parked; break;
      case fiber_state::free:
      case fiber_state::done: continue;
    }
    if (info.status == fiber_status::parked) {
      const char* w = f->waiting_on.load(std::memory_order_relaxed);
      if (w == nullptr) w = f->wait_kind.load(std::memory_order_relaxed);
      info.waiting_on = w != nullptr ? w : "";
    }
    out.push_back(std::move(info));
  }
  std::sort(out.begin(), out.end(), [](const fiber_info& a, const fiber_info& b) { return a.id < b.id; });
  return out;
}

runtime* runtime::current() noexcept {
  fiber_cb* f = current_fiber();
  return f != nullptr ? f->rt->facade : nullptr;
}

namespace {

// Parses "262144", "512K", "8M", "1G" (binary units); false if malformed.
bool parse_size(const char* s, std::size_t& out) {
  char* end = nullptr;
  const int saved = errno;  // the caller's errno survives starting the default runtime
  errno = 0;
  unsigned long long v = std::strtoull(s, &end, 10);
  const bool range_error = errno != 0;
  errno = saved;
  if (end == s || range_error || s[0] == '-') return false;
  unsigned shift = 0;
  if (*end == 'K' || *end == 'k') shift = 10;
  if (*end == 'M' || *end == 'm') shift = 20;
  if (*end == 'G' || *end == 'g') shift = 30;
  if (shift != 0) ++end;
  if (*end != '\0' || v > (~0ULL >> shift)) return false;
  out = static_cast<std::size_t>(v << shift);
  return true;
}

// The default runtime's options: runtime_options{} with WEFT_WORKERS and WEFT_STACK_SIZE
// applied (a program ported by renaming has no other place to set them). A malformed value is
// reported and ignored.
runtime_options default_runtime_options() {
  runtime_options o;
  if (const char* w = std::getenv("WEFT_WORKERS"); w != nullptr && w[0] != '\0') {
    std::size_t v = 0;
    if (parse_size(w, v) && v <= max_workers && std::strspn(w, "0123456789") == std::strlen(w)) {
      o.workers = static_cast<unsigned>(v);
    } else {
      std::fprintf(stderr, "weft: WEFT_WORKERS=%s: wants a worker count 0..1024 (0 = one per core); ignored\n", w);
    }
  }
  if (const char* z = std::getenv("WEFT_STACK_SIZE"); z != nullptr && z[0] != '\0') {
    std::size_t v = 0;
    if (parse_size(z, v) && v >= min_stack_size && v <= max_stack_size) {
      o.stack_size = v;
    } else {
      std::fprintf(stderr,
                   "weft: WEFT_STACK_SIZE=%s: wants a stack size from 16K to 1G, such as 8M; ignored (%zu KiB)\n", z,
                   o.stack_size / 1024);
    }
  }
  return o;
}

}  // namespace

runtime& runtime::default_runtime() {
  // Never destroyed: fibers may still run while static destructors do. Its workers end with
  // the process, as detached std::threads do.
  static runtime* rt = [] {
    auto* r = new runtime(default_runtime_options());
    runtime_of(*r)->is_default.store(true, std::memory_order_relaxed);
    return r;
  }();
  return *rt;
}

void detail::check_joinable(detail::fiber_cb* cb, const char* who) {
  // std::thread's error codes, with what went wrong in words (its what() is only the code's).
  if (cb == nullptr) {
    throw std::system_error(std::make_error_code(std::errc::invalid_argument),
                            std::string(who) + ": not joinable (never started, moved from, already joined or detached)");
  }
  if (cb == detail::current_fiber()) {
    throw std::system_error(std::make_error_code(std::errc::resource_deadlock_would_occur),
                            std::string(who) + ": a fiber cannot join itself");
  }
  if (detail::fiber_orphaned(cb)) {  // stack_pool::~stack_pool: the stack, and result, are gone
    throw std::system_error(std::make_error_code(std::errc::no_such_process),
                            std::string(who) + ": fiber " + std::to_string(cb->id) + " \"" + cb->name +
                                "\" outlived its runtime: the weft::runtime it ran on was destroyed first, "
                                "and its result, if any, with it; join or detach a fiber before its runtime goes");
  }
}

void fiber::join_as(const char* who) {
  check_joinable(cb_, who);
  join_guard outside(cb_);
  fiber_join(cb_);
  fiber_release(std::exchange(cb_, nullptr));
}

void fiber::detach_as(const char* who) {
  if (cb_ == nullptr) detail::check_joinable(cb_, who);  // throws
  fiber_release(std::exchange(cb_, nullptr));
}

void fiber::on_joinable_lost(const char* what) noexcept {
  // At shutdown, or after it (the fiber's runtime is gone, so it was unwound): nothing runs.
  if (current_runtime_unwinding() || detail::fiber_orphaned(cb_)) {
    fiber_release(std::exchange(cb_, nullptr));
    return;
  }
  std::fprintf(stderr, "weft: weft::fiber %llu \"%s\" %s while joinable (join or detach it first)\n",
               static_cast<unsigned long long>(cb_->id), cb_->name, what);
  std::fflush(stderr);
  std::terminate();
}

unsigned fiber::hardware_concurrency() noexcept {
  // The default runtime's worker count (WEFT_WORKERS, else one per core), without starting it.
  static const unsigned workers = [] {
    unsigned w = default_runtime_options().workers;
    return w != 0 ? w : std::max(1u, std::thread::hardware_concurrency());
  }();
  return workers;
}

namespace this_fiber {

fiber::id get_id() noexcept {
  // On a plain thread: the thread's own id from the same space (as std::this_thread::get_id,
  // unique and never empty), so ported code that keys maps by it keeps working.
  return fiber::id(current_task_id());
}

void set_name(std::string_view name) noexcept {
  if (fiber_cb* f = current_fiber()) {
    std::lock_guard lk(f->diag_mu);
    set_name_bytes(f, name.data(), name.size());
  }
}

void set_waiting_on(const char* what) noexcept {
  if (fiber_cb* f = current_fiber()) f->waiting_on.store(what, std::memory_order_relaxed);
}

std::string name() {
  fiber_cb* f = current_fiber();
  return f != nullptr ? std::string(f->name) : std::string();
}

void pin() noexcept {
  thread_state* ts = thread_state_ptr();
  if (ts->w != nullptr) ts->w->current->home_worker = static_cast<int>(ts->w->index);
}

void unpin() noexcept {
  if (fiber_cb* f = current_fiber()) f->home_worker = -1;
}

bool is_pinned() noexcept {
  fiber_cb* f = current_fiber();
  return f != nullptr && f->home_worker >= 0;
}

int worker_index() noexcept {
  worker* w = this_worker();
  return w != nullptr ? static_cast<int>(w->index) : -1;
}

void yield() {
  thread_state* ts = thread_state_ptr();
  worker* w = ts->w;
  if (w == nullptr) {
    if (ts->unwinding != nullptr) {
      unwind_suspend(ts->unwinding);  // shutdown: the other fibers being unwound go first
    } else {
      std::this_thread::yield();
    }
    return;
  }
  fiber_cb* self = w->current;
  runtime_impl* rt = w->rt;
  if (rt->opts.migrate_on_yield && rt->workers.size() > 1 && self->home_worker < 0) {
    struct hand_off {
      fiber_cb* f;
      worker* to;
    } h{self, rt->workers[(w->index + 1) % rt->workers.size()].get()};
    self->state.store(fiber_state::runnable, std::memory_order_relaxed);
    w->switch_away(self, [](void* p) {
      auto* a = static_cast<hand_off*>(p);
      fiber_cb* f = a->f;
      worker* to = a->to;  // copy before publishing: `a` lives on f's stack
      to->inbox.push(f);
      f->rt->notify_worker(to);
    }, &h);
    return;
  }
  // One switch, straight to the next fiber; with nothing else runnable, keep running —
  // unless the runtime is stopping: then back to the scheduler loop, so it can stop.
  fiber_cb* next = w->next_local();
  if (next == nullptr && w->poll_due) {
    // A yielding fiber holds no lock: poll for I/O right here (see worker::next_local).
    w->poll_due = false;
    rt->poll_io_now();
    next = w->next_local();
  }
  if (next == nullptr && !rt->stopping.load(std::memory_order_relaxed)) return;
  self->state.store(fiber_state::runnable, std::memory_order_relaxed);
  w->switch_to(self, next, [](void* p) {
    auto* f = static_cast<fiber_cb*>(p);
    f->rt->schedule(f, /*lifo=*/false, /*new_work=*/false);
  }, self);
}

void sleep_until(std::chrono::steady_clock::time_point t) {
  if (current_fiber() == nullptr) {
    std::this_thread::sleep_until(t);
    return;
  }
  wait_ticket ticket = prepare_wait("sleep");
  park(ticket, t);
}

}  // namespace this_fiber
}  // namespace weft
