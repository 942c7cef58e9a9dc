"""Tests of the benchmark scripts' own helpers (benchmarks/)."""
