"""Settings come from GANSERVE_* environment variables."""

import pytest

from core.settings import Settings, get_settings


def test_defaults_are_absolute(monkeypatch, tmp_path):
    """The relative default ./var is resolved once, where settings are read."""
    monkeypatch.chdir(tmp_path)
    assert Settings().data_dir == tmp_path / "var"
    assert Settings().data_dir.is_absolute()
    assert Settings().models_dir == tmp_path / "var" / "models"
    assert Settings(data_dir="rel/data").data_dir == tmp_path / "rel" / "data"


def test_environment_prefix(monkeypatch, tmp_path):
    monkeypatch.setenv("GANSERVE_DATA_DIR", str(tmp_path))
    get_settings.cache_clear()
    try:
        assert get_settings().data_dir == tmp_path
    finally:
        get_settings.cache_clear()


def test_an_empty_variable_means_unset(monkeypatch):
    """`GANSERVE_TORCH_THREADS=` (.env.example) and `${VAR:-}` (compose.yaml) leave it unset."""
    for name in ("GANSERVE_TORCH_THREADS", "GANSERVE_INCEPTION_WEIGHTS", "GANSERVE_REDIS_URL"):
        monkeypatch.setenv(name, "")
    settings = Settings()
    assert settings.torch_threads is None and settings.inception_weights is None
    assert settings.redis_url is None


def test_compile_takes_a_mode_or_a_switch(monkeypatch):
    """GANSERVE_COMPILE: 1/true/on as before (torch.compile's default mode), reduce-overhead
    (CUDA graphs), 0/false/off or empty: off; anything else is refused."""
    for value, mode in [
        ("1", "default"),
        ("true", "default"),
        ("default", "default"),
        ("reduce-overhead", "reduce-overhead"),
        (" Reduce-Overhead ", "reduce-overhead"),
        ("0", None),
        ("off", None),
        ("", None),
    ]:
        monkeypatch.setenv("GANSERVE_COMPILE", value)
        assert Settings().compile == mode, value
    monkeypatch.setenv("GANSERVE_COMPILE", "max-autotune")
    with pytest.raises(ValueError, match="reduce-overhead"):
        Settings()
