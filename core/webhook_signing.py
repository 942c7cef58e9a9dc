"""Webhook signing secrets per API key, and signed deliveries (the Standard Webhooks spec).

Each owner (API key) has one signing secret, `whsec_` + base64 of 32 random bytes, kept in Redis
(`WebhookSecrets`): made on first use, readable by its key and rotated on request (the old one
stops signing at once). A delivery carries `webhook-id` (the same on every retry of one event:
receivers drop duplicates by it), `webhook-timestamp` (Unix seconds of this attempt) and
`webhook-signature` (`v1,<base64 HMAC-SHA256 of "id.timestamp.body">`), computed by the
specification's own library (`standardwebhooks`), which receivers use to verify.
"""

from __future__ import annotations

import base64
import secrets
from datetime import UTC, datetime

import redis
from standardwebhooks import Webhook

SECRETS_KEY = "ganserve:webhook-secrets"
PREFIX = "whsec_"


def new_secret() -> str:
    """A fresh signing secret."""
    return PREFIX + base64.b64encode(secrets.token_bytes(32)).decode()


class WebhookSecrets:
    """The owners' signing secrets in Redis."""

    def __init__(self, client: redis.Redis) -> None:
        self.redis = client

    def get(self, owner: str) -> str:
        """The owner's secret, made now if it has none (two racing first reads agree)."""
        current = self.redis.hget(SECRETS_KEY, owner)
        if current is None:
            self.redis.hsetnx(SECRETS_KEY, owner, new_secret())
            current = self.redis.hget(SECRETS_KEY, owner)
        return current.decode() if isinstance(current, bytes) else str(current)

    def rotate(self, owner: str) -> str:
        """Replace the owner's secret; the new one."""
        secret = new_secret()
        self.redis.hset(SECRETS_KEY, owner, secret)
        return secret


def signed_headers(
    secret: str, message_id: str, body: bytes, at: datetime | None = None
) -> dict[str, str]:
    """The Standard Webhooks headers of one delivery attempt of `body`."""
    moment = at or datetime.now(UTC)
    signature = Webhook(secret).sign(message_id, moment, body)
    return {
        "webhook-id": message_id,
        "webhook-timestamp": str(int(moment.timestamp())),
        "webhook-signature": signature,
        "content-type": "application/json",
    }
