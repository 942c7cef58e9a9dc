"""Prometheus scrapes for the tests, parsed by prometheus_client's own text parser."""

from __future__ import annotations

import httpx
from prometheus_client.parser import text_string_to_metric_families

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


def parse(text: str) -> Samples:
    """Every sample of an exposition: (sample name, its labels) -> value."""
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def scrape(url: str) -> Samples:
    """GET `url` (a /metrics endpoint) and parse it."""
    response = httpx.get(url, timeout=30)
    response.raise_for_status()
    return parse(response.text)


def value(samples: Samples, name: str, **labels: str) -> float | None:
    """The value of the sample `name` with exactly `labels`, or None when there is none."""
    return samples.get((name, frozenset(labels.items())))


def total(samples: Samples, name: str, **labels: str) -> float:
    """The sum of the samples `name` whose labels include `labels` (0 when there are none)."""
    wanted = set(labels.items())
    return sum(v for (n, found), v in samples.items() if n == name and wanted <= found)


def names(samples: Samples) -> set[str]:
    """The sample names of a scrape (a histogram's `_bucket`, `_sum`, `_count`, a counter's
    `_total`), as PromQL names them."""
    return {name for name, _ in samples}
