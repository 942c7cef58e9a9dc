"""Tests of the Celery workers: inference, model cache, job lifecycle, training, real workers."""
