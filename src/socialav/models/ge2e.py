"""The GE2E speaker encoder (architecture only): a 3-layer LSTM over 40-channel power mel
frames, the last layer's final hidden state through ``Linear(256, 256)`` and ReLU,
L2-normalised.

Source: Wan, Wang, Papir and Lopez Moreno, "Generalized End-to-End Loss for Speaker
Verification", ICASSP 2018, as implemented by Resemble AI (``resemblyzer/voice_encoder.py``,
whose ``pretrained.pt`` :mod:`socialav.checkpoints.ge2e_reference` loads).
"""

from __future__ import annotations

import torch
from torch import nn

__all__ = ["GE2E", "GE2E_EMBEDDING_DIM", "GE2E_MEL_CHANNELS"]

#: Input mel channels and output size (``resemblyzer/hparams.py``).
GE2E_MEL_CHANNELS: int = 40
GE2E_EMBEDDING_DIM: int = 256


class GE2E(nn.Module):
    """``forward(mels (B, frames, 40) float32) -> (B, 256)`` L2-normalised embeddings."""

    def __init__(self, hidden: int = 256, layers: int = 3) -> None:
        super().__init__()
        self.lstm = nn.LSTM(GE2E_MEL_CHANNELS, hidden, layers, batch_first=True)
        self.linear = nn.Linear(hidden, GE2E_EMBEDDING_DIM)

    def forward(self, mels: torch.Tensor) -> torch.Tensor:
        _, (hidden, _) = self.lstm(mels)
        raw = torch.relu(self.linear(hidden[-1]))
        return raw / torch.linalg.vector_norm(raw, dim=1, keepdim=True).clamp_min(1e-12)
