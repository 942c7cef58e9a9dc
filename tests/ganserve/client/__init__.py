"""Tests of the Python client, `ganserve.client`."""
