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
}
CPP

"$script" "$work/prog.cpp" > "$work/by_file.cpp" 2> "$work/by_file.err" || fail "a FILE argument: exit $?"
"$script" < "$work/prog.cpp" > "$work/by_stdin.cpp" 2> "$work/by_stdin.err" || fail "standard input: exit $?"
cmp -s "$work/by_file.cpp" "$work/by_stdin.cpp" || fail "FILE and standard input give different output"
grep -q 'weft::posix::send(fd' "$work/by_file.cpp" || fail "::send was not renamed"
grep -q 'weft::fiber t' "$work/by_file.cpp" || fail "std::thread was not renamed"

want="$work/prog.cpp:6: recv(...) is not written ::recv(...)"
grep -qF "$want" "$work/by_file.err" || fail "no warning '$want' in: $(cat "$work/by_file.err")"
grep -qF "$work/prog.cpp:9: close(...) is not written ::close(...), so it stays the libc call, which does not wake fibers" \
  "$work/by_file.err" || fail "no warning for close(fd) in: $(cat "$work/by_file.err")"
[ "$(wc -l < "$work/by_file.err")" -eq 2 ] || fail "expected 2 warnings (member, qualified and commented calls are not), got: $(cat "$work/by_file.err")"
grep -qF "<stdin>:6: recv(...)" "$work/by_stdin.err" || fail "standard input's warning does not say <stdin>:6"

"$script" --help > "$work/help" || fail "--help: exit $?"
grep -q '^usage: .*port_to_weft.sh \[FILE...\]' "$work/help" || fail "--help prints no usage line"
if "$script" "$work/missing.cpp" > /dev/null 2> "$work/missing.err"; then fail "an unreadable FILE was accepted"; fi
grep -qF "cannot read '$work/missing.cpp'" "$work/missing.err" || fail "unreadable FILE: $(cat "$work/missing.err")"

# The programs the repository ports itself call nothing unqualified.
"$script" "$root/tests/porting/std_program.cpp" "$root/samples/port_from_threads/threads_server.cpp" \
  > /dev/null 2> "$work/own.err"
[ ! -s "$work/own.err" ] || fail "warnings on the repository's own programs: $(cat "$work/own.err")"
echo "ok: port_to_weft.sh takes files and stdin, has --help, lists unqualified blocking calls"
