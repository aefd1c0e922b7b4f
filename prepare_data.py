"""Build a SimSong dataset folder from one source: `uv run prepare_data.py <source> --help`.

Sources: demo (the embedded demo world), manifest (your audio + lyrics), taste-profile, lastfm-similars,
hetrec, yes, mpd (interaction data sets) and midi (a folder of MIDI / karaoke files).
Every run is resumable and ends with a report of what was written and what was skipped, and why.
"""

import logging

from jsonargparse import auto_cli

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


def main(args: list[str] | None = None) -> None:
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    report = auto_cli(SOURCES, args=args, as_positional=False, exit_on_error=False)
    print(report.summary())


if __name__ == "__main__":
    run_entry_point(main)
