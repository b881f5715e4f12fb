"""Dramatiq actors: thin bindings of queues to pipeline runners.  Importing this package declares them all."""

from actors import notifications, payments, refunds, settlements, subscriptions, webhooks

__all__ = ["notifications", "payments", "refunds", "settlements", "subscriptions", "webhooks"]
