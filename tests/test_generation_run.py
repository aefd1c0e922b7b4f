"""Generation runs on a tiny demo world: oracle songs, resuming after interruptions, credits, imports, secrets."""

import os
from collections import Counter
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import soundfile as sf

import generative.generators.suno as suno_module
from generative.__main__ import build_parser, load_config, main
from generative.generators import GeneratorConfig, GeneratorUnavailable, build_generator
from generative.generators.oracle import ORACLE_LABEL, OracleGenerator
from generative.manifest import MANIFEST, Manifest, load_manifest, load_songs
from generative.run import choose_users, generate_for_users
from prepare.demo import build_demo_world
from songdata import SongDataset
from tests.suno_server import FakeSuno, small_wav

SECRET_COOKIE = "cookie-SECRET-91c2e"
SECRET_KEY = "key-SECRET-77ab0"


@pytest.fixture(scope="module")
def world(tmp_path_factory) -> tuple[Path, SongDataset]:
    root = tmp_path_factory.mktemp("generation") / "world"
    build_demo_world(root, difficulty="easy", scale=0.1, song_seconds=1.0, workers=1)  # tags = the style
    return root, SongDataset(root)


def config(*args: str):
    return load_config(["--generator.seconds", "1.0", *args])


def suno_config(url: str, *args: str):
    return config(
        "--generator.backend", "suno", "--generator.base_url", url, "--generator.poll_interval_s", "0.01",
        "--generator.backoff_s", "0.01", "--generator.max_retries", "1", "--generator.poll_timeout_s", "5", *args,
    )


def song_ids(out: Path) -> Counter:
    return Counter(r["song_id"] for r in load_manifest(out) if r["kind"] == "song")


def test_oracle_songs_are_16k_wavs_in_the_users_latent_style(world, tmp_path):
    root, dataset = world
    data = dataset.interactions
    features = pd.read_parquet(root / "song_features.parquet").set_index("song_id")  # the demo world's latents
    users = choose_users(data, 3, seed=0)
    run = generate_for_users(dataset, users, config(), tmp_path / "out")
    assert run.counts == {"complete": 3} and run.stopped is None and len(run.songs) == 6
    for song in run.songs:
        user = data.user_ids.index(song["user_id"])
        wave, rate = sf.read(song["audio_path"])
        assert rate == 16_000 and len(wave) == 16_000 and np.abs(wave).max() > 0.05
        assert (song["model"], song["backend"], song["metadata"]["oracle"]) == ("simsong-demo-oracle", "oracle", ORACLE_LABEL)
        row = data.train[user]
        styles = Counter()
        for s, w in zip(row.indices, row.data):
            styles[features.loc[data.catalog["song_id"].iat[s], "style"]] += w
        assert song["metadata"]["style"] == styles.most_common(1)[0][0]
        history = " ".join(data.catalog["lyrics"].iloc[data.histories[user]]).lower()
        assert all(w in history for w in song["prompt"]["profile"]["vocabulary"]["words"])
        assert song["lyrics"].strip() and song["prompt"]["user_id"] == song["user_id"]
    assert sorted(s["song_id"] for s in load_songs(tmp_path / "out")) == sorted(s["song_id"] for s in run.songs)


def test_rerun_keeps_everything_and_makes_nothing_again(world, tmp_path):
    root, dataset = world
    data = dataset.interactions
    users = choose_users(data, 2, seed=0)
    first = generate_for_users(dataset, users, config(), tmp_path / "out")
    second = generate_for_users(dataset, users, config(), tmp_path / "out")
    assert second.counts == {"skipped_complete": 2}
    assert sorted(s["song_id"] for s in second.songs) == sorted(s["song_id"] for s in first.songs)
    assert set(song_ids(tmp_path / "out").values()) == {1}
    # A line torn by a crash is skipped, and the next record starts on a line of its own.
    with open(tmp_path / "out" / MANIFEST, "a") as f:
        f.write('{"kind": "song", "song_id": "torn')
    third = generate_for_users(dataset, choose_users(data, 3, seed=0), config(), tmp_path / "out")
    assert third.counts == {"skipped_complete": 2, "complete": 1} and len(third.songs) == 6
    assert len(load_manifest(tmp_path / "out")) == len((tmp_path / "out" / MANIFEST).read_text().splitlines()) - 1


def test_one_writer_per_run_folder(world, tmp_path):
    root, dataset = world
    data = dataset.interactions
    with Manifest(tmp_path / "out"):
        with pytest.raises(RuntimeError, match="another generation run"):
            generate_for_users(dataset, choose_users(data, 1, seed=0), config(), tmp_path / "out")


def test_interrupted_run_resumes_without_losing_or_repeating(world, tmp_path, monkeypatch):
    root, dataset = world
    data = dataset.interactions
    users = choose_users(data, 4, seed=0)
    calls = []
    original = OracleGenerator.generate

    def interrupt_third(self, prompt, user_id):
        calls.append(user_id)
        if len(calls) == 3:
            raise KeyboardInterrupt
        return original(self, prompt, user_id)

    monkeypatch.setattr(OracleGenerator, "generate", interrupt_third)
    with pytest.raises(KeyboardInterrupt):
        generate_for_users(dataset, users, config(), tmp_path / "out")
    kept = {s["song_id"]: os.stat(s["audio_path"]).st_mtime_ns for s in load_songs(tmp_path / "out")}
    assert len(kept) == 4
    run = generate_for_users(dataset, users, config(), tmp_path / "out")
    assert run.counts == {"skipped_complete": 2, "complete": 2} and len(run.songs) == 8
    assert calls[3:] == [data.user_ids[u] for u in users[2:]]  # only the unfinished users again
    assert all(os.stat(s["audio_path"]).st_mtime_ns == kept[s["song_id"]] for s in run.songs if s["song_id"] in kept)


def test_suno_run_records_clip_ids_before_polling_and_never_resubmits(world, tmp_path, monkeypatch):
    root, dataset = world
    data = dataset.interactions
    users = choose_users(data, 3, seed=0)
    sleeps = []
    real_sleep = suno_module.time.sleep

    def interrupt_fifth_poll(seconds):
        sleeps.append(seconds)
        if len(sleeps) == 5:  # during the second user's polling
            raise KeyboardInterrupt
        real_sleep(seconds)

    with FakeSuno() as suno:
        monkeypatch.setattr(suno_module.time, "sleep", interrupt_fifth_poll)
        with pytest.raises(KeyboardInterrupt):
            generate_for_users(dataset, users, suno_config(suno.url), tmp_path / "out")
        monkeypatch.setattr(suno_module.time, "sleep", real_sleep)
        states = {r["request_id"]: r for r in load_manifest(tmp_path / "out") if r["kind"] == "request"}
        assert [s["status"] for s in states.values()] == ["complete", "submitted"]
        assert list(states.values())[1]["job"]["clip_ids"] == ["clip-0003", "clip-0004"]
        run = generate_for_users(dataset, users, suno_config(suno.url), tmp_path / "out")
        assert suno.counts["custom_generate"] == 3 and len(suno.accepted) == 3
        assert run.counts == {"skipped_complete": 1, "complete": 2} and len(run.songs) == 6
        assert [b["title"] for b in suno.accepted] == [s["prompt"]["title"] for s in run.songs[::2]]


def test_a_server_that_fails_after_the_first_user_loses_nothing(world, tmp_path):
    root, dataset = world
    data = dataset.interactions
    users = choose_users(data, 3, seed=0)
    with FakeSuno() as suno:
        suno.down_after_submits = 1
        run = generate_for_users(dataset, users, suno_config(suno.url), tmp_path / "out")
        assert run.stopped == "the generation service is unavailable" and run.songs == []
        assert run.counts == {"pending": 1, "not_submitted": 1}
        suno.down = False
        suno.down_after_submits = None
        run = generate_for_users(dataset, users, suno_config(suno.url), tmp_path / "out")
        assert run.counts == {"complete": 3} and len(run.songs) == 6
        assert len(suno.accepted) == 3  # the first user's request was polled again, not resubmitted


def test_out_of_credits_stops_cleanly_and_keeps_finished_songs(world, tmp_path):
    root, dataset = world
    data = dataset.interactions
    users = choose_users(data, 4, seed=0)
    with FakeSuno(credits=20) as suno:
        unchecked = suno_config(suno.url, "--generator.check_credits", "false")
        run = generate_for_users(dataset, users, unchecked, tmp_path / "out")
        assert run.stopped == "out of credits" and run.counts == {"complete": 2, "out_of_credits": 1}
        assert len(run.songs) == 4 and all(Path(s["audio_path"]).exists() for s in run.songs)
        # With the pre-batch check, an empty account stops before any request.
        run = generate_for_users(dataset, users, suno_config(suno.url), tmp_path / "out")
        assert run.stopped.startswith("out of credits: 0 left") and suno.counts["custom_generate"] == 3
        suno.credits = 100
        run = generate_for_users(dataset, users, suno_config(suno.url), tmp_path / "out")
        assert run.counts == {"skipped_complete": 2, "complete": 2} and len(run.songs) == 8
        assert len(suno.accepted) == 4 and len({b["title"] + b["prompt"] for b in suno.accepted}) == 4


def test_failed_requests_are_retried_only_when_asked(world, tmp_path):
    root, dataset = world
    data = dataset.interactions
    users = choose_users(data, 2, seed=0)
    with FakeSuno(error_clips={1, 2}) as suno:
        run = generate_for_users(dataset, users, suno_config(suno.url), tmp_path / "out")
        assert run.counts == {"failed": 1, "complete": 1} and len(run.songs) == 2
        failed = [r for r in load_manifest(tmp_path / "out") if r["kind"] == "song" and r["status"] == "failed"]
        assert len(failed) == 2 and all("Unable to generate" in r["error"] for r in failed)
        run = generate_for_users(dataset, users, suno_config(suno.url), tmp_path / "out")
        assert run.counts == {"skipped_failed": 1, "skipped_complete": 1} and len(suno.accepted) == 2
        run = generate_for_users(dataset, users, suno_config(suno.url, "--retry_failed", "true"), tmp_path / "out")
        assert run.counts == {"complete": 1, "skipped_complete": 1} and len(suno.accepted) == 3
        assert {s["attempt"] for s in run.songs} == {0, 1} and len(run.songs) == 4


def test_secrets_are_never_written(world, tmp_path, monkeypatch, caplog, capsys):
    root, _ = world
    monkeypatch.setenv("SUNO_COOKIE", SECRET_COOKIE)
    out = tmp_path / "out"
    with FakeSuno(cookie=SECRET_COOKIE, api_key=SECRET_KEY) as suno:
        run = main([
            "--config", "generate.yaml", "--data.root", str(root), "--out", str(out), "--num_users", "2",
            "--generator.backend", "suno", "--generator.base_url", suno.url, "--generator.api_key", SECRET_KEY,
            "--generator.poll_interval_s", "0.01", "--generator.seconds", "1",
        ])
    assert len(run.songs) == 4
    written = [p for p in out.rglob("*") if p.is_file()]
    assert {p.name for p in written} >= {MANIFEST}
    for path in written:
        data_bytes = path.read_bytes()
        assert SECRET_COOKIE.encode() not in data_bytes and SECRET_KEY.encode() not in data_bytes, path
    logged = caplog.text + capsys.readouterr().out
    assert SECRET_COOKIE not in logged and SECRET_KEY not in logged
    run_record = next(r for r in load_manifest(out) if r["kind"] == "run")
    assert run_record["config"]["generator"]["api_key"] == "**********"


def test_imported_songs_are_copied_and_recorded(world, tmp_path):
    root, dataset = world
    data = dataset.interactions
    folder = tmp_path / "my_suno_songs"
    (folder / "audio").mkdir(parents=True)
    (folder / "audio" / "a.wav").write_bytes(small_wav())
    (folder / "lyrics.txt").write_text("hand made words")
    u0, u1 = data.user_ids[:2]
    pd.DataFrame(
        [
            (u0, "audio/a.wav", "lyrics.txt", "folk, calm", "A", "chirp-v4-5"),
            (u1, "audio/missing.mp3", "", "metal", "B", "chirp-v4"),
            ("nobody", "audio/a.wav", "", "", "C", ""),
        ],
        columns=["user_id", "audio", "lyrics_path", "prompt", "title", "model"],
    ).to_csv(folder / "songs.csv", index=False)
    cfg = config("--generator.backend", "import", "--generator.import_path", str(folder))
    run = generate_for_users(dataset, range(data.n_users), cfg, tmp_path / "out")
    assert run.counts == {"complete": 1, "failed": 1}
    (song,) = run.songs
    assert (song["user_id"], song["lyrics"], song["model"]) == (u0, "hand made words", "chirp-v4-5")
    assert song["backend"] == "import"
    assert song["metadata"]["sent_prompt"] == "folk, calm" and song["duration_s"] == 0.5
    assert Path(song["audio_path"]).is_relative_to(tmp_path / "out" / "audio") and Path(song["audio_path"]).exists()


def test_musicgen_without_weights_fails_clearly(tmp_path):
    cfg = GeneratorConfig(backend="musicgen", model_name_or_path=str(tmp_path / "no-weights"))
    with pytest.raises(GeneratorUnavailable, match="model_name_or_path"):
        build_generator(cfg, tmp_path / "audio")


def tiny_musicgen(folder: Path) -> Path:
    """A random MusicGen a few kB large (tiny T5, EnCodec and decoder) with a 12-word tokenizer."""
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import (
        EncodecConfig,
        EncodecFeatureExtractor,
        MusicgenConfig,
        MusicgenDecoderConfig,
        MusicgenForConditionalGeneration,
        MusicgenProcessor,
        T5Config,
        T5TokenizerFast,
    )

    text = T5Config(
        vocab_size=16, d_model=16, d_kv=4, d_ff=32, num_layers=1, num_heads=2, pad_token_id=0, eos_token_id=1
    )
    audio = EncodecConfig(
        target_bandwidths=[10.0], sampling_rate=8000, audio_channels=1, num_filters=4, hidden_size=16,
        codebook_size=16, upsampling_ratios=[4, 4], num_lstm_layers=1,
    )
    decoder = MusicgenDecoderConfig(
        vocab_size=16, hidden_size=16, num_hidden_layers=1, ffn_dim=32, num_attention_heads=2,
        num_codebooks=audio.num_quantizers, max_position_embeddings=64, pad_token_id=16, bos_token_id=16,
    )
    model = MusicgenForConditionalGeneration(MusicgenConfig(text_encoder=text, audio_encoder=audio, decoder=decoder))
    model.save_pretrained(folder)
    words = "a calm folk song sad ballad rock happy pop metal dark chill".split()
    pieces = [("<pad>", 0.0), ("</s>", 0.0), ("<unk>", 0.0)] + [("\u2581" + w, -1.0) for w in words]
    backend = Tokenizer(models.Unigram(pieces, unk_id=2))
    backend.pre_tokenizer = pre_tokenizers.Metaspace()
    tokenizer = T5TokenizerFast(
        tokenizer_object=backend, pad_token="<pad>", eos_token="</s>", unk_token="<unk>", extra_ids=0
    )
    processor = MusicgenProcessor(feature_extractor=EncodecFeatureExtractor(sampling_rate=8000), tokenizer=tokenizer)
    processor.save_pretrained(folder)
    return folder


def test_musicgen_generates_with_local_weights(world, tmp_path):
    root, dataset = world
    data = dataset.interactions
    weights = tiny_musicgen(tmp_path / "tiny-musicgen")
    cfg = config(
        "--generator.backend", "musicgen", "--generator.model_name_or_path", str(weights), "--generator.seconds", "0.05"
    )
    run = generate_for_users(dataset, choose_users(data, 1, seed=0), cfg, tmp_path / "out")
    (song,) = run.songs
    wave, rate = sf.read(song["audio_path"])
    assert rate == 16_000 and len(wave) > 0 and (song["backend"], song["model"]) == ("musicgen", str(weights))


def test_help_documents_the_options():
    text = build_parser().format_help()
    options = ("--generator.backend", "--generator.base_url", "--num_users", "--retry_failed", "--prompts.style")
    for option in options:
        assert option in text
