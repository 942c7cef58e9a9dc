"""The torch-free core every ganserve process shares: the facts that cross a process boundary.

Job kinds, queues, task names and job records (`core.jobs`), typed job parameters
(`core.params`), what waits in a queue (`core.queues`), the one family table (`core.families`),
training configs and their checks (`core.training_config`, `core.training_runs`), the model-folder
format (`core.model_folder`), dataset layout (`core.datasets`), the storage layout
(`core.storage`) and the settings (`core.settings`). It imports no torch and no other project
package; `models`, `training`, `service` and `workers` import these facts from here instead of
restating them (import-linter contracts in pyproject.toml).
"""
