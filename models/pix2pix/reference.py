"""Import checkpoints of the pix2pix reference implementation into ganserve's pix2pix networks.

Isola, Zhu, Zhou, Efros, "Image-to-Image Translation with Conditional Adversarial Networks",
CVPR 2017; reference code: https://github.com/junyanz/pytorch-CycleGAN-and-pix2pix
(`models/networks.py`). A training run there leaves `latest_net_G.pth` (the generator) and
`latest_net_D.pth` (the discriminator), each `torch.save(net.state_dict(), path)`: a pickle of
tensors, read here with `torch.load(..., weights_only=True)` so that nothing but tensors and plain
containers can come out of it (`UnsafeCheckpoint` otherwise).

Generator (`UnetGenerator`, `unet_256` = 8 downsamplings, `unet_128` = 7). Each
`UnetSkipConnectionBlock` keeps its layers in one Sequential `model`, the next block sitting in
it as one of the layers; `models.pix2pix.networks.UNetBlock` splits the same layers into `down`,
`inner` and `up`. Per block, reference index -> ours (layers without tensors in brackets):

    outermost     [0 conv, 1 block, (2 relu), 3 convT, (4 tanh)]
                  -> down.0, inner, up.1
    intermediate  [(0 lrelu), 1 conv, 2 norm, 3 block, (4 relu), 5 convT, 6 norm, (7 dropout)]
                  -> down.1, down.2, inner, up.1, up.2
    innermost     [(0 lrelu), 1 conv, (2 relu), 3 convT, 4 norm]
                  -> down.1, up.1, up.2

so `model.model.1.model.3.model.5.weight` (level 2's up-conv) becomes
`model.inner.inner.up.1.weight`. The reference's UnetGenerator holds its outermost block as
`model`, hence the leading `model.model.`. Encoder widths are ngf * min(2**level, 8).

Differences that the conversion bridges, all without changing the function computed:

- the reference gives a convolution a bias only with instance norm (`use_bias`), including the
  outermost down-convolution, which has no norm after it; where ours has a bias there (with
  batch norm), the import fills it with zeros, which is what "no bias" computes;
- instance norm: the reference's is `InstanceNorm2d(affine=False)` without running statistics
  (current code); files from older code, which tracked them, and from PyTorch < 0.4 still
  hold `running_mean`, `running_var` and `num_batches_tracked`, which the reference drops when
  it loads them (`BaseModel.__patch_instance_norm_state_dict`), and so do we;
- batch norm files written before PyTorch 0.4 lack `num_batches_tracked`: it is set to 0
  (it only matters when training with momentum=None);
- dropout has no tensors, so it cannot be read from a file: the reference trains pix2pix with
  dropout 0.5 (no `--no_dropout`) in its `num_downs - 5` 8*ngf blocks just outside the innermost
  one, and the paper keeps it at test time. The import asks for exactly those blocks
  (`dropout_blocks = downsamplings - 5`, `dropout_skip = 1`: ganserve's own models follow the
  paper's CD512-CD1024-CD1024, which starts at the innermost block), so an imported model draws
  its test-time dropout where the reference trained it.

Discriminator: `NLayerDiscriminator` (`basic` = n_layers 3 = 70x70 PatchGAN; `n_layers`
1 and 5 are the 16x16 and 286x286 ones) has ganserve's `PatchDiscriminator` layer order and
indices exactly (`model.<i>`); `PixelDiscriminator` (`net.<i>`) is our `patch=1` with the same
indices under `model.`. It sees the concatenated (input, output) pair, so its first convolution
takes in_channels + out_channels of the generator.

Every tensor is accounted for: an unknown or missing key, or a shape that does not fit, is a
`ReferenceCheckpointError` naming it, as is an architecture ganserve has no network for
(the ResNet generators CycleGAN uses by default, n_layers 2 or 4, norm `none`).
"""

from __future__ import annotations

import io
import os
import pickle
import pickletools
import re
import zipfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch

from models.pix2pix.networks import (
    PATCH_LAYERS,
    PatchDiscriminator,
    Pix2PixDiscriminatorConfig,
    Pix2PixGenerator,
    Pix2PixGeneratorConfig,
)

Tensor = torch.Tensor
_NORM_STATS = ("running_mean", "running_var", "num_batches_tracked")
_BN_TENSORS = ("weight", "bias", *_NORM_STATS)
_LAYER_KEY = re.compile(r"(\d+)\.(\w+)")  # "<index>.<tensor>" of one Sequential

# Reference layer index -> our path inside a UNetBlock, per kind of block.
_OUTERMOST = {0: "down.0", 3: "up.1"}
_INTERMEDIATE = {1: "down.1", 2: "down.2", 5: "up.1", 6: "up.2"}
_INNERMOST = {1: "down.1", 3: "up.1", 4: "up.2"}
_NORM_INDICES = {"outermost": (), "intermediate": (2, 6), "innermost": (4,)}
_SUBMODULE_INDEX = {"outermost": 1, "intermediate": 3}

_SUPPORTED_G = "ganserve imports the reference's unet_256 and unet_128 generators"
# Modules whose globals torch.save itself writes into a checkpoint's pickle.
_TORCH_GLOBAL_MODULES = ("torch", "collections", "_codecs")


class ReferenceCheckpointError(ValueError):
    """A reference checkpoint that cannot be imported; the message says why in words."""


class UnsafeCheckpoint(ReferenceCheckpointError):
    """A checkpoint whose pickle holds something other than tensors and plain containers."""


# ---------------------------------------------------------------------------------------------
# Reading a .pth file


def _pickle_globals(data: bytes) -> list[str]:
    """The `module name` globals a pickle (or a run of pickles) refers to, found by parsing its
    opcodes with `pickletools` (which executes nothing); stops at the first unparsable byte."""
    found: list[str] = []
    strings: list[str] = []  # strings pushed so far, for STACK_GLOBAL's module and name
    memo: dict[int, str] = {}  # memo slots that hold strings
    pos = 0
    for _ in range(8):  # torch's legacy format is several pickles back to back
        last = None
        pushed: str | None = None  # the string the previous opcode pushed, if it pushed one
        n_memo = 0  # MEMOIZE numbers the memo slots in order
        try:
            for op, arg, at in pickletools.genops(io.BytesIO(data[pos:])):
                last, top, pushed = at, pushed, None
                if op.name == "GLOBAL":
                    found.append(str(arg))
                elif op.name == "STACK_GLOBAL" and len(strings) >= 2:
                    found.append(f"{strings[-2]} {strings[-1]}")
                    del strings[-2:]
                elif isinstance(arg, str) and ("UNICODE" in op.name or "STRING" in op.name):
                    strings.append(arg)
                    pushed = arg
                elif op.name == "MEMOIZE":
                    if top is not None:
                        memo[n_memo] = top
                    n_memo += 1
                    pushed = top
                elif op.name in ("BINPUT", "LONG_BINPUT", "PUT"):
                    if top is not None:
                        memo[int(arg)] = top
                    pushed = top
                elif op.name in ("BINGET", "LONG_BINGET", "GET") and int(arg) in memo:
                    strings.append(memo[int(arg)])
                    pushed = memo[int(arg)]
        except Exception:  # not (or no longer) a pickle: what was found so far is the answer
            break
        if last is None:
            break
        pos += last + 1  # just past this pickle's STOP
        if pos >= len(data):
            break
    return found


def _pickled_bytes(path: Path) -> bytes:
    """The pickle inside a torch zip checkpoint (`<archive>/data.pkl`), else the file itself."""
    raw = path.read_bytes()
    if zipfile.is_zipfile(io.BytesIO(raw)):
        with zipfile.ZipFile(io.BytesIO(raw)) as archive:
            for name in archive.namelist():
                if name.endswith("data.pkl"):
                    return archive.read(name)
    return raw


def _foreign_globals(path: Path) -> list[str]:
    try:
        names = _pickle_globals(_pickled_bytes(path))
    except (OSError, zipfile.BadZipFile, KeyError, ValueError):
        return []
    return sorted({n for n in names if not n.startswith(_TORCH_GLOBAL_MODULES)})


def _strip_prefix(state: dict[str, Tensor], prefix: str = "module.") -> dict[str, Tensor]:
    """Drop the `module.` that `nn.DataParallel` puts before every key, when all keys have it."""
    if state and all(k.startswith(prefix) for k in state):
        return {k[len(prefix) :]: v for k, v in state.items()}
    return state


def _as_state_dict(obj: Any, source: str) -> dict[str, Tensor]:
    """A plain {name: tensor} dict from what a checkpoint held, or a ReferenceCheckpointError."""
    if isinstance(obj, Mapping) and isinstance(obj.get("state_dict"), Mapping):
        obj = obj["state_dict"]  # a training checkpoint that wraps the weights
    if not isinstance(obj, Mapping):
        raise ReferenceCheckpointError(
            f"{source} holds a {type(obj).__name__}, not a network's state dict "
            f"(a mapping of names to tensors, what the reference's torch.save(net.state_dict()) "
            f"writes)"
        )
    bad = [k for k, v in obj.items() if not isinstance(k, str) or not isinstance(v, Tensor)]
    if bad:
        shown = ", ".join(f"{k!r} ({type(obj[k]).__name__})" for k in bad[:5])
        raise ReferenceCheckpointError(
            f"{source} is not a network's state dict: {len(bad)} entries are not tensors, "
            f"e.g. {shown}"
        )
    if not obj:
        raise ReferenceCheckpointError(f"{source} holds no tensors")
    # dict(): drops the `_metadata` attribute an OrderedDict from state_dict() carries.
    return _strip_prefix(dict(obj))


def read_state_dict(path: str | os.PathLike[str], *, name: str | None = None) -> dict[str, Tensor]:
    """Read a reference `.pth` file as {name: tensor} on the CPU, never running its pickle's code.

    Accepts a state dict (also one saved from `nn.DataParallel`, whose `module.` prefix is
    removed) or a dict holding one under `"state_dict"`. Raises `UnsafeCheckpoint` when the
    pickle refers to anything but tensors and plain containers, `ReferenceCheckpointError` when
    the file is unreadable or holds something else. Messages name the file as `name` (default:
    its file name), never by its full path.
    """
    path = Path(path)
    shown = name or path.name
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        # What weights_only raises for any global outside its allow-list (code the pickle would
        # run), but also for bytes that are no pickle at all; tell the two apart for the message.
        foreign = _foreign_globals(path)
        if foreign or "Unsupported global" in str(exc):
            named = ", ".join(foreign[:5]) if foreign else "non-tensor Python objects"
            raise UnsafeCheckpoint(
                f"refusing {shown}: its pickle refers to {named}, which loading it the usual "
                f"way would call (arbitrary code). A reference checkpoint holds only tensors; "
                f"only import files from sources you trust."
            ) from None
        raise ReferenceCheckpointError(
            f"{shown} is not a readable PyTorch checkpoint (not torch.save's format)"
        ) from None
    except FileNotFoundError:
        raise ReferenceCheckpointError(f"{shown} does not exist") from None
    except OSError as exc:
        raise ReferenceCheckpointError(
            f"cannot read {shown}: {exc.strerror or type(exc).__name__}"
        ) from None
    except Exception as exc:  # truncated zip, EOF, corrupt records: torch raises many kinds
        first = str(exc).splitlines()[0][:200] if str(exc) else type(exc).__name__
        raise ReferenceCheckpointError(
            f"{shown} is not a readable PyTorch checkpoint (truncated or corrupt?): {first}"
        ) from None
    return _as_state_dict(obj, shown)


# ---------------------------------------------------------------------------------------------
# Shared checks


def _expected_tensors(module_class: type, config: Any) -> dict[str, torch.Size]:
    """Our network's state-dict keys and shapes, built on the meta device (no memory, no init)."""
    with torch.device("meta"):
        net = module_class(config)
    return {k: v.shape for k, v in net.state_dict().items()}


def _check_against(
    converted: dict[str, Tensor],
    expected: dict[str, torch.Size],
    origin: dict[str, str],
    what: str,
) -> None:
    """Refuse any key or shape on which the converted tensors and our network disagree,
    naming the reference key it came from."""
    problems = [
        f"unexpected tensor {origin.get(k, k)}" for k in sorted(converted.keys() - expected)
    ]
    problems += [f"missing tensor for our {k}" for k in sorted(expected.keys() - converted.keys())]
    problems += [
        f"{origin.get(k, k)} has shape {tuple(converted[k].shape)}, expected {tuple(expected[k])}"
        for k in sorted(converted.keys() & expected.keys())
        if converted[k].shape != expected[k]
    ]
    if problems:
        shown = "; ".join(problems[:5])
        if len(problems) > 5:
            shown += f"; and {len(problems) - 5} more"
        raise ReferenceCheckpointError(f"this {what} does not have the reference layout: {shown}")


def _weight(state: dict[str, Tensor], key: str, ndim: int, what: str) -> Tensor:
    tensor = state.get(key)
    if tensor is None:
        raise ReferenceCheckpointError(f"this {what} has no {key}, which the reference's has")
    if tensor.ndim != ndim:
        raise ReferenceCheckpointError(
            f"{key} has shape {tuple(tensor.shape)}; the reference's is {ndim}-dimensional"
        )
    return tensor


def _norm_kind(has_norm_affine: bool, has_conv_bias: bool, what: str) -> str:
    """Batch norm has affine tensors; instance norm (affine=False) none, but biased convs."""
    if has_norm_affine:
        return "batch"
    if has_conv_bias:
        return "instance"
    raise ReferenceCheckpointError(
        f"this {what} has neither norm tensors nor convolution biases: it was trained with "
        f"--norm none, and ganserve's pix2pix networks use batch or instance norm"
    )


def _resnet_blocks(state: dict[str, Tensor]) -> int:
    return len({k.split(".")[1] for k in state if ".conv_block." in k and k.startswith("model.")})


# ---------------------------------------------------------------------------------------------
# Generator


def _unet_levels(state: dict[str, Tensor]) -> list[tuple[str, str, dict[int, dict[str, Tensor]]]]:
    """Walk the nested blocks outermost first: (kind, reference prefix, {index: {name: tensor}}).

    Level 0's layers are `model.model.<i>.*`; its block is layer 1, whose layers are
    `model.model.1.model.<i>.*`; from there on the next block is layer 3.
    """
    levels = []
    prefix = "model.model."
    while True:
        layers: dict[int, dict[str, Tensor]] = {}
        for key, tensor in state.items():
            if key.startswith(prefix):
                match = _LAYER_KEY.fullmatch(key[len(prefix) :])
                if match:
                    layers.setdefault(int(match[1]), {})[match[2]] = tensor
        kind = "outermost" if not levels else "intermediate"
        sub_prefix = f"{prefix}{_SUBMODULE_INDEX[kind]}.model."
        if not any(k.startswith(sub_prefix) for k in state):
            kind = "innermost" if levels else kind
            levels.append((kind, prefix, layers))
            return levels
        levels.append((kind, prefix, layers))
        prefix = sub_prefix


def _not_a_unet(state: dict[str, Tensor]) -> ReferenceCheckpointError:
    blocks = _resnet_blocks(state)
    if blocks:
        return ReferenceCheckpointError(
            f"this is a resnet_{blocks}blocks generator (ResnetGenerator, CycleGAN's default); "
            f"{_SUPPORTED_G}"
        )
    if any(k.startswith("net.") for k in state) or "model.0.weight" in state:
        return ReferenceCheckpointError(
            f"this is a discriminator's state dict (latest_net_D.pth?), not a generator's; "
            f"{_SUPPORTED_G}"
        )
    shown = ", ".join(sorted(state)[:3])
    return ReferenceCheckpointError(
        f"this is not a UnetGenerator state dict (keys like model.model.0.weight expected, "
        f"found {shown}, ...); {_SUPPORTED_G}"
    )


def convert_generator(state: Mapping[str, Tensor]) -> tuple[dict[str, Any], dict[str, Tensor]]:
    """Map a reference UnetGenerator state dict onto `Pix2PixGenerator`.

    Returns `Pix2PixGeneratorConfig` fields (image_size, in_channels, out_channels, base_width,
    norm, dropout, dropout_blocks) and a state dict that loads with `strict=True` into
    `Pix2PixGenerator(Pix2PixGeneratorConfig(**fields))`, computing the reference's function.
    """
    what = "generator"
    state = _as_state_dict(state, "the generator state dict")
    if "model.model.0.weight" not in state:
        raise _not_a_unet(state)
    levels = _unet_levels(state)
    depth = len(levels)
    first = _weight(state, "model.model.0.weight", 4, what)  # (ngf, in_channels, 4, 4)
    last = _weight(state, "model.model.3.weight", 4, what)  # convT: (2*ngf, out_channels, 4, 4)
    base_width, in_channels = int(first.shape[0]), int(first.shape[1])
    out_channels = int(last.shape[1])
    if depth < 5:
        raise ReferenceCheckpointError(
            f"this U-Net has {depth} downsamplings; the reference's have at least 5 "
            f"(unet_256: 8, unet_128: 7)"
        )

    # Norm: batch norm layers carry weight/bias; instance norm's convolutions carry biases.
    norm_affine = any(
        name in ("weight", "bias")
        for kind, _, layers in levels
        for i in _NORM_INDICES[kind]
        for name in layers.get(i, {})
    )
    norm = _norm_kind(norm_affine, "bias" in levels[1][2].get(1, {}), what)

    converted: dict[str, Tensor] = {}
    origin: dict[str, str] = {}  # our key -> the reference key it came from (for messages)
    for level, (kind, prefix, layers) in enumerate(levels):
        mapping = {"outermost": _OUTERMOST, "intermediate": _INTERMEDIATE}.get(kind, _INNERMOST)
        ours = "model." + "inner." * level
        for index, tensors in layers.items():
            ref_layer = f"{prefix}{index}"
            if index not in mapping:
                raise ReferenceCheckpointError(
                    f"unexpected tensor {ref_layer}.{next(iter(tensors))}: the reference's "
                    f"{kind} U-Net block has no tensors at layer {index}"
                )
            is_norm = index in _NORM_INDICES[kind]
            for name, tensor in tensors.items():
                if is_norm and norm == "instance" and name in _NORM_STATS:
                    continue  # stale running statistics of an older instance norm
                key = f"{ours}{mapping[index]}.{name}"
                converted[key] = tensor
                origin[key] = f"{ref_layer}.{name}"
            if is_norm and norm == "batch" and "num_batches_tracked" not in tensors:
                converted[f"{ours}{mapping[index]}.num_batches_tracked"] = torch.tensor(0)
    # Every reference key must have been placed: anything else is from another network.
    placed = set(origin.values())
    stray = sorted(k for k in state if k not in placed and not _is_stale_norm_key(k, levels, norm))
    if stray:
        shown = ", ".join(stray[:5]) + (f" and {len(stray) - 5} more" if len(stray) > 5 else "")
        raise ReferenceCheckpointError(f"unexpected tensors in this generator: {shown}")

    fields: dict[str, Any] = {
        "image_size": 2**depth,
        "in_channels": in_channels,
        "out_channels": out_channels,
        "base_width": base_width,
        "norm": norm,
        "dropout": 0.5,
        "dropout_blocks": depth - 5,  # the reference's dropout blocks: num_downs - 5 ...
        "dropout_skip": 1,  # ... just outside the innermost block
    }
    try:
        config = Pix2PixGeneratorConfig(**fields)
    except ValueError as exc:
        raise ReferenceCheckpointError(f"no ganserve generator fits this one: {exc}") from None
    expected = _expected_tensors(Pix2PixGenerator, config)
    # The outermost down-conv: the reference's has no bias with batch norm, ours may; a zero
    # bias computes the same.
    bias_key = "model.down.0.bias"
    if bias_key in expected and bias_key not in converted:
        converted[bias_key] = torch.zeros(expected[bias_key], dtype=first.dtype)
    _check_against(converted, expected, origin, f"unet_{2**depth} {what}")
    return fields, converted


def _is_stale_norm_key(key: str, levels: list, norm: str) -> bool:
    """Instance norm running statistics the conversion drops on purpose."""
    if norm != "instance":
        return False
    for kind, prefix, _ in levels:
        for index in _NORM_INDICES[kind]:
            if key in {f"{prefix}{index}.{s}" for s in _NORM_STATS}:
                return True
    return False


# ---------------------------------------------------------------------------------------------
# Discriminator


def _receptive_field(n_layers: int) -> int:
    """Receptive field of NLayerDiscriminator(n_layers): 16, 34, 70, 142, 286, ..."""
    return 9 * 2 ** (n_layers + 1) - 2


def convert_discriminator(
    state: Mapping[str, Tensor], generator_fields: Mapping[str, Any]
) -> tuple[dict[str, Any], dict[str, Tensor]]:
    """Map a reference NLayerDiscriminator / PixelDiscriminator state dict onto
    `PatchDiscriminator`, for the generator described by `generator_fields` (its config fields,
    e.g. from `convert_generator`).

    Returns `Pix2PixDiscriminatorConfig` fields (in_channels, out_channels, base_width, patch,
    norm) and a state dict that loads with `strict=True` into
    `PatchDiscriminator(Pix2PixDiscriminatorConfig(**fields))`.
    """
    what = "discriminator"
    state = _as_state_dict(state, "the discriminator state dict")
    if any(k.startswith("model.model.") for k in state) or _resnet_blocks(state):
        raise ReferenceCheckpointError(
            "this is a generator's state dict (latest_net_G.pth?), not a discriminator's"
        )
    pixel = any(k.startswith("net.") for k in state)
    prefix = "net." if pixel else "model."
    if not pixel and "model.0.weight" not in state:
        shown = ", ".join(sorted(state)[:3])
        raise ReferenceCheckpointError(
            f"this is not an NLayerDiscriminator or PixelDiscriminator state dict (keys like "
            f"model.0.weight or net.0.weight expected, found {shown}, ...)"
        )
    layers: dict[int, dict[str, Tensor]] = {}
    for key, tensor in state.items():
        match = _LAYER_KEY.fullmatch(key[len(prefix) :]) if key.startswith(prefix) else None
        if match is None:
            raise ReferenceCheckpointError(f"unexpected tensor {key} in this discriminator")
        layers.setdefault(int(match[1]), {})[match[2]] = tensor
    first = _weight(state, f"{prefix}0.weight", 4, what)  # (ndf, C_in + C_out, k, k)
    base_width, pair_channels = int(first.shape[0]), int(first.shape[1])

    if pixel:
        # [0 conv1x1, (1 lrelu), 2 conv1x1, 3 norm, (4 lrelu), 5 conv1x1]
        convs, norms, patch = [0, 2, 5], [3], 1
    else:
        # [0 conv, (1 lrelu), (2+3k conv, 3+3k norm, (4+3k lrelu)) for k < n_layers, last conv]
        convs = sorted(i for i, t in layers.items() if t.get("weight", torch.empty(0)).ndim == 4)
        n_layers = len(convs) - 2
        if n_layers < 1 or convs != [0, *(2 + 3 * k for k in range(n_layers + 1))]:
            raise ReferenceCheckpointError(
                f"this discriminator's convolutions sit at layers {convs}, not where the "
                f"reference's NLayerDiscriminator puts them"
            )
        by_layers = {n: p for p, n in PATCH_LAYERS.items()}
        if n_layers not in by_layers:
            supported = ", ".join(f"{n} ({p}x{p})" for n, p in sorted(by_layers.items()))
            raise ReferenceCheckpointError(
                f"this is an n_layers={n_layers} PatchGAN ({_receptive_field(n_layers)}x"
                f"{_receptive_field(n_layers)} patches); ganserve's PatchGAN has n_layers "
                f"{supported} and the 1x1 pixel discriminator"
            )
        patch = by_layers[n_layers]
        norms = [c + 1 for c in convs[1:-1]]
    norm = _norm_kind(
        any(n in ("weight", "bias") for i in norms for n in layers.get(i, {})),
        "bias" in layers.get(convs[1], {}),
        what,
    )

    in_channels = int(generator_fields["in_channels"])
    out_channels = int(generator_fields["out_channels"])
    if pair_channels != in_channels + out_channels:
        hint = (
            " (it judges one image, like CycleGAN's discriminators; pix2pix's judges the "
            "(input, output) pair)"
            if pair_channels in (in_channels, out_channels)
            else ""
        )
        raise ReferenceCheckpointError(
            f"this discriminator takes {pair_channels} input channels, but the generator's "
            f"(input, output) pair has {in_channels} + {out_channels} = "
            f"{in_channels + out_channels}: it was not trained with this generator{hint}"
        )

    converted: dict[str, Tensor] = {}
    origin: dict[str, str] = {}
    for index, tensors in layers.items():
        for name, tensor in tensors.items():
            if index in norms and norm == "instance" and name in _NORM_STATS:
                continue  # stale running statistics of an older instance norm
            key = f"model.{index}.{name}"  # same indices as ours
            converted[key] = tensor
            origin[key] = f"{prefix}{index}.{name}"
        if index in norms and norm == "batch" and "num_batches_tracked" not in tensors:
            converted[f"model.{index}.num_batches_tracked"] = torch.tensor(0)

    fields: dict[str, Any] = {
        "in_channels": in_channels,
        "out_channels": out_channels,
        "base_width": base_width,
        "patch": patch,
        "norm": norm,
    }
    expected = _expected_tensors(PatchDiscriminator, Pix2PixDiscriminatorConfig(**fields))
    name = "pixel" if pixel else f"{patch}x{patch} PatchGAN"
    _check_against(converted, expected, origin, f"{name} {what}")
    return fields, converted
