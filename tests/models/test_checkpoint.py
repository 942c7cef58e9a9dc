"""The checkpoint format: model folders of safetensors + config.json, and what loading refuses."""

import json
import pickle

import pytest
import torch
from safetensors.torch import load_file, save_file

import models
from core.model_folder import has_discriminator
from models import CheckpointError

SMALL = {
    "pix2pix-generator": {"image_size": 32, "base_width": 4},
    "unetgan-generator": {"image_size": 32, "width": 4, "num_classes": 3},
    "pggan-generator": {"max_resolution": 16, "fmap_base": 64, "fmap_max": 16},
}


def generator_input(name: str, model: torch.nn.Module) -> tuple:
    torch.manual_seed(0)
    if name == "pix2pix-generator":
        return (torch.randn(2, 3, 32, 32),)
    z = torch.randn(2, model.config.latent_dim)
    return (z, torch.tensor([0, 2])) if name == "unetgan-generator" else (z,)


@pytest.mark.parametrize("name", sorted(SMALL))
def test_round_trip_is_exact(tmp_path, name):
    torch.manual_seed(1)
    model = models.create(name, **SMALL[name])
    for p in model.parameters():  # move off the initial values so the test means something
        p.data.add_(torch.randn_like(p) * 0.01)
    model.eval()
    card = models.save(model, tmp_path / "m", provenance={"run": "r1"}, metrics={"swd": 1.5})
    loaded = models.load(tmp_path / "m")
    assert not loaded.training
    original, restored = model.state_dict(), loaded.state_dict()
    assert original.keys() == restored.keys()
    assert all(torch.equal(original[k], restored[k]) for k in original)
    inputs = generator_input(name, model)
    with torch.no_grad():
        assert torch.equal(model(*inputs), loaded(*inputs))
    assert models.read_card(tmp_path / "m") == card
    assert card.family == name.split("-")[0] and card.metrics == {"swd": 1.5}


def test_config_json_describes_the_model(tmp_path):
    g = models.create("unetgan-generator", **SMALL["unetgan-generator"])
    models.save(g, tmp_path / "m", provenance={"run": "abc"})
    config = json.loads((tmp_path / "m" / "config.json").read_text())
    assert config["architecture"] == "unetgan-generator"
    assert config["family"] == "unetgan" and config["task"] == "sample"
    assert (config["image_size"], config["channels"], config["num_classes"]) == (32, 3, 3)
    assert config["config"]["width"] == 4 and config["provenance"] == {"run": "abc"}
    assert config["format_version"] == 1


def test_load_places_weights_on_the_requested_device(tmp_path):
    g = models.create("pix2pix-generator", **SMALL["pix2pix-generator"])
    models.save(g, tmp_path / "m")
    loaded = models.load(tmp_path / "m", device=torch.device("cpu"))
    assert {p.device.type for p in loaded.parameters()} == {"cpu"}


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_cuda_checkpoint_loads_on_cpu(tmp_path):
    g = models.create("pix2pix-generator", **SMALL["pix2pix-generator"]).cuda()
    models.save(g, tmp_path / "m")
    loaded = models.load(tmp_path / "m", device="cpu")
    assert all(
        torch.equal(a.cpu(), b) for a, b in zip(g.parameters(), loaded.parameters(), strict=True)
    )


@pytest.mark.parametrize("suffix", [".pt", ".pth", ".pkl"])
def test_pickle_files_are_refused_without_unpickling(tmp_path, suffix):
    marker = tmp_path / "ran"

    class Exploit:
        def __reduce__(self):
            return (marker.touch, ())

    path = tmp_path / f"model{suffix}"
    path.write_bytes(pickle.dumps(Exploit()))
    with pytest.raises(CheckpointError, match="pickle"):
        models.load(path)
    assert not marker.exists()


def test_folder_with_only_a_pickle_is_refused(tmp_path):
    g = models.create("pix2pix-generator", **SMALL["pix2pix-generator"])
    models.save(g, tmp_path / "m")
    (tmp_path / "m" / "model.safetensors").unlink()
    (tmp_path / "m" / "model.pt").write_bytes(b"not loaded")
    with pytest.raises(CheckpointError, match="has no model.safetensors"):
        models.load(tmp_path / "m")


def test_config_that_does_not_match_weights_names_the_mismatch(tmp_path):
    g = models.create("pix2pix-generator", **SMALL["pix2pix-generator"])
    models.save(g, tmp_path / "m")
    path = tmp_path / "m" / "config.json"
    config = json.loads(path.read_text())
    config["config"]["base_width"] = 8
    path.write_text(json.dumps(config))
    with pytest.raises(CheckpointError, match=r"model\.down\.0\.weight has shape \(4, 3, 4, 4\)"):
        models.load(tmp_path / "m")


def test_missing_and_extra_tensors_are_named(tmp_path):
    g = models.create("pix2pix-generator", **SMALL["pix2pix-generator"])
    models.save(g, tmp_path / "m")
    weights = tmp_path / "m" / "model.safetensors"
    tensors = load_file(weights)
    tensors.pop("model.down.0.weight")
    tensors["surprise"] = torch.zeros(1)
    save_file(tensors, weights)
    with pytest.raises(CheckpointError, match="missing tensor model.down.0.weight.*surprise"):
        models.load(tmp_path / "m")


def test_truncated_weights_are_refused(tmp_path):
    g = models.create("pix2pix-generator", **SMALL["pix2pix-generator"])
    models.save(g, tmp_path / "m")
    weights = tmp_path / "m" / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[:100])
    with pytest.raises(CheckpointError, match="not a readable safetensors file"):
        models.load(tmp_path / "m")


@pytest.mark.parametrize(
    ("config_text", "message"),
    [
        (None, "has no config.json"),
        ("{not json", "not valid JSON"),
        ("[1, 2]", "must hold a JSON object"),
        ('{"architecture": "pix2pix-generator"}', "lacks channels, config, family"),
    ],
)
def test_bad_config_json_is_refused(tmp_path, config_text, message):
    g = models.create("pix2pix-generator", **SMALL["pix2pix-generator"])
    models.save(g, tmp_path / "m")
    path = tmp_path / "m" / "config.json"
    if config_text is None:
        path.unlink()
    else:
        path.write_text(config_text)
    with pytest.raises(CheckpointError, match=message):
        models.load(tmp_path / "m")


def test_unknown_architecture_is_refused(tmp_path):
    g = models.create("pix2pix-generator", **SMALL["pix2pix-generator"])
    models.save(g, tmp_path / "m")
    path = tmp_path / "m" / "config.json"
    config = json.loads(path.read_text())
    config["architecture"] = "stylegan"
    path.write_text(json.dumps(config))
    with pytest.raises(CheckpointError, match="unknown model 'stylegan'"):
        models.load(tmp_path / "m")


def test_newer_format_is_refused(tmp_path):
    g = models.create("pix2pix-generator", **SMALL["pix2pix-generator"])
    models.save(g, tmp_path / "m")
    path = tmp_path / "m" / "config.json"
    config = json.loads(path.read_text())
    config["format_version"] = 99
    path.write_text(json.dumps(config))
    with pytest.raises(CheckpointError, match="format_version 99"):
        models.read_card(tmp_path / "m")


def test_not_a_folder_is_refused(tmp_path):
    with pytest.raises(CheckpointError, match="is not a model folder"):
        models.load(tmp_path / "nothing-here")


def test_saving_a_foreign_module_is_refused(tmp_path):
    with pytest.raises(TypeError, match="not a registered ganserve architecture"):
        models.save(torch.nn.Linear(2, 2), tmp_path / "m")


def test_pggan_growth_state_round_trips(tmp_path):
    g = models.create("pggan-generator", **SMALL["pggan-generator"])
    g.set_stage(1, 0.25)  # saved mid-growth: 8x8, fading in
    card = models.save(g, tmp_path / "m")
    assert card.runtime_state == {"stage": 1, "alpha": 0.25}
    loaded = models.load(tmp_path / "m")
    assert (loaded.stage, loaded.alpha) == (1, 0.25)
    assert loaded(torch.randn(2, g.config.latent_dim)).shape == (2, 3, 8, 8)


def test_bad_runtime_state_is_refused(tmp_path):
    g = models.create("pggan-generator", **SMALL["pggan-generator"])
    models.save(g, tmp_path / "m")
    path = tmp_path / "m" / "config.json"
    config = json.loads(path.read_text())
    config["runtime_state"] = {"stage": 9, "alpha": 1.0}
    path.write_text(json.dumps(config))
    with pytest.raises(CheckpointError, match="runtime_state is unusable"):
        models.load(tmp_path / "m")


SMALL_D = {
    "pix2pix-discriminator": {"base_width": 4, "patch": 16},
    "unetgan-discriminator": {"image_size": 32, "width": 4, "num_classes": 3},
    "pggan-discriminator": {"max_resolution": 16, "fmap_base": 64, "fmap_max": 16},
}
GENERATOR_OF = {d: d.replace("discriminator", "generator") for d in SMALL_D}


def folder_with_discriminator(tmp_path, name: str = "unetgan-discriminator"):
    """A saved generator of the family of `name` and a discriminator saved beside it."""
    torch.manual_seed(2)
    g_name = GENERATOR_OF[name]
    models.save(models.create(g_name, **SMALL[g_name]), tmp_path / "m", provenance={"run": "r"})
    d = models.create(name, **SMALL_D[name])
    for p in d.parameters():
        p.data.add_(torch.randn_like(p) * 0.01)
    entry = models.save_discriminator(tmp_path / "m", d, name, SMALL_D[name])
    return tmp_path / "m", d, entry


def discriminator_input(name: str, d: torch.nn.Module) -> tuple:
    torch.manual_seed(0)
    if name == "pix2pix-discriminator":
        return (torch.randn(2, 3, 32, 32), torch.randn(2, 3, 32, 32))
    if name == "unetgan-discriminator":
        return (torch.randn(2, 3, 32, 32), torch.tensor([0, 2]))
    return (torch.randn(2, 3, d.resolution, d.resolution),)


def as_tuple(output: torch.Tensor | tuple) -> tuple:
    return output if isinstance(output, tuple) else (output,)


@pytest.mark.parametrize("name", sorted(SMALL_D))
def test_discriminator_round_trip_is_exact(tmp_path, name):
    folder, d, entry = folder_with_discriminator(tmp_path, name)
    assert has_discriminator(folder)
    loaded = models.load_discriminator(folder)
    assert type(loaded) is type(d) and not loaded.training
    original, restored = d.state_dict(), loaded.state_dict()
    assert original.keys() == restored.keys()
    assert all(torch.equal(original[k], restored[k]) for k in original)
    d.eval()
    inputs = discriminator_input(name, d)
    with torch.no_grad():
        expected, found = d(*inputs), loaded(*inputs)  # logits, or (global, per-pixel) logits
    assert all(torch.equal(a, b) for a, b in zip(as_tuple(expected), as_tuple(found), strict=True))
    raw = json.loads((folder / "config.json").read_text())
    assert raw["discriminator"] == entry
    assert entry["architecture"] == name and entry["config"] == SMALL_D[name]


def test_the_discriminator_entry_leaves_the_generator_card_as_it_was(tmp_path):
    torch.manual_seed(2)
    g = models.create("unetgan-generator", **SMALL["unetgan-generator"])
    card = models.save(g, tmp_path / "m", metrics={"swd": 2.0})
    d = models.create("unetgan-discriminator", **SMALL_D["unetgan-discriminator"])
    models.save_discriminator(
        tmp_path / "m", d, "unetgan-discriminator", dict(SMALL_D["unetgan-discriminator"])
    )
    assert models.read_card(tmp_path / "m") == card
    assert models.load(tmp_path / "m") is not None
    assert sorted(p.name for p in (tmp_path / "m").iterdir()) == [
        "config.json",
        "discriminator.safetensors",
        "model.safetensors",
    ]  # no temporary files left behind


def test_growth_state_of_a_progressive_gan_critic_round_trips(tmp_path):
    models.save(models.create("pggan-generator", **SMALL["pggan-generator"]), tmp_path / "m")
    d = models.create("pggan-discriminator", **SMALL_D["pggan-discriminator"])
    d.set_stage(1, 0.5)
    entry = models.save_discriminator(
        tmp_path / "m", d, "pggan-discriminator", SMALL_D["pggan-discriminator"]
    )
    assert entry["runtime_state"] == {"stage": 1, "alpha": 0.5}
    loaded = models.load_discriminator(tmp_path / "m")
    assert (loaded.stage, loaded.alpha) == (1, 0.5)


def test_a_folder_without_a_discriminator_says_so(tmp_path):
    models.save(models.create("pix2pix-generator", **SMALL["pix2pix-generator"]), tmp_path / "m")
    assert not has_discriminator(tmp_path / "m")
    with pytest.raises(models.NoDiscriminator, match='no "discriminator" entry'):
        models.load_discriminator(tmp_path / "m")
    assert issubclass(models.NoDiscriminator, CheckpointError)
    assert not has_discriminator(tmp_path / "nothing")


def test_an_entry_without_its_file_or_a_file_without_its_entry_is_no_discriminator(tmp_path):
    folder, _, _ = folder_with_discriminator(tmp_path)
    weights = folder / "discriminator.safetensors"
    kept = weights.read_bytes()
    weights.unlink()
    assert not has_discriminator(folder)
    with pytest.raises(models.NoDiscriminator, match="has no discriminator.safetensors"):
        models.load_discriminator(folder)
    weights.write_bytes(kept)
    models.save(models.create("unetgan-generator", **SMALL["unetgan-generator"]), folder)
    assert not has_discriminator(folder)  # save() rewrote config.json without the entry


def test_a_pickled_discriminator_is_never_loaded(tmp_path):
    folder, _, _ = folder_with_discriminator(tmp_path)
    marker = tmp_path / "ran"

    class Exploit:
        def __reduce__(self):
            return (marker.touch, ())

    (folder / "discriminator.safetensors").unlink()
    (folder / "discriminator.pt").write_bytes(pickle.dumps(Exploit()))
    with pytest.raises(models.NoDiscriminator, match="has no discriminator.safetensors"):
        models.load_discriminator(folder)
    with pytest.raises(CheckpointError, match="pickle"):
        models.load_discriminator(folder / "discriminator.pt")
    assert not marker.exists()


def test_discriminator_weights_that_do_not_match_name_the_mismatch(tmp_path):
    folder, _, _ = folder_with_discriminator(tmp_path)
    path = folder / "config.json"
    config = json.loads(path.read_text())
    config["discriminator"]["config"]["width"] = 8
    path.write_text(json.dumps(config))
    with pytest.raises(
        CheckpointError,
        match=r"does not match its config.*decoder\.0\.conv1\.bias has shape \(16,\)",
    ):
        models.load_discriminator(folder)


def test_truncated_discriminator_weights_are_refused(tmp_path):
    folder, _, _ = folder_with_discriminator(tmp_path)
    weights = folder / "discriminator.safetensors"
    weights.write_bytes(weights.read_bytes()[:100])
    with pytest.raises(CheckpointError, match="not a readable safetensors file"):
        models.load_discriminator(folder)


@pytest.mark.parametrize(
    ("entry", "message"),
    [
        ("unetgan", "must be an object with"),
        ({"architecture": "unetgan-discriminator"}, "must be an object with"),
        ({"architecture": "stylegan", "config": {}}, "unknown model 'stylegan'"),
        ({"architecture": "unetgan-generator", "config": {}}, "names a generator"),
        ({"architecture": "unetgan-discriminator", "config": {"depth": 3}}, "no config field"),
    ],
)
def test_bad_discriminator_entries_are_refused(tmp_path, entry, message):
    folder, _, _ = folder_with_discriminator(tmp_path)
    path = folder / "config.json"
    config = json.loads(path.read_text())
    config["discriminator"] = entry
    path.write_text(json.dumps(config))
    with pytest.raises(CheckpointError, match=message):
        models.load_discriminator(folder)


def test_saving_a_discriminator_checks_what_it_is_told(tmp_path):
    g = models.create("unetgan-generator", **SMALL["unetgan-generator"])
    d = models.create("unetgan-discriminator", **SMALL_D["unetgan-discriminator"])
    config = SMALL_D["unetgan-discriminator"]
    with pytest.raises(CheckpointError, match="has no config.json"):
        (tmp_path / "m").mkdir()
        models.save_discriminator(tmp_path / "m", d, "unetgan-discriminator", config)
    models.save(g, tmp_path / "m")
    with pytest.raises(ValueError, match="is a generator, not a discriminator"):
        models.save_discriminator(
            tmp_path / "m", g, "unetgan-generator", SMALL["unetgan-generator"]
        )
    with pytest.raises(ValueError, match="the network is a unetgan-discriminator, not a pix2pix"):
        models.save_discriminator(tmp_path / "m", d, "pix2pix-discriminator", {})
    with pytest.raises(ValueError, match="does not describe this unetgan-discriminator"):
        models.save_discriminator(
            tmp_path / "m", d, "unetgan-discriminator", {**config, "width": 8}
        )
    assert not has_discriminator(tmp_path / "m")
