#!/usr/bin/env bash
# Drives a built chat_server with real clients: socat sessions fed through fifos (alice, bob,
# carol), raw bash /dev/tcp connections, and a Python client that never reads (a small
# SO_RCVBUF) while another client floods the room. Checks: nick, /join, /who, /rooms, /nick,
# /quit; lines reach the room and never another room; a line over --max-line gets an error line
# and the connection closed; the stalled client is dropped with the room told, while the others
# receive every flooded line in order; an idle client is disconnected; SIGTERM (and SIGINT)
# tell every client "* server shutting down", close them, exit 0 with the summary line.
#
#   chat_server_test.sh CHAT_SERVER WORK_DIR
set -euo pipefail
source "$(dirname "$0")/common.sh"

bin=$1
work=$2
rm -rf "$work"
mkdir -p "$work"

for tool in socat timeout /usr/bin/python3; do
  if ! command -v "$tool" >/dev/null; then
    # Never skipped: scripts/setup.sh installs socat, and a skipped test reads as a pass.
    echo "FAIL: $tool not found: run scripts/setup.sh (or apt-get install socat python3)" >&2
    exit 1
  fi
done

stopped() { ! kill -0 "$1" 2>/dev/null; }

# A socat session: lines written with `say NAME LINE` go to the server through a fifo; what the
# server sends lands in $work/NAME.out. socat exits (0.5 s) after the server closes the
# connection. A 1 MiB receive buffer (the kernel may cap it at net.core.rmem_max, 208 KiB by
# default, doubled) lets these clients keep up with the flood below even when the machine is
# too busy to schedule socat for a while: only the client that never reads is too slow.
declare -A fd npid
connect() {
  local name=$1 f
  mkfifo "$work/$name.in"
  (
    for f in "${fd[@]}"; do eval "exec $f>&-"; done  # the other sessions' fifo ends are theirs
    exec timeout 60 socat -b 65536 STDIO "TCP:127.0.0.1:$port,rcvbuf=1048576" <"$work/$name.in" \
      >"$work/$name.out" 2>"$work/$name.err"
  ) &
  npid[$name]=$!
  track "$!"
  exec {f}>"$work/$name.in"
  fd[$name]=$f
}
say() { printf '%s\n' "$2" >&"${fd[$1]}"; }
saw() { grep -qxF -- "$2" "$work/$1.out"; }
expect() {  # NAME LINE: waits until NAME has received exactly LINE
  wait_for 10 saw "$1" "$2" || fail "$1 did not receive '$2'; it got: $(head -c 2000 "$work/$1.out")"
}
never() {  # NAME TEXT: NAME has received no line containing TEXT
  if grep -qF -- "$2" "$work/$1.out"; then fail "$1 received '$2' but should not have"; fi
}
# Waits for the server to close NAME's connection (socat then exits; its stdin stays open).
closed() {
  wait_for 10 stopped "${npid[$1]}" || fail "$1's connection still open: $2"
}
# Sends /who from NAME and waits for the reply: everything queued for NAME before it has arrived.
sync_with() {
  say "$1" /who
  expect "$1" "$2"
}

# --- nicks, rooms, lines ---------------------------------------------------------------------
# A write timeout longer than the test: only a full outbox may drop the stalled client, not its
# writer giving up on a blocked write (which would also hide a room blocked behind it).
start_server "$bin" --workers 2 --write-timeout-ms 600000
echo "chat_server on port $port"

connect alice
expect alice "* welcome to weft chat; send your nick (or /nick NAME)"
say alice alice
expect alice "* hello alice; commands: /join ROOM, /rooms, /who, /nick NAME, /quit"
expect alice "* alice joined lobby"

connect bob
say bob "/join dev"
expect bob "* pick a nick first: send it as a line, or /nick NAME"
say bob "/nick bob"
expect bob "* bob joined lobby"
expect alice "* bob joined lobby"

connect carol
say carol "alice"
expect carol "* nick alice is taken; try another"
say carol "ALICE"  # nicks are unique regardless of case: no impersonation
expect carol "* nick ALICE is taken; try another"
say carol "bad nick!"
expect carol "* a nick is 1-24 letters, digits, _ or -"
say carol "/nick carol"
expect carol "* carol joined lobby"
say carol "/join dev"
expect carol "* carol joined dev"
expect alice "* carol left lobby"
expect bob "* carol left lobby"

say alice "hello from alice"
expect bob "[lobby] alice: hello from alice"
sync_with carol "* in dev: carol"
sync_with alice "* in lobby: alice, bob"
never carol "hello from alice"
never alice "alice: hello from alice"   # no echo to the sender

say bob "/join dev"
expect carol "* bob joined dev"
expect alice "* bob left lobby"
say bob "dev talk"
expect carol "[dev] bob: dev talk"
sync_with alice "* in lobby: alice"
never alice "dev talk"
say alice "/rooms"
expect alice "* rooms: dev (2), lobby (1)"
sync_with carol "* in dev: bob, carol"
say alice "/frob x"
expect alice "* unknown command /frob; try /join ROOM, /rooms, /who, /nick NAME, /quit"
say alice "/join lobby"
expect alice "* you are in lobby already"
say carol "/JOIN dev "  # commands in any case, blanks around the argument dropped
expect carol "* you are in dev already"

say carol "/quit"
expect carol "* bye"
closed carol "after /quit"
expect bob "* carol quit"
say bob "/join lobby"
expect alice "* bob joined lobby"
say bob "/nick robert"
expect alice "* bob is now robert"
say bob "/Nick robert "
expect bob "* you are robert already"
# Control bytes reach the others in caret notation, never raw (an ESC would drive their terminals).
printf 'bold \033[1mbell\007 tab\tdel\177\n' >&"${fd[bob]}"
expect alice "$(printf '[lobby] robert: bold ^[[1mbell^G tab\tdel^?')"
# A clear-screen sequence and a bell arrive as text, and no raw control byte reaches anyone;
# UTF-8 (é, ✓, 🙂) arrives as sent.
printf 'wipe \x1b[2J ring \x07 caf\xc3\xa9 \xe2\x9c\x93 \xf0\x9f\x99\x82\n' >&"${fd[bob]}"
expect alice "$(printf '[lobby] robert: wipe ^[[2J ring ^G caf\xc3\xa9 \xe2\x9c\x93 \xf0\x9f\x99\x82')"
# The C1 controls U+0080..U+009F (U+009B is CSI, ESC [ to a UTF-8 terminal) and bytes that are
# not UTF-8 (a lone 0x9b is CSI to an 8-bit terminal) arrive in cat -v's M- notation.
printf 'csi \xc2\x9b2J nel \xc2\x85 lone \x9b2J bad \xc3( nbsp \xc2\xa0.\n' >&"${fd[bob]}"
expect alice "$(printf '[lobby] robert: csi M-^[2J nel M-^E lone M-^[2J bad M-C( nbsp \xc2\xa0.')"
if LC_ALL=C grep -q $'[\x01-\x08\x0b-\x1f\x7f]' "$work/alice.out"; then
  fail "alice received raw control bytes: $(LC_ALL=C grep $'[\x01-\x08\x0b-\x1f\x7f]' "$work/alice.out" | od -c | head)"
fi
if LC_ALL=C grep -q $'\xc2[\x80-\x9f]' "$work/alice.out"; then
  fail "alice received a raw C1 control: $(LC_ALL=C grep $'\xc2[\x80-\x9f]' "$work/alice.out" | od -c | head)"
fi
# A last line without its newline, then end of stream (socat half-closes after stdin's end):
# the room hears the line, then the goodbye.
printf 'gina\npartial last line' | timeout 10 socat -t 2 - "TCP:127.0.0.1:$port" >/dev/null ||
  fail "socat for gina failed"
expect alice "[lobby] gina: partial last line"
expect alice "* gina left"
echo "ok: nicks, rooms, /who, /rooms, /quit, a last line without newline, no lines across rooms, control characters shown as ^X and M-^X"

# --- line length -----------------------------------------------------------------------------
long=$(head -c 4096 /dev/zero | tr '\0' x)
say alice "$long"
expect bob "[lobby] alice: $long"
# Over the limit: in the same read as its newline, and spread over many reads: an error line, then the server closes.
drops=0
dave_left() { [ "$(grep -cxF "* dave left (line too long)" "$work/alice.out")" = "$drops" ]; }
# Each request goes out in one write: the server reads the rest within its 200 ms linger, so
# closing leaves no unread input (which would reset the connection and could lose the error).
for size in 4097 100000; do
  { printf 'dave\n'; head -c "$size" /dev/zero | tr '\0' y; printf '\n'; } >"$work/long.txt"
  got=$(timeout 10 bash -c 'exec 3<>/dev/tcp/127.0.0.1/$0; cat "$1" >&3; cat <&3' "$port" "$work/long.txt") ||
    fail "over-long line ($size bytes): the connection was not closed"
  [ "$(printf '%s\n' "$got" | tail -n 1)" = "* line too long (max 4096 bytes); disconnected" ] ||
    fail "over-long line ($size bytes): got [$(printf '%s' "$got" | tail -c 300)]"
  drops=$((drops + 1))
  wait_for 10 dave_left || fail "alice was not told dave left (line too long) [$drops]"
done
echo "ok: line limit"

# --- a stalled client is dropped; the others keep receiving everything -----------------------
# slowpoke: a small receive buffer and no reads until $work/release exists; then it reads to
# the end and reports how the connection ended.
cat >"$work/stall.py" <<'PY'
import os, socket, sys, time
port, release = int(sys.argv[1]), sys.argv[2]
s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
s.connect(("127.0.0.1", port))
s.sendall(b"slowpoke\n")
deadline = time.time() + 50
while not os.path.exists(release):
    if time.time() > deadline:
        sys.exit("never released")
    time.sleep(0.05)
s.settimeout(20)
data = b""
try:
    while True:
        chunk = s.recv(1 << 16)
        if not chunk:
            print("end: eof")
            break
        data += chunk
except ConnectionResetError:
    print("end: reset")
print("received %d bytes" % len(data))
PY
timeout 60 /usr/bin/python3 "$work/stall.py" "$port" "$work/release" >"$work/slowpoke.out" 2>&1 &
slowpid=$!
track "$slowpid"
expect alice "* slowpoke joined lobby"

# The flood: 3,000 lines of 200 bytes (600 KB), four times what the stalled client can hold
# (its 256-line outbox, the server's 2 x 64 KiB send buffer, its own 2 x 4 KiB receive buffer),
# in bursts of 25 lines every 10 ms. The pacing matters: the server reads and broadcasts a
# burst on one worker while another worker runs the writers, and a writer whose thread loses the
# CPU while an unpaced sender floods falls 256 lines behind in a millisecond and is dropped too,
# as the server's rule says. Bursts of 25 leave the good clients' writers ten bursts of slack.
flood_lines=3000
pad=$(head -c 180 /dev/zero | tr '\0' f)
seq -f "flood %06g $pad" 1 "$flood_lines" >"$work/flood.txt"
mkdir -p "$work/bursts"
split -l 25 -a 4 "$work/flood.txt" "$work/bursts/b"
exec {flooder}<>/dev/tcp/127.0.0.1/"$port"
printf 'flooder\n' >&"$flooder"
expect alice "* flooder joined lobby"
for b in "$work"/bursts/b*; do
  timeout 10 cat "$b" >&"$flooder" || fail "could not send the flood"
  sleep 0.01
done
expect alice "* slowpoke was too slow; disconnected"
last="[lobby] flooder: $(tail -n 1 "$work/flood.txt")"
for who in alice bob; do
  wait_for 10 saw "$who" "$last" || fail "$who did not receive the whole flood"
  sed -n 's/^\[lobby\] flooder: //p' "$work/$who.out" >"$work/$who.flood"
  cmp -s "$work/flood.txt" "$work/$who.flood" ||
    fail "$who received $(wc -l <"$work/$who.flood") of $flood_lines flooded lines, or out of order"
done
touch "$work/release"
wait_for 30 stopped "$slowpid" || fail "slowpoke did not finish reading"
grep -qE '^end: (eof|reset)$' "$work/slowpoke.out" || fail "slowpoke's connection was not closed: $(cat "$work/slowpoke.out")"
echo "ok: stalled client dropped ($(tail -n 1 "$work/slowpoke.out")), alice and robert got all $flood_lines lines"

# --- SIGTERM: everyone is told, connections close, exit 0, summary ----------------------------
say alice "/who"
expect alice "* in lobby: alice, flooder, robert"
kill -TERM "$pid"
for who in alice bob; do
  expect "$who" "* server shutting down"
  closed "$who" "after SIGTERM"
done
[ "$(timeout 10 cat <&"$flooder" | tail -n 1)" = "* server shutting down" ] || fail "flooder was not told of the shutdown"
expect_clean_exit "chat_server after SIGTERM"
summary=$(grep -E '^chat_server: served [0-9]+ clients, [0-9]+ messages, dropped [0-9]+ slow clients in .*; runtime: ' "$work/server.out") ||
  fail "no summary line: $(cat "$work/server.out")"
echo "$summary"
[[ "$summary" == "chat_server: served 8 clients, "* ]] || fail "summary: expected 8 clients"
[[ "$summary" == *", dropped 1 slow clients "* ]] || fail "summary: expected 1 dropped slow client"
messages=$(sed -n 's/^chat_server: served [0-9]* clients, \([0-9]*\) messages.*/\1/p' <<<"$summary")
# The flood and seven lines before it: two plain, three with control characters, one without
# its newline, one of 4096 bytes.
[ "$messages" = $((flood_lines + 7)) ] || fail "summary: expected $((flood_lines + 7)) messages"
echo "ok: SIGTERM"

# --- idle timeout, then SIGINT -----------------------------------------------------------------
start_server "$bin" --workers 1 --idle-ms 300
got=$(timeout 10 bash -c 'exec 3<>/dev/tcp/127.0.0.1/$0; printf "idler\n" >&3; cat <&3' "$port") ||
  fail "idle client was not disconnected"
[ "$(printf '%s\n' "$got" | tail -n 1)" = "* idle for 300 ms; disconnected" ] || fail "idle client got: $got"
kill -INT "$pid"
expect_clean_exit "chat_server after SIGINT"
grep -q '^chat_server: served 1 clients, 0 messages, dropped 0 slow clients' "$work/server.out" ||
  fail "summary after SIGINT: $(cat "$work/server.out")"
echo "ok: idle timeout, SIGINT"

# --- an unpaced paste: readers that keep up get every line, nobody is called slow ---------------
# 1,000 short lines written in one go (`cat file | nc`), twice the default outbox. A writer
# waiting for room in its socket falls hundreds of lines behind such a burst in a millisecond;
# the sender must slow down for it rather than have it kicked.
start_server "$bin" --workers 2
for who in reader1 reader2; do
  connect "$who"
  say "$who" "$who"
  expect "$who" "* hello $who; commands: /join ROOM, /rooms, /who, /nick NAME, /quit"
done
expect reader1 "* reader2 joined lobby"
seq -f "line %06g of a pasted file" 1 1000 >"$work/paste.txt"
exec {paster}<>/dev/tcp/127.0.0.1/"$port"
printf 'paster\n' >&"$paster"
timeout 10 cat "$work/paste.txt" >&"$paster" || fail "could not send the paste"
for who in reader1 reader2; do
  wait_for 20 saw "$who" "[lobby] paster: line 001000 of a pasted file" ||
    fail "$who did not receive the whole paste: $(grep -c 'paster: line' "$work/$who.out") lines; $(tail -n 2 "$work/$who.out")"
  [ "$(grep -c '^\[lobby\] paster: line' "$work/$who.out")" = 1000 ] || fail "$who: lines lost"
  never "$who" "too slow"
done
exec {paster}>&-
kill -INT "$pid"
expect_clean_exit "chat_server after the paste"
grep -q '^chat_server: served 3 clients, 1000 messages, dropped 0 slow clients' "$work/server.out" ||
  fail "summary after the paste: $(cat "$work/server.out")"
echo "ok: an unpaced paste of 1000 lines reaches every reader, nobody dropped"
echo "PASS"
