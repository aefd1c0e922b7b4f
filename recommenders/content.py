"""The content recommender: a trained SimSong checkpoint embeds every catalog song."""

from __future__ import annotations

import logging
import pickle
import re
from collections import Counter
from pathlib import Path

import numpy as np
import torch

from lightning_modules.simsong import SimSongModule
from lightning_modules.song_embeddings import Fuse, SongEmbedder
from recommenders.embedding import EmbeddingRecommender
from songdata import InteractionData

log = logging.getLogger(__name__)


def run_name_of(checkpoint: str | Path) -> str:
    """`runs/simsong-wns/checkpoints/last.ckpt` → `simsong-wns`."""
    path = Path(checkpoint)
    return path.parent.parent.name if path.parent.name == "checkpoints" else path.stem


def load_module(checkpoint: str | Path, device: str = "cpu") -> SimSongModule:
    """Load a SimSong checkpoint with no training config; a file that is not one fails clearly.

    Loading is weights-only: a file that needs any other pickled object is refused unread, never run.
    """
    path = Path(checkpoint)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: checkpoint not found")
    try:
        module = SimSongModule.load_from_checkpoint(path, map_location=device, weights_only=True)
    except pickle.UnpicklingError as error:
        # torch's own message advises weights_only=False, which would run whatever the file holds.
        refused = re.search(r"WeightsUnpickler error:\s*([^\n]+)", str(error))
        detail = (refused.group(1) if refused else str(error).splitlines()[0]).split(". Please")[0].strip()
        raise ValueError(f"{path}: not a SimSong checkpoint; weights-only loading refused it ({detail})") from None
    except Exception as error:
        raise ValueError(f"{path}: not a SimSong checkpoint ({type(error).__name__}: {error})") from error
    return module.eval()


class ContentRecommender(EmbeddingRecommender):
    """Rank songs by cosine to the mean embedding of the user's history, embeddings from a checkpoint.

    The only family that ranks cold-start songs: it needs a song's audio or lyrics, not its plays.

    Args:
        checkpoint: Path of a SimSong checkpoint (`.ckpt`).
        fuse: Embed songs from their `audio`, their `lyrics`, or `both` (mean of the two unit vectors).
        name: Leaderboard name; default: the checkpoint's run name (e.g. `simsong-wns`).
        device: Where to run the encoders.
    """

    can_rank_cold = True

    def __init__(
        self, checkpoint: str, fuse: Fuse = "both", name: str | None = None, device: str = "cpu",
        show_progress: bool = True,
    ) -> None:
        super().__init__()
        self.checkpoint, self.fuse, self.device = checkpoint, fuse, device
        self.name = name or run_name_of(checkpoint)
        self.embedder = SongEmbedder(fuse, crop="whole", show_progress=show_progress)
        self.skipped: Counter = Counter()  # why songs have no audio embedding (see `SongEmbedder`)

    def song_embeddings_for(self, data: InteractionData) -> np.ndarray:
        """Audio from the dataset's shards, lyrics from its catalog (`data.dataset`)."""
        if data.dataset is None:
            raise ValueError(f"{self.name}: the InteractionData has no dataset to read songs from")
        module = load_module(self.checkpoint, self.device)
        with torch.inference_mode():
            embeddings = self.embedder.embed(module, data.dataset)
        self.skipped = self.embedder.skipped
        log.info("%s: embedded %d songs (%s)", self.name, int(np.any(embeddings != 0, axis=1).sum()), self.fuse)
        return embeddings
