"""The folder through which a worker and the processes of a multi-device training run talk.

A run on several devices trains in the processes torchrun starts (`workers.training_rank`), not
in the worker's own (`workers.distributed_training`). They share one private folder, made by the
worker in the system's temporary folder (never in the run folder, which holds only what the run
itself writes):

    spec.json          what to train: the family, its run options and its config (the worker)
    events.jsonl       rank 0's progress reports and checkpoints, one JSON object a line
    published-<step>   the worker registered the checkpoint of <step> (rank 0 waits for it)
    stop               the worker asks the run to stop: it checkpoints and ends `cancelled`
    result.json        how the run ended (rank 0, last)
    error-<rank>.json  why a process failed (its exception's type, message and time)

Every file but the appended events appears whole (written aside, then renamed), and a reader
takes only the complete lines of the events. Torch-free.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

from core.model_folder import atomic_write

SPEC_FILE = "spec.json"
EVENTS_FILE = "events.jsonl"
STOP_FILE = "stop"
RESULT_FILE = "result.json"
WAIT_SECONDS = 0.05  # how often rank 0 looks for the worker's acknowledgement of a checkpoint


def _write_json(path: Path, value: Any) -> None:
    text = json.dumps(value, default=str)
    atomic_write(path, lambda tmp: Path(tmp).write_text(text))


def _read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text())
    except FileNotFoundError:
        return None


class RunChannel:
    """The shared folder of one multi-device run, as the worker and the ranks use it."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self._read_up_to = 0  # the worker's place in the events file

    # ----- the worker's side --------------------------------------------------------------

    def write_spec(self, spec: dict[str, Any]) -> None:
        """Say what to train (before the ranks start)."""
        _write_json(self.folder / SPEC_FILE, spec)

    def request_stop(self) -> None:
        """Ask the run to stop at its next step (it writes its checkpoint first)."""
        (self.folder / STOP_FILE).touch()

    def published(self, step: int) -> None:
        """Tell rank 0 that its checkpoint of `step` was registered: it trains on."""
        (self.folder / f"published-{step}").touch()

    def new_events(self) -> list[dict[str, Any]]:
        """The events rank 0 appended since the last call (complete lines only)."""
        try:
            with (self.folder / EVENTS_FILE).open("rb") as f:
                f.seek(self._read_up_to)
                data = f.read()
        except FileNotFoundError:
            return []
        complete = data[: data.rfind(b"\n") + 1]
        self._read_up_to += len(complete)
        return [json.loads(line) for line in complete.splitlines() if line.strip()]

    def result(self) -> dict[str, Any] | None:
        """How the run ended, once rank 0 said so."""
        return _read_json(self.folder / RESULT_FILE)

    def first_error(self) -> dict[str, Any] | None:
        """The error of the process that failed first (the others often fail because it did:
        a peer gone in the middle of a gradient exchange), with its `rank`."""
        errors = [_read_json(path) for path in self.folder.glob("error-*.json")]
        return min((e for e in errors if e), key=lambda e: e["time"], default=None)

    # ----- the ranks' side ----------------------------------------------------------------

    def spec(self) -> dict[str, Any]:
        """What to train."""
        return json.loads((self.folder / SPEC_FILE).read_text())

    def stop_requested(self) -> bool:
        """Whether the worker asked the run to stop."""
        return (self.folder / STOP_FILE).exists()

    def send(self, event: dict[str, Any]) -> None:
        """Append one event (rank 0)."""
        with (self.folder / EVENTS_FILE).open("a") as f:
            f.write(json.dumps(event, default=str) + "\n")

    def wait_published(self, step: int) -> None:
        """Wait until the worker registered the checkpoint of `step` (rank 0)."""
        while not (self.folder / f"published-{step}").exists():
            time.sleep(WAIT_SECONDS)

    def write_result(self, result: dict[str, Any]) -> None:
        """Say how the run ended (rank 0, once the run's files are written)."""
        _write_json(self.folder / RESULT_FILE, result)

    def write_error(self, rank: int, exc: BaseException) -> None:
        """Record why this process failed: the exception's type and message (an OSError's
        errno too, so that the worker can tell a full disk)."""
        error = {
            "rank": rank,
            "type": type(exc).__name__,
            "message": str(exc),
            "errno": exc.errno if isinstance(exc, OSError) else None,
            "time": time.time(),
        }
        _write_json(self.folder / f"error-{rank}.json", error)
