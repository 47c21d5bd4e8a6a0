"""Log-mel features with ``torch.stft`` (torchaudio does not import on the CPU build used here).

The mel filters are the project's own (:func:`extractors.audio_features.mel_filterbank`), so the
generator and the sync model read audio through the same bands.
"""

from __future__ import annotations

import torch
from torch import nn

from extractors.audio_features import mel_filterbank

SAMPLE_RATE_HZ = 16_000
N_FFT = 512
WIN_LENGTH = 400  # 25 ms
HOP_LENGTH = 160  # 10 ms: 100 feature frames a second
FEATURE_RATE_HZ = SAMPLE_RATE_HZ / HOP_LENGTH


class LogMel(nn.Module):
    """16 kHz audio (batch, samples) -> log mel energies (batch, n_mels, samples // 160 + 1).

    Frame ``j`` is centred on sample ``160 j`` (time ``j / 100`` s). Each band's mean over the
    sequence is subtracted, so a constant gain does not change the features.
    """

    filters: torch.Tensor  # (n_mels, N_FFT // 2 + 1)
    window: torch.Tensor  # (WIN_LENGTH,)

    def __init__(self, n_mels: int):
        super().__init__()
        self.register_buffer(
            "filters", torch.from_numpy(mel_filterbank(n_mels, N_FFT)).float(), persistent=False
        )
        self.register_buffer("window", torch.hann_window(WIN_LENGTH), persistent=False)

    def forward(self, audio: torch.Tensor) -> torch.Tensor:
        spec = torch.stft(
            audio,
            n_fft=N_FFT,
            hop_length=HOP_LENGTH,
            win_length=WIN_LENGTH,
            window=self.window,
            center=True,
            pad_mode="constant",
            return_complex=True,
        )
        mel = torch.log(torch.matmul(self.filters, spec.abs() ** 2) + 1e-6)
        return mel - mel.mean(dim=-1, keepdim=True)
