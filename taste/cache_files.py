"""Files of a taste cache folder, which several evaluations may share at once.

Each file is written under a name of its own and renamed over the old one, so a reader (or a
concurrent writer) sees the old file or the new one, never half of either.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import IO


def replace_atomically(path: Path, write: Callable[[IO[bytes]], None]) -> None:
    """Call `write` on a new file beside `path`, then rename it to `path`."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            write(f)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_json(path: Path, obj: object, **dumps_kwargs) -> None:
    """`obj` as JSON at `path`, replaced atomically."""
    replace_atomically(path, lambda f: f.write(json.dumps(obj, **dumps_kwargs).encode()))
