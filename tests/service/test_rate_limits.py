"""service.rate_limits on a real gateway and Redis: each key's request rate, operators apart,
everyone's together; 429 `rate_limited` with Retry-After."""

import time

import httpx
import pytest

from tests.service.conftest import start_gateway

KEYS = {"a": "rate-key-a", "b": "rate-key-b", "op": "rate-key-operator"}
PER_KEY, OVERALL = 5, 12


@pytest.fixture(scope="module")
def limited(redis_url, tmp_path_factory):
    env = {
        "GANSERVE_API_KEYS": f"{KEYS['a']},{KEYS['b']}",
        "GANSERVE_OPERATOR_KEYS": KEYS["op"],
        "GANSERVE_KEY_REQUESTS_PER_SECOND": str(PER_KEY),
        "GANSERVE_REQUESTS_PER_SECOND": str(OVERALL),
    }
    server = start_gateway(tmp_path_factory.mktemp("rates"), redis_url, env)
    yield server
    server.stop()


def _get(http: httpx.Client, who: str) -> httpx.Response:
    return http.get("/v1/models", headers={"Authorization": f"Bearer {KEYS[who]}"})


def test_each_key_its_own_rate_operators_apart_and_everyone_together(limited):
    with httpx.Client(base_url=limited.url, timeout=10) as http:
        time.sleep(1.1)  # a fresh second
        assert [_get(http, "a").status_code for _ in range(PER_KEY)] == [200] * PER_KEY
        refused = _get(http, "a")
        assert refused.status_code == 429
        assert refused.headers["content-type"] == "application/problem+json"
        assert refused.json()["code"] == "rate_limited"
        assert f"this API key's limit is {PER_KEY} per second" in refused.json()["detail"]
        assert int(refused.headers["Retry-After"]) >= 1
        assert [_get(http, "b").status_code for _ in range(PER_KEY)] == [200] * PER_KEY
        assert [_get(http, "op").status_code for _ in range(2)] == [200, 200]  # 12 in all
        everyone = _get(http, "op")
        assert everyone.status_code == 429
        assert "the gateway's limit is 12 per second" in everyone.json()["detail"]
        assert http.get("/healthz").status_code == 200  # not counted
        time.sleep(1.1)
        assert _get(http, "a").status_code == 200  # the window moved on
