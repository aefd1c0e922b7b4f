"""Lyric relevance: does a candidate's lyrics suit what a user listens to?

Two kinds of judge share one interface:

- `LLMLyricJudge` asks a language model to grade the candidate against a deterministic summary
  of the user's history with a rubric (theme consistency, style/voice consistency, overall; each
  1-10, rationale first). Value = overall / 10, so 0.1 (unrelated) .. 1.0 (a perfect fit).
  Where the model runs is a `taste.chat_backends.ChatBackend` (any OpenAI-compatible server, or
  a local transformers model).
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
import re
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np

from songdata.atomic_files import replace_atomically
from taste.base import TasteResult, TasteScorer, TasteSong
from taste.chat_backends import ChatBackend, ChatError

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


class JudgeError(ChatError):
    """A reply that is not a valid judgement; its message becomes the failure reason."""


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
            text = self.backend.complete(rubric_messages(summary, lyrics), JUDGEMENT_SCHEMA)
            j = parse_judgement(text)
        except ChatError as error:
            log.warning("%s: song %s: %s", self.name, song_id, error)
            return TasteResult.failed(str(error), reply=(text or "")[:300])
        return TasteResult.ok(
            j.overall / 10, theme_consistency=j.theme_consistency, style_consistency=j.style_consistency,
            overall=j.overall, rationale=j.rationale,
        )


@lru_cache(maxsize=65536)
def _text_key(text: str) -> str:
    """A lyric's cache key (kept: a stage looks up each reference lyric once per scored row)."""
    return hashlib.sha1(text.encode()).hexdigest()


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
        self.cache_path = Path(cache_dir) / f"lyric-embeddings-{key}.npz" if cache_dir else None
        self._cache: dict[str, np.ndarray] = self._stored()

    def _stored(self) -> dict[str, np.ndarray]:
        if self.cache_path is None or not self.cache_path.exists():
            return {}
        with np.load(self.cache_path) as stored:  # two arrays: reading a file per text key was its main cost
            return dict(zip(stored["keys"].tolist(), stored["vectors"]))

    def prepare(self, songs: Sequence[TasteSong], batch_size: int = 64) -> None:
        """Embed every lyric of `songs` in length-sorted batches and write the cache once."""
        self._embed([s.lyrics for s in songs if s.lyrics.strip()], batch_size)

    def _embed(self, texts: list[str], batch_size: int = 64) -> np.ndarray:
        """Unit vectors, from the on-disk cache where possible, so a re-evaluation loads no model."""
        keys = [_text_key(text) for text in texts]
        missing = sorted({k: t for k, t in zip(keys, texts) if k not in self._cache}.items(), key=lambda kt: len(kt[1]))
        if missing:
            if self.encoder is None:
                from lightning_modules.lyrics_encoder import LyricsEncoder

                self.encoder = LyricsEncoder(self.model_name_or_path, max_length=self.max_length)
            for start in range(0, len(missing), batch_size):  # similar lengths together: little padding
                batch = missing[start : start + batch_size]
                vectors = self.encoder([t for _, t in batch]).float().numpy()
                vectors /= np.maximum(np.linalg.norm(vectors, axis=1, keepdims=True), 1e-12)
                self._cache.update({k: v for (k, _), v in zip(batch, vectors)})
            if self.cache_path is not None:  # with what another evaluation sharing the folder added meanwhile
                self._cache = {**self._stored(), **self._cache}
                stored = sorted(self._cache)
                matrix = np.stack([self._cache[k] for k in stored])
                replace_atomically(self.cache_path, lambda f: np.savez(f, keys=np.array(stored), vectors=matrix))
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
