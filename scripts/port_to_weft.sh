#!/usr/bin/env bash
# The porting check's rename: turns a program written against the std thread library into a
# weft program by changing include lines and names only (design.md, "The porting map").
# Usage: scripts/port_to_weft.sh [FILE...] > weft_program.cpp   (no FILE: standard input)
# `using std::thread;` becomes `using thread = weft::fiber;` (the code goes on saying thread;
# not inside a list such as `using std::thread, std::mutex;`, and not for names reached through
# `using namespace std;`, which the script cannot see);
# std::this_thread is renamed wherever it appears (namespace aliases, using-directives).
# Kept verbatim, as the map says: std::lock_guard, unique_lock, scoped_lock, shared_lock,
# std::chrono, std::cv_status, std::future_status, std::launch, std::stop_token.
# Blocking POSIX calls written with the global qualifier (::accept, ::recv, ::poll, ::close, ...)
# become weft::posix:: calls (a qualified name such as foo::close is left alone); <weft/posix.hpp>
# is added after <unistd.h>, which a program calling them includes for close(). Calls that never
# block (::socket, ::bind, ::listen, ::shutdown, ::setsockopt) stay libc's. The same calls
# written without the qualifier (recv(fd, ...)) cannot be told from a function of the program's
# own: they are left alone and listed on standard error, since a libc call that blocks blocks
# the whole worker thread.
set -euo pipefail

usage() {
  echo "usage: $0 [FILE...] > ported.cpp"
  echo "Renames a C++ program written against the std thread library (std::thread, std::mutex,"
  echo "std::condition_variable, ...) and blocking POSIX calls written as ::recv(...) to weft's"
  echo "fiber equivalents, and prints the result (docs/porting.md). Reads standard input when no"
  echo "FILE is given. Unqualified calls that may block the worker are listed on standard error."
}
for arg in "$@"; do
  case $arg in
    -h | --help) usage; exit 0 ;;
    -?*) echo "$0: unknown option '$arg'" >&2; usage >&2; exit 2 ;;
  esac
  [ -r "$arg" ] || { echo "$0: cannot read '$arg'" >&2; exit 2; }
done
if [ $# -eq 0 ] && [ -t 0 ]; then
  echo "$0: reading the program from the terminal (give a FILE, or --help)" >&2
fi

rename() {
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
  -e 's/\B::(accept4|accept|connect|recvfrom|recv|sendto|send|readv|read|writev|write|poll|close|sleep|usleep|nanosleep)\(/weft::posix::\1(/g' "$@"
}

# Unqualified blocking calls in the input, which stay libc's: "FILE:LINE: recv(" on standard error. A call
# through an object (s.read(), p->close()) or a qualifier (foo::close, weft::posix::close) is
# not one; comment and preprocessor lines are skipped.
warn_unqualified() {
  WEFT_PORT_NAME=$1 awk '
    /^[[:space:]]*(\/\/|#)/ { next }
    {
      line = $0
      while (match(line, /(^|[^:.>A-Za-z0-9_])(accept4|accept|connect|recvfrom|recv|sendto|send|readv|read|writev|write|poll|close|sleep|usleep|nanosleep)[[:space:]]*\(/)) {
        call = substr(line, RSTART, RLENGTH)
        sub(/^[^A-Za-z_]/, "", call)
        sub(/[[:space:]]*\($/, "", call)
        what = call == "close" ? "does not wake fibers waiting on the descriptor" : "blocks the whole worker thread"
        printf "%s:%d: %s(...) is not written ::%s(...), so it stays the libc call, which %s; if it is libc'"'"'s, qualify it and port again\n", ENVIRON["WEFT_PORT_NAME"], NR, call, call, what > "/dev/stderr"
        line = substr(line, RSTART + RLENGTH)
      }
    }'
}

if [ $# -eq 0 ]; then
  input=$(cat; echo x)  # the x keeps trailing newlines
  input=${input%x}
  printf '%s' "$input" | rename
  printf '%s' "$input" | warn_unqualified "<stdin>"
else
  for f in "$@"; do
    rename "$f"
    warn_unqualified "$f" < "$f"
  done
fi
