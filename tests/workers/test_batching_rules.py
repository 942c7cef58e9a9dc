"""`workers.batching.run_batched` on a real Redis with a stand-in for the network work: who
gets taken, and how one job's failure stays its own."""

from __future__ import annotations

from types import SimpleNamespace

import torch

from core.jobs import JobKind, JobStatus, batch_list
from workers.batching import Prepared, run_batched
from workers.errors import JobFailure
from workers.jobs import JobContext, Outcome, begin_attempt


class Work:
    """Doubles each job's `value`; a forward pass holding a `poison` job fails as a whole."""

    def __init__(self) -> None:
        self.passes: list[list[str]] = []

    def load(self, ctx: JobContext):
        return SimpleNamespace(device=torch.device("cpu"))

    def prepare(self, ctx: JobContext, loaded) -> Prepared:
        if ctx.job.params.get("unreadable"):
            raise JobFailure("bad_image", "the uploaded image could not be read")
        return Prepared(ctx, ("one shape",), 1, ctx.job.params)

    def run(self, loaded, members: list[Prepared]) -> list[int]:
        self.passes.append([m.ctx.job_id for m in members])
        if any(m.data.get("poison") for m in members):
            raise ValueError("this input breaks the network")
        return [2 * m.data["value"] for m in members]

    def finish(self, prepared: Prepared, output: int) -> Outcome:
        return Outcome(JobStatus.succeeded, {"value": output})


def leader_of(make_context, **params) -> JobContext:
    ctx = make_context(JobKind.sample, "m", **params)
    ctx.job = begin_attempt(ctx.store, ctx.job_id, 3)  # as run_job does under the lease
    ctx.max_attempts = 3
    return ctx


def test_a_failing_batch_runs_its_jobs_one_by_one_and_fails_only_the_culprit(make_context):
    leader = leader_of(make_context, value=1)
    others = [make_context(JobKind.sample, "m", value=v) for v in (2, 3)]
    poison = make_context(JobKind.sample, "m", value=4, poison=True)
    unreadable = make_context(JobKind.sample, "m", unreadable=True)
    work = Work()
    outcome = run_batched(leader, work)
    assert outcome.result == {"value": 2}
    store = leader.store
    assert [store.get(o.job_id).result for o in others] == [{"value": 4}, {"value": 6}]
    assert store.get(poison.job_id).status == JobStatus.failed
    assert store.get(unreadable.job_id).error.code == "bad_image"
    assert len(work.passes[0]) == 4 and all(len(p) == 1 for p in work.passes[1:])
    for job in (*others, poison, unreadable):
        assert store.get(job.job_id).attempts == 1
        assert not store.lease_held(job.job_id)  # given back


def test_only_waiting_jobs_are_taken(make_context, redis_client):
    leader = leader_of(make_context, value=1)
    died = make_context(JobKind.sample, "m", value=2)
    died.store.update(died.job_id, status=JobStatus.running, attempts=1)  # its worker died
    held = make_context(JobKind.sample, "m", value=3)
    assert held.store.acquire_lease(held.job_id, "another-worker", 30)
    cancelled = make_context(JobKind.sample, "m", value=4)
    cancelled.store.request_cancel(cancelled.job_id)
    redis_client.rpush(batch_list(JobKind.sample, "m"), "no-such-job")
    other_model = make_context(JobKind.sample, "n", value=5)
    other_weights = make_context(JobKind.sample, "m", value=6)  # pinned to other content
    other_weights.store.update(other_weights.job_id, model_digest="sha256:other")
    work = Work()
    run_batched(leader, work)
    assert work.passes == [[leader.job_id]]
    store = leader.store
    assert store.get(died.job_id).status == JobStatus.running  # left to its own message
    assert store.get(held.job_id).status == JobStatus.queued
    assert store.get(cancelled.job_id).status == JobStatus.cancelled
    assert store.get(other_model.job_id).status == JobStatus.queued
    assert store.get(other_weights.job_id).status == JobStatus.queued  # its own message checks it


def test_a_retried_leader_runs_alone(make_context):
    leader = leader_of(make_context, value=1)
    leader.job = leader.store.update(leader.job_id, attempts=2)
    waiting = make_context(JobKind.sample, "m", value=2)
    work = Work()
    run_batched(leader, work)
    assert work.passes == [[leader.job_id]]
    assert leader.store.get(waiting.job_id).status == JobStatus.queued


def test_a_job_cancelled_while_its_batch_runs_ends_cancelled(make_context):
    leader = leader_of(make_context, value=1)
    mate = make_context(JobKind.sample, "m", value=2)

    class CancelsTheMate(Work):
        def run(self, loaded, members):
            mate.store.request_cancel(mate.job_id)  # asked while the forward pass runs
            return super().run(loaded, members)

    outcome = run_batched(leader, CancelsTheMate())
    assert outcome.status == JobStatus.succeeded
    ended = leader.store.get(mate.job_id)
    assert ended.status == JobStatus.cancelled and ended.result == {}
