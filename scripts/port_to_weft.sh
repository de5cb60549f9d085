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

# An include line, however it is spaced ("#include <thread>", "# include<thread>").
inc='^([[:space:]]*#[[:space:]]*include[[:space:]]*)'
rename() {
sed -E \
  -e "s|$inc<thread>|\\1<weft/fiber.hpp>|" \
  -e "s|$inc<mutex>|\\1<mutex>\\n#include <weft/mutex.hpp>|" \
  -e "s|$inc<shared_mutex>|\\1<shared_mutex>\\n#include <weft/shared_mutex.hpp>|" \
  -e "s|$inc<condition_variable>|\\1<weft/condition_variable.hpp>|" \
  -e "s|$inc<latch>|\\1<weft/latch.hpp>|" \
  -e "s|$inc<barrier>|\\1<weft/barrier.hpp>|" \
  -e "s|$inc<semaphore>|\\1<weft/semaphore.hpp>|" \
  -e "s|$inc<future>|\\1<future>\\n#include <weft/future.hpp>|" \
  -e "s|$inc<unistd.h>|\\1<unistd.h>\\n#include <weft/posix.hpp>|" \
  -e 's/using[[:space:]]+(::)?std::(j?)thread[[:space:]]*;/using \2thread = weft::\2fiber;/g' \
  -e 's/std::this_thread\b/weft::this_fiber/g' \
  -e 's/std::jthread\b/weft::jfiber/g' \
  -e 's/std::thread\b/weft::fiber/g' \
  -e 's/std::(recursive_timed_mutex|recursive_mutex|timed_mutex|shared_timed_mutex|shared_mutex|mutex)\b/weft::\1/g' \
  -e 's/std::(condition_variable_any|condition_variable)\b/weft::\1/g' \
  -e 's/std::(counting_semaphore|binary_semaphore|latch|barrier)\b/weft::\1/g' \
  -e 's/std::(once_flag|call_once)\b/weft::\1/g' \
  -e 's/std::(shared_future|future|promise|packaged_task|async)\b/weft::\1/g' \
  -e 's/\B::(accept4|accept|connect|recvfrom|recvmsg|recv|sendto|sendmsg|send|readv|read|writev|write|ppoll|poll|pselect|select|close|sleep|usleep|nanosleep)\(/weft::posix::\1(/g' "$@" |
  add_missing_headers
}

# A std name can reach a file through another std header (std::mutex through <future>, with
# libstdc++), so the rename can leave a weft name whose header is not included: each one
# missing is added at top level (outside #if blocks other than an include guard, and outside
# extern "C"), before the first code: before the first weft include there, else after the
# last include there, else at the top.
add_missing_headers() {
  awk '
    function print_missing(   n, k, order) {
      n = split("weft/fiber.hpp weft/mutex.hpp weft/shared_mutex.hpp weft/condition_variable.hpp weft/latch.hpp weft/barrier.hpp weft/semaphore.hpp weft/future.hpp weft/posix.hpp", order, " ")
      for (k = 1; k <= n; ++k) if ((order[k] in need) && !(order[k] in have)) print "#include <" order[k] ">"
    }
    { lines[NR] = $0 }
    /^[[:space:]]*#/ {
      ++directives
      if (directives == 1 && $0 ~ /^[[:space:]]*#[[:space:]]*ifndef[[:space:]]/) {
        guard = $0; sub(/^[[:space:]]*#[[:space:]]*ifndef[[:space:]]+/, "", guard); sub(/[[:space:]].*$/, "", guard)
      }
      if (directives == 2 && guard != "" && $0 ~ ("^[[:space:]]*#[[:space:]]*define[[:space:]]+" guard "([[:space:]]|$)")) guarded = 1
    }
    /^[[:space:]]*#[[:space:]]*if/ { ++depth }
    /^[[:space:]]*#[[:space:]]*endif/ { if (depth > 0) --depth }
    !in_c && /extern[[:space:]]*"C"/ && !/;[[:space:]]*$/ { pending_c = 1 }
    pending_c || in_c {
      t = $0; opens = gsub(/\{/, "{", t); closes = gsub(/\}/, "}", t)
      if (pending_c && opens > 0) { in_c = 1; pending_c = 0; c_depth = 0 }
      if (in_c) { c_depth += opens - closes; if (c_depth <= 0) in_c = 0 }
    }
    {
      top = depth - guarded == 0 && !in_c && !pending_c
      if (top && !code && $0 !~ /^[[:space:]]*($|#|\/\/|\/\*|\*|extern[[:space:]]*"C"|[{}])/) code = NR
    }
    /^[[:space:]]*#[[:space:]]*include[[:space:]]*[<"]weft\// && top {
      h = $0; sub(/^[^<"]*[<"]/, "", h); sub(/[>"].*$/, "", h); have[h] = 1
      if (h == "weft/weft.hpp") everything = 1
      if (!first_weft && !code) first_weft = NR
    }
    /^[[:space:]]*#[[:space:]]*include/ { if (top && !code) last_inc = NR }
    !/^[[:space:]]*(\/\/|#)/ {
      if ($0 ~ /weft::(this_fiber|j?fiber)([^A-Za-z0-9_]|$)/) need["weft/fiber.hpp"] = 1
      if ($0 ~ /weft::(recursive_timed_mutex|recursive_mutex|timed_mutex|mutex|once_flag|call_once)([^A-Za-z0-9_]|$)/) need["weft/mutex.hpp"] = 1
      if ($0 ~ /weft::(shared_timed_mutex|shared_mutex)([^A-Za-z0-9_]|$)/) need["weft/shared_mutex.hpp"] = 1
      if ($0 ~ /weft::condition_variable/) need["weft/condition_variable.hpp"] = 1
      if ($0 ~ /weft::latch([^A-Za-z0-9_]|$)/) need["weft/latch.hpp"] = 1
      if ($0 ~ /weft::barrier([^A-Za-z0-9_]|$)/) need["weft/barrier.hpp"] = 1
      if ($0 ~ /weft::(counting|binary)_semaphore([^A-Za-z0-9_]|$)/) need["weft/semaphore.hpp"] = 1
      if ($0 ~ /weft::(shared_future|future|promise|packaged_task|async)([^A-Za-z0-9_]|$)/) need["weft/future.hpp"] = 1
      if ($0 ~ /weft::posix::/) need["weft/posix.hpp"] = 1
    }
    END {
      if (everything) split("", need)  # the umbrella header has them all
      at = first_weft ? first_weft : (last_inc ? last_inc + 1 : 1)
      for (i = 1; i <= NR; ++i) {
        if (i == at) print_missing()
        print lines[i]
      }
      if (at > NR) print_missing()
    }'
}

# Unqualified blocking calls in the input, which stay libc's: "FILE:LINE: recv(" on standard error. A call
# through an object (s.read(), p->close()) or a qualifier (foo::close, weft::posix::close) is
# not one; comment and preprocessor lines are skipped. Also thread_local (per thread, not per
# fiber) and a using-declaration list naming std::thread (see the header of this script).
warn_unqualified() {
  WEFT_PORT_NAME=$1 awk '
    /^[[:space:]]*(\/\/|#)/ { next }
    {
      line = $0
      while (match(line, /(^|[^:.>A-Za-z0-9_])(accept4|accept|connect|recvfrom|recvmsg|recv|sendto|sendmsg|send|readv|read|writev|write|ppoll|poll|pselect|select|close|sleep|usleep|nanosleep)[[:space:]]*\(/)) {
        call = substr(line, RSTART, RLENGTH)
        sub(/^[^A-Za-z_]/, "", call)
        sub(/[[:space:]]*\($/, "", call)
        what = call == "close" ? "does not wake fibers waiting on the descriptor" : "blocks the whole worker thread"
        printf "%s:%d: %s(...) is not written ::%s(...), so it stays the libc call, which %s; if it is libc'"'"'s, qualify it and port again\n", ENVIRON["WEFT_PORT_NAME"], NR, call, call, what > "/dev/stderr"
        line = substr(line, RSTART + RLENGTH)
      }
      if ($0 ~ /(^|[^A-Za-z0-9_])thread_local([^A-Za-z0-9_]|$)/)
        printf "%s:%d: thread_local stays one value per thread; a fiber that suspends may resume on another thread and see another value: use weft::fiber_local<T> if it must follow the fiber (docs/porting.md)\n", ENVIRON["WEFT_PORT_NAME"], NR > "/dev/stderr"
      if ($0 ~ /using[[:space:]]+[^;]*,[^;]*;/ && $0 ~ /std::j?thread[^A-Za-z0-9_:]/)
        printf "%s:%d: a using-declaration list naming std::thread becomes weft::fiber, so the code can no longer say thread: write one using per name (using std::thread; becomes using thread = weft::fiber;)\n", ENVIRON["WEFT_PORT_NAME"], NR > "/dev/stderr"
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
