"""`python -m training <pix2pix|unetgan|pggan> --data PATH --out DIR [options]`, on Typer.

Each family is a command whose options are generated from dataclass fields: the run options
from `training.loop.RunOptions`, the family's own from its config dataclass
(`core.training_config`). A field gives exactly one option, `--field-name`: typed from its
annotation (a `Literal` is a choice), its help from `metadata["help"]`, its default from the
dataclass or the family's paper run (`core.families`), shown once. A boolean is the pair
`--x/--no-x`, and a field named `no_x` the pair `--no-x/--x`. Numbers are held to the bounds a
training job over the API is held to (`core.training_runs.RunConfig`,
`core.training_config.FIELD_BOUNDS`): a bad value is a usage error naming the option (exit
code 2). The options a family's own schedule sets (pggan: `--steps`, `--batch-size`) are listed
and refused.
"""

from __future__ import annotations

import dataclasses
import inspect
import math
import operator
import os
import typing
from collections.abc import Callable
from typing import Annotated, Any

import typer
from typer.core import TyperCommand

from core.families import FAMILIES, FAMILY_TABLE, titles
from core.settings import Settings
from core.training_config import FIELD_BOUNDS
from core.training_runs import RunConfig
from training.data import DatasetError
from training.families import training_family
from training.family import GANFamily
from training.loop import RunOptions, train
from training.state import StateError

PROG = "python -m training"
RUN_PANEL = "Run options"
COMPARISONS = {
    "ge": (operator.ge, ">="),
    "gt": (operator.gt, ">"),
    "le": (operator.le, "<="),
    "lt": (operator.lt, "<"),
}

app = typer.Typer(
    help=f"Train a {titles(FAMILY_TABLE)} model into a model folder.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,  # Click's plain layout: it stays readable in 80 columns
)


class SectionedCommand(TyperCommand):
    """Click's plain help with the options in sections: the run options, the family's own."""

    def format_options(self, ctx: Any, formatter: Any) -> None:
        sections: dict[str, list[tuple[str, str]]] = {}
        for param in self.get_params(ctx):
            record = param.get_help_record(ctx)
            if record is not None:
                title = getattr(param, "rich_help_panel", None) or "Options"
                sections.setdefault(title, []).append(record)
        for title, records in sections.items():
            with formatter.section(title):
                formatter.write_dl(records)


def flag_names(name: str) -> str:
    """A boolean field's option pair: `--x/--no-x`, or `--no-x/--x` for a field named `no_x`."""
    dashed = name.replace("_", "-")
    if dashed.startswith("no-"):
        return f"--{dashed}/--{dashed.removeprefix('no-')}"
    return f"--{dashed}/--no-{dashed}"


def run_bounds(name: str) -> dict[str, Any]:
    """The bounds (`ge`, `gt`, `le`, `lt`) of a run option as a training job has them."""
    info = RunConfig.model_fields.get(name)
    rules = info.metadata if info is not None else ()
    return {
        key: getattr(rule, key)
        for rule in rules
        for key in COMPARISONS
        if getattr(rule, key, None) is not None
    }


def bound_check(bounds: dict[str, Any]) -> Callable[[Any], Any]:
    """An option callback refusing a value outside `bounds`, or a float that is not finite."""
    wanted = " and ".join(f"{COMPARISONS[key][1]} {limit}" for key, limit in bounds.items())

    def check(value: Any) -> Any:
        if isinstance(value, float) and not math.isfinite(value):
            raise typer.BadParameter(f"must be a finite number, not {value}.")
        if value is not None and not all(
            COMPARISONS[key][0](value, limit) for key, limit in bounds.items()
        ):
            raise typer.BadParameter(f"must be {wanted}, not {value}.")
        return value

    return check


def refuse(value: Any) -> None:
    """The callback of an option the family's growth schedule sets: given, it is refused."""
    if value is not None:
        raise typer.BadParameter(
            "the growth schedule sets it: use --phase-images for the run's length and "
            "--batch-sizes for its batch size per resolution."
        )


def option(
    f: dataclasses.Field, hint: Any, default: Any, panel: str, bounds: dict[str, Any]
) -> inspect.Parameter:
    """The keyword parameter, annotated with its `typer.Option`, of one dataclass field."""
    decls = (flag_names(f.name),) if hint is bool else ()
    shown = f.metadata.get("shown_default", default not in (None, ""))
    info = typer.Option(
        *decls,
        help=f.metadata.get("help", ""),
        show_default=shown,
        rich_help_panel=panel,
        callback=bound_check(bounds) if hint in (int, float) else None,
    )
    default = inspect.Parameter.empty if default is dataclasses.MISSING else default
    return inspect.Parameter(
        f.name, inspect.Parameter.KEYWORD_ONLY, default=default, annotation=Annotated[hint, info]
    )


def refused_option(f: dataclasses.Field, hint: Any) -> inspect.Parameter:
    """The parameter of a run option the family's schedule sets: listed, and refused."""
    info = typer.Option(
        help="refused: set by the growth schedule (--phase-images, --batch-sizes)",
        callback=refuse,
        expose_value=False,
        rich_help_panel=RUN_PANEL,
    )
    return inspect.Parameter(
        f.name, inspect.Parameter.KEYWORD_ONLY, default=None, annotation=Annotated[hint, info]
    )


def family_parameters(name: str, family: type[GANFamily]) -> list[inspect.Parameter]:
    """One parameter per field of `RunOptions` and of the family's config, in that order."""
    row = FAMILIES[name]
    run_hints = typing.get_type_hints(RunOptions)
    params = [
        refused_option(f, run_hints[f.name] | None)
        if f.name in row.schedule_sets
        else option(
            f,
            run_hints[f.name],
            row.paper_run.get(f.name, f.default),
            RUN_PANEL,
            run_bounds(f.name),
        )
        for f in dataclasses.fields(RunOptions)
    ]
    own_hints = typing.get_type_hints(family.config_class)
    return params + [
        option(f, own_hints[f.name], f.default, f"{name} options", FIELD_BOUNDS.get(f.name, {}))
        for f in dataclasses.fields(family.config_class)
    ]


def pick(cls: type, values: dict[str, Any], skip: tuple[str, ...] = ()) -> Any:
    """An instance of the dataclass `cls` from those `values` that are its fields."""
    names = {f.name for f in dataclasses.fields(cls)} - set(skip)
    return cls(**{key: value for key, value in values.items() if key in names})


def run(name: str, values: dict[str, Any]) -> None:
    """Train one run of the family `name` with the parsed option values; say where the model is."""
    if values["inception_weights"] is None:
        values["inception_weights"] = Settings().inception_weights  # GANSERVE_INCEPTION_WEIGHTS
    options = pick(RunOptions, values, skip=FAMILIES[name].schedule_sets)
    try:
        config = pick(training_family(name).config_class, values)
    except ValueError as exc:  # the config's own checks (e.g. p_mix_max within [0, 1])
        raise typer.BadParameter(str(exc)) from None
    try:
        result = train(name, options, config)
    except (DatasetError, StateError, ValueError) as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from None
    if os.environ.get("RANK", "0") == "0":  # under torchrun, rank 0 speaks for the run
        typer.echo(
            f"{result.status} at step {result.step}/{result.total}; model: {result.model_dir}"
        )


def add_family(name: str, family: type[GANFamily]) -> None:
    """Register the command that trains `family`: its signature is generated from the fields."""

    def command(**values: Any) -> None:
        run(name, values)

    command.__signature__ = inspect.Signature(family_parameters(name, family))
    doc = inspect.cleandoc(family.__doc__ or name)
    app.command(name, cls=SectionedCommand, help=doc, short_help=doc.splitlines()[0])(command)


for _name in FAMILIES:
    add_family(_name, training_family(_name))


def main(argv: list[str] | None = None) -> None:
    """Run the command line on `argv` (default: the process's arguments) and exit."""
    app(args=argv, prog_name=PROG)
