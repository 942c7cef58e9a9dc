"""Two gateway processes (GANSERVE_GATEWAY_PROCESSES=2) on the real stack: both take requests
from the one port, and what they must agree on holds across them: synchronous mode, event
streams, idempotency keys, request rates and the HTTP metrics of /metrics.

Which process answered a request is not in its answer; the processes' own metric files tell
(prometheus_client's multiprocess mode writes one set per process id, once it counted a request).
"""

from __future__ import annotations

import io
import json
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest
from PIL import Image

from tests.e2e.stack import png, running_stack, save_tiny_models
from tests.prometheus import parse, total

OPERATOR, LIMITED = "processes-operator-key", "processes-limited-key"
PER_SECOND = 5


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    data_dir = tmp_path_factory.mktemp("gateway-processes")
    save_tiny_models(data_dir / "models", translator="p2p", sampler="digits")
    with running_stack(
        data_dir,
        GANSERVE_GATEWAY_PROCESSES="2",
        GANSERVE_API_KEYS=f"{OPERATOR},{LIMITED}",
        GANSERVE_KEY_REQUESTS_PER_SECOND=str(PER_SECOND),  # not the operator's
    ) as (client, running):
        yield client, running


def _key(key: str = OPERATOR, **extra: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}", **extra}


def _server_processes(pid: int) -> list[int]:
    """The processes uvicorn's supervisor `pid` started to serve (not multiprocessing's
    resource tracker beside them), from /proc."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                parent = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
                command = (entry / "cmdline").read_bytes()
            except (OSError, IndexError, ValueError):
                continue
            if parent == pid and b"spawn_main" in command:
                found.append(int(entry.name))
    return found


def _environ(pid: int) -> dict[str, str]:
    pairs = Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
    return dict(p.decode(errors="replace").partition("=")[::2] for p in pairs if p)


def _translate(base_url: str, seed: int, headers: dict[str, str]) -> httpx.Response:
    """A synchronous translation on a connection of its own (any process may accept it)."""
    with httpx.Client(base_url=base_url, timeout=120) as own:
        return own.post(
            "/v1/translations",
            files={"image": ("in.png", png(24, 24, seed=seed), "image/png")},
            data={"model": "p2p", "seed": str(seed)},
            headers=headers,
        )


def test_two_processes_share_the_port_and_both_answer(stack):
    client, running = stack
    gateway = running.processes["gateway"].pid
    processes = _server_processes(gateway)
    assert len(processes) == 2, processes
    before = total(parse(client.get("/metrics").text), "http_requests_total", method="POST")
    url = str(client.base_url)

    with ThreadPoolExecutor(8) as pool:
        answers = list(pool.map(lambda k: _translate(url, k, _key(Prefer="wait=60")), range(24)))
    for answer in answers:
        assert answer.status_code == 201, answer.text
        job = answer.json()
        assert job["status"] == "succeeded" and answer.headers["Preference-Applied"] == "wait=60"
        image = client.get(job["result"]["images"][0], headers=_key())
        assert Image.open(io.BytesIO(image.content)).size == (24, 24)

    # every POST counted once, whichever process took it: the scrape adds both up
    after = total(parse(client.get("/metrics").text), "http_requests_total", method="POST")
    assert after - before == 24
    folder = Path(_environ(processes[0])["PROMETHEUS_MULTIPROC_DIR"])
    counted = {int(f.stem.rsplit("_", 1)[1]) for f in folder.glob("*.db")}
    assert counted == set(processes), "both processes answered requests"


def test_an_event_stream_follows_a_job_to_its_end(stack):
    client, _ = stack
    answer = _translate(str(client.base_url), 7, _key())
    assert answer.status_code == 202, answer.text
    events = []
    path = f"/v1/jobs/{answer.json()['id']}/events"
    with client.stream("GET", path, headers=_key(), timeout=120) as stream:
        for line in stream.iter_lines():
            if line.startswith("data: "):
                events.append(json.loads(line.removeprefix("data: ")))
    assert events[-1]["status"] == "succeeded"


def test_racing_retries_of_one_idempotency_key_make_one_job(stack):
    client, _ = stack
    key = str(uuid.uuid4())
    start = threading.Barrier(12)

    def submit(seed: int) -> httpx.Response:
        start.wait()
        return _translate(str(client.base_url), 3, _key(**{"Idempotency-Key": key}))

    with ThreadPoolExecutor(12) as pool:
        answers = list(pool.map(submit, range(12)))
    assert {a.status_code for a in answers} == {202}, [a.text for a in answers][:3]
    assert len({a.json()["id"] for a in answers}) == 1
    assert sum(a.headers.get("Idempotent-Replayed") == "true" for a in answers) == 11


def test_a_keys_request_rate_is_counted_over_both_processes(stack):
    client, _ = stack
    url = str(client.base_url)

    def ask(_: int) -> int:
        with httpx.Client(base_url=url, timeout=30) as own:
            return own.get("/v1/jobs", params={"limit": 1}, headers=_key(LIMITED)).status_code

    time.sleep(1.1)  # a fresh window
    started = time.monotonic()
    with ThreadPoolExecutor(8) as pool:
        codes = list(pool.map(ask, range(4 * PER_SECOND)))
    elapsed = time.monotonic() - started
    assert set(codes) <= {200, 429}
    if elapsed < 1.0:  # all within one second: the limit holds exactly
        assert codes.count(200) == PER_SECOND, codes
    else:  # a slow machine: at most the limit per second begun
        assert PER_SECOND <= codes.count(200) <= PER_SECOND * (int(elapsed) + 1), codes
