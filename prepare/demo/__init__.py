"""The embedded demo world and its reusable parts: styles, composer, synthesiser, lyric writer."""

from prepare.demo.composer import SongPlan, compose_song, plan_song
from prepare.demo.lyrics import write_lyrics
from prepare.demo.styles import STYLES, Style, Vocabulary, get_style
from prepare.demo.synth import Timbre, render_midi, timbre_for
from prepare.demo.world import DemoAudioSource, build_demo_world, default_demo_root, ensure_demo_world, render_song

__all__ = [
    "STYLES",
    "DemoAudioSource",
    "SongPlan",
    "Style",
    "Timbre",
    "Vocabulary",
    "build_demo_world",
    "compose_song",
    "default_demo_root",
    "ensure_demo_world",
    "get_style",
    "plan_song",
    "render_midi",
    "render_song",
    "timbre_for",
    "write_lyrics",
]
