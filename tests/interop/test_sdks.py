"""The providers' own Python SDKs sign requests; the example server must agree with them."""
import base64
import datetime
import hashlib
import hmac
import json
import os
import time

import jwt
import standardwebhooks
import stripe
from slack_sdk.signature import SignatureVerifier as SlackVerifier
from svix.webhooks import Webhook as SvixWebhook
from twilio.request_validator import RequestValidator

from harness import PUBLIC, case, expect_accepted, post, run

BODY = '{"event":"ping","data":{"id":"evt_1","url":"https:\\/\\/example.com\\/x"},"emoji":"\u00e9"}'
RAW = BODY.encode()


def now():
    return int(time.time())


# --- Standard Webhooks -------------------------------------------------------------------
SW_SECRET = os.environ["STANDARD_WEBHOOK_SECRET"]


def standard_headers(signature, msg_id="msg_interop_1", ts=None, prefix="webhook"):
    ts = now() if ts is None else ts
    return {f"{prefix}-id": msg_id, f"{prefix}-timestamp": str(ts), f"{prefix}-signature": signature}


def standard_sign(secret, msg_id, ts, body=BODY):
    return standardwebhooks.Webhook(secret).sign(msg_id, datetime.datetime.fromtimestamp(ts, datetime.timezone.utc), body)


@case
def standard_webhooks_valid_is_accepted():
    ts = now()
    status, answer = post("/webhooks/standard", RAW, standard_headers(standard_sign(SW_SECRET, "msg_1", ts), "msg_1", ts))
    expect_accepted(status, answer, "standard")
    assert answer["body_sha256"] == hashlib.sha256(RAW).hexdigest()


@case
def standard_webhooks_tampered_is_rejected():
    ts = now()
    headers = standard_headers(standard_sign(SW_SECRET, "msg_2", ts), "msg_2", ts)
    assert post("/webhooks/standard", RAW + b" ", headers)[0] == 401


@case
def standard_webhooks_stale_timestamp_is_rejected():
    ts = now() - 600
    headers = standard_headers(standard_sign(SW_SECRET, "msg_3", ts), "msg_3", ts)
    assert post("/webhooks/standard", RAW, headers)[0] == 401


@case
def standard_webhooks_several_signatures_rotation_is_accepted():
    ts = now()
    old = standard_sign("whsec_" + base64.b64encode(b"an-old-rotated-out-secret-key!!").decode(), "msg_4", ts)
    new = standard_sign(SW_SECRET, "msg_4", ts)
    status, answer = post("/webhooks/standard", RAW, standard_headers(f"{old} {new}", "msg_4", ts))
    expect_accepted(status, answer, "standard")


# --- Svix (the same scheme under svix- headers) -------------------------------------------
@case
def svix_valid_is_accepted_and_tampered_rejected():
    ts = now()
    signature = SvixWebhook(SW_SECRET).sign("msg_svix_1", datetime.datetime.fromtimestamp(ts, datetime.timezone.utc), BODY)
    headers = standard_headers(signature, "msg_svix_1", ts, prefix="svix")
    status, answer = post("/webhooks/standard", RAW, headers)
    expect_accepted(status, answer, "standard")
    assert post("/webhooks/standard", RAW.replace(b"ping", b"pong"), headers)[0] == 401


@case
def svix_stale_timestamp_is_rejected():
    ts = now() - 3600
    signature = SvixWebhook(SW_SECRET).sign("msg_svix_2", datetime.datetime.fromtimestamp(ts, datetime.timezone.utc), BODY)
    assert post("/webhooks/standard", RAW, standard_headers(signature, "msg_svix_2", ts, prefix="svix"))[0] == 401


# --- Stripe --------------------------------------------------------------------------------
STRIPE_SECRET = os.environ["STRIPE_WEBHOOK_SECRET"]


@case
def stripe_valid_is_accepted_and_sdk_agrees():
    header = stripe.WebhookSignature.generate_signature_header(BODY, STRIPE_SECRET)
    # The SDK's own verifier accepts what it made (a sanity check of the fixture).
    stripe.WebhookSignature.verify_header(BODY, header, STRIPE_SECRET, tolerance=300)
    status, answer = post("/webhooks/stripe", RAW, {"Stripe-Signature": header})
    expect_accepted(status, answer, "stripe")


@case
def stripe_tampered_is_rejected():
    header = stripe.WebhookSignature.generate_signature_header(BODY, STRIPE_SECRET)
    assert post("/webhooks/stripe", RAW.replace(b"evt_1", b"evt_2"), {"Stripe-Signature": header})[0] == 401


@case
def stripe_stale_timestamp_is_rejected():
    header = stripe.WebhookSignature.generate_signature_header(BODY, STRIPE_SECRET, timestamp=now() - 600)
    assert post("/webhooks/stripe", RAW, {"Stripe-Signature": header})[0] == 401


@case
def stripe_rolled_secret_with_two_v1_is_accepted():
    ts = now()
    body = BODY.replace("evt_1", "evt_rolled")  # another event: the same one again is a replay
    current = stripe.WebhookSignature.generate_signature_header(body, STRIPE_SECRET, timestamp=ts)
    previous = stripe.WebhookSignature.generate_signature_header(body, "whsec_previousSecret0123456789", timestamp=ts)
    v1_previous = previous.split(",", 1)[1]
    header = f"t={ts},{v1_previous},{current.split(',', 1)[1]},v0=deadbeef"
    status, answer = post("/webhooks/stripe", body.encode(), {"Stripe-Signature": header})
    expect_accepted(status, answer, "stripe")


@case
def stripe_and_standard_webhooks_replays_are_rejected():
    body = BODY.replace("evt_1", "evt_replayed")
    header = stripe.WebhookSignature.generate_signature_header(body, STRIPE_SECRET)
    assert post("/webhooks/stripe", body.encode(), {"Stripe-Signature": header})[0] == 200
    assert post("/webhooks/stripe", body.encode(), {"Stripe-Signature": header})[0] == 401
    ts = now()
    headers = standard_headers(standard_sign(SW_SECRET, "msg_replayed", ts), "msg_replayed", ts)
    assert post("/webhooks/standard", RAW, headers)[0] == 200
    assert post("/webhooks/standard", RAW, headers)[0] == 401


# --- Slack ---------------------------------------------------------------------------------
SLACK = SlackVerifier(os.environ["SLACK_SIGNING_SECRET"])
FORM = b"token=xyz&team_id=T1&command=%2Fwebhook-collect&text=hello+world"


@case
def slack_valid_is_accepted():
    ts = str(now())
    headers = {"X-Slack-Request-Timestamp": ts, "X-Slack-Signature": SLACK.generate_signature(timestamp=ts, body=FORM.decode())}
    status, answer = post("/webhooks/slack", FORM, headers)
    expect_accepted(status, answer, "slack")


@case
def slack_tampered_and_stale_are_rejected():
    ts = str(now())
    headers = {"X-Slack-Request-Timestamp": ts, "X-Slack-Signature": SLACK.generate_signature(timestamp=ts, body=FORM.decode())}
    assert post("/webhooks/slack", FORM + b"&x=1", headers)[0] == 401
    old = str(now() - 600)
    stale = {"X-Slack-Request-Timestamp": old, "X-Slack-Signature": SLACK.generate_signature(timestamp=old, body=FORM.decode())}
    assert post("/webhooks/slack", FORM, stale)[0] == 401
    future = str(now() + 600)
    ahead = {"X-Slack-Request-Timestamp": future, "X-Slack-Signature": SLACK.generate_signature(timestamp=future, body=FORM.decode())}
    assert post("/webhooks/slack", FORM, ahead)[0] == 401


# --- Twilio (compatibility scheme, accepted by the SignalWire route) ------------------------
TWILIO = RequestValidator(os.environ["SIGNALWIRE_SIGNING_KEY"])
TWILIO_PARAMS = {"CallSid": "CA1234567890ABCDE", "Digits": "1234", "From": "+14158675309", "To": "+18005551212"}


def form(params):
    from urllib.parse import urlencode
    return urlencode(params).encode()


@case
def twilio_form_request_is_accepted():
    url = PUBLIC + "/webhooks/signalwire?foo=1&bar=2"
    signature = TWILIO.compute_signature(url, TWILIO_PARAMS)
    assert TWILIO.validate(url, TWILIO_PARAMS, signature)
    status, answer = post("/webhooks/signalwire?foo=1&bar=2", form(TWILIO_PARAMS), {"X-Twilio-Signature": signature})
    expect_accepted(status, answer, "signalwire")


@case
def twilio_tampered_parameter_is_rejected():
    url = PUBLIC + "/webhooks/signalwire"
    signature = TWILIO.compute_signature(url, TWILIO_PARAMS)
    changed = dict(TWILIO_PARAMS, Digits="9999")
    assert post("/webhooks/signalwire", form(changed), {"X-Twilio-Signature": signature})[0] == 401


@case
def twilio_json_body_with_body_sha256_is_accepted_and_checked():
    body_hash = TWILIO.compute_hash(BODY)
    url = f"{PUBLIC}/webhooks/signalwire?bodySHA256={body_hash}"
    signature = TWILIO.compute_signature(url, {})
    status, answer = post(f"/webhooks/signalwire?bodySHA256={body_hash}", RAW, {"X-Twilio-Signature": signature})
    expect_accepted(status, answer, "signalwire")
    assert post(f"/webhooks/signalwire?bodySHA256={body_hash}", RAW + b" ", {"X-Twilio-Signature": signature})[0] == 401


@case
def twilio_signature_over_the_url_with_default_port_is_accepted():
    url = PUBLIC.replace("example.com", "example.com:443") + "/webhooks/signalwire"
    signature = TWILIO.compute_signature(url, TWILIO_PARAMS)
    status, answer = post("/webhooks/signalwire", form(TWILIO_PARAMS), {"X-Twilio-Signature": signature})
    expect_accepted(status, answer, "signalwire")


# --- GitHub, Shopify, Sendbird: no signing SDK; Python's hmac is the independent client ----
def hmac_hex(secret, body):
    return hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


@case
def github_valid_accepted_tampered_rejected():
    secret = os.environ["GITHUB_WEBHOOK_SECRET"]
    headers = {"X-Hub-Signature-256": "sha256=" + hmac_hex(secret, RAW), "X-GitHub-Delivery": "1"}
    expect_accepted(*post("/webhooks/github", RAW, headers), "github")
    assert post("/webhooks/github", RAW + b"\n", headers)[0] == 401


@case
def shopify_valid_accepted_tampered_rejected():
    secret = os.environ["SHOPIFY_WEBHOOK_SECRET"]
    digest = hmac.new(secret.encode(), RAW, hashlib.sha256).digest()
    headers = {"X-Shopify-Hmac-Sha256": base64.b64encode(digest).decode()}
    expect_accepted(*post("/webhooks/shopify", RAW, headers), "shopify")
    assert post("/webhooks/shopify", RAW[:-1], headers)[0] == 401


@case
def sendbird_raw_escaped_body_verifies_and_reserialised_does_not():
    secret = os.environ["SENDBIRD_API_TOKEN"]
    headers = {"x-sendbird-signature": hmac_hex(secret, RAW)}
    expect_accepted(*post("/webhooks/sendbird", RAW, headers), "sendbird")
    reserialised = json.dumps(json.loads(BODY), separators=(",", ":"), ensure_ascii=False).encode()
    assert reserialised != RAW
    assert post("/webhooks/sendbird", reserialised, headers)[0] == 401


# --- x-signature tool calls -----------------------------------------------------------------
@case
def tool_signature_valid_accepted_tampered_rejected():
    secret = os.environ["TOOL_SIGNING_SECRETS"].split(",")[0]
    status, answer = post("/tools/lookup", RAW, {"x-signature": hmac_hex(secret, RAW)})
    assert status == 200 and answer["route"] == "/tools/lookup", (status, answer)
    assert post("/tools/lookup", RAW + b"x", {"x-signature": hmac_hex(secret, RAW)})[0] == 401


# --- PyJWT -----------------------------------------------------------------------------------
JWT_SECRET = os.environ["TOOL_JWT_SECRET"]


def pyjwt_token(**overrides):
    claims = {"iss": "callguard-example", "aud": "tools", "sub": "pyjwt-agent", "iat": now(), "exp": now() + 120, "scope": "tools:call orders:write"}
    claims.update(overrides)
    return jwt.encode(claims, JWT_SECRET, algorithm="HS256")


@case
def pyjwt_token_is_accepted_on_the_scoped_route():
    status, answer = post("/tools/orders", RAW, {"Authorization": "Bearer " + pyjwt_token()})
    assert status == 200 and answer["method"] == "jwt" and answer["id"] == "pyjwt-agent", (status, answer)


@case
def pyjwt_expired_wrong_audience_and_tampered_are_rejected():
    assert post("/tools/echo", RAW, {"Authorization": "Bearer " + pyjwt_token(exp=now() - 60)})[0] == 401
    assert post("/tools/echo", RAW, {"Authorization": "Bearer " + pyjwt_token(aud="other")})[0] == 401
    token = pyjwt_token()
    head, payload, signature = token.split(".")
    forged = base64.urlsafe_b64encode(json.dumps({"sub": "admin", "exp": now() + 60}).encode()).rstrip(b"=").decode()
    assert post("/tools/echo", RAW, {"Authorization": f"Bearer {head}.{forged}.{signature}"})[0] == 401
    none_header = base64.urlsafe_b64encode(b'{"alg":"none","typ":"JWT"}').rstrip(b"=").decode()
    assert post("/tools/echo", RAW, {"Authorization": f"Bearer {none_header}.{payload}."})[0] == 401


@case
def token_minted_by_the_server_verifies_with_pyjwt():
    user, password = os.environ["TOOL_BASIC_USERS"].split(":", 1)
    basic = base64.b64encode(f"{user}:{password}".encode()).decode()
    status, minted = post("/auth/token", b'{"scopes":["orders:read"],"ttl":60}', {"Authorization": "Basic " + basic})
    assert status == 201, (status, minted)
    claims = jwt.decode(minted["access_token"], JWT_SECRET, algorithms=["HS256"], audience="tools", issuer="callguard-example")
    assert claims["sub"] == user and claims["scope"] == "orders:read" and claims["jti"], claims


run("interop-sdks")
