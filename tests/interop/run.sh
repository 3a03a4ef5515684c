#!/usr/bin/env bash
# Interoperability suite: the providers' own SDKs (from PyPI, pinned) sign real requests
# and send them over loopback to a running example server. Creates its virtual
# environments, starts the server on a free port, runs the suites, stops the server.
set -euo pipefail
cd "$(dirname "$0")/../.."
here=tests/interop

setup_venv() {
  local dir=$1 requirements=$2
  if [ ! -x "$dir/bin/python" ]; then python3 -m venv "$dir"; fi
  "$dir/bin/pip" install --quiet --disable-pip-version-check -r "$requirements"
}
setup_venv "$here/.venv" "$here/requirements.txt"
setup_venv "$here/.venv-signalwire" "$here/requirements-signalwire.txt"

source scripts/lib.sh
cargo build --quiet --example tool_server
export CALLGUARD_ADDR="127.0.0.1:$(free_port)"
export CALLGUARD_PUBLIC_URL="https://hooks.example.com"
export TOOL_SIGNING_SECRETS="interop-signing-secret-0123456789"
export TOOL_BEARER_TOKENS="interop=tok_interop_0123456789abcdef"
export TOOL_JWT_SECRET="interop-jwt-secret-0123456789abcdef"
export TOOL_BASIC_USERS="minter:interop-password-0123456789"
export SENDBIRD_API_TOKEN="sendbird-master-api-token-0123456789"
export SIGNALWIRE_SIGNING_KEY="PSKinterop0123456789abcdef"
export GITHUB_WEBHOOK_SECRET="github-webhook-secret-0123456789"
export STRIPE_WEBHOOK_SECRET="whsec_stripeInterop0123456789abcdef"
export SLACK_SIGNING_SECRET="8f742231b10e8888abcd99yyyzzz85a5"
export SHOPIFY_WEBHOOK_SECRET="shopify-client-secret-0123456789"
export STANDARD_WEBHOOK_SECRET="whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"

start_tool_server target/debug/examples/tool_server

status=0
"$here/.venv/bin/python" "$here/test_sdks.py" || status=1
"$here/.venv-signalwire/bin/python" "$here/test_signalwire_sdk.py" || status=1
exit $status
