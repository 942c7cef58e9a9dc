"""`python -m training`: its options generated from the config dataclasses, parsed in process,
and training runs as real processes."""

import dataclasses
import json
import shlex
import subprocess
import sys
import typing
from pathlib import Path

import pytest
from typer.main import get_command
from typer.testing import CliRunner

import models
from core.families import FAMILIES
from core.training_runs import RunConfig, cli_help
from training.cli import app
from training.demo import build_demo
from training.families import training_family
from training.loop import RunOptions

DEMO_CARDS = sorted((Path(__file__).parents[2] / "ganserve" / "demo_weights").glob("*/config.json"))


def run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "training", *args], capture_output=True, text=True, check=False
    )


def invoke(*args: str):
    """The command line parsed in this process (errors stop before any training)."""
    return CliRunner().invoke(app, list(args), prog_name="python -m training")


def options_of(family: str) -> dict[str, list[str]]:
    """Every option of a family's command by its field: the option strings it answers to."""
    command = get_command(app).commands[family]
    return {
        param.name: [*param.opts, *param.secondary_opts]
        for param in command.params
        if param.name != "help"
    }


def help_records(family: str) -> dict[str, str]:
    """Each option's help text (default included) by its field, as --help prints it."""
    command = get_command(app).commands[family]
    with command.make_context(family, ["--data", "d", "--out", "o"]) as ctx:
        return {
            param.name: param.get_help_record(ctx)[1]
            for param in command.params
            if param.name != "help"
        }


def test_help_lists_the_families():
    result = run("--help")
    assert result.returncode == 0, result.stderr
    for family in FAMILIES:
        assert f"  {family}  " in result.stdout
    assert "U-Net GAN: BigGAN G, U-Net D^U" in result.stdout


@pytest.mark.parametrize("family", list(FAMILIES))
def test_every_field_has_exactly_one_option(family):
    fields = [f.name for f in dataclasses.fields(RunOptions)]
    fields += [f.name for f in dataclasses.fields(training_family(family).config_class)]
    options = options_of(family)
    assert sorted(options) == sorted(fields)  # one option per field, no other
    for name, strings in options.items():
        assert strings[0] == "--" + name.replace("_", "-")
    every = [string for strings in options.values() for string in strings]
    assert len(every) == len(set(every))
    assert not [string for string in every if string.startswith("--no-no-")]


def test_the_shared_run_options_are_those_of_the_api_with_its_defaults():
    options = {f.name: f for f in dataclasses.fields(RunOptions)}
    hints = typing.get_type_hints(RunOptions)
    for name, info in RunConfig.model_fields.items():
        assert options[name].default == info.default, name
        assert hints[name] is info.annotation, name
        assert options[name].metadata["help"] == cli_help(name)
    assert cli_help("seed") == RunConfig.model_fields["seed"].description  # worded alike
    assert "--no-amp" in cli_help("amp")  # the CLI's own wording


def test_booleans_are_pairs_and_no_x_fields_read_naturally():
    pix2pix = options_of("pix2pix")
    assert pix2pix["no_augment"] == ["--no-augment", "--augment"]
    assert pix2pix["amp"] == ["--amp", "--no-amp"]
    assert options_of("unetgan")["cutmix"] == ["--cutmix", "--no-cutmix"]
    result = invoke("pix2pix", "--help")
    assert result.exit_code == 0
    assert "--no-no-" not in result.output
    assert "--no-augment / --augment" in result.output


@pytest.mark.parametrize("family", list(FAMILIES))
def test_help_gives_each_field_meaning_and_one_default(family):
    records = help_records(family)
    config_fields = dataclasses.fields(training_family(family).config_class)
    for f in [*dataclasses.fields(RunOptions), *config_fields]:
        text = records[f.name]
        if f.name not in FAMILIES[family].schedule_sets:
            assert text.startswith(f.metadata["help"]), f.name
        assert text.count("default") <= 1, text


def test_defaults_are_the_dataclasses_and_the_papers_runs():
    records = help_records("unetgan")
    assert records["batch_size"].endswith("[default: 50]")  # the paper's run
    assert records["g_lr"].endswith("[default: 5e-05]")
    assert records["mirror"].endswith("[default: mirror]")
    assert records["name"].endswith("[default: (the --out folder's name)]")
    assert "[default" not in records["init_from"]
    assert help_records("pix2pix")["no_augment"].endswith("[default: augment]")


@pytest.mark.parametrize(
    ("args", "option", "says"),
    [
        (("unetgan", "--width", "0"), "--width", "must be >= 1 and <= 1024, not 0."),
        (("unetgan", "--width", "wide"), "--width", ""),
        (("unetgan", "--g-lr", "nan"), "--g-lr", "must be a finite number"),
        (("unetgan", "--beta2", "1"), "--beta2", "< 1"),
        (("pix2pix", "--norm", "group"), "--norm", "'batch', 'instance'"),
        (("pix2pix", "--batch-size", "0"), "--batch-size", ">= 1"),
        (("pggan", "--steps", "100"), "--steps", "use --phase-images"),
        (("pggan", "--batch-size", "8"), "--batch-size", "--batch-sizes"),
    ],
)
def test_a_bad_value_is_one_sentence_naming_the_option(tmp_path, args, option, says):
    family, *rest = args
    result = invoke(family, "--data", str(tmp_path), "--out", str(tmp_path / "run"), *rest)
    assert result.exit_code == 2
    error = result.stderr.strip().splitlines()[-1]
    assert error.startswith(f"Error: Invalid value for '{option}': ") and says in error
    assert not (tmp_path / "run").exists()


def test_the_configs_own_check_is_a_usage_error(tmp_path):
    result = invoke(
        "unetgan", "--data", str(tmp_path), "--out", str(tmp_path / "r"), "--p-mix-max", "2"
    )
    assert result.exit_code == 2
    assert "p_mix_max must lie in [0, 1], not 2.0" in result.stderr


def test_no_no_is_not_an_option(tmp_path):
    result = invoke("pix2pix", "--data", str(tmp_path), "--out", str(tmp_path), "--no-no-augment")
    assert result.exit_code == 2 and "No such option: --no-no-augment" in result.stderr


@pytest.mark.parametrize("card", DEMO_CARDS, ids=lambda path: path.parent.name)
def test_the_shipped_demo_recipes_still_parse(card):
    recipe = json.loads(card.read_text())["provenance"]["demo"]["command"]
    for step in recipe.split("&&"):
        family, *args = shlex.split(step.split("-m training ", 1)[1])
        command = get_command(app).commands[family]
        with command.make_context(family, args) as ctx:  # parses and checks every option
            assert ctx.params["seed"] == 0


def test_trains_from_the_command_line(tmp_path):
    data = build_demo("edges2photo", tmp_path / "data", size=32, count=6)
    result = run(
        "pix2pix",
        "--data",
        str(data),
        "--out",
        str(tmp_path / "run"),
        "--image-size",
        "32",
        "--batch-size",
        "2",
        "--steps",
        "2",
        "--width",
        "4",
        "--norm",
        "instance",
        "--no-augment",
        "--no-amp",
        "--device",
        "cpu",
        "--no-progress-bar",
    )
    assert result.returncode == 0, result.stderr
    assert "completed at step 2/2" in result.stdout
    assert models.read_card(tmp_path / "run" / "model").architecture == "pix2pix-generator"
    recorded = json.loads((tmp_path / "run" / "options.json").read_text())
    assert recorded["config"]["norm"] == "instance" and recorded["config"]["no_augment"] is True
    assert recorded["run"]["amp"] is False and recorded["run"]["steps"] == 2


def test_bad_dataset_is_a_clear_error(tmp_path):
    (tmp_path / "empty").mkdir()
    result = run(
        "unetgan",
        "--data",
        str(tmp_path / "empty"),
        "--out",
        str(tmp_path / "run"),
        "--device",
        "cpu",
    )
    assert result.returncode == 2
    assert result.stderr.startswith("error:") and "no usable image in the dataset" in result.stderr


def test_torchrun_trains_on_two_processes(tmp_path):
    data = build_demo("faces", tmp_path / "data", size=16, count=8)
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "torch.distributed.run",
            "--standalone",
            "--nproc_per_node=2",
            "-m",
            "training",
            "pggan",
            "--data",
            str(data),
            "--out",
            str(tmp_path / "run"),
            "--image-size",
            "8",
            "--phase-images",
            "4",
            "--fmap-base",
            "32",
            "--fmap-max",
            "8",
            "--latent-dim",
            "8",
            "--batch-sizes",
            "4:2,8:2",
            "--device",
            "cpu",
            "--no-progress-bar",
        ],
        capture_output=True,
        text=True,
        check=False,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.count("completed at step") == 1  # rank 0 alone reports
    options = (tmp_path / "run" / "options.json").read_text()
    assert '"world_size": 2' in options
    assert models.read_card(tmp_path / "run" / "model").architecture == "pggan-generator"
    critic = models.load_discriminator(tmp_path / "run" / "model")  # unwrapped from DDP
    assert models.architecture_of(critic).name == "pggan-discriminator"
