// Every public header includes this first: weft is C++20, and without it the first error a
// compiler prints is somewhere deep in a header (a defaulted operator==, a concept).
#pragma once

// <= 201703L: GCC 10 and Clang 9 report 201709L for -std=c++20 (and miss parts weft uses).
#if __cplusplus <= 201703L && !(defined(_MSVC_LANG) && _MSVC_LANG > 201703L)
#error "weft needs C++20: compile with -std=c++20 (CMake: target_link_libraries(... weft::weft) sets cxx_std_20)"
#endif
