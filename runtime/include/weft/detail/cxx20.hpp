// Every public header includes this first: weft is C++20, and without it the first error a
// compiler prints is somewhere deep in a header (a defaulted operator==, a concept).
#pragma once

#if __cplusplus < 202002L && !(defined(_MSVC_LANG) && _MSVC_LANG >= 202002L)
#error "weft needs C++20: compile with -std=c++20 (CMake: target_link_libraries(... weft::weft) sets cxx_std_20)"
#endif
