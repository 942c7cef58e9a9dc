"""The `ganserve` console script, run as a real process."""

import os
import shutil
import subprocess
import sys
from pathlib import Path

import models


def run_cli(*args: str, data_dir: Path) -> subprocess.CompletedProcess:
    exe = shutil.which("ganserve", path=str(Path(sys.executable).parent))
    env = {**os.environ, "GANSERVE_DATA_DIR": str(data_dir)}
    return subprocess.run([exe, *args], env=env, capture_output=True, text=True, check=False)


def test_info_lists_architectures_and_model_folders(tmp_path):
    g = models.create("pix2pix-generator", image_size=32, base_width=4)
    models.save(g, tmp_path / "models" / "edges2photo")
    (tmp_path / "models" / "broken").mkdir()
    result = run_cli("info", data_dir=tmp_path)
    assert result.returncode == 0, result.stderr
    assert str(tmp_path) in result.stdout
    for name in models.list_models():
        assert name in result.stdout
    assert "edges2photo" in result.stdout and "pix2pix-generator 32px" in result.stdout
    assert "broken" in result.stdout and "has no config.json" in result.stdout


def test_help():
    exe = shutil.which("ganserve", path=str(Path(sys.executable).parent))
    result = subprocess.run([exe, "--help"], capture_output=True, text=True, check=False)
    assert result.returncode == 0 and "info" in result.stdout
