"""Celery workers that run translation, sampling and training jobs on CPU or GPU."""
