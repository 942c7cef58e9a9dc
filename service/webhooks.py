"""Webhook fields of job-creating requests: `webhook` (the URL) and `webhook_events` (a subset
of `start`, `progress`, `completed`; `completed` by default), in a JSON body (`WebhookFields`)
or as form fields of a multipart request (`WebhookFormDep`; events comma-separated). The URL's
form is checked at once (`core.webhook_targets.check_url`: 422 `invalid_webhook`); its
addresses are checked again when each event is sent (`workers.webhook_sender`).
"""

from __future__ import annotations

from typing import Annotated, get_args

from fastapi import Depends, Form, Request
from fastapi.concurrency import run_in_threadpool
from pydantic import BaseModel, Field

from core.settings import Settings
from core.webhook_outbox import WebhookEvent, WebhookTarget
from core.webhook_targets import AllowList, TargetRefused, check_url
from service.errors import ApiError

WEBHOOK_FIELDS = frozenset({"webhook", "webhook_events"})
URL_DESCRIPTION = (
    "An https URL to call when the job's events happen, signed with your key's webhook secret "
    "(Standard Webhooks; `GET /v1/webhook-secret`)."
)
EVENTS_DESCRIPTION = "Which events to send: `start`, `progress`, `completed` (the default)."


class WebhookFields(BaseModel):
    """The webhook fields of a JSON job request."""

    webhook: str | None = Field(default=None, max_length=2048, description=URL_DESCRIPTION)
    webhook_events: list[WebhookEvent] | None = Field(
        default=None, min_length=1, description=EVENTS_DESCRIPTION
    )


def webhook_target(
    url: str | None, events: list[WebhookEvent] | None, settings: Settings
) -> WebhookTarget | None:
    """The webhook of a request, checked; None without one (422 for events without a URL)."""
    if url is None:
        if events:
            raise _invalid("webhook_events", "Events need a `webhook` URL to go to.")
        return None
    allowed = AllowList.parse(settings.webhook_allowed_hosts.split(","))
    try:
        check_url(url, allow_http=settings.webhook_allow_http, allowed=allowed)
    except TargetRefused as exc:
        raise _invalid("webhook", str(exc)) from None
    return WebhookTarget(url=url, events=events or ["completed"])


def _invalid(field: str, message: str) -> ApiError:
    return ApiError(422, "invalid_webhook", f"The field '{field}' is invalid: {message}")


async def webhook_form(
    request: Request,
    webhook: Annotated[str | None, Form(max_length=2048, description=URL_DESCRIPTION)] = None,
    webhook_events: Annotated[
        str | None, Form(description=f"{EVENTS_DESCRIPTION} Comma-separated.")
    ] = None,
) -> WebhookTarget | None:
    """The webhook form fields of a multipart job request, checked."""
    events = None
    if webhook_events is not None:
        events = [e.strip() for e in webhook_events.split(",") if e.strip()]
        known = set(get_args(WebhookEvent))
        if not events or any(e not in known for e in events):
            raise _invalid("webhook_events", f"Each event is one of {', '.join(sorted(known))}.")
    if webhook is None and not events:
        return None
    # checking a URL may resolve its host name: in the thread pool
    settings = request.app.state.settings
    return await run_in_threadpool(webhook_target, webhook, events, settings)  # type: ignore[arg-type]


WebhookFormDep = Annotated[WebhookTarget | None, Depends(webhook_form)]
