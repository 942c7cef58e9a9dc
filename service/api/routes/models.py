"""The models available for translation and sampling."""

from __future__ import annotations

from fastapi import APIRouter, Response

from service.api.deps import SettingsDep
from service.catalog import ModelInfo, list_models, read_model
from service.errors import ApiError
from service.examples import example_png, example_sources
from service.schemas import ExampleList, ModelList, error_responses

router = APIRouter(prefix="/models", tags=["models"])


@router.get("", responses=error_responses(401))
def get_models(settings: SettingsDep) -> ModelList:
    """Every model: id, family, task, image size, channels, classes, metrics, the run behind it."""
    return ModelList(models=list_models(settings.models_dir))


@router.get("/{model_id}", responses=error_responses(401, 404))
def get_model(model_id: str, settings: SettingsDep) -> ModelInfo:
    """One model; 404 `not_found` when there is no model of that id."""
    info = read_model(settings.models_dir, model_id)
    if info is None:
        raise ApiError(404, "not_found", f"There is no model {model_id!r}.")
    return info


def _sources(model_id: str, settings: SettingsDep) -> tuple[ModelInfo, list]:
    info = get_model(model_id, settings)
    if info.dataset is None:
        return info, []
    return info, example_sources(settings.data_dir / "datasets" / info.dataset, info.direction)


@router.get("/{model_id}/examples", responses=error_responses(401, 404))
def get_examples(model_id: str, settings: SettingsDep) -> ExampleList:
    """Example inputs of a translation model: its dataset's held-out inputs (may be empty)."""
    info, sources = _sources(model_id, settings)
    return ExampleList(examples=[f"/v1/models/{info.id}/examples/{k}" for k in range(len(sources))])


@router.get(
    "/{model_id}/examples/{index}",
    responses={**error_responses(401, 404), 200: {"content": {"image/png": {}}}},
    response_class=Response,
)
def get_example(model_id: str, index: int, settings: SettingsDep) -> Response:
    """Example input `index` as PNG; 404 `not_found` past the last one."""
    _, sources = _sources(model_id, settings)
    if not 0 <= index < len(sources):
        raise ApiError(404, "not_found", f"Model {model_id!r} has no example {index}.")
    return Response(example_png(*sources[index]), media_type="image/png")
