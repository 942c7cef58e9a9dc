"""GET /v1/families: every family of the table, with a config schema that says exactly what
`core.training_runs.check_config` (the rule of POST /v1/training-runs) accepts."""

from __future__ import annotations

import dataclasses

import pytest

from core.families import CAPABILITIES, FAMILIES, FAMILY_TABLE
from core.training_config import FIELD_BOUNDS
from core.training_runs import RUN_FIELDS, InvalidConfig, check_config
from service.api.routes.families import list_families
from tests.service.conftest import KEYS

FAMILY_LIST = list_families().model_dump(mode="json")["families"]
BY_NAME = {family["name"]: family for family in FAMILY_LIST}


def test_the_route_lists_every_family_of_the_table(client):
    response = client.get("/v1/families")
    assert response.status_code == 200, response.text
    families = response.json()["families"]
    assert [f["name"] for f in families] == [f.name for f in FAMILY_TABLE]
    assert families == FAMILY_LIST
    for family, row in zip(families, FAMILY_TABLE, strict=True):
        assert family["task"] == row.task
        assert family["dataset_kinds"] == [str(kind) for kind in row.dataset_kinds]
        assert family["title"] == row.title
        for capability in CAPABILITIES:  # each capability flag of the row, as a boolean
            assert family[capability] is getattr(row, capability), capability
        assert family["fine_tunable"] == bool(row.generator_fields)
        assert family["image_sizes"] == list(row.image_sizes)
        assert family["service_defaults"] == row.service_defaults
        assert family["schedule_sets"] == list(row.schedule_sets)
    spec = client.get("/openapi.json").json()
    assert "/v1/families" in spec["paths"]
    described = spec["components"]["schemas"]["FamilyOut"]["properties"]
    assert all(described[capability]["description"] for capability in CAPABILITIES)


def test_the_route_needs_a_key_where_keys_are_set(keyed_gateway):
    with keyed_gateway.client() as anonymous:
        assert anonymous.get("/v1/families").status_code == 401
    with keyed_gateway.client(KEYS[1]) as user:
        assert user.get("/v1/families").json()["families"] == FAMILY_LIST


@pytest.mark.parametrize("name", list(FAMILIES))
def test_the_schema_has_exactly_the_fields_a_run_takes(name):
    family = FAMILIES[name]
    schema = BY_NAME[name]["config_schema"]
    assert schema["type"] == "object" and schema["additionalProperties"] is False
    properties = schema["properties"]
    own = [f.name for f in dataclasses.fields(family.config)]
    run = [f for f in RUN_FIELDS if f not in family.schedule_sets]
    assert list(properties) == run + own  # run options first, then the family's, in order
    for field in run:
        assert properties[field]["x-group"] == "run"
        assert properties[field]["description"], field
    for f in dataclasses.fields(family.config):
        assert properties[f.name]["x-group"] == "family"
        assert properties[f.name]["description"] == f.metadata["help"]
    for field in family.schedule_sets:  # refused by the run, absent from the schema
        with pytest.raises(InvalidConfig):
            check_config(name, {field: 1})


@pytest.mark.parametrize("name", list(FAMILIES))
def test_defaults_are_what_a_run_gets_and_pass_the_check(name):
    family = FAMILIES[name]
    properties = BY_NAME[name]["config_schema"]["properties"]
    for field, value in family.service_defaults.items():
        assert properties[field]["default"] == value
    defaults = {field: prop["default"] for field, prop in properties.items()}
    run, config = check_config(name, defaults)  # every default, given explicitly, is accepted
    for field in RUN_FIELDS:
        if field in properties:
            assert run[field] == defaults[field]
    for f in dataclasses.fields(family.config):
        assert getattr(config, f.name) == defaults[f.name]
    assert check_config(name, {}) == (
        {k: v for k, v in run.items() if k in family.service_defaults},
        config,
    )


def _outside(prop: dict) -> list[object]:
    """Values just outside a field's bounds and choices."""
    values: list[object] = []
    if "minimum" in prop:
        values.append(prop["minimum"] - (1 if prop["type"] == "integer" else 1e-3))
    if "exclusiveMinimum" in prop:
        values.append(prop["exclusiveMinimum"])
    if "maximum" in prop:
        values.append(prop["maximum"] + (1 if prop["type"] == "integer" else 1e-3))
    if "exclusiveMaximum" in prop:
        values.append(prop["exclusiveMaximum"])
    if "enum" in prop:
        values.append(
            max(prop["enum"]) * 2 if prop["type"] == "integer" else "not-" + prop["enum"][0]
        )
    return values


@pytest.mark.parametrize("name", list(FAMILIES))
def test_bounds_and_choices_are_the_checks(name):
    properties = BY_NAME[name]["config_schema"]["properties"]
    checked = 0
    for field, prop in properties.items():
        for value in _outside(prop):
            with pytest.raises(InvalidConfig) as refused:
                check_config(name, {field: value})
            assert refused.value.field in (field, "config")
            checked += 1
        # the edges themselves are accepted
        for keyword in ("minimum", "maximum"):
            if keyword in prop and field != "image_size":
                check_config(name, {field: prop[keyword]})
        if "enum" in prop:
            for value in prop["enum"]:
                check_config(name, {field: value})
    assert checked
    for field, bounds in FIELD_BOUNDS.items():  # every bound of the table is in the schema
        if field in properties:
            keywords = {
                "ge": "minimum",
                "le": "maximum",
                "gt": "exclusiveMinimum",
                "lt": "exclusiveMaximum",
            }
            assert {keywords[k]: v for k, v in bounds.items()}.items() <= properties[field].items()


def test_types_are_json_types():
    kinds = {
        "integer": int,
        "number": (int, float),
        "boolean": bool,
        "string": str,
    }
    for family in FAMILY_LIST:
        for field, prop in family["config_schema"]["properties"].items():
            assert prop["type"] in kinds, field
            assert isinstance(prop["default"], kinds[prop["type"]]), field
            if prop["type"] == "number":
                assert not isinstance(prop["default"], bool)
