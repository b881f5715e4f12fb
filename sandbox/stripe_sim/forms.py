"""Decode Stripe's form encoding (``application/x-www-form-urlencoded`` with nested keys).

Stripe's SDKs send ``metadata[job_id]=42``, ``payment_method_types[0]=card`` and ``expand[]=latest_charge``; this
module turns such a body (or query string) into nested ``dict``/``list`` values of strings.  A dictionary whose keys
are all decimal indices becomes a list ordered by index, as Stripe reads it.
"""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import parse_qsl

from sandbox.stripe_sim.errors import invalid_request

__all__ = ["decode_form", "encode_form"]

_KEY = re.compile(r"^([^\[\]]+)((?:\[[^\[\]]*\])*)$")
_SEGMENT = re.compile(r"\[([^\[\]]*)\]")


def decode_form(raw: str | bytes) -> dict[str, Any]:
    """Decode a form body or query string into nested values.

    Raises :class:`sandbox.stripe_sim.errors.StripeError` (400 ``invalid_request_error``) for a malformed key or
    for a key used both as a scalar and as a container (``a=1&a[b]=2``).
    """
    text = raw.decode("utf-8", errors="replace") if isinstance(raw, bytes) else raw
    root: dict[str, Any] = {}
    for key, value in parse_qsl(text, keep_blank_values=True):
        match = _KEY.match(key)
        if match is None:
            raise invalid_request(f"Invalid parameter name: {key}", param=key, code="parameter_invalid_string")
        path: list[str] = [match.group(1), *_SEGMENT.findall(match.group(2))]
        _insert(root, path, value, key)
    result = _listify(root)
    assert isinstance(result, dict)
    return result


def _insert(node: dict[str, Any], path: list[str], value: str, key: str) -> None:
    for depth, segment in enumerate(path):
        last = depth == len(path) - 1
        if segment == "":
            # "a[]=x" appends; give the element the next free index so _listify keeps the order.
            segment = str(sum(1 for k in node if k.isdigit()))
        if last:
            if isinstance(node.get(segment), dict):
                raise invalid_request(f"Invalid value for {key}: expected a hash or an array", param=key)
            node[segment] = value
            return
        child = node.setdefault(segment, {})
        if not isinstance(child, dict):
            raise invalid_request(f"Invalid value for {key}: {path[0]} was given as a string", param=key)
        node = child


def _listify(value: Any) -> Any:
    if not isinstance(value, dict):
        return value
    converted = {k: _listify(v) for k, v in value.items()}
    if converted and all(k.isdigit() for k in converted):
        return [converted[k] for k in sorted(converted, key=int)]
    return converted


def encode_form(params: dict[str, Any]) -> str:
    """Encode nested values the way Stripe's SDKs do (used by tests and the benchmark)."""
    from urllib.parse import urlencode

    pairs: list[tuple[str, str]] = []

    def walk(prefix: str, value: Any) -> None:
        if isinstance(value, dict):
            for k, v in value.items():
                walk(f"{prefix}[{k}]" if prefix else str(k), v)
        elif isinstance(value, list | tuple):
            for i, v in enumerate(value):
                walk(f"{prefix}[{i}]", v)
        elif isinstance(value, bool):
            pairs.append((prefix, "true" if value else "false"))
        elif value is None:
            pairs.append((prefix, ""))
        else:
            pairs.append((prefix, str(value)))

    walk("", params)
    return urlencode(pairs)
