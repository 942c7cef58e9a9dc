"""GET /v1/models and GET /v1/models/{id}."""

from tests.service.factories import TEST_MODELS


def test_list_models(client, gateway):
    # a folder without weights, a hidden one and one with broken JSON are not models
    (gateway.data_dir / "models" / "half-written").mkdir(exist_ok=True)
    (gateway.data_dir / "models" / "half-written" / "config.json").write_text("{}")
    broken = gateway.data_dir / "models" / "broken"
    broken.mkdir(exist_ok=True)
    (broken / "config.json").write_text("{not json")
    (broken / "model.safetensors").write_bytes(b"x")

    response = client.get("/v1/models")
    assert response.status_code == 200
    models = {m["id"]: m for m in response.json()["models"]}
    assert set(models) == set(TEST_MODELS)
    digits = models["digits"]
    assert digits["family"] == "pggan"
    assert digits["task"] == "sample"
    assert digits["classes"] == 10
    assert digits["image_size"] == 64
    assert digits["channels"] == 3
    assert digits["metrics"] == {"fid": 42.0}
    assert digits["run"] == "run-digits"
    assert digits["architecture"] == "pggan_generator"
    assert digits["created"].endswith("Z")


def test_get_model(client):
    response = client.get("/v1/models/facades")
    assert response.status_code == 200
    assert response.json()["task"] == "translate"


def test_unknown_model_is_404(client):
    for model_id in ("nope", ".hidden", "half-written"):
        response = client.get(f"/v1/models/{model_id}")
        assert response.status_code == 404, model_id
        assert response.json()["error"]["code"] == "not_found"
