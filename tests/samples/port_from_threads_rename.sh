#!/usr/bin/env bash
# The weft port of samples/port_from_threads is a rename and nothing else:
# 1. scripts/port_to_weft.sh on threads_server.cpp gives fibers_server.cpp exactly;
# 2. independently of the script, the two files differ only in rename-map tokens: with the std
#    names (and the std include lines the map replaces) deleted from one and the weft names
#    (and weft include lines) deleted from the other, they are identical. So a rule added to the
#    script that does more than rename would fail here even though (1) still holds;
# 3. the port does use the map: threads, mutexes, condition variables and weft::posix calls.
#
#   port_from_threads_rename.sh SOURCE_DIR
set -euo pipefail
root=$1
dir=$root/samples/port_from_threads
threads=$dir/threads_server.cpp
fibers=$dir/fibers_server.cpp

fail() {
  echo "FAIL: $*" >&2
  exit 1
}

# --- 1. the script's output is the committed port ---------------------------------------------
if ! "$root/scripts/port_to_weft.sh" <"$threads" | diff -u "$fibers" - >&2; then
  fail "fibers_server.cpp is not 'scripts/port_to_weft.sh < threads_server.cpp' (regenerate it with that command)"
fi
echo "ok: fibers_server.cpp = port_to_weft.sh < threads_server.cpp"

# --- 2. the diff is made of rename-map tokens only --------------------------------------------
same_names='(recursive_timed_mutex|recursive_mutex|timed_mutex|shared_timed_mutex|shared_mutex|mutex'
same_names+='|condition_variable_any|condition_variable|counting_semaphore|binary_semaphore|latch|barrier'
same_names+='|once_flag|call_once|shared_future|future|promise|packaged_task|async)\b'
std_names="this_thread::|(jthread|thread)\\b|$same_names"
weft_names="this_fiber::|posix::|(jfiber|fiber)\\b|$same_names"
posix_calls='accept4|accept|connect|recvfrom|recv|sendto|send|readv|read|writev|write|poll|close|sleep|usleep|nanosleep'
std_includes='thread|condition_variable|latch|barrier|semaphore'

strip_std() {
  sed -E -e "/^#include <($std_includes)>\$/d" -e "s/std::($std_names)//g" -e "s/\\B::($posix_calls)\\(/\\1(/g" "$1"
}
strip_weft() {
  sed -E -e '/^#include <weft\/[a-z_]+\.hpp>$/d' -e "s/weft::($weft_names)//g" "$1"
}
if ! diff -u <(strip_std "$threads") <(strip_weft "$fibers") >&2; then
  fail "threads_server.cpp and fibers_server.cpp differ in more than rename-map tokens (the lines above)"
fi
changed=$(diff "$threads" "$fibers" | grep -c '^[<>]' || true)
echo "ok: the $changed lines the diff touches differ only in rename-map tokens"

# --- 3. the port exercises the map --------------------------------------------------------------
for token in 'weft::fiber ' 'weft::mutex ' 'weft::condition_variable ' 'weft::this_fiber::sleep_for(' \
  'weft::posix::accept(' 'weft::posix::recv(' 'weft::posix::send(' 'weft::posix::poll(' \
  'weft::posix::close(' '#include <weft/posix.hpp>'; do
  grep -qF "$token" "$fibers" || fail "fibers_server.cpp has no '$token': the port no longer shows that rename"
done
grep -qE 'weft::|#include <weft/' "$threads" && fail "threads_server.cpp mentions weft: the original must be std only"
echo "ok: threads, mutexes, condition variables, sleeps and weft::posix calls are all renamed"
echo "PASS"
