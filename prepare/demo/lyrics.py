"""Lyrics, titles and artist names from a style's vocabulary: a few templated lines with a repeated hook.

With a song's latent identity the words move too: most lines take their words from the topic
vocabulary nearest the song's topic, adjectives lean bright or dark with its darkness, and
energetic songs get more, shorter lines and a hook sung three times.
"""

from __future__ import annotations

import numpy as np

from prepare.demo.identity import Identity
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
    "I remember how the {adj} {noun} would {verb} all night in {place}",
    "and if the {nouns} {verb} again I will {verb2} beside you",
    "somewhere past {place} a {adj} {noun} is waiting for us",
)
SHORT_WORDS = 6  # templates of at most this many words count as short lines

# A cycle of lyric topics: a song's `topic` in [0, 1) sits between two neighbours (styles' homes in styles.py).
TOPICS: tuple[Vocabulary, ...] = (
    Vocabulary(("mountain", "forest", "stream", "sparrow", "stone", "sky"), ("climb", "grow", "listen", "bloom"),
               ("wild", "open", "clear", "young"), ("the forest", "the mountain pass", "the riverbank")),
    Vocabulary(("kitchen", "blanket", "candle", "porch light", "sofa", "kettle"), ("stay", "linger", "hum", "cook"),
               ("warm", "lazy", "homely", "soft"), ("home", "the kitchen", "the attic")),
    Vocabulary(("kiss", "promise", "ring", "heartbeat", "rose", "lover"), ("hold", "love", "need", "touch"),
               ("tender", "true", "sweet", "close"), ("your arms", "the chapel", "the garden")),
    Vocabulary(("ghost", "grave", "ashes", "shadow", "silence", "scar"), ("mourn", "leave", "bury", "grieve"),
               ("hollow", "faded", "lonely", "empty"), ("the graveyard", "the old hospital", "the harbour")),
    Vocabulary(("satellite", "screen", "wire", "code", "tower", "hologram"), ("connect", "upload", "flicker", "sync"),
               ("digital", "chrome", "electric", "blue"), ("the network", "the tower block", "cyberspace")),
    Vocabulary(("sword", "army", "flag", "storm", "king", "battle"), ("fight", "march", "defy", "strike"),
               ("fierce", "proud", "savage", "bold"), ("the front line", "the castle", "the war zone")),
    Vocabulary(("motor", "mile", "truck", "freeway", "radio", "dust"), ("ride", "roll", "escape", "speed"),
               ("free", "dusty", "rolling", "long"), ("the desert", "the motel", "route sixty-six")),
    Vocabulary(("disco ball", "drink", "beat", "club", "lights", "dj"), ("party", "bounce", "move", "groove"),
               ("crazy", "loud", "glowing", "hot"), ("the club", "the dance floor", "the after party")),
)
# Adjectives from bright to dark: imagery follows a song's darkness.
IMAGERY: tuple[str, ...] = (
    "sunny", "radiant", "golden", "shining", "bright", "warm", "gentle", "pale",
    "grey", "misty", "cold", "bitter", "bleak", "dark", "grim", "black",
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


def _line_vocabulary(own: Vocabulary, identity: Identity, rng: np.random.Generator, own_share: float) -> Vocabulary:
    """Words for one line: the style's own (share `own_share`) or the topic's near `identity.topic`; imagery by darkness."""
    topic = TOPICS[int(round(identity.topic * len(TOPICS) + rng.normal(0, 0.35))) % len(TOPICS)]
    words = own if rng.random() < own_share else topic
    adjectives = words.adjectives
    if rng.random() < 0.5:
        centre = identity.darkness * (len(IMAGERY) - 1) + rng.normal(0, 1.5)
        low = int(np.clip(round(centre) - 1, 0, len(IMAGERY) - 3))
        adjectives = IMAGERY[low : low + 3]
    return Vocabulary(words.nouns, words.verbs, adjectives, words.places)


def _verse_templates(identity: Identity, rng: np.random.Generator) -> list[str]:
    """More, shorter lines for energetic songs; fewer, longer ones for calm songs."""
    n_verse = int(np.clip(round(2 + 4 * identity.energy + rng.normal(0, 0.7)), 2, 6))
    short = np.array([len(t.split()) <= SHORT_WORDS for t in LINE_TEMPLATES])
    lean = np.clip(identity.energy + rng.normal(0, 0.15), 0.05, 0.95)
    p = np.where(short, lean, 1 - lean)
    chosen = rng.choice(len(LINE_TEMPLATES), n_verse, replace=False, p=p / p.sum())
    return [LINE_TEMPLATES[i] for i in chosen]


def write_lyrics(
    style: Style | str,
    rng: np.random.Generator,
    vocabulary: Vocabulary | None = None,
    identity: Identity | None = None,
    own_share: float = 0.35,
) -> str:
    """A verse around a hook, one line per `\\n`: 3-5 lines and the hook twice, or shaped by `identity`.

    Args:
        style: Whose vocabulary to use (a `Style` or its name).
        rng: Source of every choice, so lyrics follow the caller's seed.
        vocabulary: Words to use instead of the style's own (a generator's prompt, say).
        identity: The song's latent identity; None writes from the style's words alone.
        own_share: With an identity, the share of lines in the style's own words (the rest follow the topic).
    """
    vocabulary = vocabulary or get_style(style).vocabulary
    if identity is None:
        hook = _fill(HOOK_TEMPLATES[rng.integers(len(HOOK_TEMPLATES))], vocabulary, rng)
        n_verse = int(rng.integers(3, 6))
        verse = [_fill(LINE_TEMPLATES[i], vocabulary, rng) for i in rng.choice(len(LINE_TEMPLATES), n_verse, replace=False)]
        lines = [hook, *verse, hook]
    else:
        hook_words = _line_vocabulary(vocabulary, identity, rng, own_share)
        hook = _fill(HOOK_TEMPLATES[rng.integers(len(HOOK_TEMPLATES))], hook_words, rng)
        verse = [_fill(t, _line_vocabulary(vocabulary, identity, rng, own_share), rng) for t in _verse_templates(identity, rng)]
        lines = [hook, *verse, hook] + ([hook] if identity.energy + rng.normal(0, 0.1) > 0.65 else [])
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
