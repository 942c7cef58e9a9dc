"""The training state file: atomic writes and weights-only loading."""

import pickle

import pytest
import torch

from core.storage import RUN_STATE_FILE
from training.state import StateError, load_state, restore_rng, rng_state, save_state


def test_round_trip_and_missing(tmp_path):
    assert load_state(tmp_path) is None
    save_state({"step": 3, "w": torch.ones(2)}, tmp_path)
    state = load_state(tmp_path)
    assert state["step"] == 3 and torch.equal(state["w"], torch.ones(2))
    assert [p.name for p in tmp_path.iterdir()] == [RUN_STATE_FILE]  # no temporary file left


def test_pickled_objects_are_refused(tmp_path):
    marker = tmp_path / "ran"

    class Exploit:
        def __reduce__(self):
            return (marker.touch, ())

    (tmp_path / RUN_STATE_FILE).write_bytes(pickle.dumps(Exploit()))
    with pytest.raises(StateError, match="cannot resume"):
        load_state(tmp_path)
    assert not marker.exists()


def test_rng_round_trip():
    state = rng_state()
    a = torch.rand(3)
    restore_rng(state)
    assert torch.equal(torch.rand(3), a)
