"""Audio and lyrics encoders: shapes, frozen vs trainable gradients, offline default model.

``make_tiny_bert`` and ``make_tiny_wav2vec2`` are reused by the SimSong module tests.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from transformers import (
    AutoTokenizer,
    BertConfig,
    BertModel,
    Wav2Vec2Config,
    Wav2Vec2FeatureExtractor,
    Wav2Vec2Model,
)

from lightning_modules.audio_encoder import AudioEncoder
from lightning_modules.lyrics_encoder import DEFAULT_LYRICS_MODEL, LyricsEncoder


def make_tiny_bert(folder: Path, n_layers: int = 3) -> Path:
    """A randomly initialised 16-wide BERT with the shipped MiniLM tokenizer, saved to disk."""
    torch.manual_seed(0)
    config = BertConfig(
        vocab_size=30522, hidden_size=16, num_hidden_layers=n_layers, num_attention_heads=2,
        intermediate_size=32, max_position_embeddings=64,
        hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0,
    )
    BertModel(config).save_pretrained(folder)
    AutoTokenizer.from_pretrained(DEFAULT_LYRICS_MODEL).save_pretrained(folder)
    return folder


def make_tiny_simsong(folder: Path):
    """A SimSong model small enough for end-to-end tests on the tiny dataset (1-s segments), tiny BERT in `folder`."""
    from lightning_modules.simsong import SimSongModule

    return SimSongModule(
        audio_channels=8, audio_layers=2, n_mels=64, embed_dim=32, segment_seconds=1.0, warmup_steps=1,
        lyrics_model=str(make_tiny_bert(folder, n_layers=2)), lyrics_max_length=32,
    )


def make_tiny_wav2vec2(folder: Path) -> Path:
    """A randomly initialised two-layer wav2vec2 with its feature extractor, saved to disk."""
    torch.manual_seed(0)
    config = Wav2Vec2Config(
        hidden_size=16, num_hidden_layers=2, num_attention_heads=2, intermediate_size=32,
        conv_dim=(8, 8), conv_stride=(5, 4), conv_kernel=(10, 8), num_feat_extract_layers=2,
        num_conv_pos_embeddings=16, num_conv_pos_embedding_groups=2, mask_time_prob=0.0,
    )
    Wav2Vec2Model(config).save_pretrained(folder)
    Wav2Vec2FeatureExtractor(sampling_rate=16000, return_attention_mask=False).save_pretrained(
        folder
    )
    return folder


@pytest.fixture(scope="module")
def tiny_bert(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_tiny_bert(tmp_path_factory.mktemp("tiny_bert"))


@pytest.fixture(scope="module")
def tiny_wav2vec2(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_tiny_wav2vec2(tmp_path_factory.mktemp("tiny_wav2vec2"))


def _waveforms(batch: int = 3, seconds: float = 0.5) -> torch.Tensor:
    return torch.randn(batch, int(16000 * seconds), generator=torch.Generator().manual_seed(0))


def test_short_chunk_cnn_shape_and_gradients() -> None:
    torch.manual_seed(0)
    encoder = AudioEncoder(n_mels=32, channels=4, n_layers=3)
    out = encoder(_waveforms())
    assert out.shape == (3, encoder.out_dim) and encoder.out_dim == 16
    out.sum().backward()
    assert all(p.grad is not None for p in encoder.parameters())


def test_short_chunk_cnn_ignores_loudness() -> None:
    """Per-example normalisation: the same music played louder is the same song."""
    torch.manual_seed(0)
    encoder = AudioEncoder(n_mels=32, channels=4, n_layers=2).eval()
    wave = _waveforms(batch=1)
    assert torch.allclose(encoder(wave), encoder(4.0 * wave), atol=1e-4)


def test_hf_audio_backbone_frozen(tiny_wav2vec2: Path) -> None:
    encoder = AudioEncoder(backbone=str(tiny_wav2vec2), trainable=False).train()
    assert encoder.out_dim == 16
    assert not any(p.requires_grad for p in encoder.parameters())
    assert not encoder.net.model.training  # stays in eval mode when the parent trains
    out = encoder(_waveforms())
    assert out.shape == (3, 16) and not out.requires_grad


def test_hf_audio_backbone_trainable_receives_gradients(tiny_wav2vec2: Path) -> None:
    encoder = AudioEncoder(backbone=str(tiny_wav2vec2), trainable=True).train()
    assert encoder.net.model.training
    encoder(_waveforms()).pow(2).sum().backward()
    layer_grads = [p.grad for p in encoder.net.model.encoder.layers.parameters()]
    assert layer_grads and all(g is not None and g.abs().sum() > 0 for g in layer_grads)
    assert encoder.net.model.feature_extractor.conv_layers[0].conv.weight.grad is not None


def test_shipped_minilm_loads_offline() -> None:
    encoder = LyricsEncoder()
    assert encoder.out_dim == 384
    lyrics = ["I love you baby, stay with me", "baby stay, I love you", "the stock market fell"]
    emb = torch.nn.functional.normalize(encoder(lyrics), dim=1)
    assert emb.shape == (3, 384)
    assert emb[0] @ emb[1] > emb[0] @ emb[2]  # real sentence embeddings, not random weights


def test_frozen_lyrics_encoder_has_no_grads_and_caches(
    tiny_bert: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    encoder = LyricsEncoder(tiny_bert, trainable_layers=0, cache_size=3).train()
    assert not any(p.requires_grad for p in encoder.parameters())
    assert not encoder.model.training
    calls: list[list[str]] = []
    original = encoder.encode
    monkeypatch.setattr(encoder, "encode", lambda texts: calls.append(texts) or original(texts))
    first = encoder(["la la", "na na", "la la"])
    again = encoder(["na na", "la la"])
    assert calls == [["la la", "na na"]]  # each distinct lyric encoded once
    assert not first.requires_grad and torch.equal(again, first[[1, 0]])
    encoder(["x", "y", "z"])
    assert len(encoder._cache) == 3  # bounded


@pytest.mark.parametrize("top", [1, 2])
def test_top_n_lyrics_layers_get_grads(tiny_bert: Path, top: int) -> None:
    encoder = LyricsEncoder(tiny_bert, trainable_layers=top, max_length=8).train()
    encoder(["hello darkness my old friend", "yeah"]).sum().backward()
    layers = encoder.model.encoder.layer
    for index, layer in enumerate(layers):
        has_grad = [p.grad is not None for p in layer.parameters()]
        assert all(has_grad) if index >= len(layers) - top else not any(has_grad)
    assert encoder.model.embeddings.word_embeddings.weight.grad is None


def test_all_lyrics_layers_trainable_except_unused_pooler(tiny_bert: Path) -> None:
    encoder = LyricsEncoder(tiny_bert, trainable_layers=-1)
    encoder(["hello"]).sum().backward()
    trainable = [(n, p) for n, p in encoder.named_parameters() if p.requires_grad]
    assert trainable and all(p.grad is not None for _, p in trainable)
    assert not any(n.startswith("model.pooler") for n, _ in trainable)


def test_lyrics_truncated_to_max_length(tiny_bert: Path) -> None:
    encoder = LyricsEncoder(tiny_bert, max_length=8)
    long_lyric = "word " * 500
    assert encoder([long_lyric, "short"]).shape == (2, 16)
    with pytest.raises(ValueError, match="trainable_layers"):
        LyricsEncoder(tiny_bert, trainable_layers=4)
