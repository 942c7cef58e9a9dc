"""ONNX export of a model folder's generator, so that a model runs outside ganserve.

What a family's graph traces comes from its `onnx_graph` hook (`models.family`); this module
exports it, checks it and describes it.

`export_onnx(folder, out)` loads a folder's generator with `models.checkpoint.load` (weights,
config and runtime state) and writes one self-contained ONNX file (weights inside, no external
data file) that, for example, `onnxruntime.InferenceSession` runs. Every graph ends with the
clamp to [-1, 1] that ganserve applies to what it serves. What each graph computes:

- **pix2pix** (Isola, Zhu, Zhou, Efros, "Image-to-Image Translation with Conditional Adversarial
  Networks", CVPR 2017): `image` (N, C_in, H, W) float32 in [-1, 1] -> `translated` (N, C_out, H,
  W), the paper's test-time mode exactly as `models.pix2pix.translation.forward` computes it: every
  norm layer normalises each image by its own per-channel statistics (instance norm with the batch-
  norm affine weights; running averages are unused), so an image's result does not depend on its
  batch-mates. **Dropout is off**: the dropout layers are the identity, and the graph is
  deterministic. ganserve itself keeps the paper's test-time dropout as seeded masks drawn per job
  (`models.pix2pix.translation.draw_masks`), so an ONNX translation equals ganserve's with every
  mask at one, not ganserve's for a given seed. N, H and W are dynamic; H and W must be multiples of
  the U-Net's total stride 2**depth (256 for unet_256), which the graph's symbolic shapes state as
  `{stride}*h` and `{stride}*w`. Reflect-padding other sizes and tiling large images
  (`translate_native`) stay outside the graph.
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
it exports the three families' generators as they are; the legacy TorchScript exporter
(`dynamo=False`) is deprecated and cannot export spectral norm's power-iteration weights
(`aten::vdot`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import onnx
import torch
from torch import nn

from models.checkpoint import atomic_write, load
from models.family import OnnxGraph, Unsupported, hooks_named, hooks_of, overrides
from models.registry import architecture_of, get_architecture, list_models

OPSET = 18


class ExportError(ValueError):
    """A network this module cannot export to ONNX; the message says which and why."""


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
    `ExportError` for a network that is no generator, or whose family has no `onnx_graph` hook
    (`models.family`).
    """
    graph = _graph(model)
    wrapper = graph.wrapper
    wrapper.eval()
    program = torch.onnx.export(
        wrapper,
        graph.args,
        dynamo=True,
        opset_version=OPSET,
        input_names=graph.input_names,
        output_names=graph.output_names,
        dynamic_shapes=graph.dynamic_shapes,
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
    return {
        "architecture": architecture_of(model).name,
        **description,
        "opset": OPSET,
        **graph.extra,
    }


def _graph(model: nn.Module) -> OnnxGraph:
    """What to trace for `model`; `ExportError` unless it is a generator whose family exports."""
    try:
        arch = architecture_of(model)
    except TypeError:
        arch = None
    try:
        if arch is None or arch.role != "generator":
            raise Unsupported(f"cannot export {arch.name if arch else type(model).__name__}")
        return hooks_of(model).onnx_graph(model)
    except Unsupported as error:
        exportable = [
            a.name
            for a in map(get_architecture, list_models())
            if a.role == "generator" and overrides(hooks_named(a.family), "onnx_graph")
        ]
        raise ExportError(
            f"{error} to ONNX: only the generators {', '.join(exportable)} are exportable"
        ) from None


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
