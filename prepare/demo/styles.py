"""The demo world's styles, as data: one row per genre × mood, read by the composer and lyric writer.

A style fixes what a listener would use to tell songs apart: tempo, key and mode, harmony,
instruments (General MIDI programs, rendered by `synth.py`), rhythmic feel, register and the
words of its lyrics. `energy` and `valence` place styles on a mood plane, so that some styles
are nearer to each other than others (the world's similarity scores and user tastes use it).
"""

from __future__ import annotations

from dataclasses import dataclass

MODES: dict[str, tuple[int, ...]] = {
    "major": (0, 2, 4, 5, 7, 9, 11),
    "minor": (0, 2, 3, 5, 7, 8, 10),
    "dorian": (0, 2, 3, 5, 7, 9, 10),
    "mixolydian": (0, 2, 4, 5, 7, 9, 10),
    "phrygian": (0, 1, 3, 5, 7, 8, 10),
}

# 16-step (sixteenth-note) patterns per GM drum key: "x" = accent, "o" = ghost note, "." = rest.
DRUM_PATTERNS: dict[str, dict[int, str]] = {
    "none": {},
    "brushes": {36: "x.......x.......", 37: "....o.......o...", 42: "x.o.x.o.x.o.x.o."},
    "rock": {36: "x.......x.x.....", 38: "....x.......x...", 42: "x.x.x.x.x.x.x.x."},
    "four_on_floor": {36: "x...x...x...x...", 39: "....x.......x...", 42: "..x...x...x...x.", 46: "......x.......x."},
    "pop": {36: "x.....x...x.....", 38: "....x.......x...", 42: "x.x.x.x.x.x.x.x."},
    "funk": {36: "x..x...x..x.....", 38: "....x..o.o..x..o", 42: "xoxoxoxoxoxoxoxo"},
    "lofi": {36: "x.......x..x....", 38: "....x.......x...", 42: "x.o.x.o.x.o.x.oo"},
    "metal": {36: "xxxxxxxxxxxxxxxx", 38: "....x.......x...", 49: "x.......x.......", 51: "..x...x...x...x."},
}


@dataclass(frozen=True)
class Vocabulary:
    """Words that lyric templates draw from; each style has its own themes."""

    nouns: tuple[str, ...]
    verbs: tuple[str, ...]
    adjectives: tuple[str, ...]
    places: tuple[str, ...]


@dataclass(frozen=True)
class Style:
    """One genre × mood of the demo world.

    Attributes:
        genre, mood: The song's tags.
        tempo: BPM range a song's tempo is drawn from.
        tonics: Keys a song's tonic is drawn from (pitch names).
        mode: A key of `MODES`.
        progressions: Chord roots as scale degrees (0 = tonic), one chord per bar, cycled.
        chord_steps: Chord tones as scale steps above the root ((0, 2, 4) triad, (0, 2, 4, 6) seventh, (0, 4, 7) power).
        melody_degrees: Scale degrees the melody may use (a pentatonic subset, say).
        melody_program, chord_program, bass_program: General MIDI programs (None = no such part).
        drums: A key of `DRUM_PATTERNS`.
        comp_pattern: 16-step onsets of the chords; `arpeggio` plays one chord tone per onset instead of all.
        strum_s: Delay between successive chord tones of one onset.
        bass_pattern: 16 steps: "r" root, "f" fifth, "o" octave, "." rest.
        density: Expected melody notes per beat.
        register: Centre MIDI pitch of the melody; chords sit an octave below, bass two.
        swing: Share of a sixteenth by which off-beat sixteenths are delayed.
        velocity: Base loudness (MIDI velocity).
        legato: Note length as a share of the time to the next onset.
        energy, valence: Position on the mood plane in [0, 1].
        brightness: Typical production brightness in [0, 1] (a song's latent identity varies it).
        topic: Home position on the cycle of lyric topics in [0, 1) (see `lyrics.TOPICS`).
        vocabulary: Lyric words.
        extra_tags: Tags that some of the style's songs also get.
        artist_words: Words for band names.
    """

    name: str
    genre: str
    mood: str
    tempo: tuple[float, float]
    tonics: tuple[str, ...]
    mode: str
    progressions: tuple[tuple[int, ...], ...]
    chord_steps: tuple[int, ...]
    melody_degrees: tuple[int, ...]
    melody_program: int
    chord_program: int | None
    bass_program: int | None
    drums: str
    comp_pattern: str
    bass_pattern: str
    density: float
    register: int
    velocity: int
    legato: float
    energy: float
    valence: float
    vocabulary: Vocabulary
    extra_tags: tuple[str, ...]
    artist_words: tuple[str, ...]
    brightness: float = 0.5
    topic: float = 0.0
    arpeggio: bool = False
    strum_s: float = 0.0
    swing: float = 0.0


STYLES: tuple[Style, ...] = (
    Style(
        name="calm folk", genre="folk", mood="calm", tempo=(68, 88), tonics=("G", "D", "C"),
        mode="major", progressions=((0, 3, 0, 4), (0, 5, 3, 4)),
        chord_steps=(0, 2, 4), melody_degrees=(0, 1, 2, 4, 5),
        melody_program=73, chord_program=25, bass_program=32, drums="brushes",
        comp_pattern="x.x.x.x.x.x.x.x.", strum_s=0.025, bass_pattern="r.......f.......",
        density=1.0, register=72, velocity=70, legato=0.9, energy=0.2, valence=0.6,
        vocabulary=Vocabulary(
            ("river", "meadow", "lantern", "harvest", "fiddle", "cabin", "willow", "morning dew"),
            ("wander", "gather", "rest", "remember", "carry", "follow"),
            ("quiet", "golden", "gentle", "old", "green", "slow"),
            ("the valley", "the hills", "grandmother's porch", "the country road", "the orchard"),
        ),
        extra_tags=("acoustic", "singer-songwriter"),
        artist_words=("Willow", "Hollow", "Creek", "Sparrow", "Timber", "Meadow"),
        brightness=0.5, topic=0.0,
    ),
    Style(
        name="energetic rock", genre="rock", mood="energetic", tempo=(132, 158), tonics=("E", "A", "D"),
        mode="mixolydian", progressions=((0, 6, 3, 0), (0, 3, 4, 3)),
        chord_steps=(0, 4, 7), melody_degrees=(0, 1, 2, 4, 6),
        melody_program=29, chord_program=30, bass_program=34, drums="rock",
        comp_pattern="x.x.x.x.x.x.x.x.", strum_s=0.004, bass_pattern="r.r.r.r.r.r.r.r.",
        density=1.6, register=64, velocity=110, legato=0.8, energy=0.85, valence=0.6,
        vocabulary=Vocabulary(
            ("highway", "engine", "thunder", "fire", "stage", "crowd", "guitar", "wheels"),
            ("run", "shout", "burn", "drive", "break", "rise"),
            ("loud", "wild", "electric", "restless", "fast", "burning"),
            ("the open road", "the arena", "the city lights", "the garage", "the edge of town"),
        ),
        extra_tags=("guitar", "live"),
        artist_words=("Thunder", "Riot", "Engine", "Voltage", "Rebels", "Highway"),
        brightness=0.6, topic=0.75,
    ),
    Style(
        name="dark electronic", genre="electronic", mood="dark", tempo=(118, 128), tonics=("F#", "A", "C#"),
        mode="phrygian", progressions=((0, 5, 6, 5), (0, 1, 0, 6)),
        chord_steps=(0, 2, 4), melody_degrees=(0, 1, 2, 3, 4),
        melody_program=81, chord_program=89, bass_program=38, drums="four_on_floor",
        comp_pattern="x...............", bass_pattern="..r...r...r...r.",
        density=2.0, register=62, velocity=95, legato=0.5, energy=0.7, valence=0.2,
        vocabulary=Vocabulary(
            ("signal", "shadow", "machine", "static", "neon", "void", "circuit", "pulse"),
            ("fade", "descend", "scan", "dissolve", "haunt", "glitch"),
            ("cold", "hollow", "synthetic", "midnight", "black", "distant"),
            ("the underground", "the server room", "the empty station", "the grid", "the warehouse"),
        ),
        extra_tags=("synth", "techno"),
        artist_words=("Void", "Cipher", "Null", "Obsidian", "Vector", "Static"),
        brightness=0.4, topic=0.5,
    ),
    Style(
        name="happy pop", genre="pop", mood="happy", tempo=(104, 122), tonics=("C", "F", "Bb"),
        mode="major", progressions=((0, 4, 5, 3), (3, 4, 0, 5)),
        chord_steps=(0, 2, 4), melody_degrees=(0, 1, 2, 3, 4, 5),
        melody_program=80, chord_program=0, bass_program=33, drums="pop",
        comp_pattern="x...x...x...x...", bass_pattern="r.....r...f.....",
        density=1.5, register=74, velocity=100, legato=0.6, energy=0.7, valence=0.9,
        vocabulary=Vocabulary(
            ("sunshine", "heart", "party", "summer", "smile", "dance floor", "candy", "weekend"),
            ("dance", "shine", "sing", "jump", "celebrate", "spin"),
            ("bright", "sweet", "happy", "shiny", "lucky", "colourful"),
            ("the beach", "the party", "the rooftop", "the summer fair", "your town"),
        ),
        extra_tags=("dance", "catchy"),
        artist_words=("Sunny", "Candy", "Glitter", "Bubble", "Starlight", "Cherry"),
        brightness=0.85, topic=0.92,
    ),
    Style(
        name="sad piano ballad", genre="ballad", mood="sad", tempo=(58, 72), tonics=("A", "E", "D"),
        mode="minor", progressions=((0, 5, 2, 6), (0, 3, 5, 4)),
        chord_steps=(0, 2, 4), melody_degrees=(0, 1, 2, 3, 4, 5, 6),
        melody_program=0, chord_program=0, bass_program=None, drums="none",
        comp_pattern="x.x.x.x.x.x.x.x.", arpeggio=True, bass_pattern="r...............",
        density=0.75, register=72, velocity=62, legato=1.0, energy=0.15, valence=0.1,
        vocabulary=Vocabulary(
            ("tears", "letter", "rain", "photograph", "winter", "empty room", "goodbye", "memory"),
            ("cry", "miss", "lose", "wait", "forget", "fall"),
            ("lonely", "broken", "grey", "cold", "silent", "lost"),
            ("the window", "the station", "the cemetery", "our old house", "the empty street"),
        ),
        extra_tags=("piano", "emotional"),
        artist_words=("Grey", "Ember", "Rain", "Ashes", "Winter", "Echo"),
        brightness=0.3, topic=0.3,
    ),
    Style(
        name="upbeat funk", genre="funk", mood="upbeat", tempo=(98, 114), tonics=("E", "G", "D"),
        mode="dorian", progressions=((0, 3), (0, 0, 3, 4)),
        chord_steps=(0, 2, 4, 6), melody_degrees=(0, 2, 3, 4, 6),
        melody_program=61, chord_program=7, bass_program=36, drums="funk",
        comp_pattern="..x..x.x..x..x..", bass_pattern="r..r..o.r.f..r..",
        density=2.0, register=67, swing=0.12, velocity=100, legato=0.4, energy=0.8, valence=0.8,
        vocabulary=Vocabulary(
            ("groove", "boogie", "soul", "rhythm", "dancing shoes", "bassline", "horn", "saturday"),
            ("move", "groove", "slide", "funk", "shake", "strut"),
            ("funky", "smooth", "groovy", "tight", "hot", "fresh"),
            ("the disco", "the block party", "downtown", "the soul club", "the dance hall"),
        ),
        extra_tags=("groove", "horns"),
        artist_words=("Groove", "Soul", "Funkadelic", "Brass", "Boogie", "Velvet"),
        brightness=0.7, topic=0.85,
    ),
    Style(
        name="chill lofi jazz", genre="jazz", mood="chill", tempo=(72, 88), tonics=("F", "Eb", "Bb"),
        mode="major", progressions=((1, 4, 0, 5), (0, 5, 1, 4)),
        chord_steps=(0, 2, 4, 6), melody_degrees=(0, 1, 2, 4, 5, 6),
        melody_program=11, chord_program=4, bass_program=32, drums="lofi",
        comp_pattern="x.......x.......", arpeggio=True, bass_pattern="r.......f...r...",
        density=0.9, register=70, swing=0.3, velocity=72, legato=0.95, energy=0.25, valence=0.5,
        vocabulary=Vocabulary(
            ("coffee", "vinyl", "window", "notebook", "raindrops", "cat", "late night", "tea"),
            ("study", "drift", "breathe", "dream", "sip", "unwind"),
            ("mellow", "soft", "hazy", "warm", "sleepy", "cozy"),
            ("the cafe", "my room", "the library", "the night bus", "the balcony"),
        ),
        extra_tags=("instrumental", "study"),
        artist_words=("Mellow", "Haze", "Cloud", "Velvet", "Moon", "Nook"),
        brightness=0.2, topic=0.125,
    ),
    Style(
        name="aggressive metal", genre="metal", mood="aggressive", tempo=(160, 190), tonics=("E", "D", "B"),
        mode="phrygian", progressions=((0, 1, 0, 6), (0, 5, 1, 0)),
        chord_steps=(0, 4, 7), melody_degrees=(0, 1, 2, 3, 4),
        melody_program=30, chord_program=30, bass_program=34, drums="metal",
        comp_pattern="xxxxxxxxxxxxxxxx", bass_pattern="rrrrrrrrrrrrrrrr",
        density=3.0, register=58, velocity=120, legato=0.6, energy=0.95, valence=0.15,
        vocabulary=Vocabulary(
            ("blood", "steel", "war", "skull", "iron", "chaos", "throne", "fury"),
            ("destroy", "crush", "scream", "conquer", "bleed", "rage"),
            ("savage", "brutal", "iron", "burning", "dead", "merciless"),
            ("the battlefield", "the abyss", "the pit", "the ruins", "hell's gate"),
        ),
        extra_tags=("heavy", "distorted"),
        artist_words=("Skull", "Carnage", "Iron", "Abyss", "Wrath", "Tyrant"),
        brightness=0.55, topic=0.625,
    ),
)

STYLES_BY_NAME: dict[str, Style] = {style.name: style for style in STYLES}


def get_style(style: Style | str) -> Style:
    """Look a style up by name (or pass one through); the error lists the names there are."""
    if isinstance(style, Style):
        return style
    try:
        return STYLES_BY_NAME[style]
    except KeyError:
        raise KeyError(f"unknown demo style {style!r}; styles are {sorted(STYLES_BY_NAME)}") from None
