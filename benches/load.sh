#!/usr/bin/env bash
# Load benchmark over loopback: the example server in release mode against wrk, bounded in
# time, for no auth, a 1 KiB signed body, a static bearer token and a (repeated) JWT. Two
# setups: the server pinned to core 0 with wrk on core 1, and both sharing the two cores.
# Prints a Markdown table of requests/s, p50 and p99, and each route's ratio to no auth.
#
# Run with: bash benches/load.sh [seconds per run, default 10]
# Needs wrk (Debian package `wrk`; installed here when missing) and taskset (util-linux).
set -euo pipefail
cd "$(dirname "$0")/.."
duration=${1:-10}
connections=${CONNECTIONS:-32}

if ! command -v wrk >/dev/null; then
  apt-get install -y -q wrk >/dev/null 2>&1 || { apt-get update -q >/dev/null && apt-get install -y -q wrk >/dev/null; }
fi
cargo build --quiet --release --example tool_server

source scripts/lib.sh
addr="127.0.0.1:$(free_port)"
secret="load-signing-secret-0123456789abcdef"
token="tok_load_0123456789abcdef0123456789"
jwt_secret="load-jwt-secret-0123456789abcdef0123"
work=$(mktemp -d)
trap 'kill $server 2>/dev/null || true; rm -rf "$work"' EXIT

body=$(python3 -c 'print("x" * 1024, end="")')
signature=$(printf '%s' "$body" | python3 -c "import hmac,hashlib,sys; print(hmac.new(b'$secret', sys.stdin.buffer.read(), hashlib.sha256).hexdigest())")
jwt=$(JWT="$jwt_secret" cargo run --quiet --release --features cli --bin callguard -- token --secret-env JWT --sub load --scope tools:call --ttl 3600)

script() { # name, header lines (lua), body
  cat >"$work/$1.lua" <<LUA
wrk.method = "POST"
wrk.body = "$3"
$2
LUA
}
script open "" "$body"
script signature "wrk.headers[\"x-signature\"] = \"$signature\"" "$body"
script bearer "wrk.headers[\"authorization\"] = \"Bearer $token\"" "$body"
script jwt "wrk.headers[\"authorization\"] = \"Bearer $jwt\"" "$body"

run_setup() { # label, server cpus, wrk cpus
  CALLGUARD_ADDR=$addr CALLGUARD_OPEN_ROUTE=1 TOOL_SIGNING_SECRETS=$secret TOOL_BEARER_TOKENS="load=$token" \
    TOOL_JWT_SECRET=$jwt_secret TOOL_BASIC_USERS="load:load-password-0123456789" \
    taskset -c "$2" target/release/examples/tool_server >/dev/null 2>&1 &
  server=$!
  CALLGUARD_ADDR=$addr wait_healthy
  local base=""
  for route in ${ROUTES:-open signature bearer jwt}; do
    path=$([ "$route" = open ] && echo /open/echo || echo /tools/echo)
    # A short warm-up per route, discarded, so each measurement starts from a steady state.
    taskset -c "$3" wrk -t 1 -c "$connections" -d 2s -s "$work/$route.lua" "http://$addr$path" >/dev/null 2>&1
    taskset -c "$3" wrk -t 1 -c "$connections" -d "${duration}s" --latency -s "$work/$route.lua" "http://$addr$path" >"$work/out" 2>&1
    rps=$(awk '/Requests\/sec/ {print $2}' "$work/out")
    p50=$(awk '/ 50%/ {print $2}' "$work/out")
    p99=$(awk '/ 99%/ {print $2}' "$work/out")
    non2xx=$(awk '/Non-2xx/ {print $5}' "$work/out")
    [ -z "$base" ] && base=$rps
    ratio=$(python3 -c "print(f'{$rps / $base:.3f}')")
    echo "| $1 | $route | ${rps} | ${p50} | ${p99} | ${ratio} | ${non2xx:-0} |"
  done
  kill $server; wait $server 2>/dev/null || true
}

echo "| setup | route | requests/s | p50 | p99 | ÷ no auth | non-2xx |"
echo "| --- | --- | --- | --- | --- | --- | --- |"
run_setup "pinned (server core 0, wrk core 1)" 0 1
run_setup "shared (both on cores 0-1)" 0-1 0-1
