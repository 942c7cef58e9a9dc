"""Tests of the gateway (`service/`): the real app under uvicorn, called over real HTTP."""
