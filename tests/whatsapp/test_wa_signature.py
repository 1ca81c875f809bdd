import hashlib
import hmac

import pytest

from app.whatsapp.webhook import sign, verify_handshake, verify_signature

SECRET = "app-secret"
BODY = b'{"object":"whatsapp_business_account","entry":[]}'


def header_for(body, secret=SECRET):
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def test_valid_signature():
    assert verify_signature(BODY, header_for(BODY), SECRET)
    assert verify_signature(BODY, header_for(BODY).upper().replace("SHA256=", "sha256="), SECRET)
    assert sign(BODY, SECRET) == header_for(BODY)


def test_tampered_body_fails():
    assert not verify_signature(BODY.replace(b"entry", b"entrz"), header_for(BODY), SECRET)


def test_wrong_secret_fails():
    assert not verify_signature(BODY, header_for(BODY, "other-secret"), SECRET)


@pytest.mark.parametrize("header", [None, "", "sha256=", "sha1=" + "0" * 40, header_for(BODY)[7:],
                                    "sha256=" + "0" * 64, "sha256=zz", "sha256=é" + "0" * 63, 12345])
def test_missing_or_malformed_header_fails(header):
    assert not verify_signature(BODY, header, SECRET)


def test_empty_secret_never_verifies():
    assert not verify_signature(BODY, header_for(BODY, ""), "")


def test_handshake():
    args = {"hub.mode": "subscribe", "hub.verify_token": "verify-me", "hub.challenge": "1158201444"}
    assert verify_handshake(args, "verify-me") == "1158201444"
    assert verify_handshake({**args, "hub.verify_token": "wrong"}, "verify-me") is None
    assert verify_handshake({**args, "hub.mode": "unsubscribe"}, "verify-me") is None
    assert verify_handshake({k: v for k, v in args.items() if k != "hub.challenge"}, "verify-me") is None
    assert verify_handshake(args, "") is None
