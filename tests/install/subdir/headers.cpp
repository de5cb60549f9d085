// Every public header, compiled in the parent project with -Werror (tests/install/subdir).
#include <weft/weft.hpp>

#ifdef NDEBUG
#error "NDEBUG is defined in a parent project configured without a build type"
#endif

int use_weft() {
  return weft::run_blocking([] { return 1; });
}
