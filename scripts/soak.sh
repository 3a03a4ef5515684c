#!/usr/bin/env bash
# Start the example server and run scripts/soak.py against it over loopback.
# Usage: bash scripts/soak.sh [requests, default 3000] [concurrency, default 100]
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lib.sh
cargo build --quiet --release --example tool_server
export CALLGUARD_ADDR="127.0.0.1:$(free_port)"
export CALLGUARD_BODY_LIMIT=65536
export TOOL_SIGNING_SECRETS="soak-signing-secret-0123456789abcdef"
export TOOL_BEARER_TOKENS="soak=tok_soak_0123456789abcdef012345"
start_tool_server target/release/examples/tool_server
python3 scripts/soak.py "$server" "$CALLGUARD_ADDR" "${1:-3000}" "${2:-100}"
