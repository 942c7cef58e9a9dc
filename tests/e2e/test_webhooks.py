"""Webhooks on the real stack: a real local receiver (allow-listed) gets each chosen event of a
job, in order, signed with the key's secret; targets that are not public are refused."""

import time

import httpx
import pytest
from standardwebhooks import Webhook

from core.settings import Settings
from ganserve.embedded_redis import free_port
from ganserve.launcher import local_stack
from tests.e2e.stack import png, running_stack, save_tiny_models, wait_job, wait_ready
from tests.webhook_receiver import Receiver

KEY = "webhook-test-key"


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    data_dir = tmp_path_factory.mktemp("webhooks")
    save_tiny_models(data_dir / "models", translator="p2p", sampler="digits")
    env = {
        "GANSERVE_API_KEYS": KEY,
        "GANSERVE_WEBHOOK_ALLOWED_HOSTS": "127.0.0.0/8",
    }
    with running_stack(data_dir, **env) as (client, stack):
        client.headers["Authorization"] = f"Bearer {KEY}"
        yield client, stack


@pytest.fixture
def receiver():
    made = Receiver([])
    yield made
    made.close()


def _received(receiver: Receiver, count: int, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while len(receiver.received) < count and time.monotonic() < deadline:
        time.sleep(0.05)


def test_a_translation_calls_its_webhook_with_the_chosen_events_signed(stack, receiver):
    client, _ = stack
    secret = client.get("/v1/webhook-secret").json()["secret"]
    response = client.post(
        "/v1/translations",
        files={"image": ("in.png", png(32, 32), "image/png")},
        data={"model": "p2p", "webhook": receiver.url, "webhook_events": "start,completed"},
    )
    assert response.status_code == 202, response.text
    job = wait_job(client, response.json()["id"], key=KEY)
    _received(receiver, 2)
    bodies = [Webhook(secret).verify(body, headers) for headers, body in receiver.received]
    assert [b["status"] for b in bodies] == ["running", "succeeded"]
    assert bodies[1] == client.get(f"/v1/jobs/{job['id']}").json()  # as GET returns it
    listed = client.get(f"/v1/jobs/{job['id']}/deliveries").json()["deliveries"]
    assert [(d["type"], d["state"], d["attempts"]) for d in listed] == [
        ("start", "delivered", 1),
        ("completed", "delivered", 1),
    ]


def test_a_json_request_takes_the_fields_and_bad_targets_are_refused(stack, receiver):
    client, _ = stack
    sampled = client.post(
        "/v1/samples", json={"model": "digits", "count": 2, "webhook": receiver.url}
    )
    assert sampled.status_code == 202
    _received(receiver, 1)
    headers, _ = receiver.received[0]
    assert headers["webhook-id"] and headers["webhook-signature"].startswith("v1,")
    for url in ("https://10.0.0.1/hook", "https://169.254.169.254/latest", "ftp://x.example/"):
        refused = client.post("/v1/samples", json={"model": "digits", "webhook": url})
        assert refused.status_code == 422, url
        assert refused.json()["code"] == "invalid_webhook"
    bad_events = client.post(
        "/v1/translations",
        files={"image": ("in.png", png(8, 8), "image/png")},
        data={"model": "p2p", "webhook": receiver.url, "webhook_events": "finished"},
    )
    assert bad_events.status_code == 422 and bad_events.json()["code"] == "invalid_webhook"
    rotated = client.post("/v1/webhook-secret/rotate").json()["secret"]
    assert rotated == client.get("/v1/webhook-secret").json()["secret"]


def test_events_survive_a_killed_worker_and_a_restarted_redis(tmp_path):
    data_dir = tmp_path / "data"
    save_tiny_models(data_dir / "models", translator="p2p", sampler="digits")
    hook = Receiver([500, 500, 500])  # the first attempts fail: events wait in Redis
    settings = Settings(data_dir=data_dir, port=free_port(), redis_url=None)
    env = {"GANSERVE_WEBHOOK_ALLOWED_HOSTS": "127.0.0.0/8", "GANSERVE_WEBHOOK_RETRY_SECONDS": "1"}
    try:
        with local_stack(settings, env) as running, httpx.Client(base_url=running.url) as http:
            wait_ready(http, running.stack)
            job = http.post(
                "/v1/translations",
                files={"image": ("in.png", png(16, 16), "image/png")},
                data={"model": "p2p", "webhook": hook.url, "webhook_events": "start,completed"},
            ).json()
            _received(hook, 1)
            for worker in ("worker-infer", "worker-train"):  # SIGKILL, pools included
                running.stack.reap(worker)
            assert running.redis is not None
            running.redis.stop()  # its append-only file keeps the pending events
            running.redis.start()
            for worker in ("worker-infer", "worker-train"):
                running.stack.restart(worker)
            wait_ready(http, running.stack)
            assert wait_job(http, job["id"])["status"] == "succeeded"
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline:
                listed = http.get(f"/v1/jobs/{job['id']}/deliveries").json()["deliveries"]
                if [d["state"] for d in listed] == ["delivered", "delivered"]:
                    break
                time.sleep(0.2)
            secret = http.get("/v1/webhook-secret").json()["secret"]
    finally:
        hook.close()
    assert [(d["type"], d["state"]) for d in listed] == [
        ("start", "delivered"),
        ("completed", "delivered"),
    ]
    bodies = [Webhook(secret).verify(body, headers) for headers, body in hook.received]
    kinds = [b["status"] for b in bodies]
    assert kinds[-1] == "succeeded" and set(kinds) == {"running", "succeeded"}
    by_id = {headers["webhook-id"] for headers, _ in hook.received}
    assert by_id == {d["id"] for d in listed}  # retries of one event share its webhook-id
