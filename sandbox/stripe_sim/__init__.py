"""A local Stripe-compatible server for development, tests and demos (``payments sim stripe``).

The official ``stripe`` SDK works against it unchanged (point ``api_base`` / ``base_addresses["api"]`` at
:meth:`StripeSandbox.start`'s URL).  See ``docs/stripe-sandbox.md``.
"""

from __future__ import annotations

from sandbox.stripe_sim.server import StripeSandbox

__all__ = ["StripeSandbox"]
