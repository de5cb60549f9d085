# Runs the std and the weft build of the porting program and fails unless both succeed and
# print exactly the same output.
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
