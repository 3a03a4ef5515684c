#!/usr/bin/env bash
# External issuers against a real authorization server: node `oidc-provider` (pinned in
# package.json, installed here with npm ci) issues access tokens, and the example server
# (built with --features reqwest,dpop,redis,mtls) must accept and refuse them as its contract
# says, DPoP-bound tokens and certificate-bound ones behind real nginx included; then the MCP
# example behind callguard, driven by the official MCP client (PyPI `mcp`).
set -euo pipefail
cd "$(dirname "$0")/../.."
here=tests/oauth
(cd "$here" && npm ci --silent --no-audit --no-fund >/dev/null)
# nginx terminates TLS with client certificates for the certificate-bound token run.
if ! command -v nginx >/dev/null && [ ! -x /usr/sbin/nginx ]; then
  apt-get install -y -q nginx-light >/dev/null 2>&1 || { apt-get update -q >/dev/null && apt-get install -y -q nginx-light >/dev/null; }
fi
if [ ! -x "$here/.venv/bin/python" ]; then python3 -m venv "$here/.venv"; fi
"$here/.venv/bin/pip" install --quiet --disable-pip-version-check -r "$here/requirements.txt"
cargo build --quiet --example tool_server --example mcp_server --features reqwest,dpop,redis,mtls
status=0
"$here/.venv/bin/python" "$here/test_oidc.py" target/debug/examples/tool_server || status=1
"$here/.venv/bin/python" "$here/test_dpop.py" target/debug/examples/tool_server || status=1
"$here/.venv/bin/python" "$here/test_mtls.py" target/debug/examples/tool_server || status=1
"$here/.venv/bin/python" "$here/test_mcp.py" target/debug/examples/mcp_server || status=1
exit $status
