"""Lyrics, titles and artist names from a style's vocabulary: a few templated lines with a repeated hook."""

from __future__ import annotations

import numpy as np

from prepare.demo.styles import Style, Vocabulary, get_style

LINE_TEMPLATES: tuple[str, ...] = (
    "{adj} {noun} in {place}",
    "I {verb} with the {noun} tonight",
    "we {verb} where the {adj} {noun} goes",
    "take me back to {place}",
    "every {noun} is {adj} now",
    "you {verb} and I {verb2}",
    "all the {adj} {nouns} calling me",
    "down in {place} we {verb}",
    "{verb} {verb2}, the {noun} knows",
    "so {adj}, so {adj2}, my {noun}",
)

HOOK_TEMPLATES: tuple[str, ...] = (
    "oh {adj} {noun}, {verb} with me",
    "{verb}, {verb}, {adj} {noun}",
    "we are the {adj} {nouns}",
    "till the {noun} {verbs} again",
)

TITLE_TEMPLATES: tuple[str, ...] = ("{Adj} {Noun}", "{Noun}", "{Verb} {Place}", "The {Adj} {Noun}", "{Noun} of {Place}")

FIRST_NAMES: tuple[str, ...] = (
    "Ada", "Ben", "Cleo", "Dev", "Elin", "Finn", "Gia", "Hugo", "Iris", "Jonas", "Kai", "Lena",
)
LAST_NAMES: tuple[str, ...] = ("Marsh", "Nolan", "Okafor", "Park", "Quist", "Reyes", "Sato", "Tan", "Ueda", "Vance")


def _add_s(word: str) -> str:
    """Plural noun or third-person verb: 'rain' → 'rains', 'crush' → 'crushes', 'fury' → 'furies'."""
    if word.endswith("s"):
        return word
    if word.endswith(("sh", "ch", "x", "z")):
        return word + "es"
    if word.endswith("y") and word[-2:-1] not in "aeiou":
        return word[:-1] + "ies"
    return word + "s"


def _fill(template: str, vocabulary: Vocabulary, rng: np.random.Generator) -> str:
    def pick(words: tuple[str, ...]) -> str:
        return str(words[rng.integers(len(words))])

    words = {
        "noun": pick(vocabulary.nouns),
        "verb": pick(vocabulary.verbs),
        "verb2": pick(vocabulary.verbs),
        "adj": pick(vocabulary.adjectives),
        "adj2": pick(vocabulary.adjectives),
        "place": pick(vocabulary.places),
    }
    words.update(nouns=_add_s(words["noun"]), verbs=_add_s(words["verb"]))
    words.update({key.capitalize(): value.title() for key, value in words.items()})
    return template.format(**words)


def write_lyrics(style: Style | str, rng: np.random.Generator, vocabulary: Vocabulary | None = None) -> str:
    """A verse of 3-5 lines around a hook sung twice, one line per `\\n`.

    Args:
        style: Whose vocabulary to use (a `Style` or its name).
        rng: Source of every choice, so lyrics follow the caller's seed.
        vocabulary: Words to use instead of the style's own (a generator's prompt, say).
    """
    vocabulary = vocabulary or get_style(style).vocabulary
    hook = _fill(HOOK_TEMPLATES[rng.integers(len(HOOK_TEMPLATES))], vocabulary, rng)
    n_verse = int(rng.integers(3, 6))
    verse = [_fill(LINE_TEMPLATES[i], vocabulary, rng) for i in rng.choice(len(LINE_TEMPLATES), n_verse, replace=False)]
    lines = [hook, *verse, hook]
    return "\n".join(line[0].upper() + line[1:] for line in lines)


def write_title(style: Style | str, rng: np.random.Generator) -> str:
    """A short title in the style's words."""
    template = TITLE_TEMPLATES[rng.integers(len(TITLE_TEMPLATES))]
    return _fill(template, get_style(style).vocabulary, rng)


def write_artist_name(style: Style | str, rng: np.random.Generator) -> str:
    """A band name from the style's artist words, or a person's name."""
    style = get_style(style)
    if rng.random() < 0.3:
        return f"{FIRST_NAMES[rng.integers(len(FIRST_NAMES))]} {LAST_NAMES[rng.integers(len(LAST_NAMES))]}"
    first, second = rng.choice(len(style.artist_words), 2, replace=False)
    return f"The {style.artist_words[first]} {_add_s(style.artist_words[second])}"
