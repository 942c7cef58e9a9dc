"""service.prefer_wait: reading `Prefer: wait=N`, and held answers on a real gateway whose job
records the test ends as a worker would (the real stack: tests/e2e/test_stack.py)."""

import time
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest
from starlette.datastructures import Headers

from core.jobs import JobError, JobStatus
from core.owners import ANONYMOUS
from service.prefer_wait import MAX_PREFER_WAIT_S, preferred_wait
from tests.service.factories import image_bytes


def _wait(*values: str) -> int | None:
    return preferred_wait(Headers(raw=[(b"prefer", v.encode()) for v in values]))


def test_wait_is_read_from_any_preference_list():
    assert _wait("wait=10") == 10
    assert _wait("respond-async, wait=5") == 5
    assert _wait('WAIT="7"') == 7
    assert _wait("handling=lenient", "wait=3; foo=bar") == 3
    assert _wait(f"wait={MAX_PREFER_WAIT_S * 10}") == MAX_PREFER_WAIT_S


def test_no_or_unusable_wait_is_none():
    assert _wait() is None
    assert _wait("respond-async") is None
    for bad in ("wait=0", "wait=-3", "wait=1.5", "wait=soon", "wait="):
        assert _wait(bad) is None, bad


def _held_translation(gateway, seconds: int) -> httpx.Response:
    with gateway.client() as http:
        return http.post(
            "/v1/translations",
            files={"image": ("in.png", image_bytes(), "image/png")},
            data={"model": "facades", "seed": "5"},
            headers={"Prefer": f"wait={seconds}"},
        )


def _new_job(store, before: set[str]) -> str:
    deadline = time.monotonic() + 10
    while not (new := {j.id for j in store.list(ANONYMOUS)} - before):
        assert time.monotonic() < deadline, "the POST created no job"
        time.sleep(0.01)
    return new.pop()


ENDS = {
    "succeeded": {
        "result": {"count": 1, "model": "facades@1", "seed": 5, "width": 32, "height": 24}
    },
    "failed": {"error": JobError(code="model_failed", message="It broke.")},
    "cancelled": {"result": {}},
}


@pytest.mark.parametrize("status", list(ENDS))
def test_a_held_answer_is_the_jobs_own_get_answer(gateway, status):
    store = gateway.store()
    before = {j.id for j in store.list(ANONYMOUS)}
    with ThreadPoolExecutor(1) as pool:
        held = pool.submit(_held_translation, gateway, 20)
        job_id = _new_job(store, before)
        store.update(job_id, status=JobStatus.running, started_at=time.time())
        time.sleep(0.05)
        store.update(job_id, status=status, finished_at=time.time(), **ENDS[status])
        answer = held.result()
    assert answer.status_code == 201, answer.text
    assert answer.headers["preference-applied"] == "wait=20"
    assert answer.headers["location"] == f"/v1/jobs/{job_id}"
    assert answer.headers["content-type"] == "application/json"
    assert int(answer.headers["content-length"]) == len(answer.content)
    with gateway.client() as http:
        assert answer.content == http.get(f"/v1/jobs/{job_id}").content  # byte for byte
    assert answer.json()["status"] == status


def test_a_job_that_does_not_end_in_time_is_the_202_as_created(gateway):
    started = time.monotonic()
    answer = _held_translation(gateway, 1)
    assert 1 <= time.monotonic() - started < 5
    assert answer.status_code == 202 and "preference-applied" not in answer.headers
    job = answer.json()
    assert job["status"] == "queued" and answer.headers["location"] == job["url"]
    store = gateway.store()
    store.update(job["id"], status=JobStatus.cancelled, finished_at=time.time())
