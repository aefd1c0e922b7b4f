"""Files replaced whole: the one way this project writes a file that something may read, rewrite or lose.

The new content goes to a temporary file beside the target and is renamed over it (a rename within one
folder is atomic), so a reader, a concurrent writer or an interruption sees the old file or the new one,
never half of either. A failed write removes its temporary file and leaves the old file as it was.
"""

from __future__ import annotations

import json
import os
import secrets
from collections.abc import Callable
from pathlib import Path
from typing import IO


def replace_atomically(
    path: str | os.PathLike[str],
    write: Callable[[IO[bytes]], object],
    *,
    fsync: bool = False,
    sole_writer: bool = False,
) -> None:
    """Call `write` on a new binary file beside `path`, then rename that file to `path`.

    Args:
        path: The file to replace (its folder is created when missing).
        write: Writes the whole content to the open file it is given.
        fsync: Flush the content to disk before the rename, so that it survives a power cut too.
        sole_writer: The caller is the only process that writes `path`: the temporary file is
            `<name>.part`, which the next write reuses when a killed one left it behind (worth it
            for large files). Otherwise it gets a unique hidden name, `.<name>.<random>.tmp`, so
            that concurrent writers never share one.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    if sole_writer:
        tmp, mode = path.with_name(f"{path.name}.part"), "wb"
    else:  # exclusive create of a random name: as unique as mkstemp, with the permissions open() gives
        tmp, mode = path.with_name(f".{path.name}.{secrets.token_hex(6)}.tmp"), "xb"
    try:
        with open(tmp, mode) as f:
            write(f)
            if fsync:
                f.flush()
                os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def write_json_atomic(path: str | os.PathLike[str], obj: object, **dumps_kwargs: object) -> None:
    """`obj` as UTF-8 JSON at `path`, replaced atomically; `dumps_kwargs` go to `json.dumps` (indent, ...)."""
    replace_atomically(path, lambda f: f.write(json.dumps(obj, **dumps_kwargs).encode()))
