#!/usr/bin/env bash
# Start the example server and run scripts/soak.py against it over loopback.
# Usage: bash scripts/soak.sh [requests, default 3000] [concurrency, default 100]
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --quiet --release --example tool_server
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
export CALLGUARD_ADDR="127.0.0.1:$port"
export CALLGUARD_BODY_LIMIT=65536
export TOOL_SIGNING_SECRETS="soak-signing-secret-0123456789abcdef"
export TOOL_BEARER_TOKENS="soak=tok_soak_0123456789abcdef012345"
target/release/examples/tool_server >/dev/null 2>&1 &
server=$!
trap 'kill $server 2>/dev/null || true' EXIT
for _ in $(seq 1 100); do curl -fsS "http://$CALLGUARD_ADDR/healthz" >/dev/null 2>&1 && break; sleep 0.1; done
python3 scripts/soak.py "$server" "$CALLGUARD_ADDR" "${1:-3000}" "${2:-100}"
