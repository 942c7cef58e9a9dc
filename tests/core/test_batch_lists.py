"""The per-model batch lists of `core.jobs.JobStore` on a real Redis."""

from core.jobs import BATCH_LIST_CAP, Job, JobKind, JobStatus, JobStore, batch_list


def test_new_infer_jobs_are_offered_on_their_models_list(redis_client):
    store = JobStore(redis_client)
    jobs = [store.create(Job(kind=JobKind.translation, model="p2p")) for _ in range(3)]
    store.create(Job(kind=JobKind.sample, model="p2p"))  # another kind: another list
    store.create(Job(kind=JobKind.training, model="p2p"))  # training never batches
    store.create(Job(kind=JobKind.translation, model="p2p", status=JobStatus.failed))
    assert batch_list(JobKind.translation, "p2p") == "ganserve:batch:translation:p2p"
    assert store.pop_batch_candidates(JobKind.translation, "p2p", 2) == [j.id for j in jobs[:2]]
    store.drop_batch_candidate(JobKind.translation, "p2p", jobs[2].id)
    assert store.pop_batch_candidates(JobKind.translation, "p2p", 5) == []
    assert store.pop_batch_candidates(JobKind.translation, "p2p", 0) == []
    assert len(store.pop_batch_candidates(JobKind.sample, "p2p", 5)) == 1
    assert not redis_client.exists("ganserve:batch:training:p2p")


def test_a_list_never_outgrows_its_cap(redis_client):
    store = JobStore(redis_client)
    key = batch_list(JobKind.sample, "m")
    redis_client.rpush(key, *[f"old{i}" for i in range(BATCH_LIST_CAP)])
    newest = store.create(Job(kind=JobKind.sample, model="m"))
    assert redis_client.llen(key) == BATCH_LIST_CAP
    assert redis_client.lindex(key, -1).decode() == newest.id
    assert redis_client.ttl(key) > 0
