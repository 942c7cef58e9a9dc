"""Requests as data, and the flows that chain them, for both clients at once.

Everything the client does is written once, as a *flow*: a generator that yields the steps it
needs (a `Call`: one HTTP request; a `Sleep`) and receives the answer of each (the
`httpx.Response`, or the `GanserveError` it ended with, thrown into the generator where the step
was yielded), and returns the result. The synchronous `Client` and the `AsyncClient` only *run*
flows (`Stepper` is the part of running them they share): each performs a step its own way
(blocking or awaited, with the retry policy) and hands the outcome back. So the request building,
the waiting loops and the answer parsing exist once, and the two clients cannot drift apart.
"""

from __future__ import annotations

import os
import tempfile
import uuid
from collections.abc import Generator, Mapping
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Any, Generic, TypeAlias, TypeVar

import httpx

from ganserve.client.errors import GanserveError
from ganserve.client.uploads import Upload

T = TypeVar("T")


@dataclass(frozen=True)
class Call:
    """One HTTP request of a flow.

    `hold` is how long the server may keep the answer back (a long poll's `wait`): the read
    timeout grows by that much. With `download`, the body is streamed into that file (written
    under a temporary name, renamed when complete) instead of being kept in memory. A POST is
    sent with `idempotency_key` (drawn when the call is made, the same for every attempt), so
    that the retries of one call make one job.
    """

    method: str
    path: str
    params: Mapping[str, Any] | None = None
    json: Any = None
    data: Mapping[str, Any] | None = None
    files: Mapping[str, Upload] | None = None
    hold: float = 0.0
    download: Path | None = None
    headers: Mapping[str, str] | None = None
    idempotency_key: str = field(default_factory=lambda: uuid.uuid4().hex)

    def _headers(self) -> dict[str, str]:
        headers = dict(self.headers or {})
        if self.method == "POST":
            headers["Idempotency-Key"] = self.idempotency_key
        return headers

    def build(
        self, http: httpx.Client | httpx.AsyncClient, stack: ExitStack, timeout: float
    ) -> httpx.Request:
        """The httpx request (files it streams stay open until `stack` closes)."""
        files = {name: u.open(stack) for name, u in self.files.items()} if self.files else None
        data = {k: str(v) for k, v in self.data.items() if v is not None} if self.data else None
        return http.build_request(
            self.method,
            self.path,
            params=self.params,
            json=self.json,
            data=data,
            files=files,
            headers=self._headers(),
            timeout=httpx.Timeout(timeout, read=timeout + self.hold),
        )


@dataclass(frozen=True)
class Sleep:
    """Wait this many seconds before the next step (the server asked to come back later)."""

    seconds: float


Step: TypeAlias = Call | Sleep
Outcome: TypeAlias = httpx.Response | GanserveError | None  # of a Call; None after a Sleep
Flow: TypeAlias = Generator[Step, httpx.Response | None, T]


class Stepper(Generic[T]):
    """Drives a flow for a client: `start()` gives the first step, `resume(outcome)` hands a
    step's outcome back (an error is raised inside the flow) and gives the next step; None means
    the flow has returned, its result in `value`. An error the flow does not catch propagates."""

    def __init__(self, flow: Flow[T]) -> None:
        self._flow = flow
        self.value: T | None = None

    def start(self) -> Step | None:
        return self.resume(None)

    def resume(self, outcome: Outcome) -> Step | None:
        try:
            if isinstance(outcome, GanserveError):
                return self._flow.throw(outcome)
            return self._flow.send(outcome)
        except StopIteration as stop:
            self.value = stop.value
            return None


class Download:
    """The file a downloaded body is streamed into: written as a hidden temporary file beside
    `path`, renamed to `path` when the body is complete, removed if anything fails."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd, name = tempfile.mkstemp(dir=self.path.parent, prefix=f".{self.path.name}.")
        self._temporary = Path(name)
        self._file = os.fdopen(fd, "wb")

    def write(self, chunk: bytes) -> None:
        self._file.write(chunk)

    def __enter__(self) -> Download:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self._file.close()
        if kind is None:
            os.replace(self._temporary, self.path)
        else:
            self._temporary.unlink(missing_ok=True)
