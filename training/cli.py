"""`python -m training <pix2pix|unetgan|pggan> --data PATH --out DIR [options]`.

The shared options come from `training.loop.RunOptions`, each family's own from its config
dataclass (field help in `metadata["help"]`), so `--help` always lists exactly what a run takes.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import sys
import typing
from pathlib import Path
from typing import Any

from core.families import FAMILIES as FAMILY_TABLE
from core.settings import Settings
from training.data import DatasetError
from training.families import FAMILIES
from training.loop import RunOptions, train
from training.state import StateError

COMMON_HELP = {
    "data": "dataset folder (pix2pix: train/ val/ with A|B images, or A/ and B/; "
    "unetgan/pggan: a folder of images, or one sub-folder per class)",
    "out": "run folder: options.json, stats.jsonl, tensorboard/, samples/, model/, training state",
    "image_size": "training resolution in pixels (pggan: the final resolution)",
    "batch_size": "mini-batch size (pggan: the schedule's per-resolution sizes apply)",
    "steps": "training iterations (pggan: the growth schedule sets the length; see --phase-images)",
    "seed": "random seed; runs on CPU with the same seed are identical",
    "device": "auto (CUDA when available), cpu, cuda or cuda:N",
    "resume": "continue the run in --out from its last checkpoint",
    "sample_every": "write a sample grid every N steps",
    "checkpoint_every": "write the model folder and the training state every N steps",
    "log_every": "append losses to stats.jsonl and TensorBoard every N steps",
    "sample_count": "images in each sample grid",
    "amp": "bf16 autocast on CUDA and on CPUs with native bf16 (AMX, AVX512-BF16); "
    "--no-amp: fp32 everywhere",
    "channels_last": "channels_last memory format on CUDA",
    "progress_bar": "show a progress bar with losses and ETA",
    "name": "run name recorded in the model's provenance (default: the --out folder's name)",
    "metrics_every": "compute metrics every N steps and at the end, stored in the model's "
    "config.json (pix2pix: L1/PSNR/SSIM on val; others: SWD, and FID/KID/IS with Inception "
    "weights); 0: off",
    "metrics_images": "images (or pairs) the metrics use",
    "inception_weights": "Inception weights for FID/KID/IS (default: $GANSERVE_INCEPTION_WEIGHTS)",
}


def _add_option(parser, name: str, hint: Any, default: Any, help_text: str) -> None:
    """One command-line option for one dataclass field, typed from its annotation."""
    flag = "--" + name.replace("_", "-")
    if hint is bool:
        parser.add_argument(
            flag, action=argparse.BooleanOptionalAction, default=default, help=help_text
        )
    elif typing.get_origin(hint) is typing.Literal:
        parser.add_argument(flag, choices=typing.get_args(hint), default=default, help=help_text)
    elif default is dataclasses.MISSING:
        parser.add_argument(
            flag, type=hint if hint in (int, float, str) else Path, required=True, help=help_text
        )
    else:
        parser.add_argument(
            flag, type=hint if hint in (int, float, str) else Path, default=default, help=help_text
        )


class _Refused(argparse.Action):
    """An option the family's own schedule sets: giving it is an error that says so."""

    def __call__(self, parser, namespace, values, option_string=None) -> None:
        parser.error(
            f"{option_string} is set by this family's growth schedule: use --phase-images for "
            "the run's length and --batch-sizes for its batch size per resolution"
        )


def _add_dataclass(
    parser, cls: type, helps: dict[str, str], defaults: dict[str, Any], skip: tuple[str, ...] = ()
) -> None:
    """Options for every field of `cls` but `skip`; `defaults` overrides the dataclass's."""
    hints = typing.get_type_hints(cls)
    for f in dataclasses.fields(cls):
        if f.name in skip:  # set by the family's own schedule: refused, not silently ignored
            parser.add_argument(
                "--" + f.name.replace("_", "-"),
                action=_Refused,
                default=argparse.SUPPRESS,
                help="refused: set by the growth schedule (--phase-images, --batch-sizes)",
            )
            continue
        help_text = helps.get(f.name) or f.metadata.get("help", "")
        _add_option(parser, f.name, hints[f.name], defaults.get(f.name, f.default), help_text)


def build_parser() -> argparse.ArgumentParser:
    """The parser with one sub-command per family."""
    parser = argparse.ArgumentParser(
        prog="python -m training",
        description="Train a pix2pix, U-Net GAN or Progressive GAN model into a model folder.",
    )
    subcommands = parser.add_subparsers(dest="family", required=True, metavar="FAMILY")
    for name, family in FAMILIES.items():
        sub = subcommands.add_parser(
            name,
            help=(family.__doc__ or "").strip().splitlines()[0],
            description=(family.__doc__ or "").strip(),
            formatter_class=argparse.ArgumentDefaultsHelpFormatter,
        )
        common = sub.add_argument_group("run options")
        row = FAMILY_TABLE[name]
        _add_dataclass(common, RunOptions, COMMON_HELP, row.paper_run, skip=row.schedule_sets)
        own = sub.add_argument_group(f"{name} options")
        _add_dataclass(own, family.config_class, {}, {})
    return parser


def _pick(cls: type, values: dict[str, Any]) -> Any:
    return cls(**{f.name: values[f.name] for f in dataclasses.fields(cls) if f.name in values})


def main(argv: list[str] | None = None) -> int:
    """Parse the command line, train, and say where the model is."""
    args = vars(build_parser().parse_args(argv))
    family = FAMILIES[args["family"]]
    if args["inception_weights"] is None:
        args["inception_weights"] = Settings().inception_weights  # GANSERVE_INCEPTION_WEIGHTS
    try:
        options = _pick(RunOptions, args)
        config = _pick(family.config_class, args)
        result = train(args["family"], options, config)
    except (DatasetError, StateError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if os.environ.get("RANK", "0") == "0":  # under torchrun, rank 0 speaks for the run
        print(f"{result.status} at step {result.step}/{result.total}; model: {result.model_dir}")
    return 0
