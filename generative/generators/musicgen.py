"""MusicGen through transformers (`MusicgenForConditionalGeneration` + `AutoProcessor`): instrumental songs.

Weights come from `model_name_or_path`: a local folder, or a hub id when downloads are allowed.
Loading happens when the generator is built, so a run without weights stops before any request.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import torch

from generative.generators.base import GeneratedSong, Generator, GeneratorUnavailable, safe_name, write_wav_atomic
from generative.prompts import Prompt
from songdata.audio import SAMPLE_RATE, to_mono_16k

log = logging.getLogger(__name__)


class MusicgenGenerator(Generator):
    """One song per request from the prompt's description (or style).

    Args:
        audio_dir: Audio lands in `audio_dir/<user>/<clip id>.wav` (16 kHz mono).
        model_name_or_path: Local folder or hub id of a MusicGen checkpoint with its processor.
        seconds: Length of each song (sets the number of audio tokens).
        device: Torch device; None = cuda when available.
        guidance_scale: Classifier-free guidance.
        seed: Mixed into each request's seed.
    """

    backend = "musicgen"

    def __init__(
        self,
        audio_dir: Path,
        model_name_or_path: str,
        seconds: float = 12.0,
        device: str | None = None,
        guidance_scale: float = 3.0,
        seed: int = 0,
    ):
        from transformers import AutoProcessor, MusicgenForConditionalGeneration

        self.audio_dir, self.seconds, self.guidance_scale, self.seed = Path(audio_dir), seconds, guidance_scale, seed
        self.model = str(model_name_or_path)
        self.device = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
        try:
            self.processor = AutoProcessor.from_pretrained(self.model)
            self.network = MusicgenForConditionalGeneration.from_pretrained(self.model).to(self.device).eval()
        except (OSError, ValueError) as error:
            reason = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
            raise GeneratorUnavailable(
                f"musicgen: cannot load weights from {self.model!r} ({reason}). Set --generator.model_name_or_path "
                "to a folder with a MusicGen checkpoint and its processor files, or a hub id such as "
                "facebook/musicgen-small with downloads allowed (HF_HUB_OFFLINE unset)."
            ) from error

    @torch.inference_mode()
    def generate(self, prompt: Prompt, user_id: str) -> list[GeneratedSong]:
        text = prompt.description or prompt.style
        inputs = self.processor(text=[text], padding=True, return_tensors="pt").to(self.device)
        max_new_tokens = max(1, int(self.seconds * self.network.config.audio_encoder.frame_rate))
        seed = int(np.random.SeedSequence([self.seed, prompt.seed]).generate_state(1)[0])
        torch.manual_seed(seed)
        audio = self.network.generate(
            **inputs, do_sample=True, guidance_scale=self.guidance_scale, max_new_tokens=max_new_tokens
        )
        wave = to_mono_16k(audio[0].float().cpu().numpy().mean(axis=0), self.network.config.audio_encoder.sampling_rate)
        clip_id = f"musicgen-{seed:08x}"
        path = write_wav_atomic(wave, self.audio_dir / safe_name(user_id) / f"{clip_id}.wav")
        return [
            GeneratedSong(
                clip_id=clip_id, audio_path=path, title=prompt.title, lyrics="", tags=text, model=self.model,
                backend=self.backend, duration_s=len(wave) / SAMPLE_RATE, metadata={"seed": seed, "text": text},
            )
        ]
