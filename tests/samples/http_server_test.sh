#!/usr/bin/env bash
# Drives a built http_server with real clients: curl (exact bytes of GET /, keep-alive reuse,
# HEAD, static files with their Content-Type and Content-Length, 404/405, traversal attempts
# with --path-as-is and percent-encoding, symlinks out of the root, /metrics parsed as
# Prometheus text, /debug/fibers listing an open connection's fiber), raw sockets through bash
# /dev/tcp (malformed and oversize requests -> 400/413/414/417/431/505 then close, pipelining, HTTP/1.0,
# a slowloris client closed after the header timeout while curl is served, an idle connection
# closed after the idle timeout), wrk with zero socket errors and no non-2xx responses, and a
# SIGTERM that lets a half-received request finish and exits 0 with the summary line.
#
#   http_server_test.sh HTTP_SERVER WORK_DIR
set -euo pipefail

bin=$1
work=$2
rm -rf "$work"
mkdir -p "$work"

# shellcheck source=common.sh
source "$(dirname "$0")/common.sh"

require_tools curl wrk ss

# Sends printf format $1 in one write and prints everything received until the server closes.
raw() {
  timeout 10 bash -c 'exec 3<>/dev/tcp/127.0.0.1/$0; printf "$1" >&3; cat <&3' "$port" "$1"
}

# --- a document root: one file per content type, a secret outside, symlinks in and out -----------
root=$work/root
mkdir -p "$root/sub"
printf '<h1>hi</h1>\n' >"$root/index.html"
printf 'SECRET=1\n' >"$root/.env"  # hidden: never served
mkdir -p "$root/loop/index.html"  # a directory's index that is itself a directory: no redirect loop
printf 'body{}\n' >"$root/style.css"
printf 'console.log(1)\n' >"$root/app.js"
printf '{"a":1}\n' >"$root/data.json"
printf 'plain text\n' >"$root/a.txt"
printf '# notes\n' >"$root/notes.md"
printf '\x89PNG\r\n\x1a\n\0\0\0\rIHDR' >"$root/img.png"
printf '\xff\xd8\xff\xe0' >"$root/pic.jpg"
printf '<svg/>\n' >"$root/logo.svg"
printf '\0asm\x01\0\0\0' >"$root/mod.wasm"
head -c 300000 /dev/urandom >"$root/sub/blob.bin"
printf 'TOP-SECRET\n' >"$work/secret.txt"
ln -s "$work/secret.txt" "$root/escape.txt"
ln -s "$root/a.txt" "$root/sub/inside-link.txt"
mkfifo "$root/pipe"  # not a regular file: 404 at once, never an open() waiting for a writer

# --- --root must name a directory: a file is refused at start, not served as 404s later ---------
rc=0
timeout 10 "$bin" --port 0 --root "$root/a.txt" >/dev/null 2>"$work/root.err" || rc=$?
[ "$rc" = 2 ] && grep -q 'existing directory' "$work/root.err" || fail "--root FILE: status $rc, [$(cat "$work/root.err")]"
echo "ok: --root refuses a file"

start_server "$bin" --workers 2 --root "$root" --idle-timeout-ms 1500 --header-timeout-ms 1000
url=http://127.0.0.1:$port
c() { timeout 10 curl -s "$@"; }

# --- GET /: exactly the bytes the epoll baseline sends -------------------------------------------
want=$(printf 'HTTP/1.1 200 OK\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: 16\r\n\r\nhello from weft\n' | od -An -c)
got=$(c -i "$url/" | od -An -c)
[ "$got" = "$want" ] || fail "GET / bytes: got [$got]"
echo "ok: GET / exact response"

# --- keep-alive: one connection for several URLs; Connection: close and HTTP/1.0 honoured -------
got=$(c -o /dev/null -o /dev/null -o /dev/null -w '%{num_connects} ' "$url/" "$url/metrics" "$url/static/a.txt")
[ "$got" = "1 0 0 " ] || fail "keep-alive: num_connects [$got]"
c -v -o /dev/null -o /dev/null "$url/" "$url/" 2>&1 | grep -q 'Re-using existing connection' ||
  fail "curl -v did not re-use the connection"
got=$(c -H 'Connection: close' -o /dev/null -o /dev/null -w '%{num_connects} ' "$url/" "$url/")
[ "$got" = "1 1 " ] || fail "Connection: close: num_connects [$got]"
c -i -H 'Connection: close' "$url/" | grep -q $'^Connection: close\r$' || fail "no Connection: close header"
got=$(c --http1.0 -o /dev/null -o /dev/null -w '%{num_connects} ' "$url/" "$url/")
[ "$got" = "1 1 " ] || fail "HTTP/1.0 without keep-alive: num_connects [$got]"
got=$(c --http1.0 -H 'Connection: keep-alive' -o /dev/null -o /dev/null -w '%{num_connects} ' "$url/" "$url/")
[ "$got" = "1 0 " ] || fail "HTTP/1.0 with keep-alive: num_connects [$got]"
got=$(raw 'GET / HTTP/1.0\r\n\r\n')  # the server must close by itself
[[ "$got" == *$'Connection: close\r\n'*'hello from weft'* ]] || fail "HTTP/1.0 reply: [$got]"
echo "ok: keep-alive, Connection: close, HTTP/1.0"

# --- static files: Content-Type by extension, Content-Length, same bytes; HEAD; 404; 405 --------
declare -A types=([index.html]='text/html; charset=utf-8' [style.css]='text/css; charset=utf-8'
  [app.js]='text/javascript; charset=utf-8' [data.json]=application/json [a.txt]='text/plain; charset=utf-8'
  [img.png]=image/png [pic.jpg]=image/jpeg [logo.svg]=image/svg+xml [mod.wasm]=application/wasm
  [notes.md]='text/markdown; charset=utf-8' [sub/blob.bin]=application/octet-stream [sub/inside-link.txt]='text/plain; charset=utf-8')
for f in "${!types[@]}"; do
  meta=$(c -o "$work/got.bin" -w '%{http_code}|%{content_type}|%{size_download}' "$url/static/$f")
  [ "$meta" = "200|${types[$f]}|$(stat -L -c %s "$root/$f")" ] || fail "static $f: [$meta]"
  cmp -s "$work/got.bin" "$root/$f" || fail "static $f: content differs"
done
head=$(c -I "$url/static/sub/blob.bin")
[[ "$head" == *$'Content-Length: 300000\r'* && "$head" == *'HTTP/1.1 200 OK'* ]] || fail "HEAD: [$head]"
[ "$(c -o /dev/null -w '%{size_download}' -X HEAD "$url/static/a.txt")" = 0 ] || fail "HEAD sent a body"
for p in /nope /static/missing.txt /static/sub/ /metricsx /static/pipe /static/a.txt/ /static/.env /static/%2eenv \
  /static/loop/; do
  [ "$(c -o /dev/null -w '%{http_code}' "$url$p")" = 404 ] || fail "$p: not 404"
done
# A directory: its index.html behind a '/', a redirect there without one.
[ "$(c "$url/static/")" = '<h1>hi</h1>' ] || fail "/static/ did not serve the root's index.html"
got=$(c -i "$url/static/sub?v=2")
[[ "$got" == 'HTTP/1.1 301 '* && "$got" == *$'Location: /static/sub/?v=2\r'* ]] || fail "/static/sub?v=2: [$got]"
got=$(c -i -X POST -d x "$url/")
[[ "$got" == 'HTTP/1.1 405 '* && "$got" == *$'Allow: GET, HEAD, OPTIONS\r'* ]] || fail "POST /: [$got]"
[ "$(c -o /dev/null -w '%{http_code}' -X DELETE "$url/static/a.txt")" = 405 ] || fail "DELETE static: not 405"
echo "ok: static files (${#types[@]} types), HEAD, 404, 405"

# --- traversal: nothing outside the root, ever ----------------------------------------------------
for p in '/static/../secret.txt' '/static/%2e%2e/secret.txt' '/static/%2E%2E%2Fsecret.txt' \
  '/static/sub/../../secret.txt' '/static/..%2f..%2fsecret.txt' '/static/escape.txt' \
  "/static/$work/secret.txt" '/static//etc/passwd' '/static/../../../../etc/passwd' '/static/%2fetc%2fpasswd'; do
  code=$(c --path-as-is -o "$work/trav.bin" -w '%{http_code}' "$url$p")
  [ "$code" = 403 ] || [ "$code" = 404 ] || fail "traversal $p: status $code"
  ! grep -q -e TOP-SECRET -e 'root:' "$work/trav.bin" || fail "traversal $p leaked a file"
done
got=$(raw 'GET /static/../secret.txt HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n')
[[ "$got" == 'HTTP/1.1 403 '* ]] || fail "raw traversal: [$got]"
echo "ok: traversal attempts get 403/404"

# --- /metrics: Prometheus text with the runtime's and the server's counters ----------------------
c "$url/metrics" >"$work/metrics.txt"
ctype=$(c -o /dev/null -w '%{content_type}' "$url/metrics")
[[ "$ctype" == 'text/plain; version=0.0.4'* ]] || fail "metrics Content-Type: $ctype"
bad=$(grep -v -E '^(# (HELP|TYPE) [a-z_]+ .+|[a-zA-Z_:][a-zA-Z0-9_:]*(\{[a-z]+="[^"]*"\})? [0-9]+)$' "$work/metrics.txt" || true)
[ -z "$bad" ] || fail "metrics lines not in the text format: [$bad]"
for m in weft_fibers_spawned_total weft_fibers_finished_total weft_context_switches_total weft_steals_total \
  weft_worker_parks_total weft_timers_fired_total weft_fibers_live weft_stacks_mapped weft_stacks_cold http_connections_total \
  http_connections_open http_requests_total 'http_responses_total{class="2xx"}' 'http_responses_total{class="4xx"}'; do
  grep -q -F "$m " "$work/metrics.txt" || fail "metric $m missing"
done
grep -q '^# TYPE http_requests_total counter$' "$work/metrics.txt" || fail "no TYPE line"
reqs=$(sed -n 's/^http_requests_total //p' "$work/metrics.txt")
[ "$reqs" -gt 20 ] || fail "http_requests_total = $reqs"
[ "$(sed -n 's/^http_responses_total{class="4xx"} //p' "$work/metrics.txt")" -gt 5 ] || fail "4xx count"
echo "ok: /metrics ($reqs requests so far)"

# --- /debug/fibers: an open connection's fiber, parked reading its next request ------------------
exec 4<>/dev/tcp/127.0.0.1/"$port"
printf 'GET / HTTP/1.1\r\nHost: x\r\n\r\n' >&4
timeout 5 head -c 96 <&4 >/dev/null || fail "no reply on the held connection"
c "$url/debug/fibers" >"$work/fibers.txt"
grep -q -E '^ +[0-9]+  parked +conn 127\.0\.0\.1:[0-9]+ +read request$' "$work/fibers.txt" ||
  fail "/debug/fibers does not show the open connection: $(cat "$work/fibers.txt")"
grep -q -E 'running +conn 127\.0\.0\.1:[0-9]+' "$work/fibers.txt" || fail "/debug/fibers lacks its own fiber"
grep -q -E '(parked +accept loop +accept|running +accept loop)$' "$work/fibers.txt" ||
  fail "/debug/fibers lacks the accept loop"
exec 4>&-
echo "ok: /debug/fibers lists the connection fiber"

# --- malformed and oversize requests: the status, Connection: close, then the server closes ------
check_error() {  # printf format, expected status
  local got
  got=$(raw "$1") || fail "no close after $2 (timeout)"
  [[ "$got" == "HTTP/1.1 $2 "* && "$got" == *$'Connection: close\r\n'* ]] || fail "want $2, got [${got:0:200}]"
}
check_error 'GARBAGE\r\n\r\n' 400
check_error 'GET / HTTP/1.1\r\nHost: x\r\nBad Header: y\r\n\r\n' 400
check_error 'GET / HTTP/1.1\r\nHost: x\r\r\n\r\n' 400
check_error 'GET / HTTP/1.1\r\n\r\n' 400
check_error 'POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n' 400
check_error "GET / HTTP/1.1\r\nHost: x\r\nX-Big: $(head -c 9000 /dev/zero | tr '\0' a)\r\n\r\n" 431
check_error "GET /$(head -c 9000 /dev/zero | tr '\0' a)" 414
check_error "GET /$(head -c 9000 /dev/zero | tr '\0' a) HTTP/1.1\r\nHost: x\r\n\r\n" 414
check_error 'POST / HTTP/1.1\r\nHost: x\r\nExpect: teapot\r\nContent-Length: 2\r\n\r\nhi' 417
check_error 'POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 1048577\r\n\r\n' 413
check_error 'POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n200000\r\n' 413
check_error 'GET / HTTP/2.0\r\nHost: x\r\n\r\n' 505
head -c 2000 /dev/urandom >"$work/random.bin"
got=$(timeout 10 bash -c 'exec 3<>/dev/tcp/127.0.0.1/$0; cat "$1" >&3; cat <&3' "$port" "$work/random.bin" | head -c 12)
[ "$got" = 'HTTP/1.1 400' ] || fail "random bytes: [$got]"
# A 1 MB request line: 414 as soon as the head passes 8 KiB, while the client is still sending.
got=$(timeout 10 bash -c 'exec 3<>/dev/tcp/127.0.0.1/$0
  { printf "GET /"; head -c 1048576 /dev/zero | tr "\0" a; } >&3 2>/dev/null &
  cat <&3' "$port" 2>/dev/null | head -c 12 || true)
[ "$got" = 'HTTP/1.1 414' ] || fail "1 MB request line: [$got]"
# A body within the limit is read and the connection stays usable.
got=$(c -o /dev/null -w '%{http_code}' -X POST --data-binary @"$root/sub/blob.bin" "$url/")
[ "$got" = 405 ] || fail "POST with a 300 KB body: $got"
got=$(raw 'GET /nope HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n')
[[ "$got" == *$'Content-Length: 10\r\n'*$'\r\n\r\nNot Found' ]] || fail "404 body: [$got]"  # "Not Found\n"
got=$(raw 'GET / HTTP/2.0\r\nHost: x\r\n\r\n')
[[ "$got" == *$'\r\n\r\nHTTP Version Not Supported: this server speaks HTTP/1.0 and HTTP/1.1' ]] || fail "505 body: [$got]"
for p in '/static/%%zz' '/static/a%%00.txt'; do  # printf formats: %% is one %
  got=$(raw "GET $p HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
  [[ "$got" == 'HTTP/1.1 400 '*$'\r\n\r\nBad Request: the path has an invalid %-escape or an encoded NUL (%00)' ]] ||
    fail "400 body for $p: [$got]"
done
echo "ok: 400/413/414/417/431/505 then close, error bodies name the status"

# --- what hand-typed and unusual requests get ----------------------------------------------------
# Bare LF line ends (nc without -C): served like CRLF.
got=$(raw 'GET / HTTP/1.1\nHost: x\nConnection: close\n\n')
[[ "$got" == 'HTTP/1.1 200 OK'*'hello from weft' ]] || fail "bare-LF request: [$got]"
# The absolute-form target (as sent to a proxy), which a server must accept.
got=$(raw "GET http://127.0.0.1:$port/static/a.txt?x=1 HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
[[ "$got" == 'HTTP/1.1 200 OK'*'plain text' ]] || fail "absolute-form target: [$got]"
for target in "http://127.0.0.1:$port/" "http://127.0.0.1:$port" "HTTP://127.0.0.1:$port?q=1"; do  # no path: /
  got=$(raw "GET $target HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
  [[ "$got" == 'HTTP/1.1 200 OK'*'hello from weft' ]] || fail "absolute-form target $target: [$got]"
done
# curl sends the absolute-form to a proxy: the server routes on its path, whatever the host.
got=$(c -x "$url" -w ' %{http_code}' http://example.invalid/static/a.txt)
[ "$got" = 'plain text
 200' ] || fail "curl through the server as a proxy: [$got]"
# OPTIONS on the server and on a resource: the allowed methods, no body; * is for OPTIONS only.
got=$(c -i -X OPTIONS --request-target '*' "$url/" | tr -d '\r')
[[ "$got" == 'HTTP/1.1 200 OK'*'Content-Length: 0'*'Allow: GET, HEAD, OPTIONS'* ]] || fail "OPTIONS *: [$got]"
got=$(c -i -X OPTIONS "$url/metrics" | tr -d '\r')
[[ "$got" == 'HTTP/1.1 200 OK'*'Allow: GET, HEAD, OPTIONS'* ]] || fail "OPTIONS /metrics: [$got]"
got=$(raw 'GET * HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n')
[[ "$got" == 'HTTP/1.1 400 '* ]] || fail "GET *: [$got]"
# A target that is neither a path, an http(s) URL nor *: 400 with what a target may be.
for target in noslash 'ftp://x/y' 'host:443'; do
  got=$(raw "GET $target HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n" | tr -d '\r')
  [[ "$got" == 'HTTP/1.1 400 Bad Request'*'Bad Request: the request target must be a path'* ]] ||
    fail "GET $target: [$got]"
done
# Expect: 100-continue: the interim response comes before the client has sent a byte of the
# body (the client reads it first), then the final one.
got=$(timeout 10 bash -c 'exec 3<>/dev/tcp/127.0.0.1/$0
  printf "GET / HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\nContent-Length: 5\r\nConnection: close\r\n\r\n" >&3
  IFS= read -r first <&3; IFS= read -r blank <&3; echo "$first"
  printf hello >&3; cat <&3' "$port" | tr -d '\r')
[[ "$got" == $'HTTP/1.1 100 Continue\nHTTP/1.1 200 OK\n'* ]] || fail "Expect: 100-continue: [$got]"
# A request no route takes gets its final status at once, without a 100, and the connection
# closes without waiting for the body (the client never sends it).
got=$(raw 'POST / HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\nContent-Length: 5\r\n\r\n' | tr -d '\r')
[[ "$got" == 'HTTP/1.1 405 Method Not Allowed'*'Connection: close'* && "$got" != *'100 Continue'* ]] ||
  fail "Expect: 100-continue on a refused request: [$got]"
got=$(raw 'PUT /nowhere HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\nContent-Length: 5\r\n\r\n' | tr -d '\r')
[[ "$got" == 'HTTP/1.1 404 Not Found'* && "$got" != *'100 Continue'* ]] || fail "Expect: 100-continue, 404: [$got]"
start=$(date +%s%N)
got=$(c -v -o /dev/null -H 'Expect: 100-continue' --data-binary @"$root/sub/blob.bin" "$url/" 2>&1 | tr -d '\r')
ms=$(( ($(date +%s%N) - start) / 1000000 ))
[[ "$got" == *'< HTTP/1.1 405'* && "$got" != *'100 Continue'* ]] || fail "curl with Expect: [$got]"
# curl waits up to 1 s for a 100 before it sends the body anyway: the 405 must end that wait.
[ "$ms" -lt 900 ] || fail "curl with Expect took $ms ms: the refusal did not come before the body"
# A body over the limit is refused at once with 413 alone: no 100 invites the client to send it.
got=$(raw 'POST / HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\nContent-Length: 2000000\r\n\r\n')
[[ "$got" == 'HTTP/1.1 413 '* && "$got" != *'100 Continue'* ]] || fail "Expect with an oversize body: [$got]"
head -c 2000000 /dev/zero >"$work/huge.bin"
got=$(c -v -o /dev/null -H 'Expect: 100-continue' --data-binary @"$work/huge.bin" "$url/" 2>&1 | tr -d '\r')
[[ "$got" == *'< HTTP/1.1 413'* && "$got" != *'100 Continue'* ]] || fail "curl with Expect, 2 MB: [$got]"
echo "ok: bare LF, absolute-form, OPTIONS and *, Expect: 100-continue"

# --- pipelining: two requests in one write, two responses in order --------------------------------
got=$(raw 'GET / HTTP/1.1\r\nHost: x\r\n\r\nGET /static/a.txt HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n')
want=$(printf 'HTTP/1.1 200 OK\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: 16\r\n\r\nhello from weft\nHTTP/1.1 200 OK\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: 11\r\nConnection: close\r\n\r\nplain text')
[ "$got" = "$want" ] || fail "pipelined pair: [$got]"
n=$(raw "$(for i in $(seq 100); do printf 'GET / HTTP/1.1\\r\\nHost: x\\r\\n\\r\\n'; done)HEAD / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n" |
  grep -c 'hello from weft' || true)
[ "$n" = 100 ] || fail "100 pipelined requests: $n answers"
# A request that begins behind a pipelined one gets its own header budget (1 s), counted from
# when it began, not from when the one before it did.
got=$(timeout 10 bash -c 'exec 3<>/dev/tcp/127.0.0.1/$0; printf "GET / HTTP/1.1\r\nHost: x\r\n" >&3
  sleep 0.7; printf "\r\nGET /static/a.txt HTTP/1.1\r\n" >&3
  sleep 0.6; printf "Host: x\r\nConnection: close\r\n\r\n" >&3; cat <&3' "$port" 2>/dev/null || true)
[[ "$got" == *'hello from weft'*'plain text' && "$got" != *' 408 '* ]] || fail "pipelined follower: [$got]"
echo "ok: pipelining"

# --- slowloris: closed after the header timeout (408) while curl keeps being served --------------
exec 5<>/dev/tcp/127.0.0.1/"$port"
printf 'GET / HTTP/1.1\r\nHost: x\r\n' >&5
(for i in $(seq 60); do printf 'X' >&5 2>/dev/null || exit 0; sleep 0.1; done) &
trickler=$!
track "$trickler"
start_ms=$(date +%s%3N)
for i in 1 2 3 4 5; do
  [ "$(c -o /dev/null -w '%{http_code}' "$url/")" = 200 ] || fail "curl during slowloris"
  sleep 0.1
done
got=$(timeout 8 cat <&5) || fail "slowloris connection still open after 8 s"
slow_ms=$(($(date +%s%3N) - start_ms))
[[ "$got" == 'HTTP/1.1 408 '* ]] || fail "slowloris reply: [$got]"
[ "$slow_ms" -ge 700 ] && [ "$slow_ms" -le 4000 ] || fail "slowloris closed after $slow_ms ms (header timeout 1000)"
exec 5>&-
kill "$trickler" 2>/dev/null || true
wait "$trickler" 2>/dev/null || true
# An idle connection is closed silently after the idle timeout.
exec 5<>/dev/tcp/127.0.0.1/"$port"
start_ms=$(date +%s%3N)
got=$(timeout 8 cat <&5) || fail "idle connection still open after 8 s"
elapsed=$(($(date +%s%3N) - start_ms))
[ -z "$got" ] && [ "$elapsed" -ge 1200 ] && [ "$elapsed" -le 5000 ] || fail "idle close after $elapsed ms: [$got]"
exec 5>&-
echo "ok: slowloris closed with 408 after $slow_ms ms (header timeout 1000), idle connection after $elapsed ms (1500)"

# --- wrk: no socket errors, no non-2xx ------------------------------------------------------------
timeout 30 wrk -t1 -c50 -d3s "$url/" >"$work/wrk.txt" 2>&1 || fail "wrk failed: $(cat "$work/wrk.txt")"
! grep -q -e 'Socket errors' -e 'Non-2xx' "$work/wrk.txt" || fail "wrk reported errors: $(cat "$work/wrk.txt")"
rps=$(sed -n 's/^Requests\/sec: *//p' "$work/wrk.txt")
[ -n "$rps" ] || fail "no Requests/sec in wrk output: $(cat "$work/wrk.txt")"
grep -q -E '^ +[0-9]+ requests in' "$work/wrk.txt" || fail "wrk output: $(cat "$work/wrk.txt")"
echo "ok: wrk -t1 -c50 -d3s: $rps requests/s, no errors"

# --- SIGTERM: the half-received request finishes, idle ones close, exit 0 with the summary -------
exec 4<>/dev/tcp/127.0.0.1/"$port"
exec 5<>/dev/tcp/127.0.0.1/"$port"
printf 'GET /static/a.txt HTTP/1.1\r\nHost: x\r\n' >&4
[ "$(c -o /dev/null -w '%{http_code}' "$url/")" = 200 ] || fail "GET before stop"
kill -TERM "$pid"
wait_for 10 not_listening "$port" || fail "listener still accepting after SIGTERM"
printf '\r\n' >&4
got=$(timeout 10 cat <&4)
[[ "$got" == 'HTTP/1.1 200 OK'*$'Connection: close\r\n'*'plain text' ]] || fail "in-flight request at stop: [$got]"
[ -z "$(timeout 10 cat <&5)" ] || fail "idle connection got data at stop"
exec 4>&- 5>&-
expect_clean_exit http_server
summary=$(grep -E '^http_server: served [0-9]+ connections, [0-9]+ requests \(2xx=[0-9]+ .*; runtime: workers=2 ' \
  "$work/server.out") || fail "no summary line: $(cat "$work/server.out")"
echo "$summary"
# Every response answers a request, malformed ones included: the classes add up to the count.
read -r requests r2 r3 r4 r5 < <(echo "$summary" |
  sed -E 's/.* ([0-9]+) requests \(2xx=([0-9]+) 3xx=([0-9]+) 4xx=([0-9]+) 5xx=([0-9]+)\).*/\1 \2 \3 \4 \5/')
[ "$requests" -gt 0 ] && [ $((r2 + r3 + r4 + r5)) = "$requests" ] ||
  fail "summary: the status classes do not add up to the $requests requests: $summary"
[ "$r4" -gt 0 ] || fail "summary: no 4xx counted, though the test sent malformed requests: $summary"
echo "ok: clean stop"
echo "PASS"
