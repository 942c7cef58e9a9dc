"""End-to-end tests: the processes `ganserve up` and Compose start, driven over HTTP."""
