"""Tests of models/pggan/."""
