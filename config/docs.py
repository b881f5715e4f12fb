"""Render the settings reference (the README's configuration table) from the settings model itself.

``python -m config.docs`` prints the table; a unit test keeps the README in step with it.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, SecretStr
from pydantic.fields import FieldInfo

from config.settings import Settings, env_name


def _default(field: FieldInfo) -> str:
    value: Any = field.get_default(call_default_factory=True)
    if value is None:
        return "–"
    if isinstance(value, SecretStr):
        return "(secret)"
    if value == "":
        return "(empty)"
    if isinstance(value, bool):
        return "true" if value else "false"
    return f"`{value}`"


def rows() -> list[tuple[str, str, str, bool]]:
    """(environment variable, default, description, is_secret) for every setting, in model order."""
    out: list[tuple[str, str, str, bool]] = []
    for name, field in Settings.model_fields.items():
        annotation = field.annotation
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            for sub_name, sub_field in annotation.model_fields.items():
                secret = "SecretStr" in str(sub_field.annotation)
                out.append((env_name(f"{name}.{sub_name}"), _default(sub_field), sub_field.description or "", secret))
        else:
            out.append((env_name(name), _default(field), field.description or "", False))
    return out


def markdown_table() -> str:
    """The configuration table in Markdown."""
    lines = ["| variable | default | meaning |", "| --- | --- | --- |"]
    for env, default, description, secret in rows():
        meaning = description + (" *(secret: printed masked)*" if secret else "")
        if env == "PAYMENTS_DATA_DIR":
            default = "`<checkout>/var`, installed: `~/.local/state/payments-engine`"
        lines.append(f"| `{env}` | {default} | {meaning} |")
    return "\n".join(lines)


if __name__ == "__main__":  # pragma: no cover
    print(markdown_table())
