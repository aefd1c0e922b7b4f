"""Lyrics from a user's history alone: a word n-gram model of the history's lines.

Dataset-agnostic: it sees only lyric text (no styles, no tags). `LyricNgram` counts word n-grams
per line (play-weighted), then writes lines by sampling each next word from the longest context
it has seen, backing off to shorter ones.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Sequence

import numpy as np

from taste.novelty import lyric_lines

START, END = "<s>", "</s>"


class LyricNgram:
    """A word n-gram model over lines of lyrics, with back-off to shorter contexts.

    Args:
        order: n of the longest n-gram (2 = bigrams).
        max_words: Longest line written.
    """

    def __init__(self, order: int = 3, max_words: int = 12) -> None:
        if order < 2:
            raise ValueError(f"order: expected >= 2, got {order}")
        self.order, self.max_words = order, max_words
        self.counts: dict[tuple[str, ...], Counter] = defaultdict(Counter)

    def fit(self, lyrics: Sequence[str], weights: Sequence[float] | None = None) -> LyricNgram:
        """Count every line's n-grams of every order, each song's counts scaled by its weight (plays)."""
        weights = weights if weights is not None else [1.0] * len(lyrics)
        for text, weight in zip(lyrics, weights):
            for line in lyric_lines(text):
                tokens = [START] * (self.order - 1) + line + [END]
                for i in range(self.order - 1, len(tokens)):
                    for n in range(1, self.order):
                        self.counts[tuple(tokens[i - n : i])][tokens[i]] += float(weight)
        return self

    @property
    def empty(self) -> bool:
        return not self.counts

    def _next(self, history: list[str], rng: np.random.Generator) -> str:
        for n in range(self.order - 1, 0, -1):
            options = self.counts.get(tuple(history[-n:]))
            if options:
                tokens = sorted(options)
                p = np.array([options[t] for t in tokens], dtype=np.float64)
                return tokens[int(rng.choice(len(tokens), p=p / p.sum()))]
        return END

    def line(self, rng: np.random.Generator) -> str:
        """One line, sampled word by word ("" when the model has seen no lyrics)."""
        history = [START] * (self.order - 1)
        out: list[str] = []
        while len(out) < self.max_words:
            token = self._next(history, rng)
            if token == END:
                break
            out.append(token)
            history.append(token)
        text = " ".join(out)
        return text[:1].upper() + text[1:]

    def lines(self, n: int, rng: np.random.Generator) -> list[str]:
        """`n` non-empty lines (fewer only when the model is empty)."""
        if self.empty:
            return []
        out: list[str] = []
        for _ in range(20 * n):
            if len(out) == n:
                break
            if text := self.line(rng):
                out.append(text)
        return out
