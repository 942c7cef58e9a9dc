"""Tests of the `ganserve` package."""
