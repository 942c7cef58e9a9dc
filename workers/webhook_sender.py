"""Sending the webhook events of jobs (`core.webhook_outbox`), from the workers' side.

Each worker process runs a sender beside its reconciler: it takes the jobs whose first pending
event is due, one job at a time under a short lock (so two workers never send one job's events
at once, and a job's events go in order), and POSTs the event: the job's JSON as it was when the
event happened, signed per the Standard Webhooks spec with the owner's secret
(`core.webhook_signing`), to the URL checked against server-side request forgery after DNS
(`core.webhook_targets`). A 2xx answer delivers it; a `410 Gone` stops the job's deliveries; a
network error, a timeout or any other answer is tried again after an exponential backoff with
jitter (`BASE_DELAY` doubling up to `MAX_DELAY`), for `GIVE_UP_AFTER` (24 h) from the event.
Every attempt's outcome stays on the event (`deliveries`), for the job's owner to read. The
state lives in Redis only, so a killed worker or a restarted Redis (append-only file) loses no
event: a delivery whose answer was lost is sent again, with the same `webhook-id`.
"""

from __future__ import annotations

import json
import logging
import random
import threading
import time
from dataclasses import dataclass
from typing import Any

import httpx
import redis
from celery.signals import worker_ready, worker_shutdown

from core.settings import get_settings
from core.webhook_outbox import (
    DUE_KEY,
    KEEP_SECONDS,
    ended_events_key,
    event_key,
    job_events_key,
)
from core.webhook_signing import WebhookSecrets, signed_headers
from core.webhook_targets import AllowList, Resolver, TargetRefused, check_addresses, check_url
from core.webhook_targets import resolve as resolve_dns
from workers.jobs import holder_name, job_store

log = logging.getLogger(__name__)

BASE_DELAY = 5.0
MAX_DELAY = 3600.0
GIVE_UP_AFTER = 24 * 3600.0
LOCK_SECONDS = 60
SEND_TIMEOUT = 10.0
DUE_BATCH = 20
PASS_SECONDS = 0.5


def backoff(attempts: int, base: float = BASE_DELAY, cap: float = MAX_DELAY) -> float:
    """Seconds before attempt `attempts + 1`: doubling from `base`, at most `cap`, jittered."""
    delay = min(cap, base * 2 ** max(0, attempts - 1))
    return delay * random.uniform(0.8, 1.2)


@dataclass
class WebhookSender:
    """Sends due webhook events (see the module doc); `run_once` is one pass."""

    client: redis.Redis
    allowed: AllowList
    allow_http: bool
    holder: str
    http: httpx.Client
    resolver: Resolver = resolve_dns
    base_delay: float = BASE_DELAY

    def run_once(self, now: float | None = None) -> int:
        """Send the first pending event of each job that has one due; how many were tried."""
        now = time.time() if now is None else now
        due = self.client.zrangebyscore(DUE_KEY, "-inf", now, start=0, num=DUE_BATCH)
        tried = 0
        for raw in due:
            tried += self._send_next(raw.decode() if isinstance(raw, bytes) else raw, now)
        return tried

    def _send_next(self, job_id: str, now: float) -> int:
        lock = f"ganserve:webhooks:lock:{job_id}"
        if not self.client.set(lock, self.holder, nx=True, ex=LOCK_SECONDS):
            return 0  # another worker is sending this job's events
        try:
            head = self.client.lindex(job_events_key(job_id), 0)
            if head is None:
                self.client.zrem(DUE_KEY, job_id)
                return 0
            raw = self.client.get(event_key(head.decode()))
            if raw is None:  # expired: nothing left to send for it
                self._advance(job_id, now)
                return 0
            event = json.loads(raw)
            if event["next_at"] > now:
                self.client.zadd(DUE_KEY, {job_id: event["next_at"]})
                return 0
            self._attempt(event, now)
            return 1
        finally:
            if self.client.get(lock) == self.holder.encode():
                self.client.delete(lock)

    def _attempt(self, event: dict[str, Any], now: float) -> None:
        outcome: dict[str, Any] = {"at": now}
        try:
            host, port = check_url(event["url"], allow_http=self.allow_http, allowed=self.allowed)
            check_addresses(host, port, self.allowed, self.resolver)
            secret = WebhookSecrets(self.client).get(event["owner"])
            body = event["body"].encode()
            headers = signed_headers(secret, event["id"], body)
            answer = self.http.post(
                event["url"], content=body, headers=headers, timeout=SEND_TIMEOUT
            )
            outcome["status"] = answer.status_code
        except TargetRefused as exc:
            outcome["error"] = str(exc)
            outcome["refused"] = True
        except httpx.HTTPError as exc:
            outcome["error"] = f"{type(exc).__name__}: {exc}"
        event["attempts"] += 1
        event["outcomes"].append(outcome)
        status = outcome.get("status")
        if status is not None and 200 <= status < 300:
            self._end(event, "delivered", now)
        elif status == 410 or outcome.get("refused"):
            self._end(
                event, "stopped" if status == 410 else "refused", now, drop_rest=status == 410
            )
        elif now - event["created_at"] + self.base_delay > GIVE_UP_AFTER:
            self._end(event, "failed", now)
        else:
            event["next_at"] = now + backoff(event["attempts"], self.base_delay)
            self.client.set(event_key(event["id"]), json.dumps(event), ex=KEEP_SECONDS)
            self.client.zadd(DUE_KEY, {event["job_id"]: event["next_at"]})
            log.info(
                "webhook %s of job %s: attempt %d failed (%s); next in %.0f s",
                event["type"],
                event["job_id"],
                event["attempts"],
                outcome.get("status", outcome.get("error")),
                event["next_at"] - now,
            )

    def _end(
        self, event: dict[str, Any], state: str, now: float, *, drop_rest: bool = False
    ) -> None:
        """Record the event's end and go on to the job's next event (none after a 410)."""
        event["state"], event["next_at"] = state, None
        pipe = self.client.pipeline()
        pipe.set(event_key(event["id"]), json.dumps(event), ex=KEEP_SECONDS)
        pipe.lpop(job_events_key(event["job_id"]))
        pipe.rpush(ended_events_key(event["job_id"]), event["id"])
        pipe.expire(ended_events_key(event["job_id"]), KEEP_SECONDS)
        pipe.execute()
        if drop_rest:
            for rest in self.client.lrange(job_events_key(event["job_id"]), 0, -1):
                stopped = json.loads(self.client.get(event_key(rest.decode())) or "null")
                if stopped is not None:
                    self._end(stopped, "stopped", now)
        self._advance(event["job_id"], now)

    def _advance(self, job_id: str, now: float) -> None:
        if self.client.llen(job_events_key(job_id)):
            self.client.zadd(DUE_KEY, {job_id: now})
        else:
            self.client.zrem(DUE_KEY, job_id)


class SenderThread:
    """Runs `WebhookSender.run_once` every `PASS_SECONDS` until stopped (a daemon thread of the
    worker's main process, beside the reconciler)."""

    def __init__(self, sender: WebhookSender) -> None:
        self.sender = sender
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="webhooks", daemon=True)

    def _run(self) -> None:
        while not self._stop.wait(PASS_SECONDS):
            try:
                self.sender.run_once()
            except redis.RedisError as exc:  # the events wait in Redis for it to come back
                log.debug("webhook sender: Redis does not answer (%s)", exc)
            except Exception:  # a pass that fails must not end the thread
                log.exception("webhook pass failed")

    def start(self) -> SenderThread:
        """Start the thread."""
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop the thread (it finishes the pass it is in)."""
        self._stop.set()
        self._thread.join(timeout=SEND_TIMEOUT + 5)


_running: list[SenderThread] = []


@worker_ready.connect
def _start(**_: object) -> None:
    """Start this worker's webhook sender (in the worker's main process)."""
    settings = get_settings()
    sender = WebhookSender(
        job_store().redis,
        AllowList.parse(settings.webhook_allowed_hosts.split(",")),
        settings.webhook_allow_http,
        holder_name("webhooks"),
        httpx.Client(follow_redirects=False),
        base_delay=settings.webhook_retry_seconds,
    )
    _running.append(SenderThread(sender).start())


@worker_shutdown.connect
def _stop(**_: object) -> None:
    while _running:
        _running.pop().stop()
