"""Write the envelope's JSON Schema to ``docs/message-envelope.schema.json``: ``python -m engine.broker.schema``."""

from __future__ import annotations

import json
import sys
from pathlib import Path

from engine.broker.envelope import json_schema

TARGET = Path(__file__).resolve().parents[2] / "docs" / "message-envelope.schema.json"


def main() -> int:
    TARGET.write_text(json.dumps(json_schema(), indent=2) + "\n")
    print(f"wrote {TARGET}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
