"""core.jobs: the per-owner queued index (`JobStore.queued_count`) on a real Redis, and the fair
priority of a new job."""

from core.jobs import FAIR_SHARE_STEP, Job, JobKind, JobStatus, JobStore, fair_priority


def test_fair_priority_steps_behind_other_owners():
    step = FAIR_SHARE_STEP
    assert [fair_priority(n) for n in (0, step - 1, step)] == [0, 0, 3]
    assert [fair_priority(n) for n in (4 * step - 1, 4 * step, 16 * step, 10**6)] == [3, 6, 9, 9]


def test_the_queued_index_follows_each_status_change(redis_client):
    store = JobStore(redis_client)
    jobs = [store.create(Job(owner="alice", kind=JobKind.sample)) for _ in range(3)]
    store.create(Job(owner="alice", kind=JobKind.training))  # another queue
    store.create(Job(owner="bob", kind=JobKind.sample))  # another owner
    assert store.queued_count("alice", "infer") == 3
    store.update(jobs[0].id, status=JobStatus.running)
    assert store.queued_count("alice", "infer") == 2
    store.update(jobs[0].id, status=JobStatus.queued)  # handed back to the queue
    assert store.queued_count("alice", "infer") == 3
    store.update(jobs[1].id, status=JobStatus.cancelled)
    store.delete(jobs[2].id)
    assert store.queued_count("alice", "infer") == 1
    assert store.queued_count("alice", "train") == store.queued_count("bob", "infer") == 1


def test_an_entry_left_behind_is_dropped_when_counted(redis_client):
    store = JobStore(redis_client)
    kept, lost = (store.create(Job(owner="carol", kind=JobKind.translation)) for _ in range(2))
    redis_client.delete(store._key(lost.id))  # its record gone without the index hearing of it
    assert store.queued_count("carol", "infer") == 1
    assert redis_client.zrange(store._queued_key("carol", "infer"), 0, -1) == [kept.id.encode()]


def test_a_job_sent_again_keeps_its_owners_fair_share(redis_client):
    store = JobStore(redis_client)
    jobs = [
        store.create(Job(owner="dave", kind=JobKind.sample)) for _ in range(FAIR_SHARE_STEP + 1)
    ]
    assert store.fair_priority_again(jobs[0]) == 3  # 8 others wait: behind other owners' first
    lone = store.create(Job(owner="erin", kind=JobKind.sample))
    assert store.fair_priority_again(lone) == 0
