#!/usr/bin/env bash
# Installs the Debian 12 packages weft needs to build, test and benchmark, skipping those
# already installed. Uses sudo when not run as root. Boost is pinned to Debian 12's 1.74
# (libboost-context-dev / libboost-fiber-dev); 1.81 conflicts with it there.
set -euo pipefail

packages=(
  g++ cmake ninja-build pkg-config
  clang libclang-rt-14-dev          # the asan, tsan and fuzz presets build with clang
  libboost-context-dev libboost-fiber-dev
  libgtest-dev libbenchmark-dev
  gnuplot-nox                       # benchmark charts
  redis-tools                       # redis-cli / redis-benchmark drive the kv_server sample
  redis-server                      # kv_server's benchmark peer and golden-transcript recorder
  curl wrk                          # drive http_server in tests, the demo and benchmarks
  netcat-openbsd socat              # line clients for chat_server, proxy and bad-input tests
  python3                           # chat_server, echo and proxy tests: peers that never read (stdlib only)
  iproute2                          # ss: socket states and closed listeners in the sample tests
)

missing=()
for p in "${packages[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done

if [ "${#missing[@]}" -eq 0 ]; then
  echo "setup: all packages present"
  exit 0
fi

sudo=""
if [ "$(id -u)" -ne 0 ]; then
  if command -v sudo >/dev/null; then sudo="sudo"; else
    echo "setup: need root (or sudo) to install: ${missing[*]}" >&2
    exit 1
  fi
fi
echo "setup: installing ${missing[*]}"
$sudo apt-get update -qq
DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
boost=$(dpkg-query -W -f='${Version}' libboost-context-dev)
case "$boost" in
  1.74*) ;;
  *) echo "setup: libboost-context-dev is $boost; weft is pinned to Debian 12's Boost 1.74" >&2; exit 1 ;;
esac
echo "setup: done"
