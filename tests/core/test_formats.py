"""Folders and records written before the core package existed still load, unchanged.

`data/v1/` was written by the code of this project before the move to `core`: a U-Net GAN
model folder with its discriminator, the output its generator gave on fixed inputs, and one job
record of each kind as the gateway and workers stored them (translations then kept the upload's
path in `params.input`, results listed their image URLs).
"""

from __future__ import annotations

from pathlib import Path

import torch
from safetensors.torch import load_file

import models
from core.jobs import Job, JobKind, JobStatus
from core.model_folder import has_discriminator, read_card_json
from core.params import parse_params
from core.public_jobs import public_job

DATA = Path(__file__).parent / "data" / "v1"


def test_an_old_model_folder_loads_and_computes_the_same():
    folder = DATA / "model"
    card = read_card_json(folder)
    assert card["family"] == "unetgan" and has_discriminator(folder, card)
    generator = models.load(folder)
    assert models.load_discriminator(folder) is not None
    expected = load_file(str(DATA / "expected_output.safetensors"))
    with torch.no_grad():
        y = generator(expected["z"], expected["labels"])
    assert torch.allclose(y, expected["y"], atol=1e-5)  # same weights, same network


def test_old_job_records_parse_and_answer_as_before():
    lines = (DATA / "jobs.jsonl").read_text().splitlines()
    jobs = {job.kind: job for job in map(Job.model_validate_json, lines)}
    assert set(jobs) == {  # every kind there was when these records were written
        JobKind.translation,
        JobKind.sample,
        JobKind.training,
        JobKind.inspection,
    }
    for job in jobs.values():
        parse_params(job.kind, job.params)  # the typed params accept every old record
    translation = public_job(jobs[JobKind.translation]).model_dump(mode="json")
    assert translation["status"] == JobStatus.succeeded
    assert translation["result"]["images"] == [f"/v1/jobs/{'a' * 32}/images/0"]
    assert translation["result"]["mode"] is None  # written before the two modes
    assert "input" not in translation["params"]  # a storage path, never shown
    assert parse_params(JobKind.sample, jobs[JobKind.sample].params).class_label == 1
    training = parse_params(JobKind.training, jobs[JobKind.training].params)
    assert training.background and training.config == {"steps": 10}
