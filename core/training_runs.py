"""A training run's `config` checked once, by the rules both the gateway and the worker apply.

`check_config(family, config, kind)` merges the family's service defaults (`core.families`) with
the job's `config` and validates the result: every key a run option (`RunConfig`) or one of the
family's hyperparameters, of the right type and within bounds, an image size the family's
networks are built for, and no run option the family's own schedule sets (a Progressive GAN's
growth schedule sets its length and batch sizes: `steps` and `batch_size` are refused with a
message pointing at `phase_images` and `batch_sizes`). A U-Net GAN trained on a flat image set
trains unconditionally. The gateway answers a bad config with 422 naming the field; the worker
fails the job `invalid_config` with the same message. Torch-free.

`RunConfig` is the one definition of the run options every run shares, over the API and on the
command line: their defaults, bounds and help (the API's wording in each field's `description`,
the training CLI's where it differs in `CLI_WORDING`: `cli_help`). `training.loop.RunOptions`
declares the same fields (beside those only a local run has: data, out, device, resume...) with
their defaults and help taken from here (`training.loop.run_option`).
"""

from __future__ import annotations

import dataclasses
import typing
from functools import cache
from typing import Annotated, Any

import pydantic
from pydantic import BaseModel, ConfigDict, Field

from core.families import FAMILIES
from core.training_config import FIELD_BOUNDS, MAX_STEPS


class RunConfig(BaseModel):
    """The run options a training job may set: default, bounds and what each does (its
    `description`, which the API's config schema shows), written only here."""

    model_config = ConfigDict(extra="forbid", strict=True)

    image_size: int = Field(
        default=256,
        ge=8,
        le=1024,
        description="training resolution in pixels (pggan: the final resolution)",
    )
    batch_size: int = Field(default=1, ge=1, le=4096, description="mini-batch size")
    steps: int = Field(default=1000, ge=1, le=MAX_STEPS, description="training iterations")
    seed: int = Field(
        default=0,
        ge=0,
        le=2**63 - 1,
        description="random seed; runs on CPU with the same seed are identical",
    )
    sample_every: int = Field(
        default=500,
        ge=1,
        le=MAX_STEPS,
        description="write a sample grid (the preview) every N steps",
    )
    checkpoint_every: int = Field(
        default=1000,
        ge=1,
        le=MAX_STEPS,
        description="register the model and save the training state every N steps",
    )
    log_every: int = Field(
        default=10,
        ge=1,
        le=MAX_STEPS,
        description="log the losses (the loss curves) every N steps",
    )
    sample_count: int = Field(default=16, ge=1, le=256, description="images in each sample grid")
    amp: bool = Field(
        default=True, description="bf16 autocast where the hardware has it; off: fp32 everywhere"
    )
    channels_last: bool = Field(default=True, description="channels_last memory format on CUDA")
    metrics_every: int = Field(
        default=0,
        ge=0,
        le=MAX_STEPS,
        description="compute metrics every N steps and at the end (0: off)",
    )
    metrics_images: int = Field(
        default=256,
        ge=1,
        le=50_000,  # FID's usual 50k at most
        description="images (or pairs) the metrics use",
    )


# How the training CLI's --help words the run options it says more of than the API: its flags,
# the files its run folder gets (an API run registers its model instead) and the families'
# exceptions. The others it words as their `description`.
CLI_WORDING: dict[str, str] = {
    "batch_size": "mini-batch size (pggan: the schedule's per-resolution sizes apply)",
    "steps": "training iterations (pggan: the growth schedule sets the length; see --phase-images)",
    "sample_every": "write a sample grid every N steps",
    "checkpoint_every": "write the model folder and the training state every N steps",
    "log_every": "append losses to stats.jsonl and TensorBoard every N steps",
    "amp": "bf16 autocast on CUDA and on CPUs with native bf16 (AMX, AVX512-BF16); "
    "--no-amp: fp32 everywhere",
    "metrics_every": "compute metrics every N steps and at the end, stored in the model's "
    "config.json (pix2pix: L1/PSNR/SSIM on val; others: SWD, and FID/KID/IS with "
    "Inception weights); 0: off",
}


def cli_help(name: str) -> str:
    """What the training CLI's --help says of the run option `name`."""
    return CLI_WORDING.get(name) or RunConfig.model_fields[name].description or ""


RUN_FIELDS = tuple(RunConfig.model_fields)


class InvalidConfig(ValueError):
    """A training config that cannot run: `field` names the offending key ("config": the
    object itself), the message says why in words."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}" if field != "config" else message)
        self.field = field
        self.message = message


def _bounded(name: str, hint: Any) -> Any:
    """A field's type with its bounds (`FIELD_BOUNDS`); a float is also refused non-finite."""
    limits: dict[str, Any] = dict(FIELD_BOUNDS.get(name, {}))
    if hint is float:
        limits["allow_inf_nan"] = False
    return Annotated[hint, Field(**limits)] if limits else hint


@cache
def _strict_fields(config_class: type) -> type[BaseModel]:
    """A strict pydantic model of a config dataclass's fields (JSON types only, no coercion),
    with their bounds."""
    hints = typing.get_type_hints(config_class)
    fields: dict[str, Any] = {
        f.name: (_bounded(f.name, hints[f.name]), f.default)
        for f in dataclasses.fields(config_class)
    }
    return pydantic.create_model(
        f"{config_class.__name__}Fields",
        __config__=ConfigDict(strict=True, extra="forbid"),
        **fields,
    )


def _first_error(exc: pydantic.ValidationError) -> InvalidConfig:
    error = exc.errors()[0]
    field = ".".join(str(part) for part in error.get("loc", ())) or "config"
    message = str(error.get("msg", "invalid"))
    if message.startswith("Value error, "):
        message = message.removeprefix("Value error, ")
    return InvalidConfig(field, message)


def check_config(
    family_name: str, config: Any, kind: str | None = None, *, strict: bool = True
) -> tuple[dict[str, Any], Any]:
    """The run options (a dict of `RunConfig` fields, defaults filled in) and the family's config
    object of a job; InvalidConfig naming the first bad field.

    `strict` (the gateway, at submission): JSON types exactly, and a run option the family's
    schedule sets is refused. The worker passes `strict=False` for records queued before these
    rules: numbers given as strings are converted and such options dropped, as they always were.
    """
    family = FAMILIES.get(family_name)
    if family is None:
        raise InvalidConfig(
            "family", f"unknown family {family_name!r}; choose one of {', '.join(FAMILIES)}"
        )
    if config is None:
        config = {}
    if not isinstance(config, dict):
        raise InvalidConfig("config", "config must be a JSON object")
    family_fields = [f.name for f in dataclasses.fields(family.config)]
    valid = sorted(set(RUN_FIELDS) - set(family.schedule_sets) | set(family_fields))
    if not strict:
        config = {k: v for k, v in config.items() if k not in family.schedule_sets}
    for key in config:
        if key in family.schedule_sets:
            raise InvalidConfig(
                key,
                f"a {family_name} run's own schedule sets its {key}: set "
                "phase_images (its length) and batch_sizes (per resolution) instead",
            )
        if key not in valid:
            raise InvalidConfig(
                key, f"unknown field for {family_name}; valid fields: {', '.join(valid)}"
            )
    defaults = dict(family.service_defaults)
    if kind == "images" and "unconditional" in family_fields:
        defaults["unconditional"] = True  # a flat image set, even if zipped in sub-folders
    merged = {**defaults, **config}
    try:
        run = RunConfig.model_validate(
            {k: v for k, v in merged.items() if k in RUN_FIELDS}, strict=strict
        )
        values = _strict_fields(family.config).model_validate(
            {k: v for k, v in merged.items() if k in family_fields}, strict=strict
        )
    except pydantic.ValidationError as exc:
        raise _first_error(exc) from None
    try:
        family_config = family.config(**values.model_dump(exclude_unset=True))
    except ValueError as exc:  # the dataclass's own checks (e.g. a probability above 1)
        raise InvalidConfig("config", str(exc)) from None
    if run.image_size not in family.image_sizes:
        raise InvalidConfig(
            "image_size",
            f"a {family_name} network is built for image sizes "
            f"{', '.join(map(str, family.image_sizes))}, not {run.image_size}",
        )
    explicit = set(merged) & set(RUN_FIELDS)
    return run.model_dump(include=explicit), family_config
