"""Webhook routes: the caller's signing secret (read, rotate) and a job's deliveries."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from pydantic import BaseModel, Field

from core.webhook_outbox import deliveries
from core.webhook_signing import WebhookSecrets
from service.api.deps import OwnerDep, RedisDep, StoreDep
from service.api.routes.jobs import owned_job
from service.schemas import error_responses

router = APIRouter(tags=["webhooks"])


class WebhookSecret(BaseModel):
    """The secret that signs this API key's webhooks (Standard Webhooks: `whsec_` + base64)."""

    secret: str


class Attempt(BaseModel):
    """One delivery attempt: when (Unix time), and the receiver's status or the error."""

    at: float
    status: int | None = None
    error: str | None = None
    refused: bool | None = None


class Delivery(BaseModel):
    """One webhook event of a job and how its delivery went."""

    id: str = Field(description="The `webhook-id` it is sent with (the same on every retry).")
    type: str = Field(description="`start`, `progress` or `completed`.")
    url: str
    state: str = Field(
        description="`pending`, `delivered`, `stopped` (the receiver answered 410), `refused` "
        "(not an allowed target) or `failed` (no success within 24 h)."
    )
    attempts: int
    outcomes: list[Attempt]
    created_at: float
    next_at: float | None = Field(description="When the next attempt is due (pending only).")


class DeliveryList(BaseModel):
    """A job's webhook events, ended ones first, in order."""

    deliveries: list[Delivery]


@router.get("/webhook-secret", responses=error_responses(401))
def get_webhook_secret(client: RedisDep, owner: OwnerDep) -> WebhookSecret:
    """This API key's webhook signing secret (made on first use): verify the
    `webhook-signature` of each delivery with it (any Standard Webhooks library)."""
    return WebhookSecret(secret=WebhookSecrets(client).get(owner))


@router.post("/webhook-secret/rotate", responses=error_responses(401))
def rotate_webhook_secret(client: RedisDep, owner: OwnerDep) -> WebhookSecret:
    """Replace this API key's webhook secret: deliveries from now on are signed with the new
    one (attempts already made keep the old signature)."""
    return WebhookSecret(secret=WebhookSecrets(client).rotate(owner))


@router.get("/jobs/{job_id}/deliveries", responses=error_responses(401, 404))
def list_job_deliveries(
    job_id: str, store: StoreDep, client: RedisDep, owner: OwnerDep
) -> DeliveryList:
    """The job's webhook events: each one's attempts, the receiver's answers and the next try."""
    owned_job(store, job_id, owner)
    found: list[dict[str, Any]] = deliveries(client, job_id)
    return DeliveryList(deliveries=[Delivery.model_validate(d) for d in found])
