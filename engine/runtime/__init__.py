"""Process wiring: the composition root, where the stack's parts live, the worker process, logs, metrics, liveness."""
