"""The one training loop shared by pix2pix, U-Net GAN and Progressive GAN.

Following stylegan2-ada-pytorch's split, this module owns what every GAN run does (data, devices,
mixed precision, optimizer steps, EMA, samples, stats, checkpoints, resume, progress and
cancellation) and asks a `training.family.GANFamily` for everything paper-specific.

A run's options (`RunOptions`) are one dataclass: the options a training job over the API may
set too are declared with their defaults and help taken from `core.training_runs.RunConfig`,
where they are written once (`run_option`), beside those only a run started here has (its data
and run folders, device, resume...). A dataclass rather than the pydantic model: the training
CLI generates its options from the fields in their order.
"""

from __future__ import annotations

import contextlib
import dataclasses
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import torch
from tqdm import tqdm

import models
from core.training_runs import RunConfig, cli_help
from models.precision import autocast, memory_format, use_autocast
from training import distributed
from training.data import DatasetError, ImageDataset, PairedDataset
from training.ema import update_ema
from training.families import training_family
from training.family import Batch, DataInfo, GANFamily, Stats, unwrap
from training.init_from import start_from
from training.metrics.generator_metrics import sampling_metrics, translation_metrics
from training.metrics.inception import FIDInception, InceptionUnavailable, load_inception
from training.run_files import RunFiles
from training.sampler import BatchStream
from training.state import StateError, load_state, restore_rng, rng_state, save_state

ProgressCallback = Callable[["Progress"], None]
StopCheck = Callable[[], bool]
CheckpointCallback = Callable[[int, Path], None]  # (step, model folder) after each checkpoint


def run_option(name: str) -> Any:
    """The dataclass field of a run option every run shares: its default and help are
    `core.training_runs.RunConfig`'s (the help as the CLI words it, `cli_help`)."""
    return field(default=RunConfig.model_fields[name].default, metadata={"help": cli_help(name)})


@dataclass(frozen=True)
class RunOptions:
    """The options every family shares; each family adds its own config dataclass.

    Those a training job over the API may set too are `core.training_runs.RunConfig`'s fields,
    declared here with their defaults and help taken from it (`run_option`); the others (data,
    out, device, resume, progress_bar, name, inception_weights, init_from) only a run started
    here has. Each field's `metadata["help"]` says what it means (the training CLI's help, in
    the order of the fields); `metadata["shown_default"]` words a default that its value does
    not show.
    """

    data: Path = field(
        metadata={
            "help": "dataset folder (paired, for a translation family: train/ val/ with A|B "
            "images, or A/ and B/; images, for a sampling family: a folder of images, or one "
            "sub-folder per class)"
        }
    )
    out: Path = field(
        metadata={
            "help": "run folder: options.json, stats.jsonl, tensorboard/, samples/, model/, "
            "training state"
        }
    )
    image_size: int = run_option("image_size")
    batch_size: int = run_option("batch_size")
    steps: int = run_option("steps")
    seed: int = run_option("seed")
    device: str = field(
        default="auto", metadata={"help": "auto (CUDA when available), cpu, cuda or cuda:N"}
    )
    resume: bool = field(
        default=False, metadata={"help": "continue the run in --out from its last checkpoint"}
    )
    sample_every: int = run_option("sample_every")
    checkpoint_every: int = run_option("checkpoint_every")
    log_every: int = run_option("log_every")
    sample_count: int = run_option("sample_count")
    amp: bool = run_option("amp")
    channels_last: bool = run_option("channels_last")
    progress_bar: bool = field(
        default=True, metadata={"help": "show a progress bar with losses and ETA"}
    )
    name: str = field(
        default="",
        metadata={
            "help": "run name recorded in the model's provenance",
            "shown_default": "the --out folder's name",
        },
    )
    metrics_every: int = run_option("metrics_every")
    metrics_images: int = run_option("metrics_images")
    inception_weights: Path | None = field(
        default=None,
        metadata={
            "help": "Inception weights for FID/KID/IS",
            "shown_default": "$GANSERVE_INCEPTION_WEIGHTS",
        },
    )
    init_from: Path | None = field(
        default=None,
        metadata={
            "help": "model folder to start from (fine-tuning): its generator's weights, and its "
            "discriminator's when they match; the options must build the same networks"
        },
    )


@dataclass(frozen=True)
class Progress:
    """What the progress callback hears: the step reached, the total and the latest losses."""

    step: int
    total: int
    stats: Stats


@dataclass(frozen=True)
class RunResult:
    """How a run ended and where its model is."""

    status: Literal["completed", "cancelled"]
    step: int
    total: int
    model_dir: Path
    stats: Stats = field(default_factory=dict)


def load_dataset(family: type[GANFamily], options: RunOptions, config: Any) -> Any:
    """The family's kind of dataset, decoded into memory at the training size."""
    kwargs = family.dataset_options(config)
    if family.data_kind == "paired":
        return PairedDataset(options.data, image_size=options.image_size, **kwargs)
    return ImageDataset(options.data, image_size=options.image_size, **kwargs)


def data_info(dataset: Any) -> DataInfo:
    """What the family needs to know of the dataset to build its networks."""
    if isinstance(dataset, PairedDataset):
        return DataInfo(dataset.image_size, dataset.channels_b, in_channels=dataset.channels_a)
    return DataInfo(dataset.image_size, dataset.channels, num_classes=dataset.num_classes)


class Trainer:
    """One run: a family, its data and its run folder, stepped until done or stopped."""

    def __init__(self, family_name: str, options: RunOptions, config: Any | None = None) -> None:
        family_cls = training_family(family_name)
        self.family_name = family_name
        self.options = options
        self.config = config if config is not None else family_cls.config_class()
        self.topology = distributed.setup(options.device)
        self.device = self.topology.device
        torch.manual_seed(options.seed + self.topology.rank)
        if self.device.type == "cuda":
            torch.backends.cudnn.benchmark = True
            torch.backends.cuda.matmul.allow_tf32 = True
            torch.backends.cudnn.allow_tf32 = True
        self.dataset = load_dataset(family_cls, options, self.config)
        self.family = family_cls(self.config, data_info(self.dataset), self.device)
        if options.init_from is not None:  # a resumed run then loads its own state over it
            start_from(self.family, options.init_from)
        self.amp = use_autocast(self.device, options.amp)
        self.memory_format = memory_format(self.device, options.channels_last)
        for net in (self.family.G, self.family.D, self.family.G_ema):
            if net is not None:
                net.to(memory_format=self.memory_format)
        grows = family_cls.grows
        self.family.G = distributed.wrap(self.family.G, self.topology, grows=grows)
        self.family.D = distributed.wrap(self.family.D, self.topology, grows=grows)
        self.stream = BatchStream(
            self.dataset,
            options.seed,
            rank=self.topology.rank,
            world_size=self.topology.world_size,
        )
        self.total = self.family.total_steps(options.steps)
        self.opt_G, self.opt_D = self.family.optimizers()
        self.files = RunFiles(options.out) if self.topology.is_main else None
        self.step = 0
        self.images_seen = 0
        self.stats: Stats = {}
        self.metrics: dict[str, float | str] = {}
        self._inception_net: FIDInception | None = None  # loaded on first use (evaluate)
        self._inception_failed = False
        self._restore_or_refuse()
        self.fixed = self._fixed_sample_inputs()

    # ----- state -----------------------------------------------------------------------------

    def _nets(self) -> dict[str, torch.nn.Module]:
        nets = {"G": unwrap(self.family.G), "D": unwrap(self.family.D)}
        if self.family.G_ema is not None:
            nets["G_ema"] = self.family.G_ema
        return nets

    def _state(self) -> dict[str, Any]:
        return {
            "step": self.step,
            "images_seen": self.images_seen,
            "nets": {k: v.state_dict() for k, v in self._nets().items()},
            "opt_G": self.opt_G.state_dict(),
            "opt_D": self.opt_D.state_dict(),
            "family": self.family.state_dict(),
            "rng": rng_state(),
        }

    def _restore_or_refuse(self) -> None:
        state = load_state(self.options.out)
        if state is None:
            return
        if not self.options.resume:
            raise StateError(
                f"the run folder {self.options.out.name!r} already holds a training run; pass "
                f"--resume to continue it or choose another --out"
            )
        self.step, self.images_seen = int(state["step"]), int(state["images_seen"])
        for key, net in self._nets().items():
            net.load_state_dict(state["nets"][key])
        self.opt_G.load_state_dict(state["opt_G"])
        self.opt_D.load_state_dict(state["opt_D"])
        self.family.load_state_dict(state["family"])
        restore_rng(state["rng"])
        if self.files is not None:
            self.files.truncate_stats(self.step)

    def _fixed_sample_inputs(self) -> Batch:
        rng_before = rng_state()  # drawing the grid's inputs must not shift the training stream
        count = min(self.options.sample_count, len(self.dataset))
        plain = BatchStream(self.dataset, self.options.seed).batch(0, count)
        inputs = self.family.fixed_sample_inputs(self._to_device(plain), count, self.options.seed)
        restore_rng(rng_before)
        return inputs

    def _to_device(self, batch: Batch) -> Batch:
        moved = {}
        for key, value in batch.items():
            value = value.to(self.device, non_blocking=True)
            if value.ndim == 4:
                value = value.contiguous(memory_format=self.memory_format)
            moved[key] = value
        return moved

    # ----- outputs ---------------------------------------------------------------------------

    def checkpoint(self) -> None:
        """Write the model folder (generator and discriminator) and the training state (rank 0)."""
        if self.files is None:
            return
        provenance = {
            "run": self.options.name or self.options.out.name,
            "family": self.family_name,
            "step": self.step,
            "total_steps": self.total,
            "images_seen": self.images_seen,
            "dataset": str(self.options.data),
            "seed": self.options.seed,
            "class_names": list(getattr(self.dataset, "class_names", [])),  # label k's name
            "saved_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            **self.family.card_extras(),
        }
        models.save(
            self.family.export_generator(),
            self.files.model_dir,
            provenance=provenance,
            metrics=self.metrics,
        )
        models.save_discriminator(self.files.model_dir, *self.family.discriminator_export())
        save_state(self._state(), self.options.out)

    def sample(self) -> None:
        """Write a grid of samples from the fixed inputs (rank 0 only)."""
        if self.files is None:
            return
        rng_before = rng_state()  # pix2pix samples with dropout on: keep training's stream intact
        images, columns = self.family.sample_grid(self.family.export_generator(), self.fixed)
        restore_rng(rng_before)
        self.files.sample(self.step, images, columns)

    def evaluate(self) -> dict[str, float | str]:
        """Metrics of the current generator; kept for the model's config.json (rank 0 only)."""
        if self.files is None:
            return {}
        rng_before = rng_state()
        generator = self.family.export_generator()
        if self.family.data_kind == "paired":
            results: dict[str, float | str] = dict(
                translation_metrics(
                    generator, self._eval_pairs(), limit=self.options.metrics_images
                )
            )
        else:
            results = sampling_metrics(
                generator,
                self.dataset.pixels[: self.options.metrics_images],
                seed=self.options.seed,
                inception_weights=self._inception(),
                device=self.device,
            )
        restore_rng(rng_before)
        self.metrics = {**results, "step": self.step}
        numbers = {f"metric_{k}": v for k, v in results.items() if isinstance(v, float)}
        self.files.log(self.step, numbers)
        return self.metrics

    def _inception(self) -> FIDInception | Path | None:
        """The Inception network for FID/KID/IS, loaded once per run on first use.

        When no weights are configured, or they cannot be loaded, the configured path (or None)
        is returned instead, so that the metrics report them as unavailable and say why.
        """
        weights = self.options.inception_weights
        if self._inception_net is None and weights is not None and not self._inception_failed:
            try:
                self._inception_net = load_inception(weights, self.device)
            except InceptionUnavailable:
                self._inception_failed = True  # compute_fidelity gives the reason each time
        return self._inception_net if self._inception_net is not None else weights

    def _eval_pairs(self) -> PairedDataset:
        """The validation split without jitter (the training split when there is none)."""
        kwargs = {**self.family.dataset_options(self.config), "augment": False}
        try:
            return PairedDataset(
                self.options.data, image_size=self.options.image_size, split="val", **kwargs
            )
        except DatasetError:
            return PairedDataset(self.options.data, image_size=self.options.image_size, **kwargs)

    # ----- the loop --------------------------------------------------------------------------

    def _autocast(self) -> contextlib.AbstractContextManager[Any]:
        return autocast(self.device, self.amp)

    def train_step(self) -> Stats:
        """One iteration: schedule, G forward, D step, G step, EMA."""
        family = self.family
        if family.begin_step(self.step):
            self.opt_G, self.opt_D = family.optimizers()
        batch_size = family.batch_size(self.step, self.options.batch_size)
        batch = self._to_device(self.stream.batch(self.images_seen, batch_size))
        with self._autocast():
            ctx = family.prepare(batch)
            d_loss, d_stats = family.d_loss(ctx)
        self.opt_D.zero_grad(set_to_none=True)
        d_loss.backward()
        self.opt_D.step()
        with self._autocast():
            g_loss, g_stats = family.g_loss(ctx)
        self.opt_G.zero_grad(set_to_none=True)
        g_loss.backward()
        self.opt_G.step()
        decay = family.ema_decay(self.step)
        if decay is not None and family.G_ema is not None:
            update_ema(family.G_ema, unwrap(family.G), decay)
        self.step += 1
        self.images_seen += self.stream.global_batch(batch_size)
        return {**d_stats, **g_stats, "images_seen": float(self.images_seen)}

    def run(
        self,
        on_progress: ProgressCallback | None = None,
        should_stop: StopCheck | None = None,
        on_checkpoint: CheckpointCallback | None = None,
    ) -> RunResult:
        """Train until the total step count or until `should_stop()` says so.

        `on_checkpoint(step, model_dir)` hears of every checkpoint written before the last one
        (a background run publishes its model there); the last one is in the `RunResult`.
        """
        opts = self.options
        if self.files is not None:
            self.files.write_options(
                {
                    "family": self.family_name,
                    "run": dataclasses.asdict(opts),
                    "config": dataclasses.asdict(self.config),
                    "total_steps": self.total,
                    "world_size": self.topology.world_size,
                    "device": str(self.device),
                    "bf16_autocast": self.amp,
                }
            )
        bar = tqdm(
            total=self.total,
            initial=self.step,
            desc=f"{self.family_name} {opts.out.name}",
            disable=not (opts.progress_bar and self.topology.is_main),
            dynamic_ncols=True,
        )
        status: Literal["completed", "cancelled"] = "completed"
        try:
            while self.step < self.total:
                if should_stop is not None and should_stop():
                    status = "cancelled"
                    break
                started = time.perf_counter()
                self.stats = self.train_step()
                self.stats["sec_per_step"] = time.perf_counter() - started
                bar.update(1)
                if self.step % opts.log_every == 0 or self.step == self.total:
                    self._log(bar, on_progress)
                if self.step % opts.sample_every == 0:
                    self.sample()
                if opts.metrics_every and self.step % opts.metrics_every == 0:
                    self.evaluate()
                if self.step % opts.checkpoint_every == 0 and self.step < self.total:
                    self.checkpoint()
                    if on_checkpoint is not None and self.files is not None:
                        on_checkpoint(self.step, self.files.model_dir)
            if status == "completed":
                self.sample()
                if opts.metrics_every and self.metrics.get("step") != self.step:
                    self.evaluate()
            self.checkpoint()
        finally:
            bar.close()
            if self.files is not None:
                self.files.close()
        return RunResult(status, self.step, self.total, Path(opts.out) / "model", dict(self.stats))

    def _log(self, bar: tqdm, on_progress: ProgressCallback | None) -> None:
        shown = {k: v for k, v in self.stats.items() if k[0] in "DG"}
        bar.set_postfix({k: f"{v:.3g}" for k, v in shown.items()}, refresh=False)
        if self.files is not None:
            self.files.log(self.step, self.stats)
        if on_progress is not None:
            on_progress(Progress(self.step, self.total, dict(self.stats)))


def train(
    family_name: str,
    options: RunOptions,
    config: Any | None = None,
    *,
    on_progress: ProgressCallback | None = None,
    should_stop: StopCheck | None = None,
    on_checkpoint: CheckpointCallback | None = None,
) -> RunResult:
    """Train one run to the end (or until stopped) and return how it ended."""
    try:
        return Trainer(family_name, options, config).run(on_progress, should_stop, on_checkpoint)
    finally:
        distributed.teardown()
