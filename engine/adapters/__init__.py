"""Adapters: the engine's small interfaces implemented on real services (Redis, …)."""
