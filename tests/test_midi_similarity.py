"""MIDI similarity: basic-pitch transcription of the project's own rendered songs, features, cache."""

from __future__ import annotations

import shutil
import time

import mir_eval
import numpy as np
import pretty_midi
import pytest
import soundfile as sf

from prepare.demo import compose_song, render_midi
from songdata.audio import SAMPLE_RATE
from taste import MidiSimilarity, TasteSong, Transcriber, file_hash, summarise, waveform_hash
from taste.midi_similarity import note_features
from taste.transcription import PACK_FILE

STYLES = ("calm folk", "energetic rock", "dark electronic")
SONGS_PER_STYLE = 3
SECONDS = 4.0


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    """Three songs in each of three demo styles, rendered, fitted as the reference set (timed)."""
    songs = {
        style: [
            TasteSong(f"{style}/{seed}", audio=render_midi(compose_song(style, seed, SECONDS)))
            for seed in range(SONGS_PER_STYLE)
        ]
        for style in STYLES
    }
    cache_dir = tmp_path_factory.mktemp("taste_cache")
    scorer = MidiSimilarity(cache_dir, show_progress=False)
    scorer.transcriber.transcribe_waveform(np.zeros(SAMPLE_RATE, np.float32))  # build the model outside the timing
    start = time.perf_counter()
    scorer.fit([song for group in songs.values() for song in group])
    return {"songs": songs, "scorer": scorer, "cache_dir": cache_dir, "first_run_s": time.perf_counter() - start}


def test_transcription_recovers_a_composed_melody():
    pm = compose_song("happy pop", 3, duration_s=6.0)
    pm.instruments = [i for i in pm.instruments if i.name == "melody"]
    reference = pm.instruments[0].notes
    notes = Transcriber().transcribe_waveform(render_midi(pm)).notes
    _, _, f1, _ = mir_eval.transcription.precision_recall_f1_overlap(
        np.array([[n.start, n.end] for n in reference]),
        pretty_midi.note_number_to_hz(np.array([n.pitch for n in reference], dtype=float)),
        notes[:, :2].astype(float),
        pretty_midi.note_number_to_hz(notes[:, 2].astype(float)),
        offset_ratio=None,
    )
    print(f"\nnote F1 (onset only, 50 ms): {f1:.3f} ({len(reference)} reference notes, {len(notes)} transcribed)")
    assert f1 >= 0.5


def test_identical_songs_score_one(corpus):
    song = corpus["songs"]["calm folk"][0]
    twin = TasteSong("twin", audio=song.waveform().copy())  # same audio, another object: same hash
    assert twin.audio_hash == song.audio_hash == waveform_hash(song.waveform())
    (result,) = corpus["scorer"].score([twin], [song])
    assert result.value == pytest.approx(1.0, abs=1e-6)
    assert set(result.details["blocks"]) == {"pitch_class", "transitions", "intervals", "scalars"}


def test_songs_of_the_same_style_score_higher(corpus):
    songs, scorer = corpus["songs"], corpus["scorer"]
    same, other = [], []
    for style in STYLES:
        for i, candidate in enumerate(songs[style]):
            for history_style in STYLES:
                history = [s for j, s in enumerate(songs[history_style]) if history_style != style or j != i]
                (result,) = scorer.score([candidate], history)
                (same if history_style == style else other).append(result.value)
    print(f"\nmidi similarity: same style {np.mean(same):.3f}, other styles {np.mean(other):.3f}")
    assert np.mean(same) > np.mean(other) + 0.1
    assert all(-1.0 <= v <= 1.0 for v in same + other)


def test_cached_rerun_is_much_faster(corpus):
    fresh = {
        style: [TasteSong(s.id, audio=s.waveform().copy()) for s in group] for style, group in corpus["songs"].items()
    }
    all_songs = [s for group in fresh.values() for s in group]
    start = time.perf_counter()
    rerun = MidiSimilarity(corpus["cache_dir"], show_progress=False).fit(all_songs)
    results = rerun.score(fresh["calm folk"][:1], fresh["calm folk"][1:])
    cached_s = time.perf_counter() - start
    ratio = corpus["first_run_s"] / cached_s
    first_s = corpus["first_run_s"]
    print(f"\ntranscription: first run {first_s:.2f} s, cached re-run {cached_s * 1000:.1f} ms ({ratio:.0f}x)")
    assert rerun.transcriber.misses == 0 and ratio >= 10
    original = corpus["scorer"].score(corpus["songs"]["calm folk"][:1], corpus["songs"]["calm folk"][1:])
    assert results[0].value == pytest.approx(original[0].value)
    loaded = MidiSimilarity(corpus["cache_dir"], show_progress=False).load_reference()
    np.testing.assert_allclose(loaded.scalar_std, corpus["scorer"].scalar_std)


def test_prepare_packs_the_cache_into_one_file_that_a_rerun_reads(corpus, tmp_path, caplog):
    songs = [TasteSong(s.id, audio=s.waveform().copy()) for group in corpus["songs"].values() for s in group]
    cache = tmp_path / "cache"
    shutil.copytree(corpus["cache_dir"], cache)
    first = MidiSimilarity(cache, show_progress=False)
    first.prepare(songs)
    folder = first.transcriber.cache_dir
    assert first.transcriber.misses == 0 and (folder / PACK_FILE).exists()
    assert first.transcriber.save_pack() == 0  # nothing new since
    singles = sorted(folder.glob("[0-9a-f]*.npz"))
    assert len(singles) == len(songs)
    for path in singles:
        path.unlink()
    rerun = MidiSimilarity(cache, show_progress=False)
    rerun.prepare(songs)  # every song from the pack: nothing transcribed, nothing left to add
    assert rerun.transcriber.misses == 0 and rerun.transcriber.hits == len(songs)
    for song in songs:
        for block, values in first.features(song).items():
            np.testing.assert_array_equal(rerun.features(song)[block], values)
    (folder / PACK_FILE).write_bytes(b"not an npz")
    shutil.copytree(corpus["cache_dir"], cache, dirs_exist_ok=True)  # the per-song files are back
    damaged = MidiSimilarity(cache, show_progress=False)
    with caplog.at_level("WARNING"):
        damaged.prepare(songs)
    assert "unreadable transcription pack" in caplog.text and damaged.transcriber.misses == 0
    assert np.load(folder / PACK_FILE)["hashes"].size == len(songs)  # rewritten whole


def test_files_are_hashed_by_bytes_and_light_songs_use_the_cache(corpus, tmp_path):
    song = corpus["songs"]["energetic rock"][1]
    path = tmp_path / "generated.wav"
    sf.write(path, song.waveform(), SAMPLE_RATE, subtype="FLOAT")
    generated = TasteSong.from_file(path, lyrics="la la")
    assert generated.id == "generated" and generated.audio_hash == file_hash(path)
    scorer = corpus["scorer"]
    (result,) = scorer.score([generated], [song])
    assert result.value == pytest.approx(1.0, abs=1e-6)  # float32 wav round trip: the same notes
    light = song.light()
    assert light.audio_hash == song.audio_hash and light.has_audio
    misses = scorer.transcriber.misses
    assert scorer.score([light], [song])[0].value == pytest.approx(1.0, abs=1e-6)
    assert scorer.transcriber.misses == misses


def test_failures_are_results_not_scores(corpus):
    scorer, history = corpus["scorer"], corpus["songs"]["dark electronic"]
    silent = TasteSong("silence", audio=np.zeros(SAMPLE_RATE, np.float32))
    unknown = TasteSong("hash only", audio_hash="0" * 40)
    results = scorer.score([silent, TasteSong("no audio"), unknown, history[0]], history)
    failures = [r.failure for r in results]
    assert failures[:2] == ["no notes transcribed", "no audio"] and failures[2].startswith("audio error")
    assert results[3].value is not None and all(r.value is None for r in results[:3])
    assert summarise(results)["n_failed"] == 3
    assert scorer.score([history[0]], [silent])[0].failure == "no usable history audio"
    with pytest.raises(RuntimeError, match="fit"):
        MidiSimilarity(show_progress=False).score([history[0]], history)


def test_catalog_songs_come_from_the_shards(tiny_dataset):
    import pandas as pd

    from songdata import SongDataset
    from taste import iter_catalog_songs

    catalog = pd.read_parquet(tiny_dataset / "catalog.parquet")
    songs = dict(iter_catalog_songs(SongDataset(tiny_dataset)))
    assert len(songs) == len(catalog)
    index, song = next(iter(songs.items()))
    assert song.id == catalog.song_id[index] and song.lyrics == catalog.lyrics[index]
    light = song.light()
    assert light.audio_hash == waveform_hash(song.waveform()) and light.id == song.id
    with pytest.raises(ValueError, match="only its hash"):
        light.waveform()


def test_features_are_computed_once_per_audio_and_memory_is_bounded(corpus, monkeypatch):
    import taste.midi_similarity as module

    calls = []
    monkeypatch.setattr(module, "note_features", lambda t: calls.append(t) or note_features(t))
    scorer = MidiSimilarity(corpus["cache_dir"], show_progress=False).load_reference()
    songs = [s.light() for group in corpus["songs"].values() for s in group]
    first = [r.value for r in scorer.score(songs[:2], songs[2:5])]
    again = [r.value for r in scorer.score(songs[:2], songs[2:5])]  # a stage scores each song for many users
    assert first == again and len(calls) == 5
    assert first == [r.value for r in corpus["scorer"].score(songs[:2], songs[2:5])]
    small = MidiSimilarity(corpus["cache_dir"], show_progress=False, memory_size=2).load_reference()
    small.score(songs[:2], songs[2:5])
    assert len(small._features) == 2

