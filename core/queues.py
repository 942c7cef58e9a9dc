"""What waits in a Celery queue on the Redis broker: how many messages, and for which jobs.

Torch-free, shared by the gateway (429 when a queue is full) and the training worker (a
background run yields when other work waits). kombu's Redis transport keeps a queue's messages in
a list named after the queue; messages sent with a priority go to lists named
"<queue>\\x06\\x16<priority>" (its default priority steps). Each message is JSON whose headers
carry the task id, which is the job id (`service.jobs.enqueue` sends `task_id=job.id`).
"""

from __future__ import annotations

import json
from collections.abc import Iterable

import redis

PRIORITY_SEPARATOR = "\x06\x16"
PRIORITY_STEPS = (3, 6, 9)


def queue_lists(queue: str) -> list[str]:
    """The Redis lists of a Celery queue: its own, then one per priority step."""
    return [queue, *(f"{queue}{PRIORITY_SEPARATOR}{step}" for step in PRIORITY_STEPS)]


def priority_list(queue: str, priority: int) -> str:
    """The list of a Celery queue that holds its messages of `priority` (0 first, 9 last): the
    queue's own for 0 to 2, else "<queue>\\x06\\x16<step>" of the step at or below it, as kombu's
    Redis transport files them."""
    step = max((s for s in PRIORITY_STEPS if s <= priority), default=0)
    return f"{queue}{PRIORITY_SEPARATOR}{step}" if step else queue


def queue_length(client: redis.Redis, queue: str) -> int:
    """Messages waiting in a Celery queue (all priority lists)."""
    pipe = client.pipeline(transaction=False)
    for name in queue_lists(queue):
        pipe.llen(name)
    return sum(pipe.execute())


def queue_lengths(client: redis.Redis, queues: Iterable[str]) -> dict[str, int]:
    """Messages waiting in each of `queues` (all priority lists), in one round trip."""
    names = list(queues)
    pipe = client.pipeline(transaction=False)
    for queue in names:
        for name in queue_lists(queue):
            pipe.llen(name)
    counts = iter(pipe.execute())
    return {queue: sum(next(counts) for _ in queue_lists(queue)) for queue in names}


def waiting_job_ids(client: redis.Redis, queue: str) -> list[str]:
    """The job ids of the messages waiting in a Celery queue (unreadable messages left out)."""
    pipe = client.pipeline(transaction=False)
    for name in queue_lists(queue):
        pipe.lrange(name, 0, -1)
    ids = []
    for raw in (message for messages in pipe.execute() for message in messages):
        try:
            task_id = json.loads(raw)["headers"]["id"]
        except (ValueError, KeyError, TypeError):
            continue
        if isinstance(task_id, str):
            ids.append(task_id)
    return ids


# KEYS: a queue's lists; ARGV: window, then job ids. Removes, from the last `window` messages of
# each list (the next to be delivered: kombu pushes on the left and pops on the right), every
# message whose task id is one of the ids; returns the ids whose message it removed.
_REMOVE_MESSAGES = """
local wanted = {}
for i = 2, #ARGV do wanted[ARGV[i]] = true end
local removed = {}
for _, key in ipairs(KEYS) do
  for _, message in ipairs(redis.call('LRANGE', key, -tonumber(ARGV[1]), -1)) do
    for i = 2, #ARGV do
      if string.find(message, ARGV[i], 1, true) then
        local ok, decoded = pcall(cjson.decode, message)
        local id = ok and type(decoded) == 'table' and type(decoded.headers) == 'table'
          and decoded.headers.id
        if id and wanted[id] then
          redis.call('LREM', key, -1, message)
          removed[#removed + 1] = id
        end
        break
      end
    end
  end
end
return removed
"""

REMOVE_WINDOW = 512  # messages looked at per priority list


def remove_waiting(
    client: redis.Redis, queue: str, job_ids: list[str], window: int = REMOVE_WINDOW
) -> set[str]:
    """Remove the waiting messages of `job_ids` from a Celery queue (all priority lists), looking
    at the `window` messages of each list that are delivered next; the ids whose message was
    removed. A job a worker took from its batch list this way costs no delivery later
    (`workers.batching`); one whose message lies deeper is delivered and finds itself ended."""
    if not job_ids:
        return set()
    lists = queue_lists(queue)
    found = client.eval(_REMOVE_MESSAGES, len(lists), *lists, window, *job_ids)
    return {i.decode() if isinstance(i, bytes) else i for i in found}
