#!/usr/bin/env bash
# Netcup login throughput: starts `harness mock netcup` (release build) on a free loopback port,
# runs `wrk -t2 -c8 -d5s` with a login body against it, then stops the mock.
# Usage: mocks/bench/wrk-login.sh [path/to/harness]   (needs wrk: apt-get install -y wrk)
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
bin="${1:-${CARGO_TARGET_DIR:-$here/../../target}/release/harness}"
out="$(mktemp)"
"$bin" mock netcup --port 0 --bind 127.0.0.1 >"$out" &
pid=$!
trap 'kill -TERM "$pid" 2>/dev/null; wait "$pid" 2>/dev/null; rm -f "$out"' EXIT
for _ in $(seq 100); do [ -s "$out" ] && break; sleep 0.05; done
addr="$(sed -n 's/.*"http":"\([^"]*\)".*/\1/p' "$out")"
[ -n "$addr" ] || { echo "the mock did not report its address (is $bin built?)" >&2; exit 1; }
wrk -t2 -c8 -d5s -s "$here/login.lua" "http://$addr/run/webservice/servers/endpoint.php?JSON"
