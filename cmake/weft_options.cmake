# Link-time optimisation. The park/wake path of every primitive crosses the runtime, sync and io
# libraries and the caller's own code (channel -> wait_in -> park -> switch_away -> switch_to ->
# context_switch); only LTO inlines across them (docs/benchmarks.md: the one-worker channel round
# trip 224 -> 133 ns). With WEFT_LTO the libraries are compiled to fat objects (machine code and
# GCC's bytecode): a program linked without LTO, or by another compiler, uses the machine code
# as before; one linked with LTO (CMAKE_INTERPROCEDURAL_OPTIMIZATION, -flto) inlines weft into
# itself. The samples and benchmarks here link with LTO; the tests do not (it would only make CI
# slower). GCC only (clang 14 cannot make fat objects), optimised builds without sanitizers.
set(_weft_lto_default OFF)
if(CMAKE_CXX_COMPILER_ID STREQUAL "GNU" AND NOT WEFT_SANITIZE AND CMAKE_BUILD_TYPE MATCHES "^(Release|RelWithDebInfo)$")
  set(_weft_lto_default ON)
endif()
option(WEFT_LTO "Compile the weft libraries for link-time optimisation (fat objects) and link samples and benchmarks with it"
       ${_weft_lto_default})
if(WEFT_LTO)
  include(CheckIPOSupported)
  check_ipo_supported(RESULT _weft_ipo_ok OUTPUT _weft_ipo_why LANGUAGES CXX)
  if(NOT _weft_ipo_ok)
    message(WARNING "WEFT_LTO: link-time optimisation is not supported here (${_weft_ipo_why}); building without it")
    set(WEFT_LTO OFF CACHE BOOL "" FORCE)
  endif()
endif()

# Stack probes. A fiber's stack has a 64 KiB guard below it; a function whose frame is larger
# moves the stack pointer past the guard in one step and writes into what lies below (another
# stack, or unmapped memory: a bare SIGSEGV). -fstack-clash-protection makes such functions
# touch each page on the way down, so the first touch past the stack hits the guard and the
# overflow is reported with the fiber's name. It costs a probe per page of large frames only.
# Debian's GCC and Clang do not enable it by default, so weft::runtime passes it on to the code
# that links it (the fibers' bodies are the user's code).
option(WEFT_STACK_PROBES "Compile weft and the code that links it with -fstack-clash-protection" ON)

# weft_target_options(target): the one place for warnings, sanitizer and LTO flags.
function(weft_target_options target)
  target_compile_options(${target} PRIVATE -Wall -Wextra -Wpedantic)
  get_target_property(_type ${target} TYPE)
  if(WEFT_LTO AND _type STREQUAL "STATIC_LIBRARY")
    set_property(TARGET ${target} PROPERTY INTERPROCEDURAL_OPTIMIZATION ON)
    # After CMake's -fno-fat-lto-objects: the last of the two wins.
    target_compile_options(${target} PRIVATE -ffat-lto-objects)
  endif()
endfunction()

# Sanitizers apply to everything built in this tree (the library, tests, samples), so flags are
# global: mixing instrumented and uninstrumented code hides reports.
if(WEFT_SANITIZE)
  string(REPLACE "," ";" _weft_sans "${WEFT_SANITIZE}")
  foreach(_s IN LISTS _weft_sans)
    if(NOT _s MATCHES "^(address|undefined|thread)$")
      message(FATAL_ERROR "WEFT_SANITIZE: unknown sanitizer '${_s}' (use address,undefined or thread)")
    endif()
  endforeach()
  add_compile_options(-fsanitize=${WEFT_SANITIZE} -fno-omit-frame-pointer -fno-sanitize-recover=undefined)
  add_link_options(-fsanitize=${WEFT_SANITIZE})
  if("thread" IN_LIST _weft_sans)
    add_compile_definitions(WEFT_TSAN=1)
  endif()
  if("address" IN_LIST _weft_sans)
    add_compile_definitions(WEFT_ASAN=1)
  endif()
endif()
