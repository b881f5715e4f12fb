"""Parameter parsing shared by the ``/v1`` handlers: Stripe's checks and error answers for each type."""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any

from sandbox.stripe_sim.errors import invalid_request, missing_param, unknown_param

COMMON = frozenset({"expand"})
LIST_PARAMS = COMMON | {"limit", "starting_after", "ending_before", "created"}


def check_params(params: dict[str, Any], allowed: Iterable[str]) -> None:
    """Refuse any parameter the endpoint does not take (400 ``parameter_unknown``, as Stripe does)."""
    allowed_set = allowed if isinstance(allowed, frozenset | set) else set(allowed)
    for name in params:
        if name not in allowed_set:
            raise unknown_param(name)


def str_param(params: dict[str, Any], name: str, *, required: bool = False, max_length: int = 5000) -> str | None:
    """The string ``params[name]``; None when absent or empty.

    Raises StripeError 400: ``parameter_missing`` when ``required`` and absent, ``parameter_invalid_string`` when not
    a string or longer than ``max_length``.
    """
    value = params.get(name)
    if value is None or value == "":
        if required:
            raise missing_param(name)
        return None
    if not isinstance(value, str):
        raise invalid_request(f"Invalid string: {name}", param=name, code="parameter_invalid_string")
    if len(value) > max_length:
        raise invalid_request(
            f"Invalid string: {value[:20]}...; must be at most {max_length} characters",
            param=name,
            code="parameter_invalid_string",
        )
    return value


def int_param(params: dict[str, Any], name: str, *, required: bool = False) -> int | None:
    """The integer ``params[name]``; None when absent.  Raises StripeError 400 (``parameter_missing`` /
    ``parameter_invalid_integer``)."""
    value = params.get(name)
    if value is None or value == "":
        if required:
            raise missing_param(name)
        return None
    if isinstance(value, str) and re.fullmatch(r"-?\d+", value):
        return int(value)
    raise invalid_request(f"Invalid integer: {value}", param=name, code="parameter_invalid_integer")


def bool_param(params: dict[str, Any], name: str) -> bool | None:
    """``true``/``false`` as a bool; None when absent.  Raises StripeError 400 for any other value."""
    value = params.get(name)
    if value is None or value == "":
        return None
    if value in ("true", "false"):
        return value == "true"
    raise invalid_request(f"Invalid boolean: {value}", param=name, code="parameter_invalid_string")


def enum_param(params: dict[str, Any], name: str, choices: Iterable[str]) -> str | None:
    """The value if it is one of ``choices``; None when absent.  Raises StripeError 400 otherwise."""
    value = str_param(params, name)
    options = tuple(choices)
    if value is not None and value not in options:
        raise invalid_request(
            f"Invalid {name}: must be one of {', '.join(options)}", param=name, code="parameter_invalid_string"
        )
    return value


def str_list_param(params: dict[str, Any], name: str) -> list[str] | None:
    """A list of strings (``a[0]=x`` or ``a[]=x``); None when absent.  Raises StripeError 400 otherwise."""
    value = params.get(name)
    if value is None or value == "":
        return None
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise invalid_request(f"Invalid array: {name}", param=name, code="parameter_invalid_array")
    return value


def metadata_param(params: dict[str, Any], current: dict[str, str] | None = None) -> dict[str, str]:
    """Merge ``metadata`` into ``current`` as Stripe does ("" unsets a key) and enforce Stripe's limits."""
    result = dict(current or {})
    value = params.get("metadata")
    if value is None:
        return result
    if value == "":
        return {}  # metadata="" clears every key
    if not isinstance(value, dict):
        raise invalid_request("Invalid metadata: must be a hash", param="metadata", code="parameter_invalid_string")
    for key, item in value.items():
        if not isinstance(item, str):
            raise invalid_request(f"Invalid metadata[{key}]: must be a string", param=f"metadata[{key}]")
        if len(key) > 40:
            raise invalid_request(
                f"Metadata keys can have up to 40 characters; {key[:40]}... is longer.", param=f"metadata[{key}]"
            )
        if len(item) > 500:
            raise invalid_request(
                f"Metadata values can have up to 500 characters, but you passed in a value that is {len(item)} "
                f"characters. Invalid value: {item[:20]}...",
                param=f"metadata[{key}]",
            )
        if item == "":
            result.pop(key, None)
        else:
            result[key] = item
    if len(result) > 50:
        raise invalid_request("You can have up to 50 metadata keys.", param="metadata")
    return result


def expand_paths(params: dict[str, Any]) -> list[str]:
    """The ``expand`` paths.  Raises StripeError 400 beyond Stripe's four levels."""
    paths = str_list_param(params, "expand") or []
    for path in paths:
        if path.count(".") > 3:
            raise invalid_request(
                f"You cannot expand more than 4 levels of a property. Property: {path}", param="expand"
            )
    return paths


def created_matches(created: int, spec: Any) -> bool:
    """Stripe's ``created`` filter: an exact timestamp or ``{gt, gte, lt, lte}``."""
    if isinstance(spec, str):
        return spec.isdigit() and created == int(spec)
    if isinstance(spec, dict):
        checks = {"gt": created.__gt__, "gte": created.__ge__, "lt": created.__lt__, "lte": created.__le__}
        for op, bound in spec.items():
            if op not in checks or not isinstance(bound, str) or not bound.lstrip("-").isdigit():
                raise invalid_request(f"Invalid created[{op}]", param=f"created[{op}]")
            if not checks[op](int(bound)):
                return False
        return True
    raise invalid_request("Invalid created filter", param="created")
