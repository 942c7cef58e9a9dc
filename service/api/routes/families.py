"""Model families: what each trains on and does, and the JSON schema of its training config.

One entry per row of `core.families.FAMILY_TABLE`. `config_schema` describes the `config`
object of `POST /v1/training-runs` for the family: the run options (`core.training_runs.
RunConfig`, help text from the fields' descriptions, less those the family's own schedule sets)
and the family's hyperparameters (its `core.training_config` dataclass, help text from the
fields' metadata), each with its type, the default a run submitted over the API gets (the
family's `service_defaults` over the field's own default), its bounds (`RunConfig`'s,
`core.training_config.FIELD_BOUNDS`) and choices. The web page builds the Train view's form from it.
"""

from __future__ import annotations

import dataclasses
import typing
from functools import cache
from typing import Annotated, Any, Literal

import pydantic
from fastapi import APIRouter
from pydantic import BaseModel, Field

from core.datasets import DatasetKind
from core.families import FAMILIES, FAMILY_TABLE, Family
from core.training_config import FIELD_BOUNDS
from core.training_runs import RunConfig
from service.schemas import error_responses

router = APIRouter(tags=["families"])

JSON_SCHEMA_DIALECT = "https://json-schema.org/draft/2020-12/schema"

# JSON-schema keywords of pydantic's bounds.
_BOUND_KEYWORDS = ("minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum")


class FamilyOut(BaseModel):
    """A model family."""

    name: str
    title: str = Field(description="Its name in prose, as messages and the page say it.")
    task: Literal["translate", "sample"] = Field(
        description="What its models do: translate an image, or sample new ones."
    )
    dataset_kinds: list[DatasetKind] = Field(description="The dataset kinds it trains on.")
    inspectable: bool = Field(
        description="Whether its discriminator draws a realness map (POST /v1/inspections)."
    )
    paired_discriminator: bool = Field(
        description="Whether its discriminator judges an (input, output) pair: inspecting an "
        "image needs the `input` it translates (POST /v1/inspections)."
    )
    filterable: bool = Field(
        description="Whether its discriminator can rank and filter samples (`filter` of "
        "POST /v1/samples)."
    )
    projectable: bool = Field(
        description="Whether an image can be projected into its latent space "
        "(POST /v1/projections)."
    )
    exportable: bool = Field(
        description="Whether its generator exports to ONNX (POST /v1/models/{id}/exports, `onnx`)."
    )
    conditional: bool = Field(
        description="Whether its models may be class-conditional (take class labels; a model's "
        "own `class_count` says whether it is)."
    )
    fine_tunable: bool = Field(
        description="Whether a training run can start from one of its models (`init_from`)."
    )
    generator_fields: list[str] = Field(
        description="The config fields a fine-tune run takes from the model it starts from."
    )
    image_sizes: list[int] = Field(description="The image sizes its networks are built for.")
    schedule_sets: list[str] = Field(
        description="Run options its own schedule sets (refused in `config`)."
    )
    service_defaults: dict[str, Any] = Field(
        description="The config a run submitted over the API gets unless it says otherwise."
    )
    config_schema: dict[str, Any] = Field(
        description="JSON schema of the `config` object of a training run of this family: per "
        "field its type, default, description, bounds and choices; `x-group` says whether it "
        "is a run option (`run`) or one of the family's hyperparameters (`family`)."
    )


class FamilyList(BaseModel):
    """Every model family, in the order of `core.families.FAMILY_TABLE`."""

    families: list[FamilyOut]


def _property(schema: dict[str, Any], default: Any, help_text: str, group: str) -> dict[str, Any]:
    """One field's JSON schema: pydantic's (type, bounds, choices) with our default and help."""
    out: dict[str, Any] = {}
    if "enum" in schema:
        out["type"] = schema.get("type", "string")
        out["enum"] = schema["enum"]
    elif "const" in schema:  # a Literal of one value
        out["type"] = schema.get("type", "string")
        out["enum"] = [schema["const"]]
    else:
        out["type"] = schema["type"]
    for keyword in _BOUND_KEYWORDS:
        if keyword in schema:
            out[keyword] = schema[keyword]
    out["default"] = default
    out["description"] = help_text
    out["x-group"] = group
    return out


def _family_fields(config_class: type) -> dict[str, dict[str, Any]]:
    """The JSON schema of each field of a family's config dataclass, bounds included."""
    hints = typing.get_type_hints(config_class)
    fields: dict[str, Any] = {}
    for f in dataclasses.fields(config_class):
        limits = FIELD_BOUNDS.get(f.name, {})
        hint = Annotated[hints[f.name], Field(**limits)] if limits else hints[f.name]
        fields[f.name] = (hint, f.default)
    model = pydantic.create_model(f"{config_class.__name__}Schema", **fields)
    return model.model_json_schema()["properties"]


@cache
def config_schema(name: str) -> dict[str, Any]:
    """The JSON schema of a training run's `config` for the family `name`."""
    family = FAMILIES[name]
    defaults = family.service_defaults
    properties: dict[str, Any] = {}
    run_schema = RunConfig.model_json_schema()["properties"]
    for name, field in RunConfig.model_fields.items():
        if name in family.schedule_sets:
            continue
        default = defaults.get(name, field.default)
        prop = _property(run_schema[name], default, field.description or "", "run")
        if name == "image_size":
            prop["enum"] = list(family.image_sizes)
        properties[name] = prop
    own = _family_fields(family.config)
    for f in dataclasses.fields(family.config):
        properties[f.name] = _property(
            own[f.name], defaults.get(f.name, f.default), f.metadata.get("help", ""), "family"
        )
    return {
        "$schema": JSON_SCHEMA_DIALECT,
        "title": f"{family.name} training config",
        "type": "object",
        "additionalProperties": False,
        "properties": properties,
    }


def family_out(family: Family) -> FamilyOut:
    """The public description of a family."""
    return FamilyOut(
        name=family.name,
        title=family.title,
        task=family.task,
        dataset_kinds=list(family.dataset_kinds),
        inspectable=family.inspectable,
        paired_discriminator=family.paired_discriminator,
        filterable=family.filterable,
        projectable=family.projectable,
        exportable=family.exportable,
        conditional=family.conditional,
        fine_tunable=bool(family.generator_fields),
        generator_fields=[run_field for run_field, _ in family.generator_fields],
        image_sizes=list(family.image_sizes),
        schedule_sets=list(family.schedule_sets),
        service_defaults=dict(family.service_defaults),
        config_schema=config_schema(family.name),
    )


@router.get("/families", responses=error_responses(401))
def list_families() -> FamilyList:
    """The model families a training run can train: each one's task, the dataset kinds it
    trains on, what its models can do (inspect, filter, project, export to ONNX, take classes)
    and whether they can be fine-tuned, its image sizes, the defaults of a run submitted over
    the API, and the JSON schema of its training `config`."""
    return FamilyList(families=[family_out(family) for family in FAMILY_TABLE])
