#!/usr/bin/env bash
# scripts/port_to_weft.sh as a user runs it: on a FILE argument as on standard input, --help,
# an unreadable FILE refused, and unqualified blocking calls (recv(fd, ...), which the rename
# cannot tell from a function of the program's own) listed on standard error with FILE:LINE.
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
script=$root/scripts/port_to_weft.sh
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }

cat > "$work/prog.cpp" <<'CPP'
#include <thread>
#include <unistd.h>
// recv(fd) in a comment is not a call
void serve(int fd, Conn& c, Conn* p) {
  char b[64];
  ssize_t n = recv(fd, b, sizeof b, 0);
  if (n > 0) ::send(fd, b, n, 0);
  c.read(b); p->close(); mylib::close(fd);
  close(fd);
  std::thread t([] {});
  ::select(fd + 1, &set, nullptr, nullptr, &tv); ::recvmsg(fd, &m, 0); weft::select(a, b);
}
CPP

"$script" "$work/prog.cpp" > "$work/by_file.cpp" 2> "$work/by_file.err" || fail "a FILE argument: exit $?"
"$script" < "$work/prog.cpp" > "$work/by_stdin.cpp" 2> "$work/by_stdin.err" || fail "standard input: exit $?"
cmp -s "$work/by_file.cpp" "$work/by_stdin.cpp" || fail "FILE and standard input give different output"
grep -q 'weft::posix::send(fd' "$work/by_file.cpp" || fail "::send was not renamed"
grep -q 'weft::fiber t' "$work/by_file.cpp" || fail "std::thread was not renamed"
grep -qF 'weft::posix::select(fd + 1' "$work/by_file.cpp" || fail "::select was not renamed"
grep -qF 'weft::posix::recvmsg(fd, &m' "$work/by_file.cpp" || fail "::recvmsg was not renamed"
grep -qF 'weft::select(a, b)' "$work/by_file.cpp" || fail "weft::select was changed"

want="$work/prog.cpp:6: recv(...) is not written ::recv(...)"
grep -qF "$want" "$work/by_file.err" || fail "no warning '$want' in: $(cat "$work/by_file.err")"
grep -qF "$work/prog.cpp:9: close(...) is not written ::close(...), so it stays the libc call, which does not wake fibers" \
  "$work/by_file.err" || fail "no warning for close(fd) in: $(cat "$work/by_file.err")"
[ "$(wc -l < "$work/by_file.err")" -eq 2 ] || fail "expected 2 warnings (member, qualified and commented calls are not), got: $(cat "$work/by_file.err")"
grep -qF "<stdin>:6: recv(...)" "$work/by_stdin.err" || fail "standard input's warning does not say <stdin>:6"

# Include lines however spaced; a weft name whose std twin came through another header gets
# its header (std::mutex through <future>); thread_local and a using-list naming std::thread
# are listed, since the rename cannot make them right.
cat > "$work/odd.cpp" <<'CPP'
# include<thread>
#include <future>
thread_local int per_thread = 0;
using std::thread, std::vector;
int main() { std::mutex m; std::lock_guard<std::mutex> g(m); std::thread t([] {}); t.join(); }
CPP
"$script" "$work/odd.cpp" > "$work/odd.out" 2> "$work/odd.err" || fail "odd.cpp: exit $?"
grep -qx '# include<weft/fiber.hpp>' "$work/odd.out" || fail "'# include<thread>' was not renamed: $(cat "$work/odd.out")"
[ "$(grep -c 'include <weft/mutex.hpp>' "$work/odd.out")" -eq 1 ] || fail "weft/mutex.hpp not added once for std::mutex: $(cat "$work/odd.out")"
grep -qF "$work/odd.cpp:3: thread_local stays one value per thread" "$work/odd.err" || fail "no thread_local warning: $(cat "$work/odd.err")"
grep -qF "$work/odd.cpp:4: a using-declaration list naming std::thread" "$work/odd.err" || fail "no using-list warning: $(cat "$work/odd.err")"

# Missing headers go at top level before the code: not into '#ifdef _WIN32', not into an
# extern "C" block whose brace is on the next line (nor end it at a struct's "};"), and not
# after a late include that follows the code.
cat > "$work/placed.cpp" <<'CPP'
#ifndef PLACED_H
#define PLACED_H
#ifdef _WIN32
#include <windows.h>
#endif
extern "C"
{
struct c_side { int a; };
#include <stdio.h>
}
#include <future>
inline int f() { std::mutex m; std::thread t([] {}); t.join(); return 0; }
#include "tail.inc"
#endif
CPP
"$script" "$work/placed.cpp" > "$work/placed.out" 2>/dev/null || fail "placed.cpp: exit $?"
[ "$(sed -n '/^#include <future>$/{n;p}' "$work/placed.out")" = "#include <weft/fiber.hpp>" ] ||
  fail "missing headers not right after the last top-level include: $(cat "$work/placed.out")"
grep -q '^#include <weft/mutex.hpp>$' "$work/placed.out" || fail "weft/mutex.hpp not added: $(cat "$work/placed.out")"
[ "$(grep -c 'include <weft/' "$work/placed.out")" -eq 3 ] || fail "expected fiber, mutex and future headers once each: $(cat "$work/placed.out")"
printf '#include <future>\nint g() { std::mutex m; return 0; }\n#include <vector>' | "$script" > "$work/last.out" 2>/dev/null
[ "$(sed -n 2p "$work/last.out")" = "#include <weft/mutex.hpp>" ] || fail "header not placed before the code: $(cat "$work/last.out")"
"$script" --help > "$work/help" || fail "--help: exit $?"
grep -q '^usage: .*port_to_weft.sh \[FILE...\]' "$work/help" || fail "--help prints no usage line"
if "$script" "$work/missing.cpp" > /dev/null 2> "$work/missing.err"; then fail "an unreadable FILE was accepted"; fi
grep -qF "cannot read '$work/missing.cpp'" "$work/missing.err" || fail "unreadable FILE: $(cat "$work/missing.err")"

# The programs the repository ports itself call nothing unqualified.
"$script" "$root/tests/porting/std_program.cpp" "$root/samples/port_from_threads/threads_server.cpp" \
  > /dev/null 2> "$work/own.err"
[ ! -s "$work/own.err" ] || fail "warnings on the repository's own programs: $(cat "$work/own.err")"
echo "ok: port_to_weft.sh takes files and stdin, has --help, lists unqualified blocking calls, thread_local and using-lists, adds missing weft headers"
