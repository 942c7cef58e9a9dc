"""The torch-free core every ganserve process shares: the facts that cross a process boundary.

Job kinds, queues, task names and job records (`core.jobs`), what waits in a queue
(`core.queues`), the settings (`core.settings`) and the storage layout (`core.storage`). It
imports no torch and no other project package; `models`, `training`, `service` and `workers`
import these facts from here instead of restating them.
"""
