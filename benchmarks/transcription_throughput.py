"""Transcription throughput of the MIDI-similarity scorer: first run against a cached re-run.

Renders `--songs` demo songs (styles cycled), `--seconds` long, and transcribes them with
basic-pitch (ONNX, model built before timing) into an empty cache: audio seconds per wall
second. Then new `TasteSong`s of the same audio are transcribed again by a new `Transcriber`
on the same cache (hashing included), once from in-memory waveforms (catalog songs) and once
from audio files (generated songs, hashed by their bytes), best of `--repeats`. Prints the
ratio cached / first run (goal >= 50x).

Run: uv run python benchmarks/transcription_throughput.py [--help]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import soundfile as sf
import torch

from prepare.demo import STYLES, compose_song, render_midi  # noqa: E402
from songdata.audio import SAMPLE_RATE  # noqa: E402
from taste import TasteSong, Transcriber, basic_pitch_model  # noqa: E402


def _timed(run) -> float:
    start = time.perf_counter()
    run()
    return time.perf_counter() - start


def main(args: argparse.Namespace) -> None:
    waves = [render_midi(compose_song(STYLES[i % len(STYLES)], i, args.seconds)) for i in range(args.songs)]
    audio_s = sum(len(w) for w in waves) / SAMPLE_RATE
    warm = _timed(basic_pitch_model)
    print(
        f"{args.songs} demo songs, {audio_s:.1f} s of audio; basic-pitch ONNX (import + build, not timed below): "
        f"{warm:.2f} s; torch threads {torch.get_num_threads()}"
    )
    with tempfile.TemporaryDirectory() as tmp:
        cache = Path(args.cache_dir or tmp) / "cache"
        paths = []
        for i, wave in enumerate(waves):
            paths.append(Path(tmp) / f"song{i}.wav")
            sf.write(paths[-1], wave, SAMPLE_RATE, subtype="FLOAT")

        first = Transcriber(cache)
        first_s = _timed(lambda: [first.transcribe(TasteSong(str(i), audio=w)) for i, w in enumerate(waves)])
        n_notes = sum(len(first.transcribe(TasteSong(str(i), audio=w)).notes) for i, w in enumerate(waves))
        assert first.misses == args.songs, "the first run must transcribe every song"

        def rerun(make_song) -> float:
            times = []
            for _ in range(args.repeats):
                again = Transcriber(cache)  # a new process's view: nothing in memory
                times.append(_timed(lambda: [again.transcribe(make_song(i)) for i in range(args.songs)]))
                assert again.misses == 0, "the re-run must be served by the cache"
            return min(times)

        arrays_s = rerun(lambda i: TasteSong(str(i), audio=waves[i].copy()))
        first_files = Transcriber(cache)
        first_files_s = _timed(lambda: [first_files.transcribe(TasteSong.from_file(p)) for p in paths])
        files_s = rerun(lambda i: TasteSong.from_file(paths[i]))

    print(f"  first run (transcribe, {n_notes} notes):  {first_s:7.3f} s  {audio_s / first_s:10.1f} audio s / s")
    print(f"  cached re-run, waveforms (sha1 of samples): {arrays_s:7.4f} s  {audio_s / arrays_s:10.1f} audio s / s")
    print(f"  cached re-run, audio files (sha1 of bytes): {files_s:7.4f} s  {audio_s / files_s:10.1f} audio s / s")
    print(f"  (files first seen: {first_files_s:.2f} s, transcribed again because a file's hash is of its bytes)")
    print(
        f"  ratio cached / first run: waveforms {first_s / arrays_s:.0f}x, files {first_s / files_s:.0f}x "
        f"(goal >= 50x; reference: the first run above)"
    )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--songs", type=int, default=6, help="demo songs to render (styles cycled)")
    parser.add_argument("--seconds", type=float, default=10.0, help="length of each song")
    parser.add_argument("--repeats", type=int, default=3, help="cached re-runs; the best is reported")
    parser.add_argument("--cache-dir", default=None, help="keep the cache here (default: a temporary folder)")
    main(parser.parse_args())
