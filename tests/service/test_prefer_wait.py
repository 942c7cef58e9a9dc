"""service.prefer_wait: reading `Prefer: wait=N` (the held answers are tested on the real stack
in tests/e2e/test_stack.py)."""

from starlette.datastructures import Headers

from service.prefer_wait import MAX_PREFER_WAIT_S, preferred_wait


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
