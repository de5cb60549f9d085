// Stack overflow reporting: a SIGSEGV handler, run on a per-thread alternate signal stack,
// that recognises a fault in the running fiber's guard region and ends the process with
// `weft: stack overflow in fiber <id> "<name>"`. Any other fault is passed on to the handler
// that was installed before ours (or the default action), so crashes stay crashes.
#include <signal.h>
#include <sys/mman.h>
#include <unistd.h>

#include <cstdlib>
#include <cstring>
#include <mutex>

#include "../scheduler.hpp"

namespace weft::detail {
namespace {

struct sigaction g_previous;
std::once_flag g_install_once;
constexpr std::size_t altstack_size = 64 * 1024;
thread_local void* t_altstack = nullptr;

void write_all(const char* s, std::size_t n) noexcept {
  while (n > 0) {
    ssize_t k = ::write(STDERR_FILENO, s, n);
    if (k <= 0) return;
    s += k;
    n -= static_cast<std::size_t>(k);
  }
}

void on_segv(int sig, siginfo_t* info, void* uctx) {
  thread_state* ts = thread_state_ptr();
  fiber_cb* f = ts->w != nullptr ? ts->w->current : ts->unwinding;
  if (f != nullptr) {
    const void* lo;
    const void* hi;
    stack_pool::guard_range(f, &lo, &hi);
    if (info->si_addr >= lo && info->si_addr < hi) {
      // Only async-signal-safe calls from here on: the message is formatted by hand.
      char msg[384];
      std::size_t n = 0;
      auto put = [&](const char* s) {
        while (*s != '\0' && n < sizeof msg - 1) msg[n++] = *s++;
      };
      auto put_number = [&](unsigned long long v) {
        char digits[24];
        int k = 0;
        do {
          digits[k++] = static_cast<char>('0' + v % 10);
          v /= 10;
        } while (v != 0 && k < 24);
        while (k > 0 && n < sizeof msg - 1) msg[n++] = digits[--k];
      };
      put("weft: stack overflow in fiber ");
      put_number(f->id);
      put(" \"");
      put(f->name);
      put("\" (stack size ");
      put_number(f->rt->opts.stack_size / 1024);
      // Ordering: relaxed; set before the runtime ran any fiber.
      put(f->rt->is_default.load(std::memory_order_relaxed)
              ? " KiB; the default runtime takes WEFT_STACK_SIZE, e.g. WEFT_STACK_SIZE=8M)\n"
              : " KiB; raise runtime_options::stack_size)\n");
      write_all(msg, n);
      ::signal(SIGABRT, SIG_DFL);
      ::abort();
    }
  }
  // Not ours: hand over to the previous disposition.
  if (g_previous.sa_flags & SA_SIGINFO) {
    if (g_previous.sa_sigaction != nullptr) {
      g_previous.sa_sigaction(sig, info, uctx);
      return;
    }
  } else if (g_previous.sa_handler != SIG_DFL && g_previous.sa_handler != SIG_IGN && g_previous.sa_handler != nullptr) {
    g_previous.sa_handler(sig);
    return;
  }
  ::signal(SIGSEGV, SIG_DFL);  // return and re-fault with the default action: a core dump
}

}  // namespace

void install_overflow_handler() noexcept {
  std::call_once(g_install_once, [] {
    struct sigaction sa;
    std::memset(&sa, 0, sizeof sa);
    sa.sa_sigaction = on_segv;
    sa.sa_flags = SA_SIGINFO | SA_ONSTACK;
    sigemptyset(&sa.sa_mask);
    ::sigaction(SIGSEGV, &sa, &g_previous);
  });
}

bool thread_altstack_init() noexcept {
  if (t_altstack != nullptr) return false;  // this thread has one already
  void* p = ::mmap(nullptr, altstack_size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (p == MAP_FAILED) return false;  // overflows then die with a plain SIGSEGV
  stack_t ss;
  ss.ss_sp = p;
  ss.ss_size = altstack_size;
  ss.ss_flags = 0;
  if (::sigaltstack(&ss, nullptr) != 0) {
    ::munmap(p, altstack_size);
    return false;
  }
  t_altstack = p;
  return true;
}

void thread_altstack_fini() noexcept {
  if (t_altstack == nullptr) return;
  stack_t ss;
  std::memset(&ss, 0, sizeof ss);
  ss.ss_flags = SS_DISABLE;
  ::sigaltstack(&ss, nullptr);
  ::munmap(t_altstack, altstack_size);
  t_altstack = nullptr;
}

}  // namespace weft::detail
