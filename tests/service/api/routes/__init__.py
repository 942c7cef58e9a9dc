"""Tests of the API routes, one module per resource."""
