// quick_start: the README's quick start, kept compiling. A runtime with two workers, a spawned
// fiber whose result comes back through join(), and a channel drained with range-for.
#include <weft/weft.hpp>

#include <cstdio>

int main() {
  weft::runtime rt(weft::runtime_options{.workers = 2, .stack_size = 256 * 1024, .guard_pages = true});
  long r = rt.block_on([] {                       // runs on a fiber of rt, returns its result
    weft::join_handle<long> h = weft::spawn([] { return 41L; });
    weft::this_fiber::yield();
    return h.join() + 1;                          // join() returns the result or rethrows
  });

  weft::channel<int> ch(0);                       // 0 = rendezvous, as in Go
  rt.block_on([&] {
    weft::task_group g;                           // children share a stop source
    g.spawn([&] { for (int i = 0; i < 3; ++i) ch.send(i); ch.close(); });
    for (int v : ch) std::printf("got %d\n", v);  // range-for until closed and drained
    g.join();                                     // rethrows the first child failure
  });
  return r == 42 ? 0 : 1;
}
