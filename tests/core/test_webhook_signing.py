"""core.webhook_signing: secrets per owner on a real Redis, and signatures a receiver using the
Standard Webhooks library verifies."""

import json

import pytest
from standardwebhooks import Webhook, WebhookVerificationError

from core.webhook_signing import PREFIX, WebhookSecrets, signed_headers


def test_a_secret_per_owner_made_once_and_rotated(redis_client):
    store = WebhookSecrets(redis_client)
    first = store.get("owner-a")
    assert first.startswith(PREFIX) and store.get("owner-a") == first
    assert store.get("owner-b") != first
    rotated = store.rotate("owner-a")
    assert rotated != first and store.get("owner-a") == rotated


def test_a_receiver_verifies_the_signature_and_refuses_a_forgery(redis_client):
    secret = WebhookSecrets(redis_client).get("owner-c")
    body = json.dumps({"id": "j1", "status": "succeeded"}).encode()
    headers = signed_headers(secret, "evt-1", body)
    assert Webhook(secret).verify(body, headers) == {"id": "j1", "status": "succeeded"}
    with pytest.raises(WebhookVerificationError):
        Webhook(secret).verify(body.replace(b"succeeded", b"failed"), headers)
    with pytest.raises(WebhookVerificationError):
        Webhook(WebhookSecrets(redis_client).rotate("owner-c")).verify(body, headers)
