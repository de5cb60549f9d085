# Runs the std and the weft build of the porting program and fails unless both succeed and
# print exactly the same output, and unless the renamed source (PORTED) names no std type or
# namespace of the thread library any more (a missed spelling compiles: weft's headers include
# <thread>, and a fiber would block its worker in std::this_thread::sleep_for).
file(STRINGS "${PORTED}" left REGEX "std::(this_thread|j?thread|(recursive_|shared_)?(timed_)?mutex|condition_variable(_any)?|counting_semaphore|binary_semaphore|latch|barrier|once_flag|call_once|future|shared_future|promise|packaged_task|async)([^_a-z]|$)")
if(left)
  message(FATAL_ERROR "the rename left std thread-library names in ${PORTED}:\n${left}")
endif()
execute_process(COMMAND "${STD}" OUTPUT_VARIABLE std_out RESULT_VARIABLE std_rc)
execute_process(COMMAND "${WEFT}" OUTPUT_VARIABLE weft_out RESULT_VARIABLE weft_rc)
message(STATUS "std build:\n${std_out}")
message(STATUS "weft build:\n${weft_out}")
if(NOT std_rc EQUAL 0 OR NOT weft_rc EQUAL 0)
  message(FATAL_ERROR "exit codes differ from 0: std ${std_rc}, weft ${weft_rc}")
endif()
if(NOT std_out STREQUAL weft_out)
  message(FATAL_ERROR "the weft port prints something else than the std program")
endif()
