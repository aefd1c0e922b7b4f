"""Build a SimSong dataset folder from one source: `uv run prepare_data.py <source> --help`.

Sources: demo (the embedded demo world), manifest (your audio + lyrics), taste-profile, lastfm-similars,
hetrec, yes, mpd (interaction data sets) and midi (a folder of MIDI / karaoke files).
Every run is resumable and ends with a report of what was written and what was skipped, and why.
"""

import logging
from collections.abc import Callable

from jsonargparse import ActionConfigFile, ArgumentParser

from configs import command_line
from configs.errors import run_entry_point
from prepare.demo import build_demo_world
from prepare.importers.hetrec import import_hetrec
from prepare.importers.lastfm_similars import import_lastfm_similars
from prepare.importers.manifest import import_manifest
from prepare.importers.midi import import_midi
from prepare.importers.mpd import import_mpd
from prepare.importers.taste_profile import import_taste_profile
from prepare.importers.yes import import_yes

SOURCES = {
    "demo": build_demo_world,
    "manifest": import_manifest,
    "taste-profile": import_taste_profile,
    "lastfm-similars": import_lastfm_similars,
    "hetrec": import_hetrec,
    "yes": import_yes,
    "mpd": import_mpd,
    "midi": import_midi,
}


def build_parser() -> ArgumentParser:
    """One subcommand per source, its options from the source function's signature and docstring."""
    parser = ArgumentParser(description=__doc__, exit_on_error=False)
    subcommands = parser.add_subcommands(dest="source")
    for name, function in SOURCES.items():
        source = ArgumentParser(exit_on_error=False)
        source.add_argument("--config", action=ActionConfigFile, help="YAML config; bare names are found in configs/.")
        source.add_function_arguments(function, as_positional=False)
        subcommands.add_subcommand(name, source, help=(function.__doc__ or "").strip().splitlines()[0])
    return parser


def main(args: list[str] | None = None) -> None:
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    parser = build_parser()
    init = parser.instantiate(parser.parse_args(command_line(args)))
    function: Callable = SOURCES[init.source]
    options = {key: value for key, value in init[init.source].items() if key != "config"}
    print(function(**options).summary())


if __name__ == "__main__":
    run_entry_point(main)
