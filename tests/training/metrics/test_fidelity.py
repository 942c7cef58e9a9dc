"""FID Inception network (architecture, safe loading) and FID/KID/IS through torchmetrics.

The real weights are not available offline, so the network is randomly initialised (Kaiming, so
that activations neither vanish nor explode); what is checked is the architecture/key layout of
`pt_inception-2015-12-05-6726825d.pth`, the loading rules and the metric plumbing. Few images:
one forward pass costs ~0.5 s on the 2-core test machine.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
import scipy.linalg
import torch
from safetensors.torch import save_file
from torch import nn
from torchmetrics.image.fid import FrechetInceptionDistance

from core.settings import Settings
from training.metrics.fidelity import (
    PrecomputedFeatures,
    _fid,
    compute_fidelity,
    is_unavailable,
)
from training.metrics.inception import (
    INCEPTION_WEIGHTS_ENV,
    FIDInception,
    InceptionUnavailable,
    load_inception,
)

N_REAL = 4
N_FAKE = 4


@pytest.fixture(scope="module")
def net() -> FIDInception:
    torch.manual_seed(1234)
    model = FIDInception()
    for module in model.modules():
        if isinstance(module, nn.Conv2d):
            nn.init.kaiming_normal_(module.weight, nonlinearity="relu")
        elif isinstance(module, nn.BatchNorm2d):  # non-trivial BN statistics and affine terms
            module.running_mean.uniform_(-0.1, 0.1)
            module.running_var.uniform_(0.8, 1.2)
            module.weight.data.uniform_(0.8, 1.2)
            module.bias.data.uniform_(-0.1, 0.1)
    nn.init.normal_(model.fc.weight, std=0.05)
    nn.init.normal_(model.fc.bias, std=0.1)
    return model


@pytest.fixture(scope="module")
def weight_files(net: FIDInception, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("inception")
    state = {k: v.contiguous() for k, v in net.state_dict().items()}
    files = {"safetensors": folder / "inception.safetensors", "pth": folder / "inception.pth"}
    save_file(state, str(files["safetensors"]))
    torch.save(state, files["pth"])
    return files


@pytest.fixture(scope="module")
def image_sets() -> tuple[torch.Tensor, torch.Tensor]:
    gen = torch.Generator().manual_seed(7)
    real = torch.randint(0, 256, (N_REAL, 3, 32, 32), generator=gen, dtype=torch.uint8)
    fake = torch.randint(0, 160, (N_FAKE, 3, 48, 48), generator=gen, dtype=torch.uint8) + 60
    return real, fake.to(torch.uint8)


@pytest.fixture(scope="module")
def probe(net: FIDInception) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """A grey image, and the features and logits of its RGB version (one forward pass)."""
    grey = torch.randint(0, 256, (1, 1, 40, 40), generator=torch.Generator().manual_seed(5))
    grey = grey.to(torch.uint8)
    features, logits = net.features_and_logits(grey.expand(-1, 3, -1, -1))
    return grey, features, logits


# --- (a) architecture -------------------------------------------------------------------------


def test_state_dict_layout_matches_the_standard_file() -> None:
    state = FIDInception().state_dict()
    expected = {
        "Conv2d_1a_3x3.conv.weight": (32, 3, 3, 3),
        "Conv2d_1a_3x3.bn.weight": (32,),
        "Conv2d_1a_3x3.bn.running_mean": (32,),
        "Conv2d_1a_3x3.bn.running_var": (32,),
        "Conv2d_2b_3x3.conv.weight": (64, 32, 3, 3),
        "Conv2d_4a_3x3.conv.weight": (192, 80, 3, 3),
        "Mixed_5b.branch1x1.conv.weight": (64, 192, 1, 1),
        "Mixed_5b.branch_pool.conv.weight": (32, 192, 1, 1),
        "Mixed_5d.branch5x5_2.conv.weight": (64, 48, 5, 5),
        "Mixed_6a.branch3x3.conv.weight": (384, 288, 3, 3),
        "Mixed_6b.branch7x7_2.conv.weight": (128, 128, 1, 7),
        "Mixed_6e.branch7x7dbl_5.conv.weight": (192, 192, 1, 7),
        "Mixed_7a.branch3x3_2.conv.weight": (320, 192, 3, 3),
        "Mixed_7b.branch3x3_2b.conv.weight": (384, 384, 3, 1),
        "Mixed_7c.branch3x3dbl_1.conv.weight": (448, 2048, 1, 1),
        "Mixed_7c.branch_pool.conv.weight": (192, 2048, 1, 1),
        "fc.weight": (1008, 2048),
        "fc.bias": (1008,),
    }
    for key, shape in expected.items():
        assert tuple(state[key].shape) == shape, key
    assert not any(k.startswith("AuxLogits") for k in state)
    blocks = {k.split(".")[0] for k in state}
    assert blocks == {
        "Conv2d_1a_3x3", "Conv2d_2a_3x3", "Conv2d_2b_3x3", "Conv2d_3b_1x1", "Conv2d_4a_3x3",
        "Mixed_5b", "Mixed_5c", "Mixed_5d", "Mixed_6a", "Mixed_6b", "Mixed_6c", "Mixed_6d",
        "Mixed_6e", "Mixed_7a", "Mixed_7b", "Mixed_7c", "fc",
    }  # fmt: skip
    # Every tensor of pt_inception-2015-12-05-6726825d.pth: weights, BN affine and running stats.
    stored = sum(v.numel() for k, v in state.items() if not k.endswith("num_batches_tracked"))
    assert stored == 23_885_392
    assert sum(p.numel() for p in FIDInception().parameters()) == 23_850_960
    assert all(v.dtype == torch.float32 for k, v in state.items() if "num_batches" not in k)
    bns = [m for m in FIDInception().modules() if isinstance(m, nn.BatchNorm2d)]
    assert len(bns) == 94 and all(m.eps == 0.001 for m in bns)


def test_outputs_and_input_handling(
    net: FIDInception, probe: tuple[torch.Tensor, torch.Tensor, torch.Tensor]
) -> None:
    grey, features, logits = probe
    assert features.shape == (1, 2048) and logits.shape == (1, 1008)
    assert torch.isfinite(features).all() and features.std() > 0
    assert net.num_features == 2048 and not net.training
    torch.testing.assert_close(logits, features @ net.fc.weight.T + net.fc.bias)
    # grey images are the RGB image with three equal channels; "unbiased" logits drop fc's bias
    grey_features, unbiased = net.features_and_logits(grey, unbiased=True)
    torch.testing.assert_close(grey_features, features)
    torch.testing.assert_close(unbiased, features @ net.fc.weight.T)
    net.train()
    assert not net.training  # the metric network never leaves eval mode
    with pytest.raises(TypeError, match="uint8"):
        net.features(torch.rand(1, 3, 40, 40))
    with pytest.raises(ValueError, match="shaped"):
        net.features(torch.zeros(1, 4, 40, 40, dtype=torch.uint8))


def test_preprocess_resizes_to_299_and_scales_to_unit_range() -> None:
    x = torch.tensor([0, 255], dtype=torch.uint8).repeat(1, 3, 10, 5)  # 10 x 10 stripes
    y = FIDInception.preprocess(x)
    assert y.shape == (1, 3, 299, 299)
    assert y.min().item() == pytest.approx(-1.0) and y.max().item() == pytest.approx(1.0)
    full = torch.full((1, 3, 299, 299), 255, dtype=torch.uint8)
    assert torch.equal(FIDInception.preprocess(full), torch.ones(1, 3, 299, 299))


# --- (b) loading ------------------------------------------------------------------------------


def test_safetensors_pth_and_env_load_the_same_network(
    net: FIDInception,
    weight_files: dict[str, Path],
    probe: tuple[torch.Tensor, torch.Tensor, torch.Tensor],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    images, expected, _ = probe
    from_safetensors = load_inception(weight_files["safetensors"])
    from_pth = load_inception(str(weight_files["pth"]), device="cpu")
    for loaded in (from_safetensors, from_pth):
        assert not loaded.training
        assert torch.equal(loaded.features(images), expected)
    monkeypatch.setenv("GANSERVE_INCEPTION_WEIGHTS", str(weight_files["pth"]))
    assert Settings().inception_weights == weight_files["pth"].resolve()
    from_env = load_inception(Settings().inception_weights)
    for key, value in net.state_dict().items():
        assert torch.equal(from_env.state_dict()[key], value), key


def test_state_dict_without_num_batches_tracked_loads(net: FIDInception, tmp_path: Path) -> None:
    state = {k: v for k, v in net.state_dict().items() if not k.endswith("num_batches_tracked")}
    torch.save(state, tmp_path / "no_counters.pt")
    loaded = load_inception(tmp_path / "no_counters.pt")
    assert torch.equal(loaded.fc.weight, net.fc.weight)


def _leave_mark(path: str) -> None:
    Path(path).write_text("executed")


class _Payload:
    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (_leave_mark, (str(self.marker),))


def test_pickled_object_is_refused_without_running_it(tmp_path: Path) -> None:
    marker = tmp_path / "marker"
    weights = tmp_path / "evil.pth"
    torch.save({"fc.weight": _Payload(marker)}, weights)
    with pytest.raises(InceptionUnavailable, match="weights_only"):
        load_inception(weights)
    assert not marker.exists()
    torch.load(weights, weights_only=False)  # the payload is live: unpickling would run it
    assert marker.exists()


def test_mismatched_state_dict_names_the_keys(net: FIDInception, tmp_path: Path) -> None:
    state = dict(net.state_dict())
    state["Mixed_5b.branch1x1.conv.renamed"] = state.pop("Mixed_5b.branch1x1.conv.weight")
    state["fc.weight"] = torch.zeros(1000, 2048)
    state["AuxLogits.fc.weight"] = torch.zeros(1000, 768)
    save_file({k: v.contiguous() for k, v in state.items()}, str(tmp_path / "bad.safetensors"))
    with pytest.raises(InceptionUnavailable) as info:
        load_inception(tmp_path / "bad.safetensors")
    message = str(info.value)
    assert "missing keys: Mixed_5b.branch1x1.conv.weight" in message
    assert "Mixed_5b.branch1x1.conv.renamed" in message and "AuxLogits.fc.weight" in message
    assert "fc.weight (1000, 2048) != (1008, 2048)" in message
    assert INCEPTION_WEIGHTS_ENV in message

    torch.save(torch.zeros(3), tmp_path / "tensor.pth")
    with pytest.raises(InceptionUnavailable, match="expected a state dict"):
        load_inception(tmp_path / "tensor.pth")
    (tmp_path / "weights.npz").write_bytes(b"")
    with pytest.raises(InceptionUnavailable, match="unsupported"):
        load_inception(tmp_path / "weights.npz")


@pytest.mark.parametrize("path", [None, "", "does/not/exist.pth"])
def test_missing_weights_say_how_to_provide_them(path: str | None) -> None:
    with pytest.raises(InceptionUnavailable) as info:
        load_inception(path)
    message = str(info.value)
    assert isinstance(info.value, RuntimeError)
    assert INCEPTION_WEIGHTS_ENV in message
    assert "pt_inception-2015-12-05-6726825d.pth" in message
    assert "nothing is downloaded" in message


# --- (c) metric values ------------------------------------------------------------------------


def _reference_fid(real: np.ndarray, fake: np.ndarray) -> float:
    """||mu_r - mu_f||^2 + tr S_r + tr S_f - 2 tr sqrtm(S_r S_f), with scipy.

    With S = A^T A (A: centred features / sqrt(n - 1)), S_r S_f has the nonzero eigenvalues of
    M M^T, M = A_r A_f^T, so tr sqrtm(S_r S_f) = tr sqrtm(M M^T): the same quantity without a
    2048-square matrix square root (half a minute on the test machine).
    """
    real, fake = real.astype(np.float64), fake.astype(np.float64)
    a_real = (real - real.mean(0)) / math.sqrt(len(real) - 1)
    a_fake = (fake - fake.mean(0)) / math.sqrt(len(fake) - 1)
    m = a_real @ a_fake.T
    covmean = scipy.linalg.sqrtm(m @ m.T)
    return float(
        np.sum((real.mean(0) - fake.mean(0)) ** 2)
        + np.sum(a_real**2)
        + np.sum(a_fake**2)
        - 2 * np.trace(covmean).real
    )


def test_fid_kid_is_through_torchmetrics(
    net: FIDInception,
    image_sets: tuple[torch.Tensor, torch.Tensor],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    real, fake = image_sets
    # Record what FIDInception.features returns for each batch, so that the reference works on
    # the very features compute_fidelity extracted without paying for the passes twice.
    extracted: list[tuple[torch.Tensor, torch.Tensor]] = []
    features = net.features

    def recording(images: torch.Tensor) -> torch.Tensor:
        out = features(images)
        extracted.append((images.clone(), out.clone()))
        return out

    monkeypatch.setattr(net, "features", recording)
    result = compute_fidelity(
        [real[:2], real[2:]], [fake], weights=net, kid_subset_size=1000, kid_subsets=20
    )
    assert set(result) == {"fid", "kid_mean", "kid_std", "is_mean", "is_std"}
    assert all(isinstance(v, float) and math.isfinite(v) for v in result.values())

    def features_of(batch: torch.Tensor) -> torch.Tensor:
        (out,) = [out for images, out in extracted if torch.equal(images, batch)]
        return out

    assert len(extracted) == 3  # every image went through the network once
    real_features = torch.cat([features_of(real[:2]), features_of(real[2:])]).numpy()
    fake_features = features_of(fake).numpy()
    expected = _reference_fid(real_features, fake_features)
    assert expected > 0
    assert result["fid"] == pytest.approx(expected, rel=1e-3)
    assert result["is_mean"] >= 1.0 and result["kid_std"] >= 0.0

    # the same features against themselves: FID ~ 0 (torchmetrics, through the same path)
    same = _fid(
        torch.from_numpy(fake_features), torch.from_numpy(fake_features), torch.device("cpu")
    )
    assert abs(same) < 1e-6 * expected + 1e-9


def test_fid_basis_shortcut_is_exact() -> None:
    """FID on the projected features equals torchmetrics' FID on the full ones (and scipy's)."""
    gen = torch.Generator().manual_seed(3)
    real = torch.randn(10, 64, generator=gen) + 0.5
    fake = 1.3 * torch.randn(9, 64, generator=gen)
    full = FrechetInceptionDistance(feature=PrecomputedFeatures(64))
    full.update(real, real=True)
    full.update(fake, real=False)
    projected = _fid(real, fake, torch.device("cpu"))  # 10 + 9 + 1 < 64: uses the shortcut
    assert projected == pytest.approx(float(full.compute()), rel=1e-5)

    r, f = real.double().numpy(), fake.double().numpy()
    s_r, s_f = np.cov(r, rowvar=False), np.cov(f, rowvar=False)
    direct = (
        np.sum((r.mean(0) - f.mean(0)) ** 2)
        + np.trace(s_r)
        + np.trace(s_f)
        - 2 * np.trace(scipy.linalg.sqrtm(s_r @ s_f)).real
    )
    assert projected == pytest.approx(direct, rel=1e-5)


def test_argument_checks(net: FIDInception) -> None:
    with pytest.raises(ValueError, match="unknown"):
        compute_fidelity([], [], weights=net, metrics=("fid", "lpips"))
    with pytest.raises(ValueError, match="too few images"):
        compute_fidelity([], [], weights=net, metrics=("kid",))
    with pytest.raises(ValueError, match="shaped"):
        compute_fidelity([], [torch.zeros(3, 8, 8, dtype=torch.uint8)], weights=net)


# --- (d) unavailable --------------------------------------------------------------------------


@pytest.mark.parametrize("weights", [None, "does/not/exist.safetensors"])
def test_unavailable_weights_report_every_metric(weights: str | None) -> None:
    images = [torch.zeros(2, 3, 8, 8, dtype=torch.uint8)]
    result = compute_fidelity(images, images, weights=weights)
    assert set(result) == {"fid", "kid", "is"}
    for value in result.values():
        assert is_unavailable(value)
        assert isinstance(value, str) and INCEPTION_WEIGHTS_ENV in value
    only_is = compute_fidelity([], [], weights=None, metrics=["is"])
    assert list(only_is) == ["is"] and is_unavailable(only_is["is"])
    assert not is_unavailable(1.0)


def test_weights_path_and_is_only(
    weight_files: dict[str, Path], image_sets: tuple[torch.Tensor, torch.Tensor]
) -> None:
    def never_read():
        raise AssertionError("real images are not needed for IS")
        yield

    fake = image_sets[1][:2]
    result = compute_fidelity(never_read(), [fake], weights=weight_files["pth"], metrics=["is"])
    assert set(result) == {"is_mean", "is_std"}
    assert result["is_mean"] >= 1.0 and result["is_std"] == 0.0  # one split of two images
