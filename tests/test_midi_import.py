"""MIDI / karaoke importer: lyrics by the karaoke convention, rendered audio, counted skips, real karaoke MIDI."""

import json
import re
import shutil
import tarfile
from pathlib import Path

import numpy as np
import pandas as pd
import pretty_midi
import pytest

from prepare.demo import compose_song
from prepare.importers.midi import artist_title_from_path, import_midi, midi_lyrics
from songdata.audio import SAMPLE_RATE, decode_audio_bytes
from songdata.dataset import load_tables
from songdata.shards import read_index
from songdata.splits import SplitConfig

LMD = Path(__file__).resolve().parents[1].parent / "shared" / "datasets" / "lmd-lyrics-melody"


def karaoke_midi(syllables: list[str], text_events: bool = False, seconds: float = 3.0) -> pretty_midi.PrettyMIDI:
    """A demo song with one lyric (or, like Soft Karaoke, text) event per syllable."""
    pm = compose_song("happy pop", seed=1, duration_s=seconds)
    events = pm.text_events if text_events else pm.lyrics
    cls = pretty_midi.Text if text_events else pretty_midi.Lyric
    if text_events:
        events += [cls("@KMIDI KARAOKE FILE", 0.0), cls("@TSunny Day", 0.0), cls("@TThe Candles", 0.0)]
    events += [cls(text, 0.1 + 0.2 * i) for i, text in enumerate(syllables)]
    return pm


def shard_samples(root: Path) -> dict[str, dict]:
    samples = {}
    for tar_path in sorted((root / "shards").glob("*.tar")):
        with tarfile.open(tar_path) as tar:
            members = {m.name: tar.extractfile(m).read() for m in tar.getmembers()}
        for name, data in members.items():
            if name.endswith(".json"):
                key = name[: -len(".json")]
                samples[json.loads(data)["song_id"]] = {
                    "split": tar_path.name.split("-")[0],
                    "txt": members[key + ".txt"].decode(),
                    "wave": decode_audio_bytes(members[key + ".flac"]),
                }
    return samples


def test_lyrics_follow_the_karaoke_convention():
    syllables = ["Good", "bye", " Nor", "ma", " Jean", "/Though", " I", " knew", "\\You", " had  ", " grace\r"]
    expected = "Goodbye Norma Jean\nThough I knew\nYou had grace"
    assert midi_lyrics(karaoke_midi(syllables)) == expected
    assert midi_lyrics(karaoke_midi(syllables, text_events=True)) == expected


def test_artist_and_title_from_paths():
    from pathlib import PurePosixPath as P

    assert artist_title_from_path(P("Kate Bush/The Kick Inside.mid")) == ("Kate Bush", "The Kick Inside")
    assert artist_title_from_path(P("misc/Simon - Mrs Robinson.mid")) == ("Simon", "Mrs Robinson")
    assert artist_title_from_path(P("A/adele-rolling_in_the_deep.mid")) == ("adele", "rolling in the deep")
    assert artist_title_from_path(P("S/Stranded.mid")) == ("", "Stranded")
    assert artist_title_from_path(P("HITS-90.2/94502_01.MID")) == ("", "94502 01")


def test_import_folder(tmp_path):
    folder = tmp_path / "midi"
    (folder / "The Candles").mkdir(parents=True)
    karaoke_midi(["Sun", "ny", " day", "/We", " sing"]).write(str(folder / "The Candles" / "Sunny Day.mid"))
    karaoke_midi(["Hel", "lo", "/world"], text_events=True, seconds=40.0).write(str(folder / "hello.kar"))
    (folder / "broken.mid").write_bytes(b"MThd\x00\x00\x00\x06 not really midi")
    pretty_midi.PrettyMIDI().write(str(folder / "silent.mid"))
    for i in range(8):
        compose_song("calm folk", seed=i, duration_s=2.0).write(str(folder / f"tune{i}.mid"))
    (folder / "metadata.csv").write_text("file,artist,tags\ntune0.mid,Folk Trio,folk;calm\n")

    report = import_midi(folder, tmp_path / "out", split=SplitConfig(val_fraction=0.2), workers=1, max_seconds=30.0)

    assert report.skipped["MIDI without notes"] == 1
    assert sum(n for reason, n in report.skipped.items() if reason.startswith("unreadable MIDI")) == 1
    assert report.written["songs"] == 10 and report.written["samples"] == 10
    dataset = load_tables(tmp_path / "out")
    assert dataset.interactions.empty and all(split.empty for split in dataset.splits.values())
    assert dataset.split_meta["cold_song_ids"] == []
    catalog = dataset.catalog.set_index("song_id")
    fields = ["artist", "title", "lyrics"]
    assert catalog.loc["Sunny Day", fields].tolist() == ["The Candles", "Sunny Day", "Sunny day\nWe sing"]
    assert catalog.loc["hello", fields].tolist() == ["The Candles", "hello", "Hello\nworld"]
    assert catalog.loc["tune0", "artist"] == "Folk Trio" and list(catalog.loc["tune0", "tags"]) == ["folk", "calm"]
    samples = shard_samples(tmp_path / "out")
    assert {song: s["txt"] for song, s in samples.items()} == catalog["lyrics"].to_dict()
    assert len(samples["hello"]["wave"]) == 30 * SAMPLE_RATE  # cut to max_seconds
    assert all(np.abs(s["wave"]).max() > 0.1 for s in samples.values())
    index = read_index(tmp_path / "out")
    assert [sum(s["count"] for s in index["splits"][name]) for name in ("train", "val", "test")] == [8, 2, 0]


def _normalise(lyrics: str) -> list[str]:
    return [" ".join(line.split()) for line in re.split(r" / |\n", lyrics) if line.strip()]


@pytest.mark.skipif(not LMD.is_dir(), reason="shared lmd-lyrics-melody data set not present")
def test_real_karaoke_midi_lyrics_match_metadata(tmp_path):
    metadata = pd.read_csv(LMD / "metadata.csv", dtype=str, keep_default_na=False)
    subset = pd.concat([metadata[metadata["n_notes"] != "0"].head(20), metadata[metadata["n_notes"] == "0"].head(1)])
    folder = tmp_path / "lmd"
    (folder / "midi").mkdir(parents=True)
    for file in subset["file"]:
        shutil.copy(LMD / file, folder / file)
    subset.to_csv(folder / "metadata.csv", index=False)

    report = import_midi(folder, tmp_path / "out", workers=2, max_seconds=10.0)

    assert report.written["samples"] == 20 and report.skipped["MIDI without notes"] == 1
    samples = shard_samples(tmp_path / "out")
    expected = dict(zip(subset["lakh_md5"], subset["lyrics"]))
    assert len(samples) == 20
    for song, sample in samples.items():
        assert _normalise(sample["txt"]) == _normalise(expected[song]), song
        assert len(sample["wave"]) <= 10 * SAMPLE_RATE and np.abs(sample["wave"]).max() > 0.1
    catalog = load_tables(tmp_path / "out").catalog.set_index("song_id")
    stranded = metadata.loc[metadata["lakh_path"] == "S/Stranded.mid", "lakh_md5"].iloc[0]
    assert catalog.loc[stranded, "title"] == "Stranded"
    assert sum(s["split"] == "val" for s in samples.values()) == 2
