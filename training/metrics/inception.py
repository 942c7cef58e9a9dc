"""The Inception-v3 network of FID, KID and IS, with its weights read from a local file.

Inception-v3 (Szegedy et al. 2016, "Rethinking the Inception Architecture for Computer Vision")
in the variant that Heusel et al. 2017 used for FID: the TensorFlow graph
"pt_inception-2015-12-05", ported to PyTorch by pytorch-fid (`fid_inception_v3`) and torch-fidelity
(`FeatureExtractorInceptionV3`). It differs from the ImageNet Inception-v3 of torchvision in

- average pooling inside the Inception blocks that does not count the padding
  (`count_include_pad=False`: FIDInceptionA, FIDInceptionC and the first FIDInceptionE),
- max pooling in the pool branch of the last block (`Mixed_7c`, FIDInceptionE_2),
- a 1008-class logits head (`fc`: 2048 -> 1008), and no auxiliary classifier.

The 2048-d pool3 features feed FID and KID; the logits feed the Inception Score. The state-dict
keys are those of `pt_inception-2015-12-05-6726825d.pth`, the file pytorch-fid and torch-fidelity
download, so a user can point `GANSERVE_INCEPTION_WEIGHTS` at that file (or at a `.safetensors`
conversion of it). Nothing is ever downloaded here, and `.pth` files are read with
`torch.load(..., weights_only=True)`, which refuses to unpickle arbitrary objects.

Input: uint8 images (N, C, H, W) in [0, 255], C = 3 (RGB) or 1 (grey, repeated to 3). As in
pytorch-fid they are resized to 299x299 (bilinear, `align_corners=False`) and scaled to [-1, 1].
(torch-fidelity resizes with its own TF1-style bilinear kernel and scales by (x - 128) / 128, so
its features can differ very slightly from pytorch-fid's, whose preprocessing is followed here.)
"""

from __future__ import annotations

import pickle
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

STANDARD_WEIGHTS_NAME = "pt_inception-2015-12-05-6726825d.pth"
"""File name of the weights pytorch-fid and torch-fidelity use."""

INPUT_SIZE = 299
NUM_FEATURES = 2048
NUM_CLASSES = 1008

INCEPTION_WEIGHTS_ENV = "GANSERVE_INCEPTION_WEIGHTS"  # its name, for messages (core.settings)
UNAVAILABLE_MESSAGE = (
    f"FID, KID and IS need the Inception weights: set {INCEPTION_WEIGHTS_ENV} to the path of "
    f"{STANDARD_WEIGHTS_NAME} (the file pytorch-fid and torch-fidelity use) or a .safetensors "
    "conversion of it; nothing is downloaded"
)

_TORCH_SUFFIXES = (".pth", ".pt", ".bin")
_SAFETENSORS_SUFFIX = ".safetensors"
_NUM_BATCHES_TRACKED = "num_batches_tracked"


class InceptionUnavailable(RuntimeError):
    """The Inception weights are not configured, missing, unreadable or of the wrong network."""


class BasicConv2d(nn.Module):
    """Convolution without bias, batch norm (eps 0.001), ReLU: the unit every layer is built of."""

    def __init__(self, in_channels: int, out_channels: int, **conv_kwargs: Any) -> None:
        super().__init__()
        self.conv = nn.Conv2d(in_channels, out_channels, bias=False, **conv_kwargs)
        self.bn = nn.BatchNorm2d(out_channels, eps=0.001)

    def forward(self, x: Tensor) -> Tensor:
        return F.relu(self.bn(self.conv(x)), inplace=True)


def _avg_pool_3x3(x: Tensor) -> Tensor:
    """The FID blocks' pooling branch: 3x3 stride-1 average that ignores the zero padding."""
    return F.avg_pool2d(x, kernel_size=3, stride=1, padding=1, count_include_pad=False)


class FIDInceptionA(nn.Module):
    """35x35 block (Mixed_5b/c/d): 1x1, 5x5, double 3x3 and pool branches."""

    def __init__(self, in_channels: int, pool_features: int) -> None:
        super().__init__()
        self.branch1x1 = BasicConv2d(in_channels, 64, kernel_size=1)
        self.branch5x5_1 = BasicConv2d(in_channels, 48, kernel_size=1)
        self.branch5x5_2 = BasicConv2d(48, 64, kernel_size=5, padding=2)
        self.branch3x3dbl_1 = BasicConv2d(in_channels, 64, kernel_size=1)
        self.branch3x3dbl_2 = BasicConv2d(64, 96, kernel_size=3, padding=1)
        self.branch3x3dbl_3 = BasicConv2d(96, 96, kernel_size=3, padding=1)
        self.branch_pool = BasicConv2d(in_channels, pool_features, kernel_size=1)

    def forward(self, x: Tensor) -> Tensor:
        branch1x1 = self.branch1x1(x)
        branch5x5 = self.branch5x5_2(self.branch5x5_1(x))
        branch3x3dbl = self.branch3x3dbl_3(self.branch3x3dbl_2(self.branch3x3dbl_1(x)))
        branch_pool = self.branch_pool(_avg_pool_3x3(x))
        return torch.cat([branch1x1, branch5x5, branch3x3dbl, branch_pool], 1)


class InceptionB(nn.Module):
    """Grid reduction 35x35 -> 17x17 (Mixed_6a)."""

    def __init__(self, in_channels: int) -> None:
        super().__init__()
        self.branch3x3 = BasicConv2d(in_channels, 384, kernel_size=3, stride=2)
        self.branch3x3dbl_1 = BasicConv2d(in_channels, 64, kernel_size=1)
        self.branch3x3dbl_2 = BasicConv2d(64, 96, kernel_size=3, padding=1)
        self.branch3x3dbl_3 = BasicConv2d(96, 96, kernel_size=3, stride=2)

    def forward(self, x: Tensor) -> Tensor:
        branch3x3 = self.branch3x3(x)
        branch3x3dbl = self.branch3x3dbl_3(self.branch3x3dbl_2(self.branch3x3dbl_1(x)))
        branch_pool = F.max_pool2d(x, kernel_size=3, stride=2)
        return torch.cat([branch3x3, branch3x3dbl, branch_pool], 1)


class FIDInceptionC(nn.Module):
    """17x17 block with factorised 7x7 convolutions (Mixed_6b/c/d/e)."""

    def __init__(self, in_channels: int, channels_7x7: int) -> None:
        super().__init__()
        c7 = channels_7x7
        self.branch1x1 = BasicConv2d(in_channels, 192, kernel_size=1)
        self.branch7x7_1 = BasicConv2d(in_channels, c7, kernel_size=1)
        self.branch7x7_2 = BasicConv2d(c7, c7, kernel_size=(1, 7), padding=(0, 3))
        self.branch7x7_3 = BasicConv2d(c7, 192, kernel_size=(7, 1), padding=(3, 0))
        self.branch7x7dbl_1 = BasicConv2d(in_channels, c7, kernel_size=1)
        self.branch7x7dbl_2 = BasicConv2d(c7, c7, kernel_size=(7, 1), padding=(3, 0))
        self.branch7x7dbl_3 = BasicConv2d(c7, c7, kernel_size=(1, 7), padding=(0, 3))
        self.branch7x7dbl_4 = BasicConv2d(c7, c7, kernel_size=(7, 1), padding=(3, 0))
        self.branch7x7dbl_5 = BasicConv2d(c7, 192, kernel_size=(1, 7), padding=(0, 3))
        self.branch_pool = BasicConv2d(in_channels, 192, kernel_size=1)

    def forward(self, x: Tensor) -> Tensor:
        branch1x1 = self.branch1x1(x)
        branch7x7 = self.branch7x7_3(self.branch7x7_2(self.branch7x7_1(x)))
        branch7x7dbl = self.branch7x7dbl_1(x)
        branch7x7dbl = self.branch7x7dbl_3(self.branch7x7dbl_2(branch7x7dbl))
        branch7x7dbl = self.branch7x7dbl_5(self.branch7x7dbl_4(branch7x7dbl))
        branch_pool = self.branch_pool(_avg_pool_3x3(x))
        return torch.cat([branch1x1, branch7x7, branch7x7dbl, branch_pool], 1)


class InceptionD(nn.Module):
    """Grid reduction 17x17 -> 8x8 (Mixed_7a)."""

    def __init__(self, in_channels: int) -> None:
        super().__init__()
        self.branch3x3_1 = BasicConv2d(in_channels, 192, kernel_size=1)
        self.branch3x3_2 = BasicConv2d(192, 320, kernel_size=3, stride=2)
        self.branch7x7x3_1 = BasicConv2d(in_channels, 192, kernel_size=1)
        self.branch7x7x3_2 = BasicConv2d(192, 192, kernel_size=(1, 7), padding=(0, 3))
        self.branch7x7x3_3 = BasicConv2d(192, 192, kernel_size=(7, 1), padding=(3, 0))
        self.branch7x7x3_4 = BasicConv2d(192, 192, kernel_size=3, stride=2)

    def forward(self, x: Tensor) -> Tensor:
        branch3x3 = self.branch3x3_2(self.branch3x3_1(x))
        branch7x7x3 = self.branch7x7x3_1(x)
        branch7x7x3 = self.branch7x7x3_4(self.branch7x7x3_3(self.branch7x7x3_2(branch7x7x3)))
        branch_pool = F.max_pool2d(x, kernel_size=3, stride=2)
        return torch.cat([branch3x3, branch7x7x3, branch_pool], 1)


class FIDInceptionE(nn.Module):
    """8x8 block with expanded filter banks (Mixed_7b: average pool; Mixed_7c: max pool)."""

    def __init__(self, in_channels: int, *, max_pool: bool) -> None:
        super().__init__()
        self.max_pool = max_pool
        self.branch1x1 = BasicConv2d(in_channels, 320, kernel_size=1)
        self.branch3x3_1 = BasicConv2d(in_channels, 384, kernel_size=1)
        self.branch3x3_2a = BasicConv2d(384, 384, kernel_size=(1, 3), padding=(0, 1))
        self.branch3x3_2b = BasicConv2d(384, 384, kernel_size=(3, 1), padding=(1, 0))
        self.branch3x3dbl_1 = BasicConv2d(in_channels, 448, kernel_size=1)
        self.branch3x3dbl_2 = BasicConv2d(448, 384, kernel_size=3, padding=1)
        self.branch3x3dbl_3a = BasicConv2d(384, 384, kernel_size=(1, 3), padding=(0, 1))
        self.branch3x3dbl_3b = BasicConv2d(384, 384, kernel_size=(3, 1), padding=(1, 0))
        self.branch_pool = BasicConv2d(in_channels, 192, kernel_size=1)

    def forward(self, x: Tensor) -> Tensor:
        branch1x1 = self.branch1x1(x)
        branch3x3 = self.branch3x3_1(x)
        branch3x3 = torch.cat([self.branch3x3_2a(branch3x3), self.branch3x3_2b(branch3x3)], 1)
        branch3x3dbl = self.branch3x3dbl_2(self.branch3x3dbl_1(x))
        branch3x3dbl = torch.cat(
            [self.branch3x3dbl_3a(branch3x3dbl), self.branch3x3dbl_3b(branch3x3dbl)], 1
        )
        if self.max_pool:  # FIDInceptionE_2: the TF graph has a max pool here, a known quirk
            pooled = F.max_pool2d(x, kernel_size=3, stride=1, padding=1)
        else:
            pooled = _avg_pool_3x3(x)
        branch_pool = self.branch_pool(pooled)
        return torch.cat([branch1x1, branch3x3, branch3x3dbl, branch_pool], 1)


class FIDInception(nn.Module):
    """Inception-v3 as used for FID: uint8 images -> 2048-d pool3 features and 1008 logits.

    Built randomly initialised and in eval mode; `load_inception` fills in the real weights.
    `forward(x)` returns the features and `num_features` is 2048, so the module itself can be
    given to torchmetrics' `FrechetInceptionDistance(feature=...)` / `KernelInceptionDistance`.
    """

    num_features: int = NUM_FEATURES

    def __init__(self) -> None:
        super().__init__()
        self.Conv2d_1a_3x3 = BasicConv2d(3, 32, kernel_size=3, stride=2)
        self.Conv2d_2a_3x3 = BasicConv2d(32, 32, kernel_size=3)
        self.Conv2d_2b_3x3 = BasicConv2d(32, 64, kernel_size=3, padding=1)
        self.Conv2d_3b_1x1 = BasicConv2d(64, 80, kernel_size=1)
        self.Conv2d_4a_3x3 = BasicConv2d(80, 192, kernel_size=3)
        self.Mixed_5b = FIDInceptionA(192, pool_features=32)
        self.Mixed_5c = FIDInceptionA(256, pool_features=64)
        self.Mixed_5d = FIDInceptionA(288, pool_features=64)
        self.Mixed_6a = InceptionB(288)
        self.Mixed_6b = FIDInceptionC(768, channels_7x7=128)
        self.Mixed_6c = FIDInceptionC(768, channels_7x7=160)
        self.Mixed_6d = FIDInceptionC(768, channels_7x7=160)
        self.Mixed_6e = FIDInceptionC(768, channels_7x7=192)
        self.Mixed_7a = InceptionD(768)
        self.Mixed_7b = FIDInceptionE(1280, max_pool=False)
        self.Mixed_7c = FIDInceptionE(2048, max_pool=True)
        self.fc = nn.Linear(NUM_FEATURES, NUM_CLASSES)
        self.eval()
        self.requires_grad_(False)

    def train(self, mode: bool = True) -> FIDInception:
        """Always stays in eval mode: the batch-norm statistics are part of the metric."""
        return super().train(False)

    @staticmethod
    def preprocess(images: Tensor) -> Tensor:
        """uint8 (N, C, H, W) in [0, 255], C in {1, 3} -> float (N, 3, 299, 299) in [-1, 1]."""
        if not isinstance(images, Tensor) or images.dtype != torch.uint8:
            got = images.dtype if isinstance(images, Tensor) else type(images).__name__
            raise TypeError(f"Inception expects uint8 image tensors in [0, 255], got {got}")
        if images.dim() != 4 or images.shape[1] not in (1, 3):
            raise ValueError(
                f"Inception expects images shaped (N, 3, H, W) or (N, 1, H, W), got "
                f"{tuple(images.shape)}"
            )
        x = images.float() / 255.0
        if x.shape[1] == 1:
            x = x.expand(-1, 3, -1, -1)
        if x.shape[-2:] != (INPUT_SIZE, INPUT_SIZE):
            x = F.interpolate(
                x, size=(INPUT_SIZE, INPUT_SIZE), mode="bilinear", align_corners=False
            )
        return 2.0 * x - 1.0

    def _pool3(self, x: Tensor) -> Tensor:
        """Preprocessed input -> (N, 2048) pool3 features."""
        x = self.Conv2d_1a_3x3(x)  # 149 x 149 x 32
        x = self.Conv2d_2a_3x3(x)  # 147 x 147 x 32
        x = self.Conv2d_2b_3x3(x)  # 147 x 147 x 64
        x = F.max_pool2d(x, kernel_size=3, stride=2)  # 73 x 73 x 64
        x = self.Conv2d_3b_1x1(x)  # 73 x 73 x 80
        x = self.Conv2d_4a_3x3(x)  # 71 x 71 x 192
        x = F.max_pool2d(x, kernel_size=3, stride=2)  # 35 x 35 x 192
        x = self.Mixed_5b(x)
        x = self.Mixed_5c(x)
        x = self.Mixed_5d(x)  # 35 x 35 x 288
        x = self.Mixed_6a(x)  # 17 x 17 x 768
        x = self.Mixed_6b(x)
        x = self.Mixed_6c(x)
        x = self.Mixed_6d(x)
        x = self.Mixed_6e(x)  # 17 x 17 x 768
        x = self.Mixed_7a(x)  # 8 x 8 x 1280
        x = self.Mixed_7b(x)
        x = self.Mixed_7c(x)  # 8 x 8 x 2048
        return torch.flatten(F.adaptive_avg_pool2d(x, 1), 1)

    def _head(self, features: Tensor, *, unbiased: bool) -> Tensor:
        if unbiased:  # torch-fidelity's "logits_unbiased", the default input of its IS
            return features @ self.fc.weight.T
        return self.fc(features)

    @torch.no_grad()
    def features(self, images: Tensor) -> Tensor:
        """uint8 images (N, C, H, W) -> (N, 2048) pool3 features (FID, KID)."""
        return self._pool3(self.preprocess(images.to(self.fc.weight.device)))

    @torch.no_grad()
    def features_and_logits(
        self, images: Tensor, *, unbiased: bool = False
    ) -> tuple[Tensor, Tensor]:
        """Both outputs from a single pass through the network."""
        features = self.features(images)
        return features, self._head(features, unbiased=unbiased)

    def forward(self, images: Tensor) -> Tensor:
        """The pool3 features, so that torchmetrics can use this module as `feature`."""
        return self.features(images)


def _read_state_dict(path: Path) -> dict[str, Tensor]:
    """Tensors of a `.safetensors` or a plain `.pth`/`.pt` state dict, never unpickling objects."""
    suffix = path.suffix.lower()
    try:
        if suffix == _SAFETENSORS_SUFFIX:
            from safetensors.torch import load_file

            return load_file(str(path), device="cpu")
        if suffix in _TORCH_SUFFIXES:
            loaded = torch.load(path, map_location="cpu", weights_only=True)
        else:
            raise InceptionUnavailable(
                f"{path}: unsupported weights file type {suffix!r} (use {_SAFETENSORS_SUFFIX} or "
                f"{', '.join(_TORCH_SUFFIXES)}). {UNAVAILABLE_MESSAGE}"
            )
    except InceptionUnavailable:
        raise
    except (pickle.UnpicklingError, RuntimeError, ValueError, OSError, EOFError) as err:
        first_line = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise InceptionUnavailable(
            f"{path}: cannot read Inception weights ({type(err).__name__}: {first_line}); "
            ".pth files are loaded with weights_only=True and must hold a plain state dict of "
            f"tensors. {UNAVAILABLE_MESSAGE}"
        ) from err
    if not isinstance(loaded, dict) or not all(
        isinstance(k, str) and isinstance(v, Tensor) for k, v in loaded.items()
    ):
        raise InceptionUnavailable(
            f"{path}: expected a state dict (str -> tensor), got {type(loaded).__name__}. "
            f"{UNAVAILABLE_MESSAGE}"
        )
    return dict(loaded)


def _describe(keys: list[str], limit: int = 5) -> str:
    shown = ", ".join(keys[:limit])
    return shown + (f", ... ({len(keys)} in all)" if len(keys) > limit else "")


def check_state_dict(model: nn.Module, state: dict[str, Tensor], source: str) -> None:
    """Raise `InceptionUnavailable` naming missing, unexpected or mis-shaped keys.

    `num_batches_tracked` buffers are optional (the TF port may lack them).
    """
    expected = {k: v.shape for k, v in model.state_dict().items()}
    missing = [k for k in expected if k not in state and not k.endswith(_NUM_BATCHES_TRACKED)]
    unexpected = [k for k in state if k not in expected]
    wrong_shape = [
        f"{k} {tuple(state[k].shape)} != {tuple(shape)}"
        for k, shape in expected.items()
        if k in state and state[k].shape != shape
    ]
    problems = []
    if missing:
        problems.append(f"missing keys: {_describe(missing)}")
    if unexpected:
        problems.append(f"unexpected keys: {_describe(unexpected)}")
    if wrong_shape:
        problems.append(f"wrong shapes: {_describe(wrong_shape)}")
    if problems:
        raise InceptionUnavailable(
            f"{source} is not the FID Inception network ({STANDARD_WEIGHTS_NAME}): "
            f"{'; '.join(problems)}. {UNAVAILABLE_MESSAGE}"
        )


def load_inception(path: Path | str | None, device: torch.device | str = "cpu") -> FIDInception:
    """The FID Inception network with the weights in `path`, in eval mode on `device`.

    `path` is a `.safetensors` file or a plain `.pth`/`.pt` state dict (loaded with
    `weights_only=True`) holding the keys of `pt_inception-2015-12-05-6726825d.pth`. Raises
    `InceptionUnavailable`, whose message says how to provide the file, when `path` is None or
    does not exist, cannot be read safely, or holds another network.
    """
    if path is None or str(path).strip() == "":
        raise InceptionUnavailable(f"no Inception weights configured. {UNAVAILABLE_MESSAGE}")
    path = Path(path).expanduser()
    if not path.is_file():
        raise InceptionUnavailable(f"{path} does not exist. {UNAVAILABLE_MESSAGE}")
    state = _read_state_dict(path)
    model = FIDInception()
    check_state_dict(model, state, str(path))
    own = model.state_dict()
    for key, value in own.items():  # optional BN counters keep their defaults
        if key.endswith(_NUM_BATCHES_TRACKED) and key not in state:
            state[key] = value
    model.load_state_dict(state, strict=True)
    return model.to(device).eval()
