# Link-time optimisation. The park/wake path of every primitive crosses the runtime, sync and io
# libraries and the caller's own code (channel -> wait_in -> park -> switch_away -> switch_to ->
# context_switch); only LTO inlines across them (docs/benchmarks.md: the one-worker channel round
# trip 224 -> 133 ns). With WEFT_LTO the libraries are compiled to fat objects (machine code and
# GCC's bytecode). In this build tree (samples, benchmarks, a project that vendors weft with
# add_subdirectory) GCC's linker plugin finds the bytecode and optimises weft into the program,
# even one linked without -flto; clang uses the machine code. The tests link without LTO (it
# would only make CI slower). GCC only (clang 14 cannot make fat objects), optimised builds
# without sanitizers. The installed archives hold machine code only (weft_install_strip_lto):
# bytecode is tied to one GCC version (another one fails with "bytecode stream ... generated with
# LTO version 12.0") and would make every link of a user's program an LTO link.
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

# weft_install_strip_lto(targets...): after install(TARGETS), removes GCC's LTO bytecode from
# the installed archives of these static libraries (what Debian's dh_strip does to static
# libraries), leaving their machine code.
function(weft_install_strip_lto)
  if(NOT WEFT_LTO)
    return()
  endif()
  if(NOT CMAKE_OBJCOPY)
    message(WARNING "WEFT_LTO: no objcopy found; the installed archives keep GCC's LTO bytecode and "
                    "link only with GCC ${CMAKE_CXX_COMPILER_VERSION}")
    return()
  endif()
  set(_template [[
    set(_a "$ENV{DESTDIR}@_libdir@/$<TARGET_FILE_NAME:@_t@>")
    execute_process(COMMAND "@CMAKE_OBJCOPY@" --remove-section=.gnu.lto_* --remove-section=.gnu.debuglto_*
                            --strip-symbol=__gnu_lto_v1 --strip-symbol=__gnu_lto_slim "${_a}"
                    RESULT_VARIABLE _rc)
    if(_rc)
      message(FATAL_ERROR "removing LTO bytecode from ${_a} failed (@CMAKE_OBJCOPY@: ${_rc})")
    endif()
  ]])
  if(IS_ABSOLUTE "${CMAKE_INSTALL_LIBDIR}")
    set(_libdir "${CMAKE_INSTALL_LIBDIR}")
  else()
    set(_libdir "\${CMAKE_INSTALL_PREFIX}/${CMAKE_INSTALL_LIBDIR}")  # the prefix of install time
  endif()
  foreach(_t IN LISTS ARGN)
    string(CONFIGURE "${_template}" _code @ONLY)
    install(CODE "${_code}")
  endforeach()
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
