"""The Grafana dashboard in deploy/grafana: every query parses as PromQL, every panel reads
Prometheus through the dashboard's data source variable, no two panels overlap. That its
queries name only metrics that exist is checked against real scrapes in
tests/e2e/test_metrics.py."""

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import promql_parser

DASHBOARD = Path(__file__).resolve().parents[2] / "deploy" / "grafana" / "ganserve.json"
GRAFANA_VARIABLES = {"$__rate_interval": "5m", "$__interval": "1m"}  # Grafana fills them in


def dashboard() -> dict[str, Any]:
    return json.loads(DASHBOARD.read_text(encoding="utf-8"))


def graph_panels() -> list[dict[str, Any]]:
    """The panels that query (rows left out)."""
    return [p for p in dashboard()["panels"] if p["type"] != "row"]


def queries() -> Iterator[tuple[str, str]]:
    """(panel title, PromQL) of every target of every panel."""
    for panel in graph_panels():
        for target in panel["targets"]:
            yield panel["title"], target["expr"]


def parse(expr: str) -> Any:
    for variable, value in GRAFANA_VARIABLES.items():
        expr = expr.replace(variable, value)
    return promql_parser.parse(expr)


def _walk(node: Any) -> Iterator[Any]:
    yield node
    for attribute in ("lhs", "rhs", "expr", "param", "vector_selector"):
        child = getattr(node, attribute, None)
        if child is not None:
            yield from _walk(child)
    for child in getattr(node, "args", None) or ():
        yield from _walk(child)


def metric_names(expr: str) -> set[str]:
    """The metric names a PromQL expression selects."""
    return {
        node.name
        for node in _walk(parse(expr))
        if isinstance(node, promql_parser.VectorSelector) and node.name
    }


def test_every_query_parses_and_selects_a_metric():
    found = list(queries())
    assert len(found) >= 12
    for title, expr in found:
        assert metric_names(expr), f"{title}: {expr} selects no metric"


def test_the_walk_finds_every_selector():
    expr = "sum(rate(a_total[5m])) / (histogram_quantile(0.9, b_bucket) + -c)"
    assert metric_names(expr) == {"a_total", "b_bucket", "c"}


def test_the_dashboard_covers_what_operators_need():
    names = set().union(*(metric_names(expr) for _, expr in queries()))
    for wanted in (
        "ganserve_queue_depth",
        "ganserve_jobs_running",
        "ganserve_jobs_total",
        "ganserve_job_duration_seconds_bucket",
        "ganserve_queue_wait_seconds_bucket",
        "ganserve_batch_size_bucket",
        "ganserve_model_cache_events_total",
        "ganserve_gpu_memory_bytes",
    ):
        assert wanted in names, wanted


def test_panels_use_the_data_source_variable_and_do_not_overlap():
    board = dashboard()
    variables = {v["name"]: v for v in board["templating"]["list"]}
    assert variables["datasource"]["type"] == "datasource"
    assert variables["datasource"]["query"] == "prometheus"
    ids = [p["id"] for p in board["panels"]]
    assert len(ids) == len(set(ids))
    cells: set[tuple[int, int]] = set()
    for panel in board["panels"]:
        if panel["type"] != "row":
            assert panel["datasource"] == {"type": "prometheus", "uid": "${datasource}"}
            assert panel["description"] and panel["title"]
        grid = panel["gridPos"]
        assert grid["x"] >= 0 and grid["x"] + grid["w"] <= 24
        covered = {
            (x, y)
            for x in range(grid["x"], grid["x"] + grid["w"])
            for y in range(grid["y"], grid["y"] + grid["h"])
        }
        assert not covered & cells, f"panel {panel['title']!r} overlaps another"
        cells |= covered
