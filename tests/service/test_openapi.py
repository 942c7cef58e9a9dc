"""The OpenAPI document says what the server does: readable operation ids, every error a
problem (RFC 9457), no FastAPI validation body; and the error bodies really are problems."""

import pytest

OPERATION_IDS = {
    ("post", "/v1/translations"): "createTranslation",
    ("post", "/v1/samples"): "createSample",
    ("post", "/v1/inspections"): "createInspection",
    ("post", "/v1/interpolations"): "createInterpolation",
    ("post", "/v1/projections"): "createProjection",
    ("post", "/v1/training-runs"): "createTrainingRun",
    ("get", "/v1/jobs"): "listJobs",
    ("get", "/v1/jobs/{job_id}"): "getJob",
    ("post", "/v1/jobs/{job_id}/cancel"): "cancelJob",
    ("delete", "/v1/jobs/{job_id}"): "deleteJob",
    ("get", "/v1/jobs/{job_id}/events"): "streamJobEvents",
    ("get", "/v1/jobs/{job_id}/images/{k}"): "getJobImage",
    ("get", "/v1/models"): "listModels",
    ("post", "/v1/models"): "importModel",
    ("get", "/v1/models/{model_id}"): "getModel",
    ("patch", "/v1/models/{model_id}"): "updateModel",
    ("delete", "/v1/models/{model_id}"): "deleteModel",
    ("post", "/v1/models/{model_id}/exports"): "createModelExport",
    ("get", "/v1/models/{model_id}/exports/{format}"): "getModelExport",
    ("get", "/v1/datasets"): "listDatasets",
    ("post", "/v1/datasets"): "createDataset",
    ("get", "/healthz"): "getHealth",
    ("get", "/readyz"): "getReadiness",
}


@pytest.fixture(scope="module")
def spec(gateway):
    import httpx

    return httpx.get(f"{gateway.url}/openapi.json").json()


def operations(spec):
    for path, item in spec["paths"].items():
        for method, operation in item.items():
            yield method, path, operation


def test_operation_ids_are_readable_and_unique(spec):
    found = {(method, path): op["operationId"] for method, path, op in operations(spec)}
    for where, name in OPERATION_IDS.items():
        assert found[where] == name, where
    assert len(set(found.values())) == len(found)
    assert all("_" not in name for name in found.values())


def test_every_error_response_is_a_problem(spec):
    assert "HTTPValidationError" not in spec["components"]["schemas"]
    problem = spec["components"]["schemas"]["Problem"]
    assert {"type", "title", "status", "detail", "code"} <= set(problem["required"])
    for method, path, operation in operations(spec):
        responses = operation["responses"]
        assert "default" in responses, (method, path)
        for status, response in responses.items():
            if status == "default" or int(status) >= 400:
                content = response["content"]
                assert list(content) == ["application/problem+json"], (method, path, status)
                assert content["application/problem+json"]["schema"] == {
                    "$ref": "#/components/schemas/Problem"
                }


def test_the_old_export_route_is_marked_deprecated(spec):
    assert spec["paths"]["/v1/models/{model_id}/export"]["get"]["deprecated"] is True


def test_a_422_lists_every_invalid_field(client):
    response = client.post("/v1/samples", json={"model": "faces", "count": 0, "seed": -1})
    assert response.status_code == 422
    assert response.headers["content-type"] == "application/problem+json"
    problem = response.json()
    assert problem["type"] == "urn:ganserve:problem:invalid_field"
    assert (problem["title"], problem["status"]) == ("Unprocessable Entity", 422)
    assert problem["instance"] == "/v1/samples"
    fields = {e["field"]: e["message"] for e in problem["errors"]}
    assert set(fields) == {"count", "seed"}
    assert all(message.endswith(".") for message in fields.values())
    assert "count" in problem["detail"] and "seed" in problem["detail"]  # the sentence too
    missing = client.post("/v1/samples", json={})
    assert missing.json()["errors"] == [{"field": "model", "message": "Field required."}]


def test_other_errors_have_no_field_list(client):
    response = client.get("/v1/jobs/" + "0" * 32)
    problem = response.json()
    assert problem == {
        "type": "urn:ganserve:problem:job_not_found",
        "title": "Not Found",
        "status": 404,
        "detail": "There is no such job.",
        "code": "job_not_found",
        "instance": "/v1/jobs/" + "0" * 32,
    }


def test_uploads_and_file_answers_are_described_for_generators(spec):
    """A file to upload is `format: binary` (generators send it as a file), an optional form
    field is never null (a form cannot send null), and every file answer has a body schema."""
    schemas = spec["components"]["schemas"]
    for name in ("Body_createTranslation", "Body_createInspection", "Body_importModel"):
        for field, prop in schemas[name]["properties"].items():
            assert "anyOf" not in prop, (name, field)
            if "contentMediaType" in prop:
                assert prop["format"] == "binary", (name, field)
    assert schemas["Body_createTranslation"]["properties"]["seed"]["type"] == "integer"
    for method, path, operation in operations(spec):
        for status, response in operation["responses"].items():
            for media_type, content in response.get("content", {}).items():
                assert content.get("schema"), (method, path, status, media_type)
    old_export = spec["paths"]["/v1/models/{model_id}/export"]["get"]["responses"]["200"]
    assert set(old_export["content"]) == {"application/zip", "application/octet-stream"}
