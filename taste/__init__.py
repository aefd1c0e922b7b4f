"""Taste scores for generated songs and recommenders' top-k alike: MIDI similarity and lyric relevance.

Every scorer follows `TasteScorer.score(candidates, history) -> list[TasteResult]`; a result
holds a value or a failure reason, never both.
"""

from taste.base import TasteResult, TasteScorer, TasteSong, file_hash, iter_catalog_songs, summarise, waveform_hash
from taste.chat_backends import ChatBackend, ChatError, OpenAIChatBackend, TransformersChatBackend
from taste.lyric_judge import EmbeddingLyricJudge, JudgeError, LLMLyricJudge, history_summary, parse_judgement
from taste.midi_similarity import MidiSimilarity, note_features
from taste.transcription import Transcriber, Transcription, TranscriptionConfig, basic_pitch_model

__all__ = [
    "ChatBackend",
    "ChatError",
    "EmbeddingLyricJudge",
    "JudgeError",
    "LLMLyricJudge",
    "MidiSimilarity",
    "OpenAIChatBackend",
    "TasteResult",
    "TasteScorer",
    "TasteSong",
    "Transcriber",
    "Transcription",
    "TranscriptionConfig",
    "TransformersChatBackend",
    "basic_pitch_model",
    "file_hash",
    "history_summary",
    "iter_catalog_songs",
    "note_features",
    "parse_judgement",
    "summarise",
    "waveform_hash",
]
