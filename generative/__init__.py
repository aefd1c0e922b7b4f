"""Songs generated for users: prompts from listening histories, pluggable generators, a resumable manifest.

Python API (what the leaderboard calls)::

    from generative import GenerateConfig, generate_for_users, load_config, load_songs
    config = load_config(["--generator.backend", "oracle"])  # configs/generate.yaml + overrides
    run = generate_for_users(data, user_indices, config, "runs/generated/demo/oracle")
    songs = load_songs("runs/generated/demo/oracle")  # finished songs, audio paths absolute
"""

from generative.manifest import load_manifest, load_songs
from generative.prompts import Prompt, PromptConfig, TasteProfile, build_prompt, taste_profile
from generative.run import GenerateConfig, GenerationRun, choose_users, generate_for_users


def load_config(args: list[str] | None = None, config: str = "generate.yaml") -> GenerateConfig:
    """A `GenerateConfig` from a YAML config (bare names in configs/) and command-line style overrides."""
    from generative.__main__ import load_config as load

    return load(args, config)


__all__ = [
    "GenerateConfig",
    "GenerationRun",
    "Prompt",
    "PromptConfig",
    "TasteProfile",
    "build_prompt",
    "choose_users",
    "generate_for_users",
    "load_config",
    "load_manifest",
    "load_songs",
    "taste_profile",
]
