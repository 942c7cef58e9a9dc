"""`core.jobs.JobStore`'s batched bookkeeping on a real Redis: several records changed in one
transaction, leases and cancellation flags of many jobs in one round trip."""

from core.jobs import Job, JobKind, JobStatus, JobStore, event_channel


def test_update_many_changes_what_change_asks_and_announces_each(redis_client):
    store = JobStore(redis_client)
    jobs = [store.create(Job(kind=JobKind.sample, model="m")) for _ in range(3)]
    store.update(jobs[2].id, status=JobStatus.cancelled)
    listener = redis_client.pubsub()
    listener.subscribe(*[event_channel(j.id) for j in jobs])

    def start(record):
        return None if record["status"] == "cancelled" else {"status": JobStatus.running}

    changed = store.update_many([j.id for j in jobs] + ["gone"], start)
    assert sorted(changed) == sorted(j.id for j in jobs[:2])
    assert [store.get(j.id).status for j in jobs] == ["running", "running", "cancelled"]
    assert all(store.get(j.id).revision == 1 for j in jobs[:2])
    assert store.running_counts()["infer"] == 2
    announced = set()
    while (message := listener.get_message(timeout=1)) is not None:
        if message["type"] == "message":
            announced.add(message["channel"].decode())
    assert announced == {event_channel(j.id) for j in jobs[:2]}
    assert store.update_many([], start) == {}


def test_update_many_reads_again_when_another_writer_got_in_first(redis_client):
    store = JobStore(redis_client)
    job = store.create(Job(kind=JobKind.sample, model="m"))
    other, seen = JobStore(redis_client), []  # its writes go over another connection

    def change(record):
        seen.append(record["status"])
        if len(seen) == 1:  # another worker cancels the job between the read and the write
            other.update(job.id, status=JobStatus.cancelled)
        return None if record["status"] == "cancelled" else {"status": JobStatus.running}

    assert store.update_many([job.id], change) == {}
    assert seen == ["queued", "cancelled"] and store.get(job.id).status == JobStatus.cancelled


def test_leases_of_many_jobs_are_taken_renewed_and_given_back_together(redis_client):
    store = JobStore(redis_client)
    assert store.acquire_lease("c", "other", 30)
    assert store.acquire_leases(["a", "b", "c"], "me", 30) == {"a", "b"}
    assert store.acquire_leases(["a", "b", "c"], "me", 60) == {"a", "b"}  # renewed
    assert redis_client.ttl("ganserve:lease:a") > 30
    store.release_leases(["a", "b", "c"], "me")
    assert not store.lease_held("a") and not store.lease_held("b") and store.lease_held("c")
    assert store.acquire_leases([], "me", 30) == set()


def test_cancellation_flags_of_many_jobs_in_one_read(redis_client):
    store = JobStore(redis_client)
    store.request_cancel("b")
    assert store.cancels_requested(["a", "b", "c"]) == {"b"}
    assert store.cancels_requested([]) == set()
