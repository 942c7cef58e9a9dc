"""The FastAPI gateway: validates requests, stores inputs, records jobs and queues them.

It imports `core` only: never torch, `models`, `training`, `workers` or `ganserve`
(import-linter contracts check this).
"""
