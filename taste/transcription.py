"""Audio → notes with basic-pitch's ONNX model, cached on disk by audio content hash.

basic-pitch is imported lazily and its model is built once per process, so a fully cached
evaluation never pays for either. The cache holds note lists, not features: features are
cheap to recompute and may change, transcriptions are the expensive part. Each transcription is
written to a file of its own the moment it exists (an interrupted run loses none); `save_pack`
gathers them into one `pack.npz` that a later run reads at once instead of a file per song.
"""

from __future__ import annotations

import hashlib
import json
import logging
import warnings
from collections import OrderedDict
from dataclasses import asdict, dataclass
from functools import cache
from pathlib import Path

import numpy as np
import torch
import torchaudio

from songdata.atomic_files import replace_atomically
from songdata.audio import SAMPLE_RATE
from taste.base import TasteSong

log = logging.getLogger(__name__)

# basic-pitch's inference settings (inference.run_inference): 30 overlapping frames between windows.
_OVERLAP_FRAMES = 30


@cache
def basic_pitch_model(model_path: str | None = None) -> object:
    """The basic-pitch model (ONNX when TensorFlow is absent), built once per process and path."""
    root = logging.getLogger()
    level = root.level
    root.setLevel(logging.ERROR)  # basic_pitch warns on import about every runtime that is missing
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)  # resampy's pkg_resources notice
            import basic_pitch
            from basic_pitch.inference import Model
    finally:
        root.setLevel(level)
    return Model(model_path or basic_pitch.ICASSP_2022_MODEL_PATH)


@cache
def _resampler(orig_hz: int, new_hz: int) -> torchaudio.transforms.Resample:
    """torchaudio's float32 resampler (what `functional.resample` does on float32) with its kernel built once."""
    return torchaudio.transforms.Resample(orig_hz, new_hz, dtype=torch.float32)


@dataclass(frozen=True)
class Transcription:
    """Notes of one song: `notes` is float32 [n, 4] = (start_s, end_s, midi pitch, amplitude)."""

    notes: np.ndarray
    duration_s: float


@dataclass(frozen=True)
class TranscriptionConfig:
    """basic-pitch's note-extraction settings (its defaults); they key the cache, so changing one re-transcribes.

    Attributes:
        onset_threshold, frame_threshold: Activation needed to start / continue a note.
        minimum_note_length_ms: Shorter notes are dropped.
        melodia_trick: basic-pitch's post-processing that recovers notes without a clear onset.
    """

    onset_threshold: float = 0.5
    frame_threshold: float = 0.3
    minimum_note_length_ms: float = 127.7
    melodia_trick: bool = True

    @property
    def tag(self) -> str:
        """Folder name for this configuration's cache entries."""
        return "bp-" + hashlib.sha1(json.dumps(asdict(self), sort_keys=True).encode()).hexdigest()[:10]


def _model_output(model: object, wave_22k: np.ndarray, batch_windows: int) -> dict[str, np.ndarray]:
    """basic-pitch's `run_inference` on an in-memory waveform, with windows batched."""
    from basic_pitch.constants import AUDIO_N_SAMPLES, FFT_HOP
    from basic_pitch.inference import unwrap_output, window_audio_file

    overlap = _OVERLAP_FRAMES * FFT_HOP
    padded = np.concatenate([np.zeros(overlap // 2, dtype=np.float32), wave_22k])
    windows = [w for w, _ in window_audio_file(padded, AUDIO_N_SAMPLES - overlap)]
    outputs: dict[str, list[np.ndarray]] = {"note": [], "onset": [], "contour": []}
    for start in range(0, len(windows), batch_windows):
        batch = np.stack(windows[start : start + batch_windows]).astype(np.float32)
        for key, value in model.predict(batch).items():
            outputs[key].append(value)
    return {k: unwrap_output(np.concatenate(v), len(wave_22k), _OVERLAP_FRAMES) for k, v in outputs.items()}


PACK_FILE = "pack.npz"


class Transcriber:
    """Transcribe songs to notes, caching `cache_dir/<config tag>/<audio sha1>.npz` (and `pack.npz`).

    Args:
        cache_dir: Where transcriptions are kept; None = no disk cache.
        config: basic-pitch's settings.
        model_path: basic-pitch model file; None = the bundled ICASSP 2022 model.
        batch_windows: 2-second windows per model call.
        memory_size: Transcriptions also kept in memory (least recently used dropped).
    """

    def __init__(
        self,
        cache_dir: str | Path | None = None,
        config: TranscriptionConfig | None = None,
        model_path: str | None = None,
        batch_windows: int = 8,
        memory_size: int = 4096,
    ) -> None:
        self.config = config or TranscriptionConfig()
        self.cache_dir = Path(cache_dir) / self.config.tag if cache_dir is not None else None
        self.model_path = model_path
        self.batch_windows = batch_windows
        self.hits = 0
        self.misses = 0
        self._memory: OrderedDict[str, Transcription] = OrderedDict()
        self.memory_size = memory_size
        self._pack: dict[str, Transcription] | None = None  # read on first use
        self._unpacked: dict[str, Transcription] = {}  # read or made here, not in the pack yet

    def transcribe_waveform(self, wave: np.ndarray) -> Transcription:
        """Notes of a mono 16 kHz waveform (no cache)."""
        model = basic_pitch_model(self.model_path)  # first: imports basic_pitch quietly
        from basic_pitch.constants import AUDIO_SAMPLE_RATE, FFT_HOP
        from basic_pitch.note_creation import model_output_to_notes

        wave = np.asarray(wave, dtype=np.float32)
        duration = len(wave) / SAMPLE_RATE
        if len(wave) == 0:
            return Transcription(np.zeros((0, 4), np.float32), 0.0)
        with torch.no_grad():
            wave_22k = _resampler(SAMPLE_RATE, AUDIO_SAMPLE_RATE)(torch.from_numpy(wave)).numpy()
        output = _model_output(model, wave_22k, self.batch_windows)
        min_frames = int(np.round(self.config.minimum_note_length_ms / 1000 * (AUDIO_SAMPLE_RATE / FFT_HOP)))
        with np.errstate(invalid="ignore", divide="ignore"):  # silence: basic-pitch divides 0 by 0, finds no notes
            _, events = model_output_to_notes(
                output,
                onset_thresh=self.config.onset_threshold,
                frame_thresh=self.config.frame_threshold,
                min_note_len=min_frames,
                melodia_trick=self.config.melodia_trick,
                include_pitch_bends=False,
            )
        notes = np.array([(s, e, p, a) for s, e, p, a, _ in events], dtype=np.float32).reshape(-1, 4)
        return Transcription(notes[np.lexsort((notes[:, 2], notes[:, 0]))], duration)

    def transcribe(self, song: TasteSong) -> Transcription:
        """Notes of `song`, from memory or the disk cache when its audio was transcribed before."""
        key = song.audio_hash
        if key in self._memory:
            self.hits += 1
            self._memory.move_to_end(key)
            return self._memory[key]
        result = self._transcribe_cached(song)
        self._memory[key] = result
        if len(self._memory) > self.memory_size:
            self._memory.popitem(last=False)
        return result

    def is_cached(self, audio_hash: str) -> bool:
        """Whether audio with this hash was transcribed into the disk cache."""
        if self.cache_dir is None:
            return False
        return audio_hash in self._packed() or (self.cache_dir / f"{audio_hash}.npz").exists()

    def _transcribe_cached(self, song: TasteSong) -> Transcription:
        if self.cache_dir is None:
            self.misses += 1
            return self.transcribe_waveform(song.waveform())
        key = song.audio_hash
        if key in self._packed():
            self.hits += 1
            return self._packed()[key]
        path = self.cache_dir / f"{key}.npz"
        if path.exists():
            try:
                with np.load(path) as cached:
                    result = Transcription(cached["notes"], float(cached["duration_s"]))
                self.hits += 1
                self._unpacked[key] = result
                return result
            except (OSError, ValueError, KeyError) as error:
                log.warning("%s: unreadable cache entry (%s); transcribing song %s again", path, error, song.id)
        self.misses += 1
        result = self.transcribe_waveform(song.waveform())
        _atomic_save(path, notes=result.notes, duration_s=np.float64(result.duration_s))
        self._unpacked[key] = result
        return result

    def _packed(self) -> dict[str, Transcription]:
        if self._pack is None:
            self._pack = self._read_pack()
        return self._pack

    def _read_pack(self) -> dict[str, Transcription]:
        path = self.cache_dir / PACK_FILE
        if not path.exists():
            return {}
        try:
            with np.load(path) as pack:
                hashes, offsets, notes, durations = pack["hashes"], pack["offsets"], pack["notes"], pack["durations"]
        except (OSError, ValueError, KeyError) as error:  # the per-song files are still there
            log.warning("%s: unreadable transcription pack (%s); reading songs one by one", path, error)
            return {}
        return {
            str(h): Transcription(notes[offsets[i] : offsets[i + 1]], float(durations[i])) for i, h in enumerate(hashes)
        }

    def save_pack(self) -> int:
        """Gather this run's transcriptions into `pack.npz` (with what it held); returns how many were added.

        Another run sharing the cache may have packed meanwhile: the pack on disk is read again and kept.
        """
        if self.cache_dir is None or not self._unpacked:
            return 0
        merged = {**self._read_pack(), **self._packed(), **self._unpacked}
        hashes = sorted(merged)
        lengths = [len(merged[h].notes) for h in hashes]
        _atomic_save(
            self.cache_dir / PACK_FILE,
            hashes=np.array(hashes),
            offsets=np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64),
            notes=np.concatenate([merged[h].notes for h in hashes]).reshape(-1, 4).astype(np.float32),
            durations=np.array([merged[h].duration_s for h in hashes], dtype=np.float64),
        )
        added = len(self._unpacked)
        self._pack, self._unpacked = merged, {}
        return added


def _atomic_save(path: Path, **arrays: np.ndarray) -> None:
    """An npz written beside `path` and renamed in place, so readers never see half a file."""
    replace_atomically(path, lambda f: np.savez(f, **arrays))
