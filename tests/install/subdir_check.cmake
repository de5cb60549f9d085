# Configures tests/install/subdir (a parent project that vendors weft with add_subdirectory) and
# builds its two object targets, which check what a vendored weft must leave alone. Run as:
# cmake -DSOURCE_DIR=... -DWORK_DIR=... -DCXX=... -P subdir_check.cmake
file(REMOVE_RECURSE "${WORK_DIR}")
execute_process(COMMAND "${CMAKE_COMMAND}" -S "${SOURCE_DIR}/tests/install/subdir" -B "${WORK_DIR}" -G Ninja
                        "-DWEFT_SOURCE_DIR=${SOURCE_DIR}" "-DCMAKE_CXX_COMPILER=${CXX}"
                RESULT_VARIABLE rc)
if(rc)
  message(FATAL_ERROR "configuring a parent project with add_subdirectory(weft) failed: ${rc}")
endif()
execute_process(COMMAND "${CMAKE_COMMAND}" --build "${WORK_DIR}" --target headers parent_only RESULT_VARIABLE rc)
if(rc)
  message(FATAL_ERROR "building the parent's targets failed: ${rc}")
endif()
