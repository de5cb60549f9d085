#!/usr/bin/env bash
# The porting check's rename: turns a program written against the std thread library into a
# weft program by changing include lines and names only (design.md, "The porting map").
# Usage: scripts/port_to_weft.sh < std_program.cpp > weft_program.cpp
# `using std::thread;` becomes `using thread = weft::fiber;` (the code goes on saying thread;
# not inside a list such as `using std::thread, std::mutex;`, and not for names reached through
# `using namespace std;`, which the script cannot see);
# std::this_thread is renamed wherever it appears (namespace aliases, using-directives).
# Kept verbatim, as the map says: std::lock_guard, unique_lock, scoped_lock, shared_lock,
# std::chrono, std::cv_status, std::future_status, std::launch, std::stop_token.
# Blocking POSIX calls written with the global qualifier (::accept, ::recv, ::poll, ::close, ...)
# become weft::posix:: calls (a qualified name such as foo::close is left alone); <weft/posix.hpp>
# is added after <unistd.h>, which a program calling them includes for close(). Calls that never
# block (::socket, ::bind, ::listen, ::shutdown, ::setsockopt) stay libc's.
set -euo pipefail
sed -E \
  -e 's|#include <thread>|#include <weft/fiber.hpp>|' \
  -e 's|#include <mutex>|#include <mutex>\n#include <weft/mutex.hpp>|' \
  -e 's|#include <shared_mutex>|#include <shared_mutex>\n#include <weft/shared_mutex.hpp>|' \
  -e 's|#include <condition_variable>|#include <weft/condition_variable.hpp>|' \
  -e 's|#include <latch>|#include <weft/latch.hpp>|' \
  -e 's|#include <barrier>|#include <weft/barrier.hpp>|' \
  -e 's|#include <semaphore>|#include <weft/semaphore.hpp>|' \
  -e 's|#include <future>|#include <future>\n#include <weft/future.hpp>|' \
  -e 's|#include <unistd.h>|#include <unistd.h>\n#include <weft/posix.hpp>|' \
  -e 's/using[[:space:]]+(::)?std::(j?)thread[[:space:]]*;/using \2thread = weft::\2fiber;/g' \
  -e 's/std::this_thread\b/weft::this_fiber/g' \
  -e 's/std::jthread\b/weft::jfiber/g' \
  -e 's/std::thread\b/weft::fiber/g' \
  -e 's/std::(recursive_timed_mutex|recursive_mutex|timed_mutex|shared_timed_mutex|shared_mutex|mutex)\b/weft::\1/g' \
  -e 's/std::(condition_variable_any|condition_variable)\b/weft::\1/g' \
  -e 's/std::(counting_semaphore|binary_semaphore|latch|barrier)\b/weft::\1/g' \
  -e 's/std::(once_flag|call_once)\b/weft::\1/g' \
  -e 's/std::(shared_future|future|promise|packaged_task|async)\b/weft::\1/g' \
  -e 's/\B::(accept4|accept|connect|recvfrom|recv|sendto|send|readv|read|writev|write|poll|close|sleep|usleep|nanosleep)\(/weft::posix::\1(/g'
