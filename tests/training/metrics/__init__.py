"""Tests of `training.metrics`."""
