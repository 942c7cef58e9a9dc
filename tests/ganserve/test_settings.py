"""Settings come from GANSERVE_* environment variables."""

from pathlib import Path

from ganserve.settings import Settings, get_settings


def test_defaults():
    assert Settings().data_dir == Path("./var")
    assert Settings().models_dir == Path("./var/models")


def test_environment_prefix(monkeypatch, tmp_path):
    monkeypatch.setenv("GANSERVE_DATA_DIR", str(tmp_path))
    get_settings.cache_clear()
    try:
        assert get_settings().data_dir == tmp_path
    finally:
        get_settings.cache_clear()
