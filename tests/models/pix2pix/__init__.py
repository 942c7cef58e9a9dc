"""Tests of models/pix2pix/."""
