"""A small validator for the Stripe OpenAPI subset in ``tests/data/stripe-openapi-subset.json``.

It walks ``$ref``s, ``anyOf``, ``nullable``, ``type``, ``enum``, ``maxLength``, ``required``, ``properties``,
``additionalProperties`` and ``items`` (the OpenAPI 3.0 keywords that subset uses).  A ``$ref`` to a component the
subset does not include accepts any object (the subset is deliberately partial).
"""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path
from typing import Any

SUBSET = Path(__file__).resolve().parents[3] / "data" / "stripe-openapi-subset.json"
_TYPES = {
    "string": str,
    "integer": int,
    "number": (int, float),
    "boolean": bool,
    "object": dict,
    "array": list,
}


@cache
def spec() -> dict[str, Any]:
    data: dict[str, Any] = json.loads(SUBSET.read_text())
    return data


def validate(instance: Any, schema_name: str) -> list[str]:
    """Every violation of component ``schema_name`` by ``instance`` (empty when it conforms)."""
    return _check(instance, spec()["schemas"][schema_name], schema_name)


def _resolve(ref: str) -> dict[str, Any] | None:
    name = ref.rsplit("/", 1)[-1]
    schema: dict[str, Any] | None = spec()["schemas"].get(name)
    return schema


def _check(value: Any, schema: dict[str, Any], path: str) -> list[str]:
    if "$ref" in schema:
        target = _resolve(schema["$ref"])
        if target is None:
            return [] if isinstance(value, dict) else [f"{path}: expected an object for {schema['$ref']}"]
        return _check(value, target, path)
    if value is None:
        return [] if schema.get("nullable") else [f"{path}: null is not allowed"]
    if "anyOf" in schema:
        branches = [_check(value, branch, path) for branch in schema["anyOf"]]
        if any(not errors for errors in branches):
            return []
        return [f"{path}: matches no anyOf branch ({'; '.join(e[0] for e in branches if e)})"]
    errors: list[str] = []
    expected = schema.get("type")
    if expected is not None:
        python_type = _TYPES[expected]
        if isinstance(value, bool) and expected in ("integer", "number"):
            return [f"{path}: expected {expected}, got boolean"]
        if not isinstance(value, python_type):  # type: ignore[arg-type]
            return [f"{path}: expected {expected}, got {type(value).__name__}"]
    if "enum" in schema and value not in schema["enum"]:
        errors.append(f"{path}: {value!r} not in {schema['enum']}")
    if isinstance(value, str) and "maxLength" in schema and len(value) > schema["maxLength"]:
        errors.append(f"{path}: longer than {schema['maxLength']}")
    if isinstance(value, dict):
        for key in schema.get("required", []):
            if key not in value:
                errors.append(f"{path}: missing required {key!r}")
        properties = schema.get("properties", {})
        for key, item in value.items():
            if key in properties:
                errors.extend(_check(item, properties[key], f"{path}.{key}"))
            elif isinstance(schema.get("additionalProperties"), dict):
                errors.extend(_check(item, schema["additionalProperties"], f"{path}.{key}"))
    if isinstance(value, list) and "items" in schema:
        for i, item in enumerate(value):
            errors.extend(_check(item, schema["items"], f"{path}[{i}]"))
    return errors


def known_fields(resource: str) -> set[str]:
    """Field names the spec or the SDK 16 cross-check know for ``resource``."""
    names = set(spec()["schemas"][resource].get("properties", {}))
    sdk = spec()["sdk_16_1_0_crosscheck"]["resources"].get(resource, {}).get("fields", {})
    names |= {n for n in sdk if n != "OBJECT_NAME"}
    return names
