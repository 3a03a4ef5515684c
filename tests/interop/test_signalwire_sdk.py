"""SignalWire's own SDK signs requests (hex HMAC-SHA1 of URL + raw body, and its Twilio
compatibility scheme); the example server must agree with it."""
import os

from signalwire.request_validator import RequestValidator

from harness import PUBLIC, case, expect_accepted, post, run

VALIDATOR = RequestValidator(os.environ["SIGNALWIRE_SIGNING_KEY"])
BODY = '{"event":"call.state","params":{"call_id":"abc-123","state":"answered"}}'


@case
def signalwire_scheme_a_is_accepted():
    url = PUBLIC + "/webhooks/signalwire"
    signature = VALIDATOR.build_signature(url, BODY)
    assert VALIDATOR.validate(url, BODY, signature)
    status, answer = post("/webhooks/signalwire", BODY.encode(), {"X-SignalWire-Signature": signature})
    expect_accepted(status, answer, "signalwire")


@case
def signalwire_scheme_a_tampered_body_or_url_is_rejected():
    url = PUBLIC + "/webhooks/signalwire"
    signature = VALIDATOR.build_signature(url, BODY)
    tampered = BODY.replace("answered", "ringing").encode()
    assert post("/webhooks/signalwire", tampered, {"X-SignalWire-Signature": signature})[0] == 401
    assert post("/webhooks/signalwire?other=1", BODY.encode(), {"X-SignalWire-Signature": signature})[0] == 401


@case
def signalwire_compatibility_scheme_is_accepted():
    url = PUBLIC + "/webhooks/signalwire"
    params = {"CallSid": "abc", "CallStatus": "ringing"}
    signature = VALIDATOR.build_signature_with_compatibility(url, params)
    from urllib.parse import urlencode
    status, answer = post("/webhooks/signalwire", urlencode(params).encode(), {"X-SignalWire-Signature": signature})
    expect_accepted(status, answer, "signalwire")


run("interop-signalwire")
