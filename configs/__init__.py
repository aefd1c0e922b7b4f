"""Config files live here; bare names on any command line (`--config wns.yaml`) resolve to this folder."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from recommenders.base import Recommender

CONFIG_DIR = Path(__file__).resolve().parent
BASELINES = "baselines.yaml"


def find_config(name: str) -> Path:
    """A path as given if it exists, else the file of that name in `configs/`."""
    path = Path(name)
    if path.exists():
        return path
    if (CONFIG_DIR / path).exists():
        return CONFIG_DIR / path
    raise FileNotFoundError(f"config {name!r} not found here or in {CONFIG_DIR}")


def command_line(args: list[str] | None = None) -> list[str]:
    """What an entry point parses: `args`, else the command line, with bare config names resolved."""
    return resolve_config_args(sys.argv[1:] if args is None else list(args))


def resolve_config_args(argv: list[str]) -> list[str]:
    """Rewrite every `--config NAME` / `--config=NAME` so that bare names find files in `configs/`."""
    resolved = list(argv)
    for i, arg in enumerate(resolved):
        if arg == "--config" and i + 1 < len(resolved):
            resolved[i + 1] = str(find_config(resolved[i + 1]))
        elif arg.startswith("--config="):
            resolved[i] = "--config=" + str(find_config(arg.split("=", 1)[1]))
    return resolved


def default_baselines() -> list[Recommender]:
    """New instances of the baselines of `configs/baselines.yaml`, the one file that sets them."""
    from jsonargparse import ArgumentParser

    from recommenders.base import Recommender

    parser = ArgumentParser()
    parser.add_argument("--baselines", type=list[Recommender])
    return parser.instantiate(parser.parse_path(CONFIG_DIR / BASELINES)).baselines
