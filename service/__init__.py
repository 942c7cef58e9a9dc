"""The FastAPI gateway: validates requests, stores inputs, records jobs and queues them.

It never imports torch, `models` or `training` (an import-linter contract checks this).
"""
