"""Progressive GAN growth schedule (Karras et al., ICLR 2018): phases, alpha and batch sizes."""

from __future__ import annotations

import math

import pytest

from core.training_config import REFERENCE_BATCH_SIZES
from training.pggan_schedule import GrowthSchedule, parse_batch_sizes

# 4: ceil(10/4) = 3 steps; 8: ceil(10/3) = 4; 16: ceil(10/2) = 5; 32: batch_base 5 -> 2.
BATCHES = {4: 4, 8: 3, 16: 2}


@pytest.fixture
def schedule() -> GrowthSchedule:
    return GrowthSchedule(max_resolution=32, phase_images=10, batch_sizes=BATCHES, batch_base=5)


def test_phases_in_order(schedule: GrowthSchedule) -> None:
    phases = [schedule.at(start) for start in schedule.phase_starts]
    assert [(p.resolution, p.fading) for p in phases] == [
        (4, False),
        (8, True),
        (8, False),
        (16, True),
        (16, False),
        (32, True),
        (32, False),
    ]
    assert [p.stage for p in phases] == [0, 1, 1, 2, 2, 3, 3]
    assert [p.phase_index for p in phases] == list(range(7))
    assert schedule.num_phases == 7


def test_total_steps_is_the_sum_of_ceil_images_over_batch(schedule: GrowthSchedule) -> None:
    per_phase = [3, 4, 4, 5, 5, 2, 2]
    assert [schedule.phase_steps(i) for i in range(7)] == per_phase
    assert schedule.total_steps == sum(per_phase) == 25
    assert schedule.phase_starts == (0, 3, 7, 11, 16, 21, 23)
    expected = sum(
        math.ceil(10 / schedule.batch_size_at(4 * 2 ** ((i + 1) // 2))) for i in range(7)
    )
    assert schedule.total_steps == expected


def test_batch_size_per_resolution(schedule: GrowthSchedule) -> None:
    for step in range(schedule.total_steps):
        phase = schedule.at(step)
        assert phase.batch_size == {**BATCHES, 32: 5}[phase.resolution]


def test_alpha_rises_linearly_over_each_fade_in(schedule: GrowthSchedule) -> None:
    for index in (1, 3, 5):
        start, steps = schedule.phase_starts[index], schedule.phase_steps(index)
        phases = [schedule.at(start + i) for i in range(steps)]
        assert all(p.fading for p in phases)
        assert phases[0].alpha == 0.0
        for i, p in enumerate(phases):
            assert p.phase_images_seen == i * p.batch_size
            assert p.alpha == pytest.approx(p.phase_images_seen / 10)
        assert 0.0 < phases[-1].alpha < 1.0
        assert phases[-1].alpha > 1.0 - phases[-1].batch_size / 10 - 1e-9
        after = schedule.at(start + steps)  # the stable phase that follows
        assert (after.fading, after.alpha, after.stage) == (False, 1.0, phases[0].stage)


def test_stable_phases_have_alpha_one(schedule: GrowthSchedule) -> None:
    for step in range(schedule.total_steps):
        phase = schedule.at(step)
        if not phase.fading:
            assert phase.alpha == 1.0


def test_images_seen_accumulate(schedule: GrowthSchedule) -> None:
    seen = 0
    for step in range(schedule.total_steps + 3):
        phase = schedule.at(step)
        assert phase.images_seen == seen
        seen += phase.batch_size


def test_past_the_end_stays_stable_at_the_last_stage(schedule: GrowthSchedule) -> None:
    for step in (schedule.total_steps, schedule.total_steps + 100):
        phase = schedule.at(step)
        assert (phase.stage, phase.resolution, phase.alpha, phase.fading) == (3, 32, 1.0, False)
        assert phase.phase_index == 6
    with pytest.raises(ValueError, match="step"):
        schedule.at(-1)


def test_pure_function_of_step(schedule: GrowthSchedule) -> None:
    again = GrowthSchedule(max_resolution=32, phase_images=10, batch_sizes=BATCHES, batch_base=5)
    assert [schedule.at(s) for s in range(30)] == [again.at(s) for s in range(30)]
    assert [schedule.at(s) for s in (17, 3, 17)] == [again.at(17), again.at(3), again.at(17)]


def test_reference_defaults() -> None:
    sizes = parse_batch_sizes(REFERENCE_BATCH_SIZES)
    assert sizes == {4: 128, 8: 128, 16: 128, 32: 64, 64: 32, 128: 16, 256: 8, 512: 4, 1024: 4}
    full = GrowthSchedule(max_resolution=1024, batch_sizes=sizes)
    assert full.phase_images == 600_000
    assert full.num_phases == 17
    assert full.phase_steps(0) == math.ceil(600_000 / 128) == 4688
    assert full.phase_steps(16) == 600_000 // 4
    assert full.at(full.total_steps - 1).resolution == 1024


def test_parse_batch_sizes() -> None:
    assert parse_batch_sizes("") == {}
    assert parse_batch_sizes(" 4:64, 8:32 ,") == {4: 64, 8: 32}
    for bad in ("4", "4:x", "6:8", "2:8", "4:0", "4:8,4:16"):
        with pytest.raises(ValueError):
            parse_batch_sizes(bad)


def test_invalid_schedules() -> None:
    with pytest.raises(ValueError, match="max_resolution"):
        GrowthSchedule(max_resolution=48)
    with pytest.raises(ValueError, match="phase_images"):
        GrowthSchedule(max_resolution=32, phase_images=0)
    with pytest.raises(ValueError, match="batch_base"):
        GrowthSchedule(max_resolution=32, batch_base=0)
