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
    assert digits["family"] == "unetgan"
    assert digits["task"] == "sample"
    assert digits["classes"] == 10
    assert digits["image_size"] == 64
    assert digits["channels"] == 3
    assert digits["metrics"] == {"fid": 42.0}
    assert digits["run"] == "run-digits"
    assert digits["architecture"] == "unetgan-generator"
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


def test_examples_are_the_held_out_inputs_of_the_models_dataset(client, gateway, tmp_path):
    """The page's one-click examples: the input half of each val pair, as PNG."""
    import io
    import json

    from PIL import Image

    from tests.service.factories import write_model_folder
    from training.demo import build_demo

    data = build_demo(
        "grey2colour", gateway.data_dir / "datasets" / "ds-examples", size=16, count=30
    )
    assert len(list((data / "val").iterdir())) == 2
    folder = write_model_folder(
        gateway.data_dir / "models",
        "colouriser",
        architecture="pix2pix-generator",
        family="pix2pix",
        task="translate",
    )
    card = json.loads((folder / "config.json").read_text())
    card["provenance"] |= {"dataset": "ds-examples", "training": {"direction": "AtoB"}}
    (folder / "config.json").write_text(json.dumps(card))
    try:
        info = client.get("/v1/models/colouriser").json()
        assert info["dataset"] == "ds-examples" and info["examples"] == 2
        urls = client.get("/v1/models/colouriser/examples").json()["examples"]
        assert urls == ["/v1/models/colouriser/examples/0", "/v1/models/colouriser/examples/1"]
        response = client.get(urls[1])
        assert response.status_code == 200 and response.headers["content-type"] == "image/png"
        image = Image.open(io.BytesIO(response.content))
        val = sorted((data / "val").iterdir())[1]
        expected = Image.open(val).crop((0, 0, 16, 16))
        assert image.size == (16, 16) and image.tobytes() == expected.convert(image.mode).tobytes()
        missing = client.get("/v1/models/colouriser/examples/2")
        assert missing.status_code == 404 and missing.json()["error"]["code"] == "not_found"
        assert client.get("/v1/models/nope/examples").status_code == 404
        assert client.get("/v1/models/facades/examples").json() == {"examples": []}
    finally:
        import shutil

        shutil.rmtree(folder)
        shutil.rmtree(data)
