"""A benchmark's result record: the command that made it first, printed and optionally written as JSON."""

from __future__ import annotations

import json
import shlex
import sys
from pathlib import Path


def publish(script: str, argv: list[str] | None, fields: dict, out: Path | None) -> dict:
    """{"command": ..., **fields} printed, and written to `out` when given; `script` is the script's __file__."""
    name = Path(script).resolve().relative_to(Path(__file__).resolve().parents[1]).as_posix()
    record = {"command": shlex.join(["python", name, *(argv if argv is not None else sys.argv[1:])]), **fields}
    print(json.dumps(record, indent=1))
    if out:
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(record, indent=1) + "\n")
    return record
