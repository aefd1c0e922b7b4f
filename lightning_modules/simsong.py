"""SimSongModule: contrastive audio-audio and audio-lyrics training (InfoNCE or Soft-InfoNCE).

Two segments of a song (a, a') and its lyrics (l) are embedded into one space. The a2a head
pulls the two segments of a song together, the a2l head pulls audio towards its lyrics;
``loss="wns"`` down-weights negatives that an external song similarity says resemble the
anchor. Under DDP the keys come from all ranks (open_clip style: gather with gradients,
local queries, positives offset by rank).
"""

from __future__ import annotations

import logging
import math
from collections.abc import Iterator
from contextlib import contextmanager
from functools import partial
from typing import Any, Literal

import lightning as L
import torch
import torch.nn.functional as F
from torch import Tensor, nn
from transformers import get_cosine_schedule_with_warmup

from lightning_modules.audio_encoder import AudioEncoder
from lightning_modules.losses import info_nce, negative_weights, negatives_mask, weight_summary, weighted_info_nce
from lightning_modules.lyrics_encoder import LyricsEncoder
from songdata import SongDataset
from songdata.similarity import DEFAULT_TOP_K, SimilaritySource, SongSimilarity, song_similarity

log = logging.getLogger(__name__)

# Temperature kept in [0.01, 1.0], i.e. logit scale log(1/T) in [0, log 100] (as CLIP).
MIN_LOGIT_SCALE, MAX_LOGIT_SCALE = 0.0, math.log(100.0)
RECALL_AT = (1, 5, 10)


def retrieval_metrics(query: Tensor, gallery: Tensor, prefix: str, chunk: int = 1024) -> dict[str, Tensor]:
    """Recall@k and median rank where query row i's match is gallery row i.

    One matrix product per chunk of queries gives every rank at once, which torchmetrics'
    per-query retrieval metrics (built for ragged relevance lists) would need N^2 index
    entries for. Ties count in the query's favour.
    """
    ranks = []
    for start in range(0, query.shape[0], chunk):
        scores = query[start : start + chunk] @ gallery.T
        rows = torch.arange(scores.shape[0], device=scores.device)
        positive = scores[rows, start + rows].unsqueeze(1)
        ranks.append((scores > positive).sum(dim=1) + 1)
    rank = torch.cat(ranks).float()
    metrics = {f"{prefix}_R@{k}": (rank <= k).float().mean() for k in RECALL_AT}
    metrics[f"{prefix}_medr"] = rank.median()
    return metrics


def first_occurrences(song_index: Tensor) -> Tensor:
    """Positions of each song's first row; drops duplicates that samplers pad ranks with."""
    order = torch.argsort(song_index, stable=True)
    ordered = song_index[order]
    keep = torch.ones_like(ordered, dtype=torch.bool)
    keep[1:] = ordered[1:] != ordered[:-1]
    return order[keep].sort().values


def projection_head(in_dim: int, out_dim: int, kind: str) -> nn.Module:
    """Map an encoder's features into the shared embedding space."""
    if kind == "linear":
        return nn.Linear(in_dim, out_dim)
    return nn.Sequential(nn.Linear(in_dim, in_dim), nn.GELU(), nn.Linear(in_dim, out_dim))


class SimSongModule(L.LightningModule):
    """Audio and lyrics encoders trained contrastively into one embedding space.

    Args:
        audio_backbone: Hugging Face audio model name or local path; empty = short-chunk CNN.
        audio_trainable: Fine-tune the Hugging Face audio backbone (False = frozen).
        audio_channels: Width of the first CNN blocks (later blocks use twice this).
        audio_layers: Residual blocks of the CNN, each halving frequency and time.
        n_mels: Mel bands of the CNN front end (96 over a 512-point FFT at 16 kHz: every band holds
            an FFT bin, where 128 bands leave the lowest one empty, an input row that is always zero).
        n_fft: FFT size of the CNN front end.
        hop_length: Hop length of the CNN front end, in samples.
        lyrics_model: Hugging Face text model name or local path; empty = shipped MiniLM-L6-v2.
        lyrics_trainable_layers: 0 = frozen lyrics encoder, N = fine-tune its top N layers, -1 = all.
        lyrics_max_length: Tokens kept per lyric.
        embed_dim: Size of the shared embedding space.
        projection: Projection heads: one linear layer, or a two-layer MLP.
        temperature: Softmax temperature of the contrastive logits (initial value if learnt).
        learnable_temperature: Learn the temperature (as a log-scale, kept in [0.01, 1.0]).
        loss: "ns" = InfoNCE; "wns" = Soft-InfoNCE, weighting negatives by song similarity.
        alpha: Soft-InfoNCE blend of uniform weights (0 = InfoNCE) and similarity weights (1).
        weight_temperature: Soft-InfoNCE similarity scale: a negative this much more similar to the
            anchor than another weighs e times less (weights average 1 over the negatives).
        min_weight: Soft-InfoNCE floor on a negative's weight.
        similarity: Song similarity behind the WNS weights: "auto" = the dataset's similarity.parquet
            if it has one, else "co_listening" (cosine of the training split's song columns);
            "file" = similarity.parquet only; "lyrics" = cosine of the frozen lyric features.
        similarity_top_k: Neighbours kept per song in the co-listening similarity.
        a2a_weight: Weight of the audio-audio (segment vs segment) head in the loss.
        a2l_weight: Weight of the audio-lyrics head in the loss.
        lr: Peak learning rate of AdamW.
        weight_decay: AdamW weight decay (not applied to biases, norms and the temperature).
        warmup_steps: Linear warmup steps before the cosine decay over the trainer's steps.
        compile: torch.compile the audio encoder.
        segment_seconds: Length of the segments the model is trained on (used to embed songs).
        sample_rate: Sample rate the model expects, in Hz.
    """

    def __init__(
        self,
        audio_backbone: str | None = None,
        audio_trainable: bool = False,
        audio_channels: int = 64,
        audio_layers: int = 7,
        n_mels: int = 96,
        n_fft: int = 512,
        hop_length: int = 160,
        lyrics_model: str | None = None,
        lyrics_trainable_layers: int = 0,
        lyrics_max_length: int = 128,
        embed_dim: int = 128,
        projection: Literal["linear", "mlp"] = "mlp",
        temperature: float = 0.07,
        learnable_temperature: bool = False,
        loss: Literal["ns", "wns"] = "ns",
        alpha: float = 0.7,
        weight_temperature: float = 0.2,
        min_weight: float = 0.05,
        similarity: SimilaritySource = "auto",
        similarity_top_k: int = DEFAULT_TOP_K,
        a2a_weight: float = 1.0,
        a2l_weight: float = 1.0,
        lr: float = 1e-4,
        weight_decay: float = 0.01,
        warmup_steps: int = 1000,
        compile: bool = False,
        segment_seconds: float = 3.0,
        sample_rate: int = 16000,
    ) -> None:
        super().__init__()
        self.save_hyperparameters()
        if not 0.01 <= temperature <= 1.0:
            raise ValueError(f"SimSongModule: temperature={temperature}, expected in [0.01, 1.0]")
        self.audio_encoder = AudioEncoder(
            sample_rate, n_mels, n_fft, hop_length, audio_channels, audio_layers,
            backbone=audio_backbone, trainable=audio_trainable,
        )
        self.lyrics_encoder = LyricsEncoder(lyrics_model, lyrics_max_length, lyrics_trainable_layers)
        self.audio_head = projection_head(self.audio_encoder.out_dim, embed_dim, projection)
        self.lyrics_head = projection_head(self.lyrics_encoder.out_dim, embed_dim, projection)
        logit_scale = torch.tensor(math.log(1.0 / temperature))
        if learnable_temperature:
            self.logit_scale = nn.Parameter(logit_scale)
        else:
            self.register_buffer("logit_scale", logit_scale)
        if compile:
            self.audio_encoder.compile()  # in place: checkpoint keys stay unchanged
        # The similarity table, resolved in setup() from the datamodule's dataset (None = lyrics).
        self.song_similarity: SongSimilarity | None = None
        self._similarity_source: str | None = None
        # Per validation batch: song indices, both audio segments' and the lyrics' embeddings, and the
        # batch loss once per row; gathered from every rank at the epoch's end.
        self._val_outputs: list[tuple[Tensor, Tensor, Tensor, Tensor, Tensor]] = []

    # ---- embeddings -----------------------------------------------------------------------
    @property
    def temperature(self) -> Tensor:
        return 1.0 / self.logit_scale.clamp(MIN_LOGIT_SCALE, MAX_LOGIT_SCALE).exp()

    def _encode(self, audio: Tensor, lyrics: list[str]) -> tuple[Tensor, Tensor, Tensor, Tensor]:
        """Both segments in one audio pass, plus lyrics; returns (a, a', l, raw lyric features)."""
        if audio.dim() != 3 or audio.shape[1] != 2 or len(lyrics) != audio.shape[0]:
            raise ValueError(
                f"SimSongModule: batch['audio'] has shape {tuple(audio.shape)} with "
                f"{len(lyrics)} lyrics, expected [B, 2, T] and B lyrics"
            )
        batch = audio.shape[0]
        audio_emb = F.normalize(self.audio_head(self.audio_encoder(audio.flatten(0, 1))), dim=-1)
        audio_emb = audio_emb.view(batch, 2, -1)
        lyric_features = self.lyrics_encoder(lyrics)
        lyrics_emb = F.normalize(self.lyrics_head(lyric_features), dim=-1)
        return audio_emb[:, 0], audio_emb[:, 1], lyrics_emb, lyric_features

    @contextmanager
    def _eval_mode(self) -> Iterator[None]:
        was_training = self.training
        self.eval()
        try:
            yield
        finally:
            self.train(was_training)

    @torch.no_grad()
    def embed_audio(self, waveforms: Tensor) -> Tensor:
        """``[B, T]`` waveforms at ``sample_rate`` -> ``[B, embed_dim]`` unit vectors."""
        with self._eval_mode():
            features = self.audio_encoder(waveforms.to(self.device))
            return F.normalize(self.audio_head(features), dim=-1)

    @torch.no_grad()
    def embed_lyrics(self, lyrics: list[str]) -> Tensor:
        """Lyrics -> ``[B, embed_dim]`` unit vectors in the audio embedding space."""
        with self._eval_mode():
            return F.normalize(self.lyrics_head(self.lyrics_encoder(list(lyrics))), dim=-1)

    # ---- loss -----------------------------------------------------------------------------
    def _world_size(self) -> int:
        return self.trainer.world_size if self._trainer is not None else 1

    def _gather(self, x: Tensor, with_grad: bool = True) -> Tensor:
        """``[B, ...]`` on each rank -> ``[world * B, ...]`` in rank order (identity on one rank)."""
        if self._world_size() == 1:
            return x
        return self.all_gather(x, sync_grads=with_grad).flatten(0, 1)

    def setup(self, stage: str) -> None:
        """Resolve the configured WNS similarity from the datamodule's dataset (once per process)."""
        dataset = getattr(self.trainer.datamodule, "dataset", None) if self._trainer is not None else None
        self.use_similarity_of(dataset)

    def use_similarity_of(self, dataset: SongDataset | None) -> None:
        """Take the WNS similarity that `model.similarity` names from `dataset` (`setup` does this in training)."""
        if self.hparams.loss != "wns" or self.hparams.similarity == "lyrics":
            return
        if dataset is None:
            raise ValueError(
                f"SimSongModule: similarity='{self.hparams.similarity}' needs a datamodule with a dataset; "
                "use model.similarity=lyrics to train on bare dataloaders"
            )
        self.song_similarity = song_similarity(dataset, self.hparams.similarity, self.hparams.similarity_top_k)

    def _note_similarity_source(self, source: str) -> None:
        if source != self._similarity_source and self.global_rank == 0:
            log.info("SimSongModule: wns negative weights from %s", source)
        self._similarity_source = source

    def _batch_similarity(self, song_index: Tensor, global_index: Tensor, lyric_features: Tensor, gather: bool) -> Tensor:
        """Similarity of the local songs (rows) to every song of the global batch (columns).

        Only the local block is looked up: `[n, N]`, not `[N, N]`, so the cost per rank grows
        linearly with the number of ranks (see benchmarks/scale_sim.py).
        """
        if self.song_similarity is not None:
            self._note_similarity_source(self.song_similarity.source)
            return self.song_similarity.lookup(song_index, global_index).to(lyric_features.device)
        self._note_similarity_source("lyric-embedding cosine (model.similarity=lyrics)")
        keys = self._gather(lyric_features, with_grad=False) if gather else lyric_features
        return (F.normalize(lyric_features.float(), dim=-1) @ F.normalize(keys.float(), dim=-1).T).detach()

    def _losses(self, embeddings: tuple[Tensor, ...], song_index: Tensor, gather: bool) -> dict[str, Tensor]:
        """a2a: a->a' and a'->a. a2l: both segments against their lyrics, both directions.

        With ``gather`` the local rows are queries against all ranks' keys (positives at
        ``global_rank * B + i``); every rank must hold the same B. Keys holding the query's own
        song (drawn twice into the batch) are left out of its denominator in both losses.
        """
        a1, a2, lyrics, lyric_features = embeddings
        offset = self.global_rank * a1.shape[0] if gather and self._world_size() > 1 else 0
        a1_all, a2_all, lyrics_all = [self._gather(x) if gather else x for x in (a1, a2, lyrics)]
        global_index = self._gather(song_index, with_grad=False) if gather else song_index
        same_song = song_index[:, None] == global_index[None, :]
        out: dict[str, Tensor] = {"repeats": (global_index.numel() - global_index.unique().numel()) * torch.ones(())}
        if self.hparams.loss == "wns":
            hp = self.hparams
            similarity = self._batch_similarity(song_index, global_index, lyric_features, gather)
            weights = negative_weights(similarity, hp.alpha, hp.weight_temperature, hp.min_weight, offset, same_song)
            negative = negatives_mask(*weights.shape, offset, same_song)
            out["weights"] = weight_summary(weights, similarity, negative, hp.min_weight)
            loss = partial(weighted_info_nce, weights=weights, temperature=self.temperature, offset=offset)
        else:
            loss = partial(info_nce, temperature=self.temperature, offset=offset, same_song=same_song)
        loss_a2a = (loss(a1, a2_all) + loss(a2, a1_all)) / 2
        a2l_pairs = [(a1, lyrics_all), (lyrics, a1_all), (a2, lyrics_all), (lyrics, a2_all)]
        loss_a2l = sum(loss(query, key) for query, key in a2l_pairs) / 4
        total = self.hparams.a2a_weight * loss_a2a + self.hparams.a2l_weight * loss_a2l
        return {**out, "loss": total, "loss_a2a": loss_a2a, "loss_a2l": loss_a2l}

    def _shared_step(self, batch: dict[str, Any], stage: str) -> tuple[dict[str, Tensor], tuple[Tensor, ...]]:
        """Training gathers keys across ranks; validation scores each local batch alone,
        because eval batches may differ in size between ranks (and the last one is partial)."""
        embeddings = self._encode(batch["audio"], batch["lyrics"])
        losses = self._losses(embeddings, batch["song_index"], gather=stage == "train")
        return losses, embeddings

    # ---- Lightning hooks ------------------------------------------------------------------
    def training_step(self, batch: dict[str, Any], batch_idx: int) -> Tensor:
        losses, _ = self._shared_step(batch, "train")
        size = batch["audio"].shape[0]
        self.log("train/loss", losses["loss"], prog_bar=True, batch_size=size)
        self.log_dict(
            {"train/loss_a2a": losses["loss_a2a"], "train/loss_a2l": losses["loss_a2l"],
             "train/temperature": self.temperature},
            batch_size=size,
        )
        # Songs drawn more than once into the global batch: per step, and summed per epoch. Every rank
        # counts the same gathered batch, so no sync_dist (a summing sync would count it world_size times).
        self.log("train/repeats", losses["repeats"], on_step=True, on_epoch=True, reduce_fx="sum", batch_size=size)
        weights = {f"train/wns_weight/{k}": v for k, v in losses.get("weights", {}).items()}
        self.log_dict(weights, batch_size=size)
        return losses["loss"]

    def on_train_batch_end(self, outputs: Any, batch: Any, batch_idx: int) -> None:
        """Clamp the learnt log-scale in place (as open_clip) so it never drifts past the
        bounds, where a clamp inside the forward pass would silently stop its gradient."""
        if self.hparams.learnable_temperature:
            with torch.no_grad():
                self.logit_scale.clamp_(MIN_LOGIT_SCALE, MAX_LOGIT_SCALE)

    def on_validation_epoch_start(self) -> None:
        self._val_outputs = []

    def validation_step(self, batch: dict[str, Any], batch_idx: int) -> None:
        losses, (a1, a2, lyrics, _) = self._shared_step(batch, "val")
        rows_loss = losses["loss"].detach().float().expand(a1.shape[0])
        self._val_outputs.append((batch["song_index"], a1.float(), a2.float(), lyrics.float(), rows_loss))

    def on_validation_epoch_end(self) -> None:
        """Loss and retrieval metrics over every rank's songs; a rank that got no validation batch (songs
        rarely deal evenly) still takes part, so no collective waits for it."""
        song_index, a1, a2, lyrics, rows_loss = self._gather_val_embeddings()
        self._val_outputs = []
        if song_index.numel() == 0:
            log.warning("SimSongModule: validation produced no songs; retrieval metrics skipped")
            return
        # Mean over songs = the batch-size-weighted mean of batch losses; equal on every rank, so syncing only averages.
        self.log("val/loss", rows_loss.mean(), sync_dist=True)
        keep = first_occurrences(song_index)
        a1, a2, lyrics = a1[keep], a2[keep], lyrics[keep]
        metrics = {
            **retrieval_metrics(a1, lyrics, "val/a2l"),
            **retrieval_metrics(lyrics, a1, "val/l2a"),
            **retrieval_metrics(a1, a2, "val/a2a"),
        }
        # Every rank holds the same gathered set, so syncing only averages equal values.
        self.log_dict(metrics, sync_dist=True)

    def _gather_val_embeddings(self) -> tuple[Tensor, ...]:
        """All ranks' validation rows; ranks may hold different counts, so pad to the largest."""
        dim = self.hparams.embed_dim
        if self._val_outputs:
            local = [torch.cat(column) for column in zip(*self._val_outputs)]
        else:
            local = [torch.empty(0, dtype=torch.long, device=self.device)]
            local += [torch.empty(0, dim, device=self.device) for _ in range(3)]
            local += [torch.empty(0, device=self.device)]
        if self._world_size() == 1:
            return tuple(local)
        count = torch.tensor(local[0].shape[0], device=self.device)
        counts = self.all_gather(count).tolist()
        pad = max(counts) - local[0].shape[0]
        gathered = []
        for x in local:
            padded = F.pad(x, (0, 0) * (x.dim() - 1) + (0, pad))
            rows = self.all_gather(padded)
            gathered.append(torch.cat([rows[rank, :n] for rank, n in enumerate(counts)]))
        return tuple(gathered)

    def configure_optimizers(self) -> dict[str, Any]:
        """AdamW without decay on 1-d parameters (biases, norms, temperature); warmup + cosine
        over the trainer's total steps, so the schedule has one source (trainer.max_steps)."""
        hp = self.hparams
        trainable = [p for p in self.parameters() if p.requires_grad]
        groups = [
            {"params": [p for p in trainable if p.ndim >= 2], "weight_decay": hp.weight_decay},
            {"params": [p for p in trainable if p.ndim < 2], "weight_decay": 0.0},
        ]
        optimizer = torch.optim.AdamW(groups, lr=hp.lr)
        total = self.trainer.estimated_stepping_batches
        if not math.isfinite(total):
            raise ValueError("SimSongModule: set trainer.max_steps (the cosine schedule needs a length)")
        scheduler = get_cosine_schedule_with_warmup(optimizer, hp.warmup_steps, int(total))
        return {"optimizer": optimizer, "lr_scheduler": {"scheduler": scheduler, "interval": "step"}}
