"""The MCP example behind callguard, driven by the official MCP client (PyPI `mcp`, pinned),
with node `oidc-provider` as the authorization server: the resource-server half of the MCP
authorization spec, end to end with real parts only.
"""
import asyncio, json, os, subprocess, sys, urllib.error, urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from test_oidc import Provider, free_port, wait_for  # noqa: E402
from test_dpop import ClientKey, bound_token  # noqa: E402

import httpx2
from mcp import ClientSession
from mcp.client.streamable_http import streamable_http_client


def raw_post(url, body, token=None, origin=None, scheme="Bearer", proof=None):
    request = urllib.request.Request(url, data=json.dumps(body).encode(), method="POST")
    request.add_header("content-type", "application/json")
    request.add_header("accept", "application/json, text/event-stream")
    if token:
        request.add_header("authorization", f"{scheme} {token}")
    if proof:
        request.add_header("dpop", proof)
    if origin:
        request.add_header("origin", origin)
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, response.headers
    except urllib.error.HTTPError as error:
        return error.code, error.headers


async def session_calls(url, token, calls):
    """Initialize, list the tools, and make `calls`; answers the results and HTTP statuses seen."""
    statuses = []

    async def record(response):
        statuses.append((response.status_code, response.headers.get("www-authenticate")))

    async with httpx2.AsyncClient(headers={"Authorization": f"Bearer {token}"},
                                  event_hooks={"response": [record]}, timeout=30) as http:
        async with streamable_http_client(url, http_client=http) as streams:
            read, write = streams[0], streams[1]
            async with ClientSession(read, write) as session:
                await session.initialize()
                tools = sorted(tool.name for tool in (await session.list_tools()).tools)
                results = []
                for name, arguments in calls:
                    try:
                        result = await session.call_tool(name, arguments)
                        results.append(result.content[0].text)
                    except Exception as error:  # the transport raises on a 403
                        results.append(error)
                return tools, results, statuses


def main():
    results = []

    def check(name, condition, detail=""):
        results.append(condition)
        print(("ok   " if condition else "FAIL ") + "mcp: " + name + ("" if condition else f": {detail}"))

    provider = Provider(free_port(), "rsa-a")
    addr = f"127.0.0.1:{free_port()}"
    url = f"http://{addr}/mcp"
    env = dict(os.environ, CALLGUARD_ADDR=addr, CALLGUARD_OAUTH_ISSUERS=provider.issuer)
    server = subprocess.Popen([sys.argv[1]], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_for(f"http://{addr}/.well-known/oauth-protected-resource/mcp")
        status, headers = raw_post(url, {"jsonrpc": "2.0", "id": 1, "method": "tools/list"})
        challenge = headers.get("www-authenticate") or ""
        check("without a token: 401 with resource_metadata", status == 401 and "resource_metadata=" in challenge, (status, challenge))
        metadata_url = challenge.split('resource_metadata="')[1].split('"')[0]
        with urllib.request.urlopen(metadata_url, timeout=10) as response:
            document = json.loads(response.read())
        check("the metadata names this resource and the provider",
              document["resource"] == url and document["authorization_servers"] == [provider.issuer], document)
        check("the metadata does not offer offline_access", "offline_access" not in document.get("scopes_supported", []), document)
        with urllib.request.urlopen(f"http://{addr}/.well-known/oauth-protected-resource", timeout=10) as response:
            check("the root metadata path serves the same document", json.loads(response.read()) == document)

        caller = provider.token(scope="mcp:call", resource=url)
        tools, answers, _ = asyncio.run(session_calls(url, caller, [("whoami", {})]))
        check("initialize and tools/list succeed", tools == ["refund", "whoami"], tools)
        whoami = json.loads(answers[0])
        check("whoami shows the token's subject and scopes",
              whoami["id"] == "agent" and whoami["client_id"] == "agent" and whoami["scopes"] == ["mcp:call"]
              and whoami["issuer"] == provider.issuer, whoami)

        _, answers, statuses = asyncio.run(session_calls(url, caller, [("refund", {"order_id": "o-1", "amount": 5})]))
        refused = [s for s in statuses if s[0] == 403]
        check("refund with mcp:call only is HTTP 403 insufficient_scope naming both scopes",
              refused and 'error="insufficient_scope"' in refused[0][1] and 'scope="mcp:call refunds:write"' in refused[0][1],
              statuses)

        admin = provider.token(scope="mcp:admin", resource=url)
        _, answers, _ = asyncio.run(session_calls(url, admin, [("refund", {"order_id": "o-1", "amount": 5})]))
        check("with mcp:admin, refund succeeds", answers == ["refunded o-1"], answers)

        elsewhere = provider.token(scope="mcp:call", resource="https://elsewhere.example.com/mcp")
        status, _ = raw_post(url, {"jsonrpc": "2.0", "id": 1, "method": "tools/list"}, elsewhere)
        check("a token for another resource is 401", status == 401, status)

        # The DNS-rebinding rule: a page elsewhere cannot drive the server from a browser.
        status, _ = raw_post(url, {"jsonrpc": "2.0", "id": 1, "method": "tools/list"}, admin,
                             origin="https://evil.example")
        check("a request from a foreign browser origin is 403", status == 403, status)
        status, _ = raw_post(url, {"jsonrpc": "2.0", "id": 1, "method": "tools/list"}, elsewhere,
                             origin=url.rsplit("/", 1)[0])
        check("the resource's own origin passes the origin check (then 401 for the token)",
              status == 401, status)

        # DPoP (RFC 9449): the metadata names the proof algorithms, and a DPoP-bound token
        # from the provider is accepted with a proof of its key, never as a bearer token.
        with urllib.request.urlopen(f"http://{addr}/.well-known/oauth-protected-resource/mcp", timeout=10) as response:
            document = json.loads(response.read())
        check("the metadata names the DPoP proof algorithms",
              "ES256" in document.get("dpop_signing_alg_values_supported", []), document)
        key = ClientKey()
        bound, _ = bound_token(provider, key, scope="mcp:call", resource=url)
        initialize = {"jsonrpc": "2.0", "id": 1, "method": "initialize",
                      "params": {"protocolVersion": "2025-06-18", "capabilities": {},
                                 "clientInfo": {"name": "dpop-test", "version": "1"}}}
        status, _ = raw_post(url, initialize, bound, scheme="DPoP", proof=key.proof("POST", url, bound))
        check("a DPoP-bound token with a proof of its key initializes a session", status == 200, status)
        status, headers = raw_post(url, initialize, bound)
        check("the DPoP-bound token as a bearer token is 401 with a DPoP challenge",
              status == 401 and any(c.startswith("DPoP ") for c in headers.get_all("www-authenticate") or []), status)
    finally:
        server.terminate()
        provider.stop()
    passed = sum(bool(r) for r in results)
    print(f"mcp: {passed} passed, {len(results) - passed} failed")
    return 0 if all(results) else 1


if __name__ == "__main__":
    sys.exit(main())
