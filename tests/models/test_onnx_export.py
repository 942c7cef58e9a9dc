"""ONNX export: onnxruntime runs each exported model folder as PyTorch does (fp32, 1e-4)."""

import numpy as np
import onnxruntime as ort
import pytest
import torch
from torch import nn

import models
from models.onnx_export import OPSET, ExportError, export_onnx
from models.pix2pix import translation

TOLERANCE = 1e-4


def session(path) -> ort.InferenceSession:
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    options.inter_op_num_threads = 1
    return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


def max_diff(onnx_out: np.ndarray, torch_out: torch.Tensor) -> float:
    assert onnx_out.shape == tuple(torch_out.shape)
    return float(np.abs(onnx_out - torch_out.numpy()).max())


def randomise_batch_norms(model: nn.Module) -> None:
    """Nonzero affine weights and odd running statistics, so that normalisation matters."""
    for module in model.modules():
        if isinstance(module, nn.BatchNorm2d):
            if module.affine:
                nn.init.normal_(module.weight, 1.0, 0.5)
                nn.init.normal_(module.bias, 0.0, 0.5)
            if module.track_running_stats:
                module.running_mean.normal_(0.0, 0.5)
                module.running_var.uniform_(0.5, 2.0)


@pytest.mark.parametrize("norm", ["batch", "instance"])
def test_pix2pix_graph_is_the_test_time_forward_with_dropout_off(tmp_path, norm, one_torch_thread):
    torch.manual_seed(0)
    generator = models.create("pix2pix-generator", image_size=32, base_width=8, norm=norm)
    randomise_batch_norms(generator)
    models.save(generator, tmp_path / "p2p")
    out = tmp_path / "export" / "p2p.onnx"

    description = export_onnx(tmp_path / "p2p", out)

    assert description == {
        "architecture": "pix2pix-generator",
        "inputs": [{"name": "image", "shape": ["N", 3, "32*h", "32*w"], "dtype": "float32"}],
        "outputs": [{"name": "translated", "shape": ["N", 3, "32*h", "32*w"], "dtype": "float32"}],
        "opset": OPSET,
        "dropout": "off",
        "stride": 32,
    }
    assert sorted(p.name for p in out.parent.iterdir()) == ["p2p.onnx"]  # no temporary left
    loaded = models.load(tmp_path / "p2p")
    runtime = session(out)
    generator_rng = torch.Generator().manual_seed(1)
    # Batch sizes and sizes other than the traced example's (2, 3, 64, 64).
    for shape in [(3, 3, 64, 32), (1, 3, 32, 32), (2, 3, 32, 96)]:
        x = torch.rand(shape, generator=generator_rng) * 2 - 1  # (N, 3, H, W)
        size = (shape[2], shape[3])
        ones = [torch.ones_like(m) for m in translation.draw_masks(loaded, [0] * shape[0], size)]
        with torch.no_grad():
            expected = translation.forward(loaded, x, translation.TestTimeRun(size, ones)).clamp(
                -1, 1
            )
        (got,) = runtime.run(None, {"image": x.numpy()})
        assert max_diff(got, expected) <= TOLERANCE


@pytest.mark.parametrize("num_classes", [3, 0])
def test_unetgan_graph_is_the_eval_generator(tmp_path, num_classes, one_torch_thread):
    torch.manual_seed(0)
    generator = models.create(
        "unetgan-generator", image_size=32, width=4, latent_dim=8, num_classes=num_classes
    )
    randomise_batch_norms(generator)
    models.save(generator, tmp_path / "digits")
    out = tmp_path / "digits.onnx"

    description = export_onnx(tmp_path / "digits", out)

    inputs = [{"name": "z", "shape": ["N", 8], "dtype": "float32"}]
    if num_classes:
        inputs.append({"name": "class_label", "shape": ["N"], "dtype": "int64"})
    assert description == {
        "architecture": "unetgan-generator",
        "inputs": inputs,
        "outputs": [{"name": "images", "shape": ["N", 3, 32, 32], "dtype": "float32"}],
        "opset": OPSET,
    }
    loaded = models.load(tmp_path / "digits")
    runtime = session(out)
    rng = torch.Generator().manual_seed(1)
    for batch in (1, 3, 5):
        z = torch.randn(batch, 8, generator=rng)  # (N, 8)
        y = torch.randint(3, (batch,), generator=rng) if num_classes else None  # (N,)
        with torch.no_grad():
            expected = loaded(z, y).clamp(-1, 1)
        feeds = {"z": z.numpy()}
        if y is not None:
            feeds["class_label"] = y.numpy()
        (got,) = runtime.run(None, feeds)
        assert max_diff(got, expected) <= TOLERANCE


@pytest.mark.parametrize("stage,alpha", [(1, 0.25), (2, 1.0)])
def test_pggan_graph_is_the_generator_at_its_saved_stage(tmp_path, stage, alpha, one_torch_thread):
    torch.manual_seed(0)
    generator = models.create(
        "pggan-generator", max_resolution=16, channels=3, latent_dim=8, fmap_base=32, fmap_max=16
    )
    generator.set_stage(stage, alpha)
    models.save(generator, tmp_path / "faces")
    out = tmp_path / "faces.onnx"

    description = export_onnx(tmp_path / "faces", out)

    side = 4 * 2**stage
    assert description["inputs"] == [{"name": "z", "shape": ["N", 8], "dtype": "float32"}]
    assert description["outputs"] == [
        {"name": "images", "shape": ["N", 3, side, side], "dtype": "float32"}
    ]
    assert description["runtime_state"] == {"stage": stage, "alpha": alpha}
    loaded = models.load(tmp_path / "faces")
    assert (loaded.stage, loaded.alpha) == (stage, alpha)
    runtime = session(out)
    rng = torch.Generator().manual_seed(1)
    for batch in (1, 3, 6):
        z = torch.randn(batch, 8, generator=rng)  # (N, 8)
        with torch.no_grad():
            expected = loaded(z).clamp(-1, 1)
        (got,) = runtime.run(None, {"z": z.numpy()})
        assert max_diff(got, expected) <= TOLERANCE


def test_a_network_it_cannot_export_raises_export_error(tmp_path):
    torch.manual_seed(0)
    discriminator = models.create("unetgan-discriminator", image_size=32, width=4)
    models.save(discriminator, tmp_path / "d")  # a folder whose network is no generator
    out = tmp_path / "d.onnx"
    with pytest.raises(ExportError, match="cannot export unetgan-discriminator"):
        export_onnx(tmp_path / "d", out)
    assert not out.exists()
    assert issubclass(ExportError, ValueError)
