"""Config files live here; bare names on any command line (`--config wns.yaml`) resolve to this folder."""

from pathlib import Path

CONFIG_DIR = Path(__file__).resolve().parent


def find_config(name: str) -> Path:
    """A path as given if it exists, else the file of that name in `configs/`."""
    path = Path(name)
    if path.exists():
        return path
    if (CONFIG_DIR / path).exists():
        return CONFIG_DIR / path
    raise FileNotFoundError(f"config {name!r} not found here or in {CONFIG_DIR}")


def resolve_config_args(argv: list[str]) -> list[str]:
    """Rewrite every `--config NAME` / `--config=NAME` so that bare names find files in `configs/`."""
    resolved = list(argv)
    for i, arg in enumerate(resolved):
        if arg == "--config" and i + 1 < len(resolved):
            resolved[i + 1] = str(find_config(resolved[i + 1]))
        elif arg.startswith("--config="):
            resolved[i] = "--config=" + str(find_config(arg.split("=", 1)[1]))
    return resolved
