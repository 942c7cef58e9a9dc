"""Tests of the torch-free `core` package."""
