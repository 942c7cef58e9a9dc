"""core.logs: one format with the process name, request id and job id; JSON on demand."""

import io
import json
import logging

import pytest

from core.logs import ContextFilter, about_job, formatter, request_id


def logged(fmt: str, **context) -> str:
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(formatter(fmt))
    handler.addFilter(ContextFilter("worker-infer"))
    logger = logging.getLogger(f"test.logs.{fmt}")
    logger.handlers[:] = [handler]
    logger.propagate = False
    logger.setLevel(logging.INFO)
    token = request_id.set(context.get("request"))
    try:
        if context.get("job"):
            with about_job(context["job"]):
                logger.info("job %s succeeded", context["job"])
        else:
            logger.info("plain line")
    finally:
        request_id.reset(token)
    return stream.getvalue()


def test_text_lines_name_the_process_and_what_they_are_about():
    line = logged("text", request="req-1", job="3f2c")
    assert " INFO  worker-infer[" in line and "test.logs.text: job 3f2c succeeded" in line
    assert line.rstrip().endswith("[req=req-1 job=3f2c]")
    assert "[" not in logged("text").split(": ", 1)[1]  # no context: nothing appended


@pytest.mark.parametrize("context", [{}, {"request": "r9", "job": "j1"}])
def test_json_lines_are_one_object_each(context):
    record = json.loads(logged("json", **context))
    assert record["process_name"] == "worker-infer" and record["level"] == "INFO"
    assert record["logger"] == "test.logs.json" and isinstance(record["pid"], int)
    assert record["request_id"] == context.get("request")
    assert record["job_id"] == context.get("job")
    assert "time" in record and "message" in record
