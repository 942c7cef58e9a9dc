"""Importing checkpoints of the pix2pix reference (junyanz/pytorch-CycleGAN-and-pix2pix).

The reference networks are rebuilt in `tests.models.pix2pix.reference_nets` with the reference's
module names, saved the way the reference saves them (`torch.save(net.state_dict(),
"latest_net_G.pth")`), read back, converted, and run against ganserve's networks on the same input.
"""

from __future__ import annotations

import builtins
import pathlib
import pickle
import re

import pytest
import torch
from torch import nn

from models.pix2pix.networks import (
    PatchDiscriminator,
    Pix2PixDiscriminatorConfig,
    Pix2PixGenerator,
    Pix2PixGeneratorConfig,
)
from models.pix2pix.reference import (
    ReferenceCheckpointError,
    UnsafeCheckpoint,
    convert_discriminator,
    convert_generator,
    read_state_dict,
)
from tests.models.pix2pix.reference_nets import (
    NLayerDiscriminator,
    PixelDiscriminator,
    UnetGenerator,
    randomize_batch_norm_stats,
)

TIGHT = {"rtol": 1e-5, "atol": 1e-6}


def n_params(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


def reference_generator(num_downs, norm, in_nc=3, out_nc=3, ngf=8, use_dropout=True, seed=0):
    torch.manual_seed(seed)
    ref = UnetGenerator(in_nc, out_nc, num_downs, ngf, norm=norm, use_dropout=use_dropout)
    randomize_batch_norm_stats(ref, torch.Generator().manual_seed(seed + 1))
    return ref


def save_and_import_generator(ref: nn.Module, tmp_path: pathlib.Path, **overrides):
    path = tmp_path / "latest_net_G.pth"
    torch.save(ref.state_dict(), path)
    fields, state = convert_generator(read_state_dict(path))
    ours = Pix2PixGenerator(Pix2PixGeneratorConfig(**{**fields, **overrides}))
    ours.load_state_dict(state, strict=True)
    return fields, ours


def _extra_first_bias(ours: nn.Module, ref: nn.Module) -> bool:
    """Whether ours has an outermost down-conv bias where the reference has none (batch norm)."""
    return "model.down.0.bias" in ours.state_dict() and "model.model.0.bias" not in ref.state_dict()


# ------------------------------------------------------------------------------ generator


@pytest.mark.parametrize(
    ("num_downs", "norm", "in_nc", "out_nc"),
    [(8, "batch", 3, 3), (8, "instance", 1, 3), (7, "batch", 3, 2), (7, "instance", 3, 3)],
    ids=["unet_256-batch", "unet_256-instance", "unet_128-batch", "unet_128-instance"],
)
def test_generator_computes_the_reference_function_in_eval_mode(
    tmp_path, num_downs, norm, in_nc, out_nc
):
    ref = reference_generator(num_downs, norm, in_nc, out_nc).eval()
    fields, ours = save_and_import_generator(ref, tmp_path)
    size = 2**num_downs
    assert fields == {
        "image_size": size,
        "in_channels": in_nc,
        "out_channels": out_nc,
        "base_width": 8,
        "norm": norm,
        "dropout": 0.5,
        "dropout_blocks": num_downs - 5,
        "dropout_skip": 1,
    }
    assert n_params(ours) - n_params(ref) == 8 * _extra_first_bias(ours, ref)
    ours.eval()
    x = torch.rand(2, in_nc, size, size, generator=torch.Generator().manual_seed(7)) * 2 - 1
    with torch.no_grad():
        expected = ref(x)
        got = ours(x)
    assert got.shape == (2, out_nc, size, size)
    torch.testing.assert_close(got, expected, **TIGHT)


def _dropout_widths(net: nn.Module) -> list[tuple[int, int]]:
    """(decoder block's output channels, index among dropout layers) in module order: where the
    dropout layers sit, comparable across the two layouts."""
    found, last_channels = [], None
    for module in net.modules():
        if isinstance(module, nn.ConvTranspose2d):
            last_channels = module.out_channels
        if isinstance(module, nn.Dropout) and module.p > 0:
            found.append(last_channels)
    return sorted(found)


@pytest.mark.parametrize("num_downs", [7, 8])
def test_imported_dropout_sits_where_the_reference_trained_it(tmp_path, num_downs):
    ref = reference_generator(num_downs, "batch", ngf=8)
    _, ours = save_and_import_generator(ref, tmp_path)
    depth_of = {}  # each U-Net level's decoder output channels, innermost first
    block = ours.model
    while hasattr(block, "inner"):
        depth_of[id(block)] = block
        block = block.inner
    levels = []
    for level, unet_block in enumerate(reversed(list(depth_of.values()))):
        if any(isinstance(m, nn.Dropout) and m.p > 0 for m in unet_block.up):
            levels.append(level)
    assert levels == list(range(1, num_downs - 4))  # the blocks just outside the innermost
    assert len(_dropout_widths(ours)) == len(_dropout_widths(ref)) == num_downs - 5


@pytest.mark.parametrize("norm", ["batch", "instance"])
def test_generator_matches_in_train_mode_without_dropout(tmp_path, norm):
    # Train mode: batch norm normalises with the batch's statistics and updates its running ones.
    ref = reference_generator(7, norm, use_dropout=False).train()
    _, ours = save_and_import_generator(ref, tmp_path, dropout=0.0)
    ours.train()
    x = torch.rand(3, 3, 128, 128, generator=torch.Generator().manual_seed(3)) * 2 - 1
    with torch.no_grad():
        expected = ref(x)
        got = ours(x)
    torch.testing.assert_close(got, expected, **TIGHT)
    # The running statistics moved the same way: converting the reference again gives ours.
    _, after = convert_generator(ref.state_dict())
    mine = ours.state_dict()
    for key, tensor in after.items():
        torch.testing.assert_close(mine[key], tensor, **TIGHT, msg=key)


@pytest.mark.parametrize("norm", ["batch", "instance"])
def test_full_size_unet_256_converts_and_counts_match(norm):
    # ngf=64 unet_256 on the meta device: every key and shape of the real thing, no memory.
    with torch.device("meta"):
        ref = UnetGenerator(3, 3, 8, 64, norm=norm, use_dropout=True)
        fields, state = convert_generator(ref.state_dict())
        ours = Pix2PixGenerator(Pix2PixGeneratorConfig(**fields))
    ours.load_state_dict(state, strict=True)
    assert fields["image_size"] == 256 and fields["base_width"] == 64
    # Identical parameter counts (54.414 M with batch norm), except where ganserve gives the
    # outermost down-convolution a bias that the reference's lacks: 64 extra numbers.
    assert n_params(ours) == n_params(ref) + 64 * _extra_first_bias(ours, ref)
    if norm == "batch":
        assert n_params(ref) == 54_413_955


def test_data_parallel_file_and_wrapped_state_dict_convert(tmp_path):
    ref = reference_generator(7, "instance", ngf=4).eval()
    path = tmp_path / "latest_net_G.pth"
    torch.save(nn.DataParallel(ref).state_dict(), path)  # keys start with "module."
    assert all(k.startswith("module.") for k in torch.load(path, weights_only=True))
    fields, state = convert_generator(read_state_dict(path))
    ours = Pix2PixGenerator(Pix2PixGeneratorConfig(**fields)).eval()
    ours.load_state_dict(state, strict=True)
    x = torch.rand(1, 3, 128, 128) * 2 - 1
    with torch.no_grad():
        torch.testing.assert_close(ours(x), ref(x), **TIGHT)

    torch.save({"epoch": 200, "state_dict": ref.state_dict()}, path)
    assert read_state_dict(path).keys() == ref.state_dict().keys()


def test_stale_instance_norm_statistics_are_dropped(tmp_path):
    # Files from older reference code (instance norm with track_running_stats=True) carry them.
    ref = reference_generator(7, "instance", ngf=4).eval()
    state = ref.state_dict()
    stale = 0
    for name, module in ref.named_modules():
        if isinstance(module, nn.InstanceNorm2d):
            c = module.num_features
            state[f"{name}.running_mean"] = torch.randn(c)
            state[f"{name}.running_var"] = torch.rand(c) + 0.5
            state[f"{name}.num_batches_tracked"] = torch.tensor(10)
            stale += 3
    assert stale > 0
    torch.save(state, tmp_path / "latest_net_G.pth")
    fields, converted = convert_generator(read_state_dict(tmp_path / "latest_net_G.pth"))
    assert fields["norm"] == "instance"
    ours = Pix2PixGenerator(Pix2PixGeneratorConfig(**fields)).eval()
    ours.load_state_dict(converted, strict=True)
    x = torch.rand(1, 3, 128, 128) * 2 - 1
    with torch.no_grad():
        torch.testing.assert_close(ours(x), ref(x), **TIGHT)


def test_batch_norm_file_without_num_batches_tracked_converts():
    ref = reference_generator(7, "batch", ngf=4)
    state = {k: v for k, v in ref.state_dict().items() if not k.endswith("num_batches_tracked")}
    fields, converted = convert_generator(state)
    Pix2PixGenerator(Pix2PixGeneratorConfig(**fields)).load_state_dict(converted, strict=True)


def _resnet_state(n_blocks: int, ngf: int = 4) -> dict[str, torch.Tensor]:
    """Keys and shapes of the reference's ResnetGenerator (batch norm)."""
    state = {"model.1.weight": torch.zeros(ngf, 3, 7, 7), "model.2.weight": torch.ones(ngf)}
    state["model.4.weight"] = torch.zeros(2 * ngf, ngf, 3, 3)
    state["model.7.weight"] = torch.zeros(4 * ngf, 2 * ngf, 3, 3)
    for i in range(10, 10 + n_blocks):
        for j in (1, 5):
            state[f"model.{i}.conv_block.{j}.weight"] = torch.zeros(4 * ngf, 4 * ngf, 3, 3)
            state[f"model.{i}.conv_block.{j + 1}.weight"] = torch.ones(4 * ngf)
    state[f"model.{10 + n_blocks + 8}.weight"] = torch.zeros(3, ngf, 7, 7)
    return state


@pytest.mark.parametrize("n_blocks", [9, 6])
def test_resnet_generator_is_refused_by_name(tmp_path, n_blocks):
    torch.save(_resnet_state(n_blocks), tmp_path / "latest_net_G.pth")
    state = read_state_dict(tmp_path / "latest_net_G.pth")
    with pytest.raises(ReferenceCheckpointError, match=rf"resnet_{n_blocks}blocks.*unet_256"):
        convert_generator(state)


def test_generator_with_unknown_missing_or_misshapen_tensors_is_refused():
    good = reference_generator(7, "batch", ngf=4).state_dict()
    extra = {**good, "model.model.1.model.9.weight": torch.zeros(3)}
    with pytest.raises(ReferenceCheckpointError, match=r"model\.model\.1\.model\.9\.weight"):
        convert_generator(extra)
    missing = {k: v for k, v in good.items() if k != "model.model.1.model.6.bias"}
    with pytest.raises(ReferenceCheckpointError, match=r"missing tensor for our model\.inner"):
        convert_generator(missing)
    no_up = {k: v for k, v in good.items() if k != "model.model.3.weight"}
    with pytest.raises(ReferenceCheckpointError, match=r"model\.model\.3\.weight"):
        convert_generator(no_up)
    key = "model.model.1.model.3.model.1.weight"
    bent = {**good, key: torch.zeros(5, 8, 4, 4)}
    with pytest.raises(ReferenceCheckpointError, match=re.escape(key) + r" has shape"):
        convert_generator(bent)


def test_discriminator_passed_as_generator_and_back_is_refused():
    d = NLayerDiscriminator(6, 4).state_dict()
    with pytest.raises(ReferenceCheckpointError, match="discriminator"):
        convert_generator(d)
    g = reference_generator(7, "batch", ngf=4).state_dict()
    with pytest.raises(ReferenceCheckpointError, match="generator"):
        convert_discriminator(g, {"in_channels": 3, "out_channels": 3})


# ------------------------------------------------------------------------------ discriminator


@pytest.mark.parametrize(
    ("kind", "n_layers", "norm", "patch"),
    [
        ("basic", 3, "batch", 70),
        ("basic", 3, "instance", 70),
        ("n_layers", 1, "batch", 16),
        ("n_layers", 5, "instance", 286),
        ("pixel", None, "batch", 1),
        ("pixel", None, "instance", 1),
    ],
)
def test_discriminator_computes_the_reference_function(tmp_path, kind, n_layers, norm, patch):
    in_nc, out_nc = 1, 3
    torch.manual_seed(0)
    if kind == "pixel":
        ref = PixelDiscriminator(in_nc + out_nc, 8, norm=norm)
    else:
        ref = NLayerDiscriminator(in_nc + out_nc, 8, n_layers, norm=norm)
    randomize_batch_norm_stats(ref, torch.Generator().manual_seed(1))
    ref.eval()
    path = tmp_path / "latest_net_D.pth"
    torch.save(ref.state_dict(), path)
    generator_fields = {"in_channels": in_nc, "out_channels": out_nc}
    fields, state = convert_discriminator(read_state_dict(path), generator_fields)
    assert fields == {
        "in_channels": in_nc,
        "out_channels": out_nc,
        "base_width": 8,
        "patch": patch,
        "norm": norm,
    }
    ours = PatchDiscriminator(Pix2PixDiscriminatorConfig(**fields))
    ours.load_state_dict(state, strict=True)
    assert n_params(ours) == n_params(ref)
    ours.eval()
    g = torch.Generator().manual_seed(5)
    condition = torch.rand(2, in_nc, 128, 128, generator=g) * 2 - 1
    image = torch.rand(2, out_nc, 128, 128, generator=g) * 2 - 1
    with torch.no_grad():
        expected = ref(torch.cat([condition, image], 1))
        got = ours(condition, image)
    torch.testing.assert_close(got, expected, **TIGHT)


def test_discriminator_pairs_with_an_imported_generator(tmp_path):
    ref_g = reference_generator(7, "batch", ngf=4)
    g_fields, _ = save_and_import_generator(ref_g, tmp_path)
    ref_d = NLayerDiscriminator(6, 4)
    fields, state = convert_discriminator(ref_d.state_dict(), g_fields)
    PatchDiscriminator(Pix2PixDiscriminatorConfig(**fields)).load_state_dict(state, strict=True)


def test_discriminator_whose_input_does_not_fit_the_generator_is_refused():
    g_fields = {"in_channels": 3, "out_channels": 3}
    with pytest.raises(ReferenceCheckpointError, match=r"takes 3 input channels.*3 \+ 3 = 6"):
        convert_discriminator(NLayerDiscriminator(3, 4).state_dict(), g_fields)  # CycleGAN's D
    with pytest.raises(ReferenceCheckpointError, match=r"takes 4 input channels"):
        convert_discriminator(PixelDiscriminator(4, 4).state_dict(), g_fields)


@pytest.mark.parametrize("n_layers", [2, 4])
def test_unsupported_patch_sizes_are_refused_by_name(n_layers):
    state = NLayerDiscriminator(6, 4, n_layers).state_dict()
    with pytest.raises(ReferenceCheckpointError, match=rf"n_layers={n_layers}.*1 \(16x16\)"):
        convert_discriminator(state, {"in_channels": 3, "out_channels": 3})


# ------------------------------------------------------------------------------ reading files


def test_truncated_or_foreign_files_are_unreadable_not_unsafe(tmp_path):
    path = tmp_path / "latest_net_G.pth"
    torch.save(reference_generator(7, "batch", ngf=4).state_dict(), path)
    data = path.read_bytes()
    cases = {
        "truncated.pth": data[: len(data) // 2],
        "empty.pth": b"",
        "photo.pth": b"\xff\xd8\xff\xe0" + bytes(200),  # a JPEG renamed
    }
    for name, content in cases.items():
        (tmp_path / name).write_bytes(content)
        with pytest.raises(ReferenceCheckpointError, match="not a readable PyTorch") as info:
            read_state_dict(tmp_path / name)
        assert not isinstance(info.value, UnsafeCheckpoint), name
    with pytest.raises(ReferenceCheckpointError, match="does not exist"):
        read_state_dict(tmp_path / "missing.pth")


def test_files_that_hold_no_tensors_are_refused(tmp_path):
    torch.save({"model.model.0.weight": torch.zeros(1), "epoch": 3}, tmp_path / "a.pth")
    with pytest.raises(ReferenceCheckpointError, match=r"'epoch' \(int\)"):
        read_state_dict(tmp_path / "a.pth")
    torch.save([torch.zeros(1)], tmp_path / "b.pth")
    with pytest.raises(ReferenceCheckpointError, match="holds a list"):
        read_state_dict(tmp_path / "b.pth")


class WriteFileOnLoad:
    """A pickle payload: unpickling it calls Path.write_text(target, "x")."""

    def __init__(self, target: pathlib.Path) -> None:
        self.target = target

    def __reduce__(self):
        return (pathlib.Path.write_text, (self.target, "x"))


class ExecOnLoad:
    """A pickle payload: unpickling it runs Python source through exec()."""

    def __init__(self, target: pathlib.Path) -> None:
        self.target = target

    def __reduce__(self):
        return (builtins.exec, (f"open({str(self.target)!r}, 'w').write('x')",))


def test_the_payloads_do_run_under_an_unrestricted_unpickler(tmp_path):
    # The check below would be empty if these payloads did nothing: show that they work.
    for i, payload in enumerate([WriteFileOnLoad, ExecOnLoad]):
        target = tmp_path / f"control{i}"
        pickle.loads(pickle.dumps({"w": payload(target)}))
        assert target.read_text() == "x"


@pytest.mark.parametrize("payload", [WriteFileOnLoad, ExecOnLoad])
@pytest.mark.parametrize("writer", ["torch.save", "pickle.dump"])
def test_malicious_pickle_is_refused_without_running_it(tmp_path, payload, writer):
    target = tmp_path / "pwned"
    path = tmp_path / "latest_net_G.pth"
    state = {"model.model.0.weight": torch.zeros(2, 3, 4, 4), "model.model.0.bias": payload(target)}
    if writer == "torch.save":
        torch.save(state, path)
    else:
        with path.open("wb") as f:
            pickle.dump(state, f, protocol=2)
    with pytest.raises(UnsafeCheckpoint, match="refusing latest_net_G.pth") as info:
        read_state_dict(path)
    assert not target.exists()
    assert (
        "write_text" in str(info.value) or "exec" in str(info.value) or "getattr" in str(info.value)
    )
