"""Idempotency-Key on the real stack: real Redis, real workers, concurrent real HTTP clients."""

import threading
import uuid

import httpx
import pytest

from tests.e2e.stack import png, running_stack, save_tiny_models, upload_dataset, wait_job
from training.demo import build_demo

KEYS = {"alice": "idem-alice-key", "bob": "idem-bob-key"}


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    data_dir = tmp_path_factory.mktemp("idempotency")
    save_tiny_models(data_dir / "models", translator="p2p", sampler="digits")
    with running_stack(data_dir, GANSERVE_API_KEYS=",".join(KEYS.values())) as (client, _):
        yield client


def _as(who: str, key: str | None = None, **extra: str) -> dict[str, str]:
    headers = {"Authorization": f"Bearer {KEYS[who]}", **extra}
    if key is not None:
        headers["Idempotency-Key"] = key
    return headers


def _jobs(client: httpx.Client, who: str) -> set[str]:
    listed = client.get("/v1/jobs", params={"limit": 1000}, headers=_as(who)).json()["jobs"]
    return {job["id"] for job in listed}


def _translate(client: httpx.Client, key: str, seed: int = 1, who: str = "alice"):
    return client.post(
        "/v1/translations",
        files={"image": ("in.png", png(24, 24, seed=3), "image/png")},
        data={"model": "p2p", "seed": str(seed)},
        headers=_as(who, key),
    )


def test_fifty_racing_identical_submissions_make_one_job(stack):
    before = _jobs(stack, "alice")
    key = str(uuid.uuid4())
    answers: list[httpx.Response] = []
    start = threading.Barrier(50)

    def submit() -> None:
        with httpx.Client(base_url=str(stack.base_url), timeout=120) as own:
            start.wait()
            answers.append(_translate(own, f'"{key}"'))  # each a new multipart boundary

    threads = [threading.Thread(target=submit) for _ in range(50)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert [a.status_code for a in answers] == [202] * 50, [a.text for a in answers][:3]
    assert len({a.json()["id"] for a in answers}) == 1
    assert len({a.content for a in answers}) == 1  # the very answer, byte for byte
    assert sum(a.headers.get("idempotent-replayed") == "true" for a in answers) == 49
    created = _jobs(stack, "alice") - before
    assert created == {answers[0].json()["id"]}
    assert wait_job(stack, answers[0].json()["id"], key=KEYS["alice"])["status"] == "succeeded"


def test_a_retry_gets_the_original_answer_and_a_changed_request_is_refused(stack):
    key = str(uuid.uuid4())
    first = _translate(stack, key)
    assert first.status_code == 202
    wait_job(stack, first.json()["id"], key=KEYS["alice"])
    again = _translate(stack, key)  # after the job ended: still the original answer
    assert (again.status_code, again.content) == (202, first.content)
    assert again.headers["location"] == first.headers["location"]
    other = _translate(stack, key, seed=2)
    assert other.status_code == 422
    assert other.headers["content-type"] == "application/problem+json"
    assert other.json()["code"] == "idempotency_key_reused"


def test_keys_belong_to_their_api_key(stack):
    key = str(uuid.uuid4())
    alice, bob = _translate(stack, key), _translate(stack, key, who="bob")
    assert alice.status_code == bob.status_code == 202
    assert alice.json()["id"] != bob.json()["id"]


def test_held_answers_and_errors_are_kept_and_bad_keys_refused(stack):
    key = str(uuid.uuid4())
    body = {"model": "digits", "count": 2, "seed": 4}
    held = stack.post("/v1/samples", json=body, headers=_as("alice", key, Prefer="wait=30"))
    assert held.status_code == 201 and held.json()["status"] == "succeeded"
    replay = stack.post("/v1/samples", json=body, headers=_as("alice", key, Prefer="wait=30"))
    assert (replay.status_code, replay.content) == (201, held.content)
    missing_key = str(uuid.uuid4())
    gone = stack.post("/v1/samples", json={"model": "nope"}, headers=_as("alice", missing_key))
    assert gone.status_code == 404  # the request's outcome: kept
    assert (
        stack.post(
            "/v1/samples", json={"model": "nope"}, headers=_as("alice", missing_key)
        ).headers.get("idempotent-replayed")
        == "true"
    )
    for bad in (b"", b'""', b"x" * 256, "caf\u00e9".encode("latin-1"), b"a\tb"):
        refused = stack.post(
            "/v1/samples", json=body, headers=_as("alice") | {"Idempotency-Key": bad}
        )
        assert refused.status_code == 400, bad
        assert refused.json()["code"] == "invalid_idempotency_key"


def test_an_answer_lost_to_a_timeout_goes_to_the_retry(stack, tmp_path):
    data = build_demo("faces", tmp_path / "faces", size=16, count=12)
    dataset = upload_dataset(stack, data, "faces", "images", headers=_as("alice"))
    run = {
        "family": "pggan",
        "dataset": dataset["id"],
        "config": {"image_size": 16, "phase_images": 100000, "fmap_base": 64, "fmap_max": 16},
    }
    headers = _as("alice", str(uuid.uuid4()), Prefer="wait=3")  # held 3 s: the run goes on
    before = _jobs(stack, "alice")
    with pytest.raises(httpx.ReadTimeout):
        stack.post(
            "/v1/training-runs", json=run, headers=headers, timeout=httpx.Timeout(30, read=0.5)
        )
    retry = stack.post("/v1/training-runs", json=run, headers=headers)  # waits for the first
    assert retry.status_code == 202, retry.text
    assert retry.headers["idempotent-replayed"] == "true"
    assert _jobs(stack, "alice") - before == {retry.json()["id"]}  # one run, not two
    cancelled = stack.post(f"/v1/jobs/{retry.json()['id']}/cancel", headers=_as("alice"))
    assert cancelled.status_code == 202
    wait_job(stack, retry.json()["id"], key=KEYS["alice"])
