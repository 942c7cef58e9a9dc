"""Deployment checks: compose.yaml, the Dockerfiles, and a smoke test of the compose processes."""
