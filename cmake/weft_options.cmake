# weft_target_options(target): the one place for warnings and sanitizer flags.
function(weft_target_options target)
  target_compile_options(${target} PRIVATE -Wall -Wextra -Wpedantic)
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
