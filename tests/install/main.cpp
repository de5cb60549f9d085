// Built against the installed weft package: spawns fibers on a runtime and checks the result.
#include <weft/weft.hpp>

#include <cstdio>

int main() {
  weft::runtime rt(weft::runtime_options{.workers = 2});
  long r = rt.block_on([] {
    weft::join_handle<long> h = weft::spawn([] { return 41L; });
    weft::this_fiber::yield();
    return h.join() + 1;
  });
  std::printf("consumer: %ld\n", r);
  return r == 42 ? 0 : 1;
}
