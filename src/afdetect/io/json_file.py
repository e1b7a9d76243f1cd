"""Reading the JSON files afdetect writes (scans, review sidecars) back, untrusted."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from afdetect.errors import InputError


def read_json(path: str | Path, what: str) -> Any:
    """The JSON document in ``path``, a ``what`` ("scan file", "review sidecar").

    Raises :class:`InputError` naming the file when it is missing or not readable JSON
    (the parser's first line says where); the document's shape is the caller's to check.
    """
    path = Path(path)
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise InputError(path, f"no such {what}") from None
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        raise InputError(path, f"unreadable {what} ({str(exc).splitlines()[0]})") from None
