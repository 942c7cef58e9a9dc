"""A lock that works across hosts sharing only the object store: a lease object made create-only.

`lease_lock(objects, key)` holds the lock while the object `key` exists and is its own: it is
created with `ObjectStore.put_new` (S3 `If-None-Match: *`, a hard link locally), so of two
processes on any hosts only one creates it. The object records its holder and when its lease
expires (`lease` seconds after it was taken); a holder that died leaves it behind, and once its
lease is over (by the waiting host's clock: keep hosts' clocks in sync, as NTP does) a waiter
removes it and takes the lock. Whatever runs under the lock must take less than the lease.
Released by removing the object, only when it is still the holder's own.
"""

from __future__ import annotations

import json
import os
import random
import socket
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager

from core.object_store import ObjectStore

DEFAULT_LEASE_SECONDS = 120.0


class LockTimeout(TimeoutError):
    """The lock stayed held by another, live holder for longer than the caller would wait."""


def _holder_and_expiry(data: bytes | None) -> tuple[str | None, float]:
    """The holder and expiry a lock object records; (None, 0.0) when it is unreadable."""
    try:
        raw = json.loads(data or b"")
        return str(raw["holder"]), float(raw["expires"])
    except (ValueError, TypeError, KeyError):
        return None, 0.0


def _stale(objects: ObjectStore, key: str, data: bytes, lease: float) -> bool:
    """Whether the lock object `data` (read from `key`) outlived its lease."""
    holder, expires = _holder_and_expiry(data)
    if holder is not None:
        return expires < time.time()
    info = objects.info(key)  # unreadable (never: put_new writes whole objects): age it
    return info is not None and info.modified + lease < time.time()


@contextmanager
def lease_lock(
    objects: ObjectStore,
    key: str,
    *,
    lease: float = DEFAULT_LEASE_SECONDS,
    wait: float | None = None,
) -> Iterator[None]:
    """Hold the lock `key` (see the module docstring) for the block; wait for it at most
    `wait` seconds (default: two leases, time for a dead holder's lease to run out), then
    LockTimeout."""
    holder = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex}"
    deadline = time.monotonic() + (2 * lease + 5 if wait is None else wait)
    pause = 0.01
    while True:
        record = {"holder": holder, "expires": time.time() + lease}
        if objects.put_new(key, json.dumps(record).encode()):
            break
        current = objects.read(key)
        if current is None:
            continue  # released meanwhile: try again at once
        if _stale(objects, key, current, lease):
            if objects.read(key) == current:  # still the dead holder's: break it
                objects.delete(key)
            continue
        if time.monotonic() >= deadline:
            raise LockTimeout(f"the lock {key!r} stayed held by another process")
        time.sleep(pause * random.uniform(0.5, 1.5))
        pause = min(pause * 2, 0.25)
    try:
        yield
    finally:
        if _holder_and_expiry(objects.read(key))[0] == holder:
            objects.delete(key)
