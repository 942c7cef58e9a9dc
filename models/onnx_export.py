"""ONNX export of a model folder's generator, so that a model runs outside ganserve.

`export_onnx(folder, out)` loads a folder's generator with `models.checkpoint.load` (weights,
config and runtime state) and writes one self-contained ONNX file (weights inside, no external
data file) that, for example, `onnxruntime.InferenceSession` runs. Every graph ends with the
clamp to [-1, 1] that ganserve applies to what it serves. What each graph computes:

- **pix2pix** (Isola, Zhu, Zhou, Efros, "Image-to-Image Translation with Conditional Adversarial
  Networks", CVPR 2017): `image` (N, C_in, H, W) float32 in [-1, 1] -> `translated`
  (N, C_out, H, W), the paper's test-time mode exactly as `models.test_time.forward` computes it:
  every norm layer normalises each image by its own per-channel statistics (instance norm with
  the batch-norm affine weights; running averages are unused), so an image's result does not
  depend on its batch-mates. **Dropout is off**: the dropout layers are the identity, and the
  graph is deterministic. ganserve itself keeps the paper's test-time dropout as seeded masks
  drawn per job (`models.test_time.draw_masks`), so an ONNX translation equals ganserve's with
  every mask at one, not ganserve's for a given seed. N, H and W are dynamic; H and W must be
  multiples of the U-Net's total stride 2**depth (256 for unet_256), which the graph's symbolic
  shapes state as `{stride}*h` and `{stride}*w`. Reflect-padding other sizes and tiling large
  images (`translate_native`) stay outside the graph.
- **U-Net GAN** (Schonfeld, Schiele, Khoreva, "A U-Net Based Discriminator for Generative
  Adversarial Networks", CVPR 2020): its BigGAN generator in eval mode, `z` (N, latent_dim)
  float32 and, for class-conditional models, `class_label` (N,) int64 -> `images`
  (N, C, S, S) in [-1, 1]; batch norm uses its running statistics, spectral norm's weights are
  folded into constants.
- **Progressive GAN** (Karras, Aila, Laine, Lehtinen, "Progressive Growing of GANs for Improved
  Quality, Stability, and Variation", ICLR 2018): its generator as loaded, at the growth stage
  and fade-in alpha of the folder's runtime state, `z` (N, latent_dim) float32 -> `images`
  (N, C, R, R), R = 4 * 2**stage.

The sampling graphs take latents as they are: drawing them from a seed (with truncation) and
drawing class labels (`models.sampling.sample_inputs`) stay outside. Batch size N is dynamic in
every graph; like any GEMM kernel, onnxruntime's may differ in the last bits for one row between
batch sizes (ganserve's row padding, `models.batch_invariance`, is not part of the graph).

The exporter is `torch.onnx.export(..., dynamo=True)` (torch.export, then onnxscript's ATen
library) at opset 18, that library's own opset, so no version conversion runs. On this torch
it exports all three families as they are; the legacy TorchScript exporter (`dynamo=False`) is
deprecated and cannot export spectral norm's power-iteration weights (`aten::vdot`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import onnx
import torch
from torch import nn

from models import test_time
from models.checkpoint import atomic_write, load
from models.pggan import PGGANGenerator
from models.pix2pix import Pix2PixGenerator
from models.registry import architecture_of
from models.unetgan import UNetGANGenerator

OPSET = 18
BATCH = "N"  # the symbolic batch dimension of every graph's inputs and outputs
# torch.export specialises a dimension whose example size is 0 or 1, so examples use 2.
EXAMPLE_BATCH = 2


class ExportError(ValueError):
    """A network this module cannot export to ONNX; the message says which and why."""


class _NoDropoutRun(test_time.TestTimeRun):
    """A test-time run that normalises each image by its own statistics and drops nothing."""

    def __init__(self) -> None:
        super().__init__((0, 0), masks=[])

    def dropout(self, x: torch.Tensor) -> torch.Tensor:
        return x  # (B, C, h, w): dropout off


class _Pix2PixTestTime(nn.Module):
    """pix2pix's test-time forward with dropout off: image (N, Ci, H, W) -> (N, Co, H, W)."""

    def __init__(self, generator: Pix2PixGenerator) -> None:
        super().__init__()
        self.generator = generator

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        y = test_time.forward(self.generator, image, _NoDropoutRun())  # (N, Co, H, W)
        return y.clamp(-1, 1)


class _Sampler(nn.Module):
    """A sampling generator: z (N, Z) -> images (N, C, S, S) in [-1, 1], unconditional."""

    def __init__(self, generator: nn.Module) -> None:
        super().__init__()
        self.generator = generator

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.generator(z).clamp(-1, 1)  # (N, C, S, S)


class _ConditionalSampler(_Sampler):
    """A class-conditional sampling generator: z (N, Z), class_label (N,) -> (N, C, S, S)."""

    def forward(self, z: torch.Tensor, class_label: torch.Tensor) -> torch.Tensor:  # type: ignore[override]
        return self.generator(z, class_label).clamp(-1, 1)  # (N, C, S, S)


def _pix2pix_graph(
    generator: Pix2PixGenerator,
) -> tuple[nn.Module, tuple[torch.Tensor, ...], dict[str, Any], dict[str, Any]]:
    """The wrapper, example input, dynamic shapes and extra description of a pix2pix export."""
    stride = test_time.total_stride(generator)
    cfg = generator.config
    # 2 strides per side: a size of 1 stride would be specialised (see EXAMPLE_BATCH).
    image = torch.zeros(EXAMPLE_BATCH, cfg.in_channels, 2 * stride, 2 * stride)  # (2, Ci, H, W)
    batch = torch.export.Dim(BATCH, min=1)
    h, w = torch.export.Dim("h", min=1), torch.export.Dim("w", min=1)
    shapes = {"image": {0: batch, 2: stride * h, 3: stride * w}}
    extra = {"dropout": "off", "stride": stride}
    return _Pix2PixTestTime(generator), (image,), shapes, extra


def _sampler_graph(
    generator: nn.Module,
) -> tuple[nn.Module, tuple[torch.Tensor, ...], dict[str, Any], dict[str, Any]]:
    """The wrapper, example inputs, dynamic shapes and extra description of a sampler export."""
    cfg = generator.config
    batch = torch.export.Dim(BATCH, min=1)
    z = torch.zeros(EXAMPLE_BATCH, cfg.latent_dim)  # (2, Z)
    extra: dict[str, Any] = {}
    if hasattr(generator, "runtime_state"):
        extra["runtime_state"] = generator.runtime_state()
    if cfg.num_classes > 0:
        label = torch.zeros(EXAMPLE_BATCH, dtype=torch.long)  # (2,)
        shapes = {"z": {0: batch}, "class_label": {0: batch}}
        return _ConditionalSampler(generator), (z, label), shapes, extra
    return _Sampler(generator), (z,), {"z": {0: batch}}, extra


def _describe_values(values: Any) -> list[dict[str, Any]]:
    """Name, shape (ints and symbolic names) and dtype of a graph's inputs or outputs."""
    described = []
    for value in values:
        tensor = value.type.tensor_type
        shape = [d.dim_param if d.HasField("dim_param") else d.dim_value for d in tensor.shape.dim]
        dtype = onnx.helper.tensor_dtype_to_np_dtype(tensor.elem_type).name
        described.append({"name": value.name, "shape": shape, "dtype": dtype})
    return described


def export_model(model: nn.Module, out: Path) -> dict[str, Any]:
    """Write the ONNX graph of a loaded generator (eval mode) to `out`; returns its description.

    `out` is written atomically (a temporary file in its folder, then a rename). Raises
    `ExportError` for a network that is not one of the three generators.
    """
    if isinstance(model, Pix2PixGenerator):
        wrapper, args, shapes, extra = _pix2pix_graph(model)
        input_names, output_names = ["image"], ["translated"]
    elif isinstance(model, UNetGANGenerator | PGGANGenerator):
        wrapper, args, shapes, extra = _sampler_graph(model)
        input_names = list(shapes)
        output_names = ["images"]
    else:
        try:
            name = architecture_of(model).name
        except TypeError:
            name = type(model).__name__
        raise ExportError(
            f"cannot export {name} to ONNX: only the generators pix2pix-generator, "
            "unetgan-generator and pggan-generator are exportable"
        )
    wrapper.eval()
    program = torch.onnx.export(
        wrapper,
        args,
        dynamo=True,
        opset_version=OPSET,
        input_names=input_names,
        output_names=output_names,
        dynamic_shapes=shapes,
        verbose=False,
    )
    description: dict[str, Any] = {}

    def write(tmp: str) -> None:
        program.save(tmp, external_data=False)
        onnx.checker.check_model(tmp)
        graph = onnx.load(tmp).graph
        description["inputs"] = _describe_values(graph.input)
        description["outputs"] = _describe_values(graph.output)

    out.parent.mkdir(parents=True, exist_ok=True)
    atomic_write(out, write)
    return {"architecture": architecture_of(model).name, **description, "opset": OPSET, **extra}


def export_onnx(folder: Path, out: Path) -> dict[str, Any]:
    """Export the generator of model folder `folder` to the ONNX file `out`.

    Returns what the graph takes and gives, e.g. for pix2pix
    `{"architecture": "pix2pix-generator", "inputs": [{"name": "image",
    "shape": ["N", 3, "256*h", "256*w"], "dtype": "float32"}], "outputs": [...], "opset": 18,
    "dropout": "off", "stride": 256}`; a Progressive GAN's adds its `runtime_state`. Raises
    `models.checkpoint.CheckpointError` for a folder that does not load and `ExportError` for a
    network that cannot be exported.
    """
    return export_model(load(folder), Path(out))
