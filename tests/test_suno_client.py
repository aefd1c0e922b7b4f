"""The Suno client and generator against a local suno-api stand-in: statuses, errors, retries, credits, secrets."""

from pathlib import Path

import pytest
import soundfile as sf

from generative.generators import OutOfCredits
from generative.generators.suno import (
    PollTimeout,
    SunoClient,
    SunoError,
    SunoGenerator,
    SunoUnavailable,
    parse_duration,
)
from generative.prompts import Prompt, TasteProfile
from tests.suno_server import FakeSuno

SECRET = "suno-cookie-SECRET-4f1d"


def make_prompt(lyrics: str | None = "[Verse]\nquiet river") -> Prompt:
    profile = TasteProfile("u1", 3, {"folk": 3.0}, ["folk"], ["calm"], ["A – B"], ["river"], {"nouns": ["river"]})
    return Prompt("u1", "folk, calm", "Quiet River", "a calm folk song", lyrics, False, profile)


def make_generator(suno: FakeSuno, tmp_path: Path, **kwargs) -> SunoGenerator:
    retries, timeout = kwargs.pop("max_retries", 3), kwargs.pop("timeout", 5)
    client = SunoClient(suno.url, cookie=suno.cookie, timeout_s=5, max_retries=retries, backoff_s=0.01)
    return SunoGenerator(
        client, tmp_path / "audio", model="chirp-v4-5", poll_interval_s=0.01, poll_timeout_s=timeout, **kwargs
    )


def test_clips_are_polled_to_complete_and_both_kept(tmp_path):
    with FakeSuno() as suno:
        songs = make_generator(suno, tmp_path).generate(make_prompt(), "u1")
        body = suno.accepted[0]
    assert [s.status for s in songs] == ["complete", "complete"]
    assert body == {
        "endpoint": "custom_generate", "prompt": "[Verse]\nquiet river", "tags": "folk, calm", "title": "Quiet River",
        "make_instrumental": False, "model": "chirp-v4-5", "wait_audio": False,
    }
    # submitted → queued → preparing (unknown: pending) → streaming → complete: 4 polls, then the audio.
    assert suno.counts["custom_generate"] == 1 and suno.counts["get"] == 4 and suno.counts["audio"] == 2
    for song in songs:
        assert sf.info(str(song.audio_path)).samplerate == 16_000
        assert (song.lyrics, song.tags, song.title, song.model, song.duration_s) == (
            "[Verse]\nquiet river", "folk, calm", "Quiet River", "chirp-v4-5", 0.5,
        )
    assert len({s.clip_id for s in songs}) == 2


def test_an_error_clip_is_kept_as_a_failed_song(tmp_path):
    with FakeSuno(error_clips={2}) as suno:
        songs = make_generator(suno, tmp_path).generate(make_prompt(), "u1")
    assert [s.status for s in songs] == ["complete", "failed"]
    assert songs[1].audio_path is None and "Unable to generate" in songs[1].error


def test_a_500_is_retried_then_succeeds(tmp_path):
    with FakeSuno() as suno:
        suno.fail["custom_generate"] = [500]
        suno.fail["get"] = [502, 503]
        songs = make_generator(suno, tmp_path).generate(make_prompt(), "u1")
    assert [s.status for s in songs] == ["complete", "complete"]
    assert suno.counts["custom_generate"] == 2 and len(suno.accepted) == 1


def test_retries_are_bounded(tmp_path):
    with FakeSuno() as suno:
        suno.down = True
        with pytest.raises(SunoUnavailable, match="after 3 attempts"):
            make_generator(suno, tmp_path, max_retries=2).submit(make_prompt(), "u1")
        assert suno.counts["custom_generate"] == 3


def test_402_means_out_of_credits(tmp_path):
    with FakeSuno(credits=5) as suno:
        generator = make_generator(suno, tmp_path)
        assert generator.credits_left() == 5
        with pytest.raises(OutOfCredits, match="402"):
            generator.submit(make_prompt(), "u1")
        assert suno.counts["custom_generate"] == 1  # not retried


def test_description_mode_lets_suno_write_the_lyrics(tmp_path):
    with FakeSuno() as suno:
        songs = make_generator(suno, tmp_path, mode="description").generate(make_prompt(), "u1")
        assert suno.accepted[0]["endpoint"] == "generate" and suno.accepted[0]["prompt"] == "a calm folk song"
    assert songs[0].lyrics == "written by suno"


def test_clips_that_never_finish_time_out(tmp_path):
    with FakeSuno() as suno:
        suno.stall = True
        generator = make_generator(suno, tmp_path, timeout=0.2)
        job = generator.submit(make_prompt(), "u1")
        with pytest.raises(PollTimeout):
            generator.collect(job, make_prompt(), "u1")
        suno.stall = False
        assert [s.status for s in generator.collect(job, make_prompt(), "u1")] == ["complete", "complete"]
        assert suno.counts["custom_generate"] == 1


def test_the_cookie_travels_as_a_header_and_never_shows(tmp_path):
    with FakeSuno(cookie=SECRET) as suno:
        generator = make_generator(suno, tmp_path)
        assert SECRET not in repr(generator) and SECRET not in repr(generator.client)
        assert len(generator.generate(make_prompt(), "u1")) == 2
        wrong = SunoClient(suno.url, cookie="wrong", max_retries=0)
        with pytest.raises(SunoError, match="401") as error:
            wrong.get(["clip-0001"])
        assert "wrong" not in str(error.value)


def test_credentials_are_not_sent_to_other_hosts(tmp_path):
    with FakeSuno(cookie=SECRET) as api, FakeSuno() as cdn:
        client = SunoClient(api.url, cookie=SECRET, api_key=SECRET, max_retries=0)
        client.download(f"{cdn.url}/audio/clip-0001.wav", tmp_path / "a.wav")
        client.download(f"{api.url}/audio/clip-0001.wav", tmp_path / "b.wav")
        assert cdn.audio_with_credentials == 0 and api.audio_with_credentials == 1
    assert sf.info(str(tmp_path / "a.wav")).samplerate == 16_000


def test_durations_in_either_form():
    assert parse_duration(95.5) == 95.5 and parse_duration("1:35") == 95.0 and parse_duration(None) is None
