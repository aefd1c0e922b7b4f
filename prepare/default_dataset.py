"""The one place where "no dataset folder given" means the demo world; only the entry points call it."""

from __future__ import annotations

from pathlib import Path


def dataset_root(root: str | Path | None) -> Path:
    """`root`, or the demo world's folder (built on first use) when it is None or empty."""
    if root:
        return Path(root)
    from prepare.demo import ensure_demo_world  # the synthesiser's imports only when the demo world is used

    return ensure_demo_world()
