"""Tests of models/unetgan/."""
