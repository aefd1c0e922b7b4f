"""Audio encoder: waveform segments at 16 kHz -> one vector per segment.

Two interchangeable back ends behind one interface (``forward([B, T]) -> [B, out_dim]``):
a short-chunk residual CNN on log-mel spectrograms (Won et al. 2020, "Evaluation of CNN-based
automatic music tagging models"), trained from scratch, or any Hugging Face audio model
(``transformers.AutoModel``) that is frozen or fine-tuned.
"""

from __future__ import annotations

import logging

import torch
import torchaudio
from torch import Tensor, nn
from transformers import AutoConfig, AutoFeatureExtractor, AutoModel

log = logging.getLogger(__name__)


class ResBlock2d(nn.Module):
    """Two 3x3 convolutions with a residual shortcut; stride 2 halves frequency and time."""

    def __init__(self, in_channels: int, out_channels: int, stride: int = 2) -> None:
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv2d(in_channels, out_channels, 3, stride=stride, padding=1, bias=False),
            nn.BatchNorm2d(out_channels),
            nn.ReLU(inplace=True),
            nn.Conv2d(out_channels, out_channels, 3, padding=1, bias=False),
            nn.BatchNorm2d(out_channels),
        )
        self.shortcut = nn.Identity()
        if stride != 1 or in_channels != out_channels:
            self.shortcut = nn.Sequential(
                nn.Conv2d(in_channels, out_channels, 3, stride=stride, padding=1, bias=False),
                nn.BatchNorm2d(out_channels),
            )

    def forward(self, x: Tensor) -> Tensor:
        return torch.relu(self.body(x) + self.shortcut(x))


class ShortChunkResNet(nn.Module):
    """Log-mel front end + stacked residual blocks + global max/avg pooling.

    As in Won et al.'s short-chunk ResNet, the width doubles after the first two blocks and
    every block downsamples by 2; the final map is pooled globally so any segment length works.
    """

    def __init__(
        self,
        sample_rate: int = 16000,
        n_mels: int = 96,
        n_fft: int = 512,
        hop_length: int = 160,
        channels: int = 64,
        n_layers: int = 7,
    ) -> None:
        super().__init__()
        self.melspec = torchaudio.transforms.MelSpectrogram(
            sample_rate=sample_rate, n_fft=n_fft, hop_length=hop_length, n_mels=n_mels
        )
        self.to_db = torchaudio.transforms.AmplitudeToDB(stype="power", top_db=80.0)
        widths = [channels if i < 2 else 2 * channels for i in range(n_layers)]
        blocks, in_channels = [], 1
        for width in widths:
            blocks.append(ResBlock2d(in_channels, width))
            in_channels = width
        self.blocks = nn.Sequential(*blocks)
        self.out_dim = 2 * in_channels  # max- and average-pooled features, concatenated

    def log_mel(self, waveform: Tensor) -> Tensor:
        """``[B, T]`` -> ``[B, 1, n_mels, frames]``, normalised per example.

        Per-example standardisation removes loudness differences between recordings, which
        carry no information about the song. The spectrogram is computed in float32 even
        under mixed precision because the dB conversion underflows in half precision.
        """
        with torch.autocast(device_type=waveform.device.type, enabled=False):
            mel = self.to_db(self.melspec(waveform.float()))
        mean = mel.mean(dim=(1, 2), keepdim=True)
        std = mel.std(dim=(1, 2), keepdim=True)
        return ((mel - mean) / (std + 1e-5)).unsqueeze(1)

    def forward(self, waveform: Tensor) -> Tensor:
        features = self.blocks(self.log_mel(waveform))
        return torch.cat([features.amax(dim=(2, 3)), features.mean(dim=(2, 3))], dim=1)


class HFAudioBackbone(nn.Module):
    """Any Hugging Face audio model, mean-pooled over time.

    The feature extractor runs on the CPU on numpy arrays (that is how transformers
    implements them); it holds no parameters, so gradients into the model are unaffected.
    """

    def __init__(
        self, name_or_path: str, sample_rate: int, trainable: bool, trust_remote_code: bool
    ) -> None:
        super().__init__()
        kwargs = {"trust_remote_code": trust_remote_code}
        try:
            self.feature_extractor = AutoFeatureExtractor.from_pretrained(name_or_path, **kwargs)
            model = AutoModel.from_pretrained(name_or_path, **kwargs)
        except (OSError, ValueError) as error:
            raise ValueError(
                f"audio_encoder: cannot load backbone '{name_or_path}' (expected a Hugging Face "
                f"audio model name or a local folder with config + feature extractor): {error}"
            ) from error
        config = AutoConfig.from_pretrained(name_or_path, **kwargs)
        # Encoder-decoder models (e.g. Whisper) are used through their encoder only.
        self.model = model.get_encoder() if config.is_encoder_decoder else model
        self.out_dim = int(config.hidden_size)
        self.trainable = trainable
        self.model_rate = int(getattr(self.feature_extractor, "sampling_rate", sample_rate))
        self.resample = nn.Identity()
        if self.model_rate != sample_rate:
            log.info("audio_encoder: resampling %d Hz -> %d Hz for %s",
                     sample_rate, self.model_rate, name_or_path)
            self.resample = torchaudio.transforms.Resample(sample_rate, self.model_rate)
        if not trainable:
            self.model.requires_grad_(False)
            self.model.eval()

    def train(self, mode: bool = True) -> HFAudioBackbone:
        """Keep a frozen backbone in eval mode (no dropout, no SpecAugment) at all times."""
        super().train(mode)
        if not self.trainable:
            self.model.eval()
        return self

    def forward(self, waveform: Tensor) -> Tensor:
        audio = self.resample(waveform.float()).detach().cpu().numpy()
        inputs = self.feature_extractor(
            list(audio), sampling_rate=self.model_rate, return_tensors="pt"
        ).to(waveform.device)
        with torch.set_grad_enabled(self.trainable and torch.is_grad_enabled()):
            hidden = self.model(**inputs).last_hidden_state
        return hidden.mean(dim=1)


class AudioEncoder(nn.Module):
    """Waveform ``[B, T]`` at ``sample_rate`` -> ``[B, out_dim]`` segment embedding.

    Args:
        sample_rate: sample rate of the incoming waveforms (the dataset's, 16 kHz).
        n_mels: mel bands of the CNN front end.
        n_fft: FFT size of the CNN front end (512 = 32 ms at 16 kHz).
        hop_length: hop of the CNN front end (160 = 10 ms at 16 kHz).
        channels: width of the first CNN blocks; later blocks use twice this.
        n_layers: number of residual blocks, each downsampling by 2.
        backbone: Hugging Face model name or local path; replaces the CNN when set.
        trainable: fine-tune the Hugging Face backbone (False = frozen, eval mode).
        trust_remote_code: allow backbones that ship their own code (e.g. MERT).
    """

    def __init__(
        self,
        sample_rate: int = 16000,
        n_mels: int = 96,
        n_fft: int = 512,
        hop_length: int = 160,
        channels: int = 64,
        n_layers: int = 7,
        backbone: str | None = None,
        trainable: bool = False,
        trust_remote_code: bool = False,
    ) -> None:
        super().__init__()
        if backbone is None:
            self.net: nn.Module = ShortChunkResNet(
                sample_rate, n_mels, n_fft, hop_length, channels, n_layers
            )
        else:
            self.net = HFAudioBackbone(backbone, sample_rate, trainable, trust_remote_code)
        self.out_dim: int = self.net.out_dim

    def forward(self, waveform: Tensor) -> Tensor:
        if waveform.dim() != 2:
            raise ValueError(
                f"AudioEncoder: waveform has shape {tuple(waveform.shape)}, expected [B, T]"
            )
        return self.net(waveform)
