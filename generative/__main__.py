"""Generate songs for users.

    uv run python -m generative --config generate.yaml [--data.root DIR] [--num_users N] [--out DIR]
        [--generator.backend suno --generator.base_url URL] [--retry_failed true]

Chooses `num_users` users (seeded; by default users with test interactions), builds a prompt from
each one's training history, generates, and records every request and song in
`<out>/manifest.jsonl` with the audio under `<out>/audio/`. Re-running the same command resumes:
finished songs are kept, submitted Suno requests are collected rather than paid for again,
failures are retried only with `--retry_failed true`. Without `--data.root` it uses the demo world.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Literal

from jsonargparse import ActionConfigFile, ArgumentParser

from configs import command_line, resolve_config_args
from configs.errors import UserError, run_entry_point, settings_errors
from generative.generators import build_generator
from generative.run import GenerateConfig, GenerationRun, choose_users, generate_for_users
from prepare.default_dataset import dataset_root
from songdata import SongDataset


def build_parser() -> ArgumentParser:
    parser = ArgumentParser(description=__doc__, exit_on_error=False)
    parser.add_argument("--config", action=ActionConfigFile, help="YAML config; bare names are found in configs/.")
    parser.add_argument("--data.root", type=str | None, default=None, help="Dataset folder; empty = the demo world.")
    parser.add_argument(
        "--out", type=str | None, default=None, help="Run folder; empty = runs/generated/<dataset name>/<backend>."
    )
    parser.add_argument(
        "--num_users", type=int | None, default=None, help="Users to generate for; empty = all candidates."
    )
    parser.add_argument(
        "--users", type=list[str] | None, default=None, help="These user ids instead of a seeded choice."
    )
    parser.add_argument(
        "--user_split", type=Literal["test", "all"], default="test",
        help="Choose among users with test interactions (test) or with any training history (all).",
    )
    parser.add_class_arguments(GenerateConfig, nested_key=None)
    return parser


def load_config(args: list[str] | None = None, config: str = "generate.yaml") -> GenerateConfig:
    """A `GenerateConfig` from a YAML config (bare names in configs/) and command-line style overrides."""
    parser = build_parser()
    init = parser.instantiate(parser.parse_args(resolve_config_args(["--config", config, *(args or [])])))
    return to_generate_config(init)


def to_generate_config(init) -> GenerateConfig:
    return GenerateConfig(**{name: init[name] for name in GenerateConfig.__dataclass_fields__})


def main(args: list[str] | None = None) -> GenerationRun:
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    parser = build_parser()
    parsed = parser.parse_args(command_line(args))
    with settings_errors("generative settings"):
        init = parser.instantiate(parsed)
    config = to_generate_config(init)
    dataset = SongDataset(dataset_root(init.data.root))
    data = dataset.interactions
    out = Path(init.out or Path("runs") / "generated" / dataset.root.name / config.generator.backend)
    if init.users:
        index = {u: i for i, u in enumerate(data.user_ids)}
        missing = [u for u in init.users if u not in index]
        if missing:
            raise UserError(f"--users: not in {dataset.root}: {missing}")
        users = [index[u] for u in init.users]
    elif config.generator.backend == "import":
        fixed = set(build_generator(config.generator, out / "audio").fixed_users())
        users = [i for i, u in enumerate(data.user_ids) if u in fixed]
    else:
        users = choose_users(data, init.num_users, config.seed, init.user_split)
    run = generate_for_users(dataset, users, config, out)
    print(f"{len(run.songs)} songs for {len(users)} users in {run.out / 'manifest.jsonl'}; this run: {run.counts}")
    if run.stopped:
        print(f"stopped early: {run.stopped} (finished songs are kept; run the same command again to continue)")
    return run


if __name__ == "__main__":
    run_entry_point(main)
