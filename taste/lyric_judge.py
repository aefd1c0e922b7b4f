"""Lyric relevance: does a candidate's lyrics suit what a user listens to?

Two kinds of judge share one interface:

- `LLMLyricJudge` asks a language model to grade the candidate against a deterministic summary
  of the user's history with a rubric (theme consistency, style/voice consistency, overall; each
  1-10, rationale first). Value = overall / 10, so 0.1 (unrelated) .. 1.0 (a perfect fit).
  Backends: `OpenAIChatBackend` (any OpenAI-compatible Chat Completions server: OpenAI, vLLM,
  Ollama, llama.cpp) and `TransformersChatBackend` (a local causal LM, greedy decoding).
- `EmbeddingLyricJudge` (offline default) needs no LLM: cosine between the candidate's MiniLM
  embedding and the history's mean embedding, rescaled as (cos + 1) / 2 to [0, 1]. It reports
  kind "embedding, not LLM"; its values are not on the LLM's scale (unrelated lyrics already
  sit near 0.5-0.6), so compare them only with each other.

A judgement that fails or cannot be parsed strictly is a failure, never a score.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
import time
from abc import ABC, abstractmethod
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np
import requests
import torch

from taste.base import TasteResult, TasteScorer, TasteSong

log = logging.getLogger(__name__)

SCORE_KEYS = ("theme_consistency", "style_consistency", "overall")

# Words too common to say anything about a user's themes.
STOPWORDS = frozenset(
    """a about after again all am an and any are as at be been before being but by can could did do does
    doing down for from had has have he her here hers him his how i if in into is it its just me more most
    my no nor not now of off on once only or other our out over own same she so some such than that the
    their them then there these they this those through to too under until up very was we were what when
    where which while who why will with you your yours oh ooh yeah la na hey im ive dont cant wont its
    youre were gonna wanna got get let like""".split()
)

SYSTEM_PROMPT = (
    "You are a music editor. You judge whether a new song's lyrics suit a listener, given a summary "
    "of the lyrics the listener plays most. Judge the lyrics only. Answer with one JSON object and nothing else."
)

RUBRIC = """Listener's history (summary):
{summary}

Candidate lyrics:
{lyrics}

Grade the candidate from 1 (not at all) to 10 (perfectly):
- theme_consistency: do its themes, subjects and imagery match the history's?
- style_consistency: do its voice, diction, form and tone match the history's?
- overall: how well would these lyrics suit this listener?
Write the rationale first (at most three sentences), then the integer scores, as
{{"rationale": "...", "theme_consistency": n, "style_consistency": n, "overall": n}}"""

JUDGEMENT_SCHEMA = {
    "name": "lyric_judgement",
    "strict": True,
    "schema": {
        "type": "object",
        "properties": {
            "rationale": {"type": "string"},
            **{key: {"type": "integer", "minimum": 1, "maximum": 10} for key in SCORE_KEYS},
        },
        "required": ["rationale", *SCORE_KEYS],
        "additionalProperties": False,
    },
}


class JudgeError(Exception):
    """A judgement that could not be obtained or parsed; its message becomes the failure reason."""


# ---------------------------------------------------------------------------------------- summary


def _first_line(lyrics: str, max_chars: int) -> str:
    line = next((line.strip() for line in lyrics.splitlines() if line.strip()), "")
    return line if len(line) <= max_chars else line[: max_chars - 1].rstrip() + "…"


def history_summary(
    history: Sequence[TasteSong], max_songs: int = 5, max_words: int = 15, max_chars: int = 800
) -> str:
    """What the user listens to, in a few lines: the most-played songs' first lines and frequent words.

    Deterministic: songs are ranked by weight (play count), ties in history order; words by
    play-weighted count, ties alphabetically. "" when no history song has lyrics.
    """
    with_lyrics = [s for s in history if s.lyrics.strip()]
    if not with_lyrics:
        return ""
    top = sorted(with_lyrics, key=lambda s: -s.weight)[:max_songs]
    counts: Counter[str] = Counter()
    for song in with_lyrics:
        for word in re.findall(r"[a-z]+(?:'[a-z]+)?", song.lyrics.lower()):
            if len(word) >= 3 and word.replace("'", "") not in STOPWORDS:
                counts[word] += song.weight
    words = sorted(counts, key=lambda w: (-counts[w], w))[:max_words]
    lines = ["Most-played songs begin:", *(f"- {_first_line(s.lyrics, 100)}" for s in top)]
    lines.append(f"Frequent words: {', '.join(words)}" if words else "Frequent words: (none)")
    summary = "\n".join(lines)
    return summary if len(summary) <= max_chars else summary[: max_chars - 1] + "…"


# ---------------------------------------------------------------------------------------- parsing


@dataclass(frozen=True)
class Judgement:
    rationale: str
    theme_consistency: int
    style_consistency: int
    overall: int


def _first_json_object(text: str) -> dict:
    decoder = json.JSONDecoder()
    for match in re.finditer(r"\{", text):
        try:
            value, _ = decoder.raw_decode(text, match.start())
        except json.JSONDecodeError:
            continue
        if isinstance(value, dict):
            return value
    raise JudgeError("unparseable: no JSON object in the reply")


def parse_judgement(text: str) -> Judgement:
    """The first JSON object in `text` (after any <think> block), strictly validated.

    Needs "rationale" (a string) and integer `SCORE_KEYS` in 1..10 (7.0 counts as 7; "7" or 7.5 do not).
    """
    obj = _first_json_object(re.sub(r"<think>.*?</think>", "", text or "", flags=re.DOTALL))
    missing = [key for key in ("rationale", *SCORE_KEYS) if key not in obj]
    if missing:
        raise JudgeError(f"unparseable: missing key(s) {', '.join(missing)}")
    if not isinstance(obj["rationale"], str):
        raise JudgeError("unparseable: rationale is not a string")
    scores = {}
    for key in SCORE_KEYS:
        value = obj[key]
        integral = isinstance(value, int) or (isinstance(value, float) and value.is_integer())
        if isinstance(value, bool) or not integral or not 1 <= value <= 10:
            raise JudgeError(f"unparseable: {key}={value!r}, expected an integer in 1..10")
        scores[key] = int(value)
    return Judgement(obj["rationale"].strip(), **scores)


def rubric_messages(summary: str, lyrics: str) -> list[dict[str, str]]:
    return [
        {"role": "system", "content": SYSTEM_PROMPT},
        {"role": "user", "content": RUBRIC.format(summary=summary, lyrics=lyrics)},
    ]


# ---------------------------------------------------------------------------------------- backends


class ChatBackend(ABC):
    """Chat messages in, the assistant's text out; raises `JudgeError` when there is no reply."""

    name: str = "chat"

    @abstractmethod
    def complete(self, messages: list[dict[str, str]]) -> str: ...


ResponseFormat = Literal["json_schema", "json_object", "none"]
_FALLBACK: dict[str, ResponseFormat] = {"json_schema": "json_object", "json_object": "none"}


class OpenAIChatBackend(ChatBackend):
    """`POST {base_url}/chat/completions` on any OpenAI-compatible server.

    Args:
        model: Model name the server knows.
        base_url: e.g. https://api.openai.com/v1, http://localhost:8000/v1 (vLLM), http://localhost:11434/v1 (Ollama).
        api_key: The key itself; None = read the environment variable `api_key_env` (no key: no
            Authorization header, as local servers expect). Sent as a header only, never logged.
        api_key_env: Environment variable holding the key.
        timeout_s: Per-request timeout (connect and each read).
        max_retries: Retries after a 429, a 5xx, a timeout or a connection error.
        backoff_s, max_backoff_s: Exponential backoff start and cap; a 429's Retry-After is used
            instead when given (capped too).
        response_format: Start with a strict JSON schema; on a 400 that rejects it, fall back to
            json_object and then to none (the strict parser still validates every reply). The
            fallback is remembered for later requests.
        temperature, seed, max_tokens: Sampling settings (seed None = not sent).
    """

    def __init__(
        self,
        model: str,
        base_url: str = "https://api.openai.com/v1",
        api_key: str | None = None,
        api_key_env: str = "OPENAI_API_KEY",
        timeout_s: float = 60.0,
        max_retries: int = 4,
        backoff_s: float = 1.0,
        max_backoff_s: float = 30.0,
        response_format: ResponseFormat = "json_schema",
        temperature: float = 0.0,
        seed: int | None = 0,
        max_tokens: int = 400,
    ) -> None:
        self.model = model
        self.url = base_url.rstrip("/") + "/chat/completions"
        self._api_key = api_key or os.environ.get(api_key_env) or None
        self.timeout_s = timeout_s
        self.max_retries = max_retries
        self.backoff_s = backoff_s
        self.max_backoff_s = max_backoff_s
        self.response_format: ResponseFormat = response_format
        self.temperature = temperature
        self.seed = seed
        self.max_tokens = max_tokens
        self.name = f"openai:{model}"
        self._session = requests.Session()

    def __repr__(self) -> str:
        key = "'***'" if self._api_key else "None"
        return f"OpenAIChatBackend(model={self.model!r}, url={self.url!r}, api_key={key})"

    def _mask(self, text: str) -> str:
        return text.replace(self._api_key, "***") if self._api_key else text

    def _payload(self, messages: list[dict[str, str]]) -> dict:
        payload = {
            "model": self.model, "messages": messages, "temperature": self.temperature, "max_tokens": self.max_tokens,
        }
        if self.seed is not None:
            payload["seed"] = self.seed
        if self.response_format == "json_schema":
            payload["response_format"] = {"type": "json_schema", "json_schema": JUDGEMENT_SCHEMA}
        elif self.response_format == "json_object":
            payload["response_format"] = {"type": "json_object"}
        return payload

    def _rejects_format(self, response: requests.Response) -> bool:
        if response.status_code not in (400, 422) or self.response_format == "none":
            return False
        body = response.text.lower()
        return any(word in body for word in ("response_format", "json_schema", "json_object", "structured output"))

    def _retry_after(self, response: requests.Response) -> float | None:
        try:
            return max(float(response.headers.get("Retry-After", "")), 0.0)
        except ValueError:  # absent, or an HTTP date: use the backoff
            return None

    def complete(self, messages: list[dict[str, str]]) -> str:
        headers = {"Authorization": f"Bearer {self._api_key}"} if self._api_key else {}
        attempt = 0
        while True:
            wait = min(self.backoff_s * 2**attempt, self.max_backoff_s)
            try:
                response = self._session.post(
                    self.url, json=self._payload(messages), headers=headers, timeout=self.timeout_s
                )
            except requests.Timeout:
                error = f"timeout ({self.timeout_s:g} s)"
            except requests.ConnectionError as exc:
                error = f"connection error ({type(exc).__name__})"
            else:
                if response.status_code == 200:
                    return self._content(response)
                if self._rejects_format(response):
                    fallback = _FALLBACK[self.response_format]
                    log.warning(
                        "%s: server rejected response_format %s; using %s", self.name, self.response_format, fallback
                    )
                    self.response_format = fallback
                    continue
                error = f"http {response.status_code}"
                if response.status_code != 429 and response.status_code < 500:
                    raise JudgeError(f"{error}: {self._mask(response.text[:200])}")
                if response.status_code == 429 and (retry_after := self._retry_after(response)) is not None:
                    wait = min(retry_after, self.max_backoff_s)
            attempt += 1
            if attempt > self.max_retries:
                raise JudgeError(f"{error} after {attempt} attempt(s)")
            log.warning("%s: %s; retry %d/%d in %.2f s", self.name, error, attempt, self.max_retries, wait)
            time.sleep(wait)

    def _content(self, response: requests.Response) -> str:
        try:
            message = response.json()["choices"][0]["message"]
        except (ValueError, KeyError, IndexError, TypeError) as exc:
            raise JudgeError(f"malformed response: {type(exc).__name__}") from None
        if message.get("refusal"):
            raise JudgeError(f"refused: {str(message['refusal'])[:200]}")
        content = message.get("content")
        if not isinstance(content, str):
            raise JudgeError("malformed response: message has no text content")
        return content


class TransformersChatBackend(ChatBackend):
    """A local causal LM (name or folder), greedy decoding, its chat template when it has one.

    Args:
        model_name_or_path: Hugging Face name or local folder.
        max_new_tokens: Tokens generated per judgement.
        device: Torch device.
    """

    def __init__(self, model_name_or_path: str | Path, max_new_tokens: int = 256, device: str = "cpu") -> None:
        from transformers import AutoModelForCausalLM, AutoTokenizer

        self.tokenizer = AutoTokenizer.from_pretrained(str(model_name_or_path))
        self.model = AutoModelForCausalLM.from_pretrained(str(model_name_or_path)).to(device).eval()
        self.max_new_tokens = max_new_tokens
        self.device = device
        self.name = f"transformers:{Path(str(model_name_or_path)).name}"

    def _prompt(self, messages: list[dict[str, str]]) -> str:
        if getattr(self.tokenizer, "chat_template", None):
            return self.tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
        turns = [f"{m['role'].capitalize()}: {m['content']}" for m in messages]
        return "\n\n".join(turns) + "\n\nAssistant:"

    @torch.no_grad()
    def complete(self, messages: list[dict[str, str]]) -> str:
        inputs = self.tokenizer(self._prompt(messages), return_tensors="pt").to(self.device)
        pad = self.tokenizer.pad_token_id if self.tokenizer.pad_token_id is not None else self.tokenizer.eos_token_id
        output = self.model.generate(**inputs, do_sample=False, max_new_tokens=self.max_new_tokens, pad_token_id=pad)
        return self.tokenizer.decode(output[0, inputs["input_ids"].shape[1] :], skip_special_tokens=True)


# ---------------------------------------------------------------------------------------- judges


class LLMLyricJudge(TasteScorer):
    """Rubric-graded lyric fit by a language model; value = overall / 10.

    Args:
        backend: Where the model runs.
        max_lyrics_chars: Candidate lyrics are cut to this length in the prompt.
        summary_songs, summary_words, summary_chars: Size of the history summary (`history_summary`).

    A (summary, lyrics) pair that was scored is not sent again by the same judge.
    """

    kind = "llm"

    def __init__(
        self,
        backend: ChatBackend,
        max_lyrics_chars: int = 2000,
        summary_songs: int = 5,
        summary_words: int = 15,
        summary_chars: int = 800,
    ) -> None:
        self.backend = backend
        self.name = f"lyric_judge/{backend.name}"
        self.max_lyrics_chars = max_lyrics_chars
        self.summary_args = {"max_songs": summary_songs, "max_words": summary_words, "max_chars": summary_chars}
        self._judged: dict[tuple[str, str], TasteResult] = {}

    def score(self, candidates: Sequence[TasteSong], history: Sequence[TasteSong]) -> list[TasteResult]:
        """Failures: "no lyrics" (instrumental), "no history lyrics", and the backend's or parser's reason."""
        summary = history_summary(history, **self.summary_args)
        results = []
        for song in candidates:
            lyrics = song.lyrics.strip()[: self.max_lyrics_chars]
            if not lyrics:
                results.append(TasteResult.failed("no lyrics"))
            elif not summary:
                results.append(TasteResult.failed("no history lyrics"))
            else:
                result = self._judged.get((summary, lyrics)) or self._judge(song.id, summary, lyrics)
                if result.value is not None:  # failures may be transient: ask again next time
                    self._judged[summary, lyrics] = result
                results.append(result)
        return results

    def _judge(self, song_id: str, summary: str, lyrics: str) -> TasteResult:
        text = None
        try:
            text = self.backend.complete(rubric_messages(summary, lyrics))
            j = parse_judgement(text)
        except JudgeError as error:
            log.warning("%s: song %s: %s", self.name, song_id, error)
            return TasteResult.failed(str(error), reply=(text or "")[:300])
        return TasteResult.ok(
            j.overall / 10, theme_consistency=j.theme_consistency, style_consistency=j.style_consistency,
            overall=j.overall, rationale=j.rationale,
        )


class EmbeddingLyricJudge(TasteScorer):
    """(cos + 1) / 2 between the candidate's lyric embedding and the history's mean embedding.

    Args:
        model_name_or_path: Sentence encoder; None = the shipped all-MiniLM-L6-v2 (offline).
        max_length: Tokens kept per lyric.

    History embeddings are unit vectors averaged with the songs' weights (play counts).
    """

    name = "lyric_judge/embedding"
    kind = "embedding, not LLM"

    def __init__(
        self, model_name_or_path: str | Path | None = None, max_length: int = 256, cache_dir: str | Path | None = None
    ) -> None:
        self.model_name_or_path, self.max_length = model_name_or_path, max_length
        self.encoder = None  # built on the first text the cache does not hold
        key = hashlib.sha1(f"{model_name_or_path}|{max_length}".encode()).hexdigest()[:12]
        self.cache_path = Path(cache_dir) / f"lyric_embeddings-{key}.npz" if cache_dir else None
        self._cache: dict[str, np.ndarray] = {}
        if self.cache_path is not None and self.cache_path.exists():
            with np.load(self.cache_path) as stored:
                self._cache = {k: stored[k] for k in stored.files}

    def _embed(self, texts: list[str]) -> np.ndarray:
        """Unit vectors, from the on-disk cache where possible, so a re-evaluation loads no model."""
        keys = [hashlib.sha1(text.encode()).hexdigest() for text in texts]
        missing = sorted({k: t for k, t in zip(keys, texts) if k not in self._cache}.items())
        if missing:
            if self.encoder is None:
                from lightning_modules.lyrics_encoder import LyricsEncoder

                self.encoder = LyricsEncoder(self.model_name_or_path, max_length=self.max_length)
            vectors = self.encoder([t for _, t in missing]).float().numpy()
            vectors /= np.maximum(np.linalg.norm(vectors, axis=1, keepdims=True), 1e-12)
            self._cache.update({k: v for (k, _), v in zip(missing, vectors)})
            if self.cache_path is not None:
                self.cache_path.parent.mkdir(parents=True, exist_ok=True)
                tmp = self.cache_path.with_suffix(".tmp.npz")
                np.savez(tmp, **self._cache)
                os.replace(tmp, self.cache_path)
        return np.stack([self._cache[k] for k in keys])

    def score(self, candidates: Sequence[TasteSong], history: Sequence[TasteSong]) -> list[TasteResult]:
        """Failures: "no lyrics" (instrumental candidate), "no history lyrics"."""
        with_lyrics = [s for s in history if s.lyrics.strip()]
        wanted = [i for i, s in enumerate(candidates) if s.lyrics.strip()]
        results = [TasteResult.failed("no lyrics") for _ in candidates]
        if not wanted or not with_lyrics:
            for i in wanted:
                results[i] = TasteResult.failed("no history lyrics")
            return results
        weights = np.array([s.weight for s in with_lyrics], dtype=np.float64)
        embeddings = self._embed([s.lyrics for s in with_lyrics])
        profile = np.average(embeddings, axis=0, weights=weights if weights.sum() > 0 else None)
        profile /= max(np.linalg.norm(profile), 1e-12)
        cosines = self._embed([candidates[i].lyrics for i in wanted]) @ profile
        for i, cosine in zip(wanted, cosines):
            results[i] = TasteResult.ok((float(cosine) + 1) / 2, cosine=float(cosine), history_songs=len(with_lyrics))
        return results
