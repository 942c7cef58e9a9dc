"""The gateway's process count (`service.uvicorn_server`) and its command line's start."""

import os
import subprocess
import sys

import pytest

from core.settings import Settings
from ganserve.embedded_redis import free_port
from ganserve.processes import gateway_command
from service.uvicorn_server import MAX_AUTO_PROCESSES, gateway_processes


@pytest.mark.parametrize(
    ("cores", "processes"), [(1, 1), (2, 1), (3, 1), (4, 2), (8, 4), (16, 8), (64, 8)]
)
def test_unset_is_one_process_per_two_cores_at_most_eight(cores, processes):
    assert gateway_processes(None, cores=cores) == processes
    assert MAX_AUTO_PROCESSES == 8


def test_a_configured_count_is_taken_as_it_is():
    assert gateway_processes(3, cores=2) == 3
    assert gateway_processes(None) >= 1  # this machine's cores


def test_an_invalid_count_stops_the_gateway_with_one_line(tmp_path):
    command = gateway_command(Settings(host="127.0.0.1", port=free_port()))
    env = {k: v for k, v in os.environ.items() if not k.startswith("GANSERVE_")}
    env.update(GANSERVE_GATEWAY_PROCESSES="0", GANSERVE_DATA_DIR=str(tmp_path))
    result = subprocess.run(command, env=env, capture_output=True, text=True, timeout=60)
    assert result.returncode == 1
    assert "invalid setting GANSERVE_GATEWAY_PROCESSES" in result.stderr
    assert "Traceback" not in result.stderr
    assert command[:3] == [sys.executable, "-m", "service.uvicorn_server"]
