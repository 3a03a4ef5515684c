"""A tiny runner shared by the interop suites: HTTP over loopback and a pass/fail tally
that ends with the plain closing line `N passed, N failed`."""
import json
import os
import sys
import traceback
import urllib.error
import urllib.request

BASE = "http://" + os.environ["CALLGUARD_ADDR"]
PUBLIC = os.environ["CALLGUARD_PUBLIC_URL"]

_results = []


def post(path, body, headers):
    """POST `body` (bytes) to the example server; return (status, parsed JSON or raw bytes)."""
    request = urllib.request.Request(BASE + path, data=body, method="POST", headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, error.read()


def case(function):
    """Register a test case."""
    _results.append(function)
    return function


def run(suite):
    passed = failed = 0
    for function in _results:
        try:
            function()
            passed += 1
            print(f"ok   {suite}: {function.__name__}")
        except Exception:  # noqa: BLE001 - report every failure, keep going
            failed += 1
            print(f"FAIL {suite}: {function.__name__}")
            traceback.print_exc()
    print(f"{suite}: {passed} passed, {failed} failed")
    sys.exit(1 if failed else 0)


def expect_accepted(status, answer, provider):
    assert status == 200, (status, answer)
    assert answer["method"] == "signature", answer
    assert answer["route"] == f"/webhooks/{provider}", answer
