"""Streaming shards: exact coverage in evaluation, full batches in training, counted skips."""

from collections import Counter
from pathlib import Path

import numpy as np
import webdataset as wds

from datamodules.music import MusicDataModule
from datamodules.pipeline import SegmentSpec, eval_pipeline, train_pipeline
from songdata.audio import encode_flac


def _all_urls(root: Path) -> list[str]:
    return sorted(str(p) for p in (root / "shards").glob("*.tar"))


def test_every_eval_sample_seen_once_across_two_ranks_and_two_workers(tiny_dataset):
    urls = _all_urls(tiny_dataset)
    seen = Counter()
    for rank in range(2):
        loader = wds.WebLoader(eval_pipeline(urls, SegmentSpec(1.0), 3, rank, 2), batch_size=None, num_workers=2)
        for batch in loader:
            assert batch["audio"].shape[1:] == (2, 16_000)
            seen.update(batch["song_id"])
    assert len(seen) == 24 and set(seen.values()) == {1}


def _write_bad_shard(path: Path) -> None:
    good = (0.1 * np.sin(np.arange(32_000) / 10)).astype(np.float32)
    with wds.TarWriter(str(path)) as sink:
        sink.write({"__key__": "00000100", "flac": b"fLaC not really", "txt": "words", "json": {"song_index": 100, "song_id": "bad"}})
        sink.write({"__key__": "00000101", "flac": encode_flac(good), "txt": "", "json": {"song_index": 101, "song_id": "mute"}})
        sink.write({"__key__": "00000102", "flac": encode_flac(good), "txt": b"\xff\xfe", "json": {"song_index": 102, "song_id": "latin"}})
        for i in range(6):
            sink.write({"__key__": f"{i:08d}", "flac": encode_flac(good), "txt": "ok", "json": {"song_index": i, "song_id": f"g{i}"}})


def test_training_stream_skips_and_counts_bad_samples(tmp_path):
    shard = tmp_path / "bad-000000.tar"
    _write_bad_shard(shard)
    pipeline = train_pipeline([str(shard)], SegmentSpec(0.5), batch_size=4, batches_per_worker=6, seed=0, shuffle_buffer=1)
    skipped, batches = Counter(), 0
    for batch in pipeline:
        batches += 1
        assert batch["audio"].shape == (4, 2, 8_000)
        assert set(batch["song_id"]) <= {f"g{i}" for i in range(6)}
        skipped.update(batch["skipped"])
    assert batches == 6
    assert skipped["undecodable audio"] >= 1 and skipped["missing lyrics"] >= 1 and skipped["lyrics not UTF-8"] >= 1


def test_datamodule_gives_each_rank_the_same_number_of_full_batches(tiny_dataset):
    dm = MusicDataModule(root=str(tiny_dataset), batch_size=4, num_workers=2, segment_seconds=1.0)
    dm.setup("fit")
    assert dm.num_samples("train") + dm.num_samples("val") + dm.num_samples("test") == 24
    batches = list(dm.train_dataloader())
    assert len(batches) == dm.train_batches_per_epoch() == dm.num_samples("train") // 4
    assert all(b["audio"].shape == (4, 2, 16_000) for b in batches)
    val_ids = [s for b in dm.val_dataloader() for s in b["song_id"]]
    assert len(val_ids) == len(set(val_ids)) == dm.num_samples("val")


def test_a_shard_that_cannot_be_opened_is_named(tiny_dataset):
    broken = sorted((tiny_dataset / "shards").glob("train-*.tar"))[0]
    broken.write_bytes(b"this is not a tar archive")
    dm = MusicDataModule(root=str(tiny_dataset), batch_size=4, num_workers=0)
    dm.setup("fit")
    import pytest

    with pytest.raises(FileNotFoundError, match=broken.name):
        dm.train_dataloader()


def test_a_stream_resumed_at_epoch_k_gives_the_batches_of_an_unbroken_run(tiny_dataset):
    urls = sorted(str(p) for p in (tiny_dataset / "shards").glob("train-*.tar"))

    def epochs(start: int, n: int) -> list[list[str]]:
        pipeline = train_pipeline(urls, SegmentSpec(0.5), 4, batches_per_worker=3, seed=7, shuffle_buffer=8, start_epoch=start)
        return [[s for batch in pipeline for s in batch["song_id"]] for _ in range(n)]

    unbroken = epochs(0, 3)
    assert unbroken[1] != unbroken[2]
    assert epochs(2, 1)[0] == unbroken[2]


def test_segments_are_decoded_alone_exactly_as_crops_of_the_whole_song():
    import io

    import soundfile as sf

    from songdata.audio import decode_audio_bytes, decode_segments

    rng = np.random.default_rng(0)
    song = (0.2 * rng.standard_normal(16_000 * 5)).astype(np.float32)
    data = encode_flac(song)
    whole = decode_audio_bytes(data)
    segments, frames = decode_segments(data, 16_000, lambda n: [12_345, n - 8_000])  # the 2nd runs past the end
    assert frames == len(whole) == 80_000
    assert np.array_equal(segments[0], whole[12_345:28_345])
    assert np.array_equal(segments[1][:8_000], whole[-8_000:]) and not segments[1][8_000:].any()
    stereo = io.BytesIO()  # not what shards hold: decoded whole, mixed down and resampled first
    sf.write(stereo, np.stack([song[:22_050], song[:22_050]], axis=1), 22_050, format="WAV")
    segments, frames = decode_segments(stereo.getvalue(), 4_000, lambda n: [0, n - 4_000])
    assert segments.shape == (2, 4_000) and frames == 16_000
