"""Latency summaries shared by the benchmark scripts."""

from __future__ import annotations

import statistics


def percentiles(times: list[float]) -> tuple[float, float]:
    """(p50, p95) of `times` (seconds) in milliseconds."""
    ordered = sorted(times)
    p95 = ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))]
    return statistics.median(ordered) * 1e3, p95 * 1e3
