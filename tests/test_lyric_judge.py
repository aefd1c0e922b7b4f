"""Lyric judge: strict parsing, the HTTP backend against a local Chat Completions server, the offline judges."""

from __future__ import annotations

import json
import logging
import time

import numpy as np
import pytest

from prepare.demo import write_lyrics
from taste import (
    EmbeddingLyricJudge,
    JudgeError,
    LLMLyricJudge,
    OpenAIChatBackend,
    TasteSong,
    TransformersChatBackend,
    history_summary,
    parse_judgement,
)
from tests.chat_server import ChatServer, Reply

API_KEY = "sk-test-DO-NOT-LEAK-4242"
VALID = json.dumps({"rationale": "Same seaside imagery.", "theme_consistency": 8, "style_consistency": 6, "overall": 7})

HISTORY = [
    TasteSong("h1", "Salt wind over the harbour\nthe boats come home at dawn", weight=5),
    TasteSong("h2", "Waves on the grey sea wall\nsailors singing in the rain", weight=2),
    TasteSong("h3", "", weight=9),  # an instrumental: left out of the summary
]
CANDIDATE = TasteSong("c1", "Tide rolls in at the harbour\nnets and gulls and ocean spray")


def judge_for(server: ChatServer, **kwargs) -> LLMLyricJudge:
    options = {"api_key": API_KEY, "timeout_s": 2.0, "max_retries": 2, "backoff_s": 0.01, **kwargs}
    return LLMLyricJudge(OpenAIChatBackend("test-model", base_url=server.base_url, **options))


def test_history_summary_is_deterministic_and_ranked_by_plays():
    summary = history_summary(HISTORY)
    assert summary == history_summary(list(HISTORY))
    assert summary.index("Salt wind") < summary.index("Waves on")  # most played first
    assert "harbour" in summary and "the" not in summary.split("Frequent words:")[1].split(", ")
    assert len(history_summary(HISTORY * 50, max_chars=300)) <= 300
    assert history_summary([TasteSong("x", "")]) == ""


@pytest.mark.parametrize(
    "text, overall",
    [
        (VALID, 7),
        ("Here you go:\n```json\n" + VALID + "\n```", 7),  # prose around the object
        ("<think>{not json}</think>" + VALID.replace("7}", "7.0}"), 7),
    ],
)
def test_parse_judgement_accepts_valid_replies(text, overall):
    assert parse_judgement(text).overall == overall


@pytest.mark.parametrize(
    "text",
    [
        "I would rate it 9/10.",
        VALID.replace('"overall": 7', '"overall": 11'),
        VALID.replace('"overall": 7', '"overall": "7"'),
        VALID.replace('"overall": 7', '"overall": 7.5'),
        VALID.replace('"overall": 7', '"overall": true'),
        json.dumps({"rationale": "fine", "overall": 7}),
        "",
    ],
)
def test_parse_judgement_rejects_anything_else(text):
    with pytest.raises(JudgeError, match="unparseable"):
        parse_judgement(text)


def test_valid_reply_is_scored_and_key_is_sent_as_header_only(caplog):
    caplog.set_level(logging.DEBUG)
    with ChatServer([Reply(content=VALID)]) as server:
        judge = judge_for(server)
        (result,) = judge.score([CANDIDATE], HISTORY)
    assert result.value == pytest.approx(0.7) and result.failure is None
    assert result.details["theme_consistency"] == 8 and result.details["rationale"] == "Same seaside imagery."
    request = server.requests[0]
    assert request["headers"]["Authorization"] == f"Bearer {API_KEY}"
    sent = request["json"]
    assert sent["temperature"] == 0 and sent["seed"] == 0
    assert sent["response_format"]["type"] == "json_schema" and sent["response_format"]["json_schema"]["strict"]
    assert "Salt wind" in sent["messages"][1]["content"] and "Tide rolls" in sent["messages"][1]["content"]
    assert API_KEY not in json.dumps(sent) and API_KEY not in repr(judge.backend) and API_KEY not in repr(result)
    assert API_KEY not in caplog.text


def test_invalid_json_is_a_failure_not_a_score():
    with ChatServer([Reply(content="Great lyrics, 9 out of 10!")]) as server:
        (result,) = judge_for(server).score([CANDIDATE], HISTORY)
    assert result.value is None and result.failure.startswith("unparseable")
    assert "9 out of 10" in result.details["reply"]


def test_429_is_retried_after_retry_after(caplog):
    replies = [Reply(429, headers={"Retry-After": "1"}), Reply(503), Reply(content=VALID)]
    with ChatServer(replies) as server:
        start = time.perf_counter()
        (result,) = judge_for(server).score([CANDIDATE], HISTORY)
        elapsed = time.perf_counter() - start
    assert result.value == pytest.approx(0.7)
    assert len(server.requests) == 3 and elapsed >= 0.9  # waited the server's Retry-After
    assert "http 429" in caplog.text and "http 503" in caplog.text


def test_timeout_is_bounded_and_recorded():
    with ChatServer([Reply(content=VALID, delay_s=3.0)]) as server:
        start = time.perf_counter()
        (result,) = judge_for(server, timeout_s=0.3, max_retries=1).score([CANDIDATE], HISTORY)
        elapsed = time.perf_counter() - start
    assert result.value is None and result.failure.startswith("timeout") and "2 attempt" in result.failure
    assert len(server.requests) == 2 and elapsed < 2.5


@pytest.mark.parametrize("rejected, used", [(("json_schema",), "json_object"), (("json_schema", "json_object"), None)])
def test_rejected_response_format_falls_back(rejected, used):
    second = TasteSong("c2", "Lighthouse blinking on the bay")
    with ChatServer([Reply(content="Verdict: " + VALID)], reject_formats=rejected) as server:
        results = judge_for(server).score([CANDIDATE, second], HISTORY)
    assert [r.value for r in results] == [pytest.approx(0.7)] * 2
    formats = [(r["json"].get("response_format") or {}).get("type") for r in server.requests]
    assert formats == [*rejected, used, used]  # the fallback sticks for later requests


def test_client_error_fails_without_retry_and_masks_the_key(caplog):
    body = json.dumps({"error": {"message": f"Incorrect API key provided: {API_KEY}"}})
    with ChatServer([Reply(401, body=body)]) as server:
        (result,) = judge_for(server).score([CANDIDATE], HISTORY)
    assert result.value is None and result.failure.startswith("http 401") and len(server.requests) == 1
    assert API_KEY not in repr(result) and API_KEY not in caplog.text and "***" in result.failure


def test_key_from_environment_and_instrumental_candidate(monkeypatch):
    monkeypatch.setenv("MY_JUDGE_KEY", API_KEY)
    with ChatServer([Reply(content=VALID)]) as server:
        backend = OpenAIChatBackend("m", base_url=server.base_url, api_key_env="MY_JUDGE_KEY")
        results = LLMLyricJudge(backend).score([TasteSong("inst", "  \n"), CANDIDATE], HISTORY)
    assert [r.failure for r in results] == ["no lyrics", None]
    assert len(server.requests) == 1 and server.requests[0]["headers"]["Authorization"] == f"Bearer {API_KEY}"
    assert API_KEY not in repr(backend)


def test_tiny_random_transformers_model_output_is_a_failure(tmp_path):
    from transformers import AutoTokenizer, GPT2Config, GPT2LMHeadModel

    from lightning_modules.lyrics_encoder import DEFAULT_LYRICS_MODEL

    tokenizer = AutoTokenizer.from_pretrained(str(DEFAULT_LYRICS_MODEL))
    config = GPT2Config(vocab_size=len(tokenizer), n_positions=1024, n_embd=16, n_layer=1, n_head=2)
    GPT2LMHeadModel(config).save_pretrained(tmp_path)
    tokenizer.save_pretrained(tmp_path)
    judge = LLMLyricJudge(TransformersChatBackend(tmp_path, max_new_tokens=8))
    assert judge.kind == "llm"
    results = judge.score([CANDIDATE, TasteSong("inst", "")], HISTORY)
    assert results[0].value is None and results[0].failure.startswith("unparseable")
    assert results[1].failure == "no lyrics"


def test_embedding_judge_prefers_lyrics_of_the_users_style():
    judge = EmbeddingLyricJudge()
    assert judge.kind == "embedding, not LLM"
    rng = np.random.default_rng(0)
    history = [TasteSong(f"h{i}", write_lyrics("calm folk", rng)) for i in range(4)]
    same = [TasteSong(f"s{i}", write_lyrics("calm folk", rng)) for i in range(4)]
    other = [TasteSong(f"o{i}", write_lyrics("aggressive metal", rng)) for i in range(4)]
    results = judge.score([*same, *other, TasteSong("inst", "")], history)
    values = [r.value for r in results[:-1]]
    assert all(0.0 <= v <= 1.0 for v in values)
    print(f"\nembedding judge: same style {np.mean(values[:4]):.3f}, other style {np.mean(values[4:]):.3f}")
    assert np.mean(values[:4]) > np.mean(values[4:])
    assert results[-1].failure == "no lyrics" and results[-1].value is None
    assert [r.failure for r in judge.score([CANDIDATE], [TasteSong("x", "")])] == ["no history lyrics"]


def test_embedding_judge_reuses_cached_embeddings_without_loading_the_model(tmp_path):
    rng = np.random.default_rng(1)
    history = [TasteSong(f"h{i}", write_lyrics("happy pop", rng)) for i in range(3)]
    first = EmbeddingLyricJudge(cache_dir=tmp_path).score([CANDIDATE], history)
    again = EmbeddingLyricJudge(cache_dir=tmp_path)
    assert again.score([CANDIDATE], history) == first
    assert again.encoder is None  # every text came from the cache


def test_embedding_judge_prepare_embeds_in_batches_and_writes_the_cache_once(tmp_path, monkeypatch):
    import taste.lyric_judge as module

    rng = np.random.default_rng(2)
    songs = [TasteSong(f"s{i}", write_lyrics("calm folk", rng)) for i in range(7)] + [TasteSong("inst", "")]
    writes = []
    real_replace = module.replace_atomically
    monkeypatch.setattr(module, "replace_atomically", lambda *a: writes.append(a) or real_replace(*a))
    judge = EmbeddingLyricJudge(cache_dir=tmp_path)
    judge.prepare(songs, batch_size=3)
    assert len(writes) == 1 and len(judge._cache) == 7
    scored = judge.score(songs[:2], songs[2:])
    assert len(writes) == 1  # everything came from the prepared embeddings
    unprepared = EmbeddingLyricJudge().score(songs[:2], songs[2:])
    assert [r.value for r in scored] == pytest.approx([r.value for r in unprepared], abs=1e-5)
