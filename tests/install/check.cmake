# Installs the build tree into a scratch prefix, builds tests/install against it with
# find_package(weft) and runs the consumer. Run as: cmake -DBUILD_DIR=... -DSOURCE_DIR=...
# -DWORK_DIR=... -P check.cmake
file(REMOVE_RECURSE "${WORK_DIR}")
execute_process(COMMAND "${CMAKE_COMMAND}" --install "${BUILD_DIR}" --prefix "${WORK_DIR}/prefix"
                RESULT_VARIABLE rc OUTPUT_QUIET)
if(rc)
  message(FATAL_ERROR "install into ${WORK_DIR}/prefix failed: ${rc}")
endif()
# The installed archives carry no GCC LTO bytecode: it would tie them to this GCC version
# ("bytecode stream ... generated with LTO version 12.0 instead of the expected 11.3") and make
# every link of a user's program an LTO link (cmake/weft_options.cmake, weft_install_strip_lto).
file(GLOB archives "${WORK_DIR}/prefix/lib*/libweft_*.a")
if(NOT archives)
  message(FATAL_ERROR "no libweft_*.a installed under ${WORK_DIR}/prefix")
endif()
foreach(a IN LISTS archives)
  file(STRINGS "${a}" lto LIMIT_COUNT 1 REGEX "\\.gnu\\.lto_")
  if(lto)
    message(FATAL_ERROR "${a} still holds GCC LTO bytecode (section ${lto})")
  endif()
endforeach()
execute_process(COMMAND "${CMAKE_COMMAND}" -S "${SOURCE_DIR}/tests/install" -B "${WORK_DIR}/build" -G Ninja
                        "-DCMAKE_PREFIX_PATH=${WORK_DIR}/prefix" "-DCMAKE_CXX_COMPILER=${CXX}"
                RESULT_VARIABLE rc)
if(rc)
  message(FATAL_ERROR "configuring the consumer with find_package(weft) failed: ${rc}")
endif()
execute_process(COMMAND "${CMAKE_COMMAND}" --build "${WORK_DIR}/build" RESULT_VARIABLE rc)
if(rc)
  message(FATAL_ERROR "building the consumer failed: ${rc}")
endif()
execute_process(COMMAND "${WORK_DIR}/build/consumer" RESULT_VARIABLE rc)
if(rc)
  message(FATAL_ERROR "the consumer failed: ${rc}")
endif()
# A component weft does not have is refused with a message naming it and the real ones.
file(WRITE "${WORK_DIR}/bad-component/CMakeLists.txt"
     "cmake_minimum_required(VERSION 3.25)\nproject(bad LANGUAGES CXX)\nfind_package(weft REQUIRED COMPONENTS runtime netz)\n")
execute_process(COMMAND "${CMAKE_COMMAND}" -S "${WORK_DIR}/bad-component" -B "${WORK_DIR}/bad-component/build"
                        "-DCMAKE_PREFIX_PATH=${WORK_DIR}/prefix" "-DCMAKE_CXX_COMPILER=${CXX}"
                RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE out)
if(NOT rc OR NOT out MATCHES "weft has no component 'netz'; its components are runtime, sync and io")
  message(FATAL_ERROR "find_package(weft COMPONENTS netz) did not say what is wrong (exit ${rc}):\n${out}")
endif()
