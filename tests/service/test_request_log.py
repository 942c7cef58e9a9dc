"""The gateway's request ids and access log, on a real gateway process."""

import re
import time


def test_a_request_id_is_kept_or_made_and_every_request_is_logged(gateway):
    with gateway.client() as client:
        given = client.get("/v1/models", headers={"X-Request-ID": "client-req.42"})
        assert given.headers["X-Request-ID"] == "client-req.42"
        made = client.get("/v1/jobs/nope", headers={"X-Request-ID": "bad id with spaces"})
        assert made.status_code == 404
        fresh = made.headers["X-Request-ID"]
        assert re.fullmatch(r"[0-9a-f]{32}", fresh)  # an implausible id is replaced
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        log = gateway.log_path.read_text()
        if fresh in log:
            break
        time.sleep(0.1)
    lines = log.splitlines()
    kept = next(line for line in lines if "client-req.42" in line and "service.access" in line)
    assert re.search(r" INFO  gateway\[\d+\] service\.access: GET /v1/models 200 [\d.]+ ms", kept)
    assert kept.endswith("[req=client-req.42]")
    missing = next(line for line in lines if fresh in line and "service.access" in line)
    assert "GET /v1/jobs/nope 404" in missing
