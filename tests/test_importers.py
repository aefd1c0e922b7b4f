"""Importers on tiny fixtures written in each source's real format, and on the shared real data sets."""

from __future__ import annotations

import io
import json
import tarfile
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import soundfile as sf

from prepare.importers.hetrec import import_hetrec
from prepare.importers.lastfm_similars import import_lastfm_similars
from prepare.importers.manifest import import_manifest
from prepare.importers.mpd import import_mpd
from prepare.importers.taste_profile import import_taste_profile
from prepare.importers.yes import import_yes
from songdata.audio import SAMPLE_RATE
from songdata.dataset import load_tables
from songdata.splits import SplitConfig

REAL = Path(__file__).resolve().parents[1].parent / "shared" / "datasets"
NO_COLD = SplitConfig(seed=0, cold_fraction=0.0)
# Fixture users hold 3-4 songs: a larger test share gives each one a test row.
TINY_NO_COLD = SplitConfig(seed=0, val_fraction=0.0, test_fraction=0.4, cold_fraction=0.0)


def assert_no_leak(root: Path) -> None:
    """cold_fraction 0: no cold songs, and no user's test song is among that user's train songs."""
    dataset = load_tables(root)
    assert dataset.split_meta["cold_song_ids"] == []
    train, test = dataset.splits["train"], dataset.splits["test"]
    assert len(test) > 0
    assert train.merge(test, on=["user_id", "song_id"]).empty


def read_shard_samples(root: Path) -> dict[str, dict]:
    """Every shard sample by catalog song_id: its decoded audio, sample rate and json."""
    samples = {}
    for path in sorted((root / "shards").glob("*.tar")):
        with tarfile.open(path) as tar:
            members = {m.name: tar.extractfile(m).read() for m in tar.getmembers()}
        for name in members:
            if name.endswith(".json"):
                key = name[: -len(".json")]
                meta = json.loads(members[name])
                wave, rate = sf.read(io.BytesIO(members[key + ".flac"]), always_2d=True)
                samples[meta["song_id"]] = {"wave": wave, "rate": rate, "meta": meta, "lyrics": members[key + ".txt"]}
    return samples


# ---------------------------------------------------------------- manifest

@pytest.fixture
def manifest_folder(tmp_path: Path) -> Path:
    audio = tmp_path / "audio"
    audio.mkdir()
    rng = np.random.default_rng(0)
    sf.write(audio / "a.wav", 0.3 * np.sin(np.arange(16_000) / 10).astype(np.float32), 16_000)
    sf.write(audio / "b.flac", rng.uniform(-0.3, 0.3, (66_150, 2)).astype(np.float32), 44_100)  # 1.5 s stereo
    sf.write(audio / "c.ogg", 0.3 * np.sin(np.arange(11_025) / 5).astype(np.float32), 22_050)
    (tmp_path / "c_lyrics.txt").write_text("la la la\nsecond line")
    (tmp_path / "songs.csv").write_text(
        "song_id,audio,lyrics,lyrics_path,artist,title,tags\n"
        "a,audio/a.wav,hello world,,Artist A,Song A,rock;pop\n"
        f"b,{audio / 'b.flac'},,,Artist B,Song B,jazz|blues\n"
        "c,audio/c.ogg,,c_lyrics.txt,Artist C,Song C,\n"
        "d,audio/missing.wav,,,Artist D,Song D,\n"
        "broken,row,with,far,too,many,fields,here,!\n"
    )
    (tmp_path / "plays.csv").write_text(
        "user_id,song_id,weight,position\nu1,a,3,0\nu1,b,1,1\nu1,c,1,2\nu2,c,2,0\nu2,d,1,1\nu2,unknown,1,2\nu3,a,-1,0\n"
    )
    (tmp_path / "similar.csv").write_text("song_a,song_b,score\na,b,0.9\nb,c,0.5\na,c,1.7\n")
    return tmp_path


def test_manifest_decodes_every_format_to_mono_16k_shards(manifest_folder: Path) -> None:
    out = manifest_folder / "dataset"
    report = import_manifest(
        manifest_folder / "songs.csv", out, interactions=manifest_folder / "plays.csv",
        similarity=manifest_folder / "similar.csv", workers=2, songs_per_shard=2,
    )
    dataset = load_tables(out)
    catalog = dataset.catalog.set_index("song_id")
    assert list(catalog.index) == ["a", "b", "c", "d"]
    assert list(catalog.loc["a", "tags"]) == ["rock", "pop"] and list(catalog.loc["b", "tags"]) == ["jazz", "blues"]
    assert catalog.loc["c", "lyrics"] == "la la la\nsecond line"
    assert catalog.loc["b", "duration_s"] == pytest.approx(1.5)
    assert len(dataset.interactions) == 5 and len(dataset.similarity) == 2
    assert report.skipped["audio file not found"] == 1
    assert report.skipped["malformed row in songs.csv (too many fields)"] == 1
    assert report.skipped["interaction with a song_id not in the manifest"] == 1
    assert report.skipped["interaction weight not a positive number"] == 1
    assert report.skipped["similarity score not a number in [0, 1]"] == 1
    samples = read_shard_samples(out)
    assert sorted(samples) == ["a", "b", "c"] and report.written["samples"] == 3
    for song, seconds in (("a", 1.0), ("b", 1.5), ("c", 0.5)):
        sample = samples[song]
        assert sample["rate"] == SAMPLE_RATE and sample["wave"].shape[1] == 1
        assert len(sample["wave"]) / SAMPLE_RATE == pytest.approx(seconds, abs=0.01)
        assert sample["meta"]["duration_s"] == pytest.approx(seconds, abs=0.01)
    assert samples["a"]["lyrics"] == b"hello world"


def test_manifest_jsonl_counts_bad_lines_and_undecodable_audio(tmp_path: Path) -> None:
    sf.write(tmp_path / "ok.wav", np.zeros(8_000, dtype=np.float32) + 0.1, 16_000)
    (tmp_path / "noise.wav").write_bytes(b"this is not audio" * 10)
    rows = [
        {"song_id": "ok", "audio": "ok.wav", "tags": ["a", "b"], "artist": "X", "title": "Y"},
        {"song_id": "bad", "audio": "noise.wav", "lyrics": "words"},
        {"song_id": "ok", "audio": "ok.wav"},
    ]
    manifest = tmp_path / "songs.jsonl"
    manifest.write_text("\n".join(json.dumps(r) for r in rows[:2]) + "\n{not json\n" + json.dumps(rows[2]) + "\n")
    report = import_manifest(manifest, tmp_path / "out", workers=1)
    dataset = load_tables(tmp_path / "out")
    assert list(dataset.catalog["song_id"]) == ["ok", "bad"] and list(dataset.catalog["tags"][0]) == ["a", "b"]
    assert len(dataset.interactions) == 0
    assert report.skipped["malformed JSON line in the manifest"] == 1
    assert report.skipped["repeated song_id in the manifest (first kept)"] == 1
    assert sum(n for reason, n in report.skipped.items() if reason.startswith("audio file not decodable")) == 1
    assert list(read_shard_samples(tmp_path / "out")) == ["ok"]


# ---------------------------------------------------------------- taste profile + last.fm

@pytest.fixture
def msd_folder(tmp_path: Path) -> Path:
    (tmp_path / "triplets.txt").write_text(
        "u1\tSOA\t3\nu1\tSOB\t1\nu1\tSOC\t2\nu2\tSOA\t5\nu2\tSOC\t1\nu2\tSOD\t4\n"
        "u2\tSOD\t1\nu3\tSOB\t7\nu3\tSOD\t1\nu3\tSOC\t1\n"
        "malformed line without tabs\nu4\tSOA\tmany\n"
    )
    (tmp_path / "unique_tracks.txt").write_text(
        "TRA<SEP>SOA<SEP>Artist A<SEP>Song A\nTRB<SEP>SOB<SEP>Artist B<SEP>Song B\n"
        "TRB2<SEP>SOB<SEP>Artist B<SEP>Song B (live)\n"
        "TRC<SEP>SOC<SEP>Artist C<SEP>Song C\nTRZ<SEP>SOZ<SEP>Unplayed<SEP>Never\nbroken line\n"
    )
    tree = tmp_path / "lastfm_train"
    tracks = {
        "TRA": {"tags": [["rock", "100"], ["90s", "20"], ["guitar", "55"]],
                "similars": [["TRB", 1.0], ["TRC", 0.4], ["TRX", 0.9]]},
        "TRB": {"tags": [], "similars": [["TRA", 0.8], ["TRB2", 0.7]]},
        "TRB2": {"tags": [["live", "10"]], "similars": [["TRA", 0.9]]},
        "TRC": {"tags": [["pop", "100"]], "similars": [["TRA", 1.0], ["TRB", "bad"]]},
    }
    for track_id, fields in tracks.items():
        path = tree / track_id[2] / track_id[-1] / f"{track_id}.json"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps({"track_id": track_id, "artist": f"LFM {track_id}", "title": "t",
                                    "timestamp": "2011-08-02 20:13:25", **fields}))
    (tree / "broken.json").write_text('{"track_id": "TRQ", ')
    return tmp_path


def test_taste_profile_sums_repeats_counts_bad_lines_and_joins_metadata(msd_folder: Path) -> None:
    out = msd_folder / "taste"
    songs = msd_folder / "unique_tracks.txt"
    report = import_taste_profile(msd_folder / "triplets.txt", out, TINY_NO_COLD, songs=songs)
    dataset = load_tables(out)
    catalog = dataset.catalog.set_index("song_id")
    assert sorted(catalog.index) == ["SOA", "SOB", "SOC", "SOD"]
    assert catalog.loc["SOB", ["artist", "title"]].tolist() == ["Artist B", "Song B"]
    assert catalog.loc["SOD", "artist"] == ""
    plays = dataset.interactions.set_index(["user_id", "song_id"])["weight"]
    assert plays[("u2", "SOD")] == 5 and len(plays) == 9
    assert (dataset.interactions["position"] == -1).all()
    assert report.skipped["malformed line (expected user<TAB>song<TAB>count)"] == 1
    assert report.skipped["play count not a positive integer"] == 1
    assert report.skipped["repeated (user, song) line, play counts summed"] == 1
    assert_no_leak(out)


def test_lastfm_similars_alone_gives_catalog_similarity_and_empty_interactions(msd_folder: Path) -> None:
    out = msd_folder / "lastfm"
    report = import_lastfm_similars(msd_folder / "lastfm_train", out, max_tags=2)
    dataset = load_tables(out)
    catalog = dataset.catalog.set_index("song_id")
    assert sorted(catalog.index) == ["TRA", "TRB", "TRB2", "TRC"]
    assert list(catalog.loc["TRA", "tags"]) == ["rock", "guitar"]
    assert len(dataset.interactions) == 0 and all(len(s) == 0 for s in dataset.splits.values())
    assert len(dataset.similarity) == 6
    assert report.skipped["similar pair with a song outside the catalog"] == 1
    assert report.skipped["malformed similar entry (expected [track_id, score])"] == 1
    assert report.skipped["unreadable track JSON file"] == 1


def test_lastfm_similars_onto_taste_profile_keeps_its_interactions_and_splits(msd_folder: Path) -> None:
    out = msd_folder / "combined"
    import_taste_profile(msd_folder / "triplets.txt", out, TINY_NO_COLD)
    before = load_tables(out)
    report = import_lastfm_similars(
        msd_folder / "lastfm_train", out, interactions_from=out, tracks=msd_folder / "unique_tracks.txt"
    )
    after = load_tables(out)
    assert list(after.catalog["song_id"]) == list(before.catalog["song_id"])
    pd.testing.assert_frame_equal(after.interactions, before.interactions)
    pd.testing.assert_frame_equal(after.splits["test"], before.splits["test"])
    catalog = after.catalog.set_index("song_id")
    assert catalog.loc["SOA", "artist"] == "LFM TRA" and list(catalog.loc["SOA", "tags"])[0] == "rock"
    pairs = set(zip(after.similarity["song_a"], after.similarity["song_b"]))
    assert pairs == {("SOA", "SOB"), ("SOA", "SOC"), ("SOB", "SOA"), ("SOC", "SOA")}
    score = after.similarity.set_index(["song_a", "song_b"])["score"]
    assert score[("SOB", "SOA")] == pytest.approx(0.9)  # best of the song's two tracks
    assert report.skipped["similar pair of two tracks of the same song"] == 1
    assert report.written["songs_matched"] == 3


# ---------------------------------------------------------------- HetRec

def write_hetrec(folder: Path) -> Path:
    folder.mkdir()
    (folder / "artists.dat").write_text(
        "id\tname\turl\tpictureURL\n1\tMALICE MIZER\thttp://a\thttp://p\n2\tDiary of Dreams\thttp://b\thttp://q\n"
        "3\tBjörk\thttp://c\thttp://r\n4\tNo Plays\thttp://d\t\n", encoding="utf-8")
    (folder / "user_artists.dat").write_text(
        "userID\tartistID\tweight\n2\t1\t100\n2\t2\t50\n2\t3\t10\n3\t1\t7\n3\t3\t70\n3\t5\t1\n"
        "4\t2\t3\n4\t3\t9\n4\t1\t1\n"
        "5\tnot-a-number\t9\n2\t2\n")
    (folder / "tags.dat").write_bytes("tagID\ttagValue\n1\tmetal\n2\tgothic\n3\trock français\n".encode("latin-1"))
    (folder / "user_taggedartists.dat").write_text(
        "userID\tartistID\ttagID\tday\tmonth\tyear\n2\t1\t2\t1\t4\t2009\n3\t1\t2\t1\t4\t2009\n2\t1\t1\t1\t4\t2009\n"
        "2\t3\t3\t1\t4\t2009\n2\t99\t1\t1\t4\t2009\n")
    return folder


def test_hetrec_artists_are_items_with_top_tags(tmp_path: Path) -> None:
    report = import_hetrec(write_hetrec(tmp_path / "hetrec"), tmp_path / "out", TINY_NO_COLD)
    dataset = load_tables(tmp_path / "out")
    catalog = dataset.catalog.set_index("song_id")
    assert list(catalog.index) == ["hetrec-1", "hetrec-2", "hetrec-3", "hetrec-4", "hetrec-5"]
    assert catalog.loc["hetrec-1", ["artist", "title"]].tolist() == ["MALICE MIZER"] * 2
    assert list(catalog.loc["hetrec-1", "tags"]) == ["gothic", "metal"]
    assert list(catalog.loc["hetrec-3", "tags"]) == ["rock français"] and catalog.loc["hetrec-3", "artist"] == "Björk"
    assert catalog.loc["hetrec-5", "artist"] == "" and report.written["artists_without_name"] == 1
    assert len(dataset.interactions) == 9 and dataset.interactions["weight"].max() == 100
    assert report.skipped["non-integer userID/artistID/weight in user_artists.dat"] == 1
    assert report.skipped["malformed line in user_artists.dat (expected 3 tab-separated fields)"] == 1
    assert report.skipped["tag assignment for an artist not in the catalog"] == 1
    assert_no_leak(tmp_path / "out")


# ---------------------------------------------------------------- yes.com

def write_yes(folder: Path) -> Path:
    folder.mkdir()
    (folder / "song_hash.txt").write_text(
        "0 \tGucci Time (w\\/ Swizz Beatz)\tGucci Mane\n1 \tWhip My Hair\tWillow\n2 \tSong Two\tArtist Two\n"
        "3 \tUnplayed\tNobody\n4 \tSong Four\tSpeed\\\\Kill\\/Hate\nbroken\n")
    (folder / "tag_hash.txt").write_text("0, rock\n1, pop\n2, hip hop")
    (folder / "tags.txt").write_text("2 1\n1\n#\n0\n0 1 7\n")
    (folder / "train.txt").write_text(
        "# header: song ids\n# header: counts\n0 1 2 0 \n1 2 4 1 0 1\n4 x 2\n2 99 4\n2 4 0 1\n")
    return folder


def test_yes_playlists_are_users_with_counts_positions_and_tags(tmp_path: Path) -> None:
    report = import_yes(write_yes(tmp_path / "yes"), tmp_path / "out", TINY_NO_COLD)
    dataset = load_tables(tmp_path / "out")
    catalog = dataset.catalog.set_index("song_id")
    assert list(catalog.index) == ["yes-0", "yes-1", "yes-2", "yes-4"]  # song 3 is in no playlist
    assert catalog.loc["yes-0", "title"] == "Gucci Time (w/ Swizz Beatz)"
    assert catalog.loc["yes-4", "artist"] == "Speed\\Kill/Hate"
    assert list(catalog.loc["yes-0", "tags"]) == ["hip hop", "pop"] and list(catalog.loc["yes-2", "tags"]) == []
    rows = dataset.interactions.set_index(["user_id", "song_id"])
    assert rows.loc[("yes-pl-0", "yes-0")].tolist() == [2, 0]  # weight, first position
    assert rows.loc[("yes-pl-1", "yes-1")].tolist() == [3, 0]
    assert dataset.interactions["user_id"].nunique() == 4
    assert report.skipped["malformed playlist line (expected space-separated song ids)"] == 1
    assert report.skipped["song id not in song_hash.txt"] == 1
    assert report.skipped["unknown tag id in tags.txt"] == 1
    assert_no_leak(tmp_path / "out")


# ---------------------------------------------------------------- MPD

def write_mpd(folder: Path) -> Path:
    folder.mkdir()

    def track(pos: int, n: int) -> dict:
        return {"pos": pos, "artist_name": f"Artist {n}", "track_uri": f"spotify:track:{n}",
                "artist_uri": f"spotify:artist:{n}", "track_name": f"Track {n}", "album_uri": "spotify:album:x",
                "duration_ms": 1000 * (100 + n), "album_name": "Album"}

    playlists = [
        {"name": "Chill ", "collaborative": "false", "pid": 0, "num_tracks": 4,
         "tracks": [track(0, 1), track(1, 2), track(2, 1), track(3, 3)]},
        {"name": "chill", "pid": 1,
         "tracks": [track(0, 2), track(1, 3), {"pos": 2, "artist_name": "no uri"}, track(3, 4)]},
        {"name": "Workout", "pid": 2, "tracks": [track(0, 3), track(1, 4), track(2, 5)]},
        {"name": "empty", "tracks": [track(0, 1)]},
    ]
    info = {"generated_on": "2017-12-03 08:41:42.057563", "slice": "0-999", "version": "v1"}
    (folder / "mpd.slice.0-999.json").write_text(json.dumps({"info": info, "playlists": playlists}))
    (folder / "mpd.slice.1000-1999.json").write_text('{"info": {}, "playlists": [')
    return folder


def test_mpd_playlists_are_users_tracks_are_songs(tmp_path: Path) -> None:
    report = import_mpd(write_mpd(tmp_path / "mpd"), tmp_path / "out", TINY_NO_COLD, max_tags=2)
    dataset = load_tables(tmp_path / "out")
    catalog = dataset.catalog.set_index("song_id")
    assert len(catalog) == 5 and catalog.loc["spotify:track:2", "duration_s"] == pytest.approx(102.0)
    assert catalog.loc["spotify:track:2", ["artist", "title"]].tolist() == ["Artist 2", "Track 2"]
    assert list(catalog.loc["spotify:track:3", "tags"]) == ["chill", "workout"]
    rows = dataset.interactions.set_index(["user_id", "song_id"])
    assert rows.loc[("mpd-0", "spotify:track:1")].tolist() == [2, 0]
    assert sorted(dataset.interactions["user_id"].unique()) == ["mpd-0", "mpd-1", "mpd-2"]
    assert report.skipped["track without a track_uri"] == 1
    assert report.skipped["playlist without a pid"] == 1
    assert report.skipped["unreadable slice (expected JSON with a 'playlists' list)"] == 1
    assert_no_leak(tmp_path / "out")


# ---------------------------------------------------------------- real data sets

def real(name: str) -> Path:
    folder = REAL / name
    if not folder.is_dir():
        pytest.skip(f"{folder} not present")
    return folder


def test_real_hetrec_has_1892_users_17632_artists_92834_rows(tmp_path: Path) -> None:
    report = import_hetrec(real("hetrec-lastfm-2k"), tmp_path / "out", NO_COLD)
    dataset = load_tables(tmp_path / "out")
    assert dataset.interactions["user_id"].nunique() == 1892
    assert len(dataset.catalog) == 17632 and len(dataset.interactions) == 92834
    assert report.written["artists_without_name"] == 0
    assert_no_leak(tmp_path / "out")


def test_real_yes_has_1000_playlists_over_25179_songs(tmp_path: Path) -> None:
    report = import_yes(real("yes-playlists"), tmp_path / "out", NO_COLD)
    dataset = load_tables(tmp_path / "out")
    assert dataset.interactions["user_id"].nunique() == 1000
    assert len(dataset.catalog) == 25179 and dataset.interactions["song_id"].nunique() == 25179
    assert dataset.interactions["weight"].sum() == report.written["playlist_entries"] == 176_510
    assert not report.skipped
    assert_no_leak(tmp_path / "out")
