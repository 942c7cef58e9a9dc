"""ganserve, the top layer: the `ganserve` command, the supervised one-command stack
(`launcher`), the process command lines shared with Compose (`processes`), the embedded Redis and
the demo models' bootstrap. Everything the processes share lives below, in `core`."""
