"""Lip-landmark x MFCC synchrony head: per frame, "these lips are saying this audio".

A small audio-visual network on identity-free lip motion (the 47 features of
:func:`~socialav.vision.lip_landmarks.lip_motion_features` per video frame) and the ASD
models' MFCC (13 coefficients, 4 rows per video frame). Idea from LASER (lip landmarks
added to LoCoNet for robustness to desynchronised audio, WACV 2026) and SyncNet's
offset-based negatives (Chung & Zisserman, ACCV 2016 workshops); the layers are socialav's
own, sized for CPU training (docs/sync_finetuning.md, "Round two").
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from socialav.types import MFCC_FRAMES_PER_VIDEO_FRAME

__all__ = ["LipSyncNet"]


class LipSyncNet(nn.Module):
    """Per-frame synchrony logit from lip-motion features and MFCC.

    Visual branch: the features and their frame-to-frame differences, three 1-D
    convolutions (kernel 5) over time. Audio branch: two 1-D convolutions on the MFCC
    (kernel 9 and 5), then two stride-2 convolutions to the video rate. The two
    ``hidden``-wide streams are concatenated and a bidirectional GRU gives each frame one
    logit: positive = the lips move with this audio and the person speaks.

    Args:
        feature_dim: lip features per frame (47).
        hidden: channels of each branch.
        dropout: dropout before the GRU (training only).
        mfcc_cmvn: subtract each sequence's mean MFCC (cepstral mean normalisation: removes
            the recording channel, which differs between studio and broadcast audio).

    Shapes:
        ``forward(lips (B, T, F) float32, mfcc (B, 4T, 13) float32) -> (B, T)`` logits.
    """

    def __init__(
        self,
        feature_dim: int = 47,
        hidden: int = 96,
        dropout: float = 0.2,
        mfcc_cmvn: bool = False,
    ) -> None:
        super().__init__()
        self.feature_dim = feature_dim
        self.hidden = hidden
        self.mfcc_cmvn = mfcc_cmvn

        def conv(cin: int, cout: int, k: int, stride: int = 1) -> nn.Sequential:
            return nn.Sequential(
                nn.Conv1d(cin, cout, k, stride=stride, padding=k // 2),
                nn.BatchNorm1d(cout),
                nn.ReLU(inplace=True),
            )

        self.visual = nn.Sequential(
            conv(2 * feature_dim, hidden, 5), conv(hidden, hidden, 5), conv(hidden, hidden, 5)
        )
        self.audio = nn.Sequential(
            conv(13, hidden, 9),
            conv(hidden, hidden, 5),
            conv(hidden, hidden, 4, stride=2),
            conv(hidden, hidden, 4, stride=2),
        )
        self.dropout = nn.Dropout(dropout)
        self.gru = nn.GRU(2 * hidden, hidden, batch_first=True, bidirectional=True)
        self.head = nn.Linear(2 * hidden, 1)

    def forward(self, lips: torch.Tensor, mfcc: torch.Tensor) -> torch.Tensor:
        if lips.ndim != 3 or lips.shape[2] != self.feature_dim:
            raise ValueError(f"lips must be (B, T, {self.feature_dim}), got {tuple(lips.shape)}")
        b, t, _ = lips.shape
        if mfcc.shape != (b, MFCC_FRAMES_PER_VIDEO_FRAME * t, 13):
            raise ValueError(
                f"mfcc must be (B, 4T, 13) = {(b, MFCC_FRAMES_PER_VIDEO_FRAME * t, 13)}, "
                f"got {tuple(mfcc.shape)}"
            )
        if self.mfcc_cmvn:
            mfcc = mfcc - mfcc.mean(dim=1, keepdim=True)
        diff = torch.diff(lips, dim=1, prepend=lips[:, :1])
        v = self.visual(torch.cat([lips, diff], dim=2).transpose(1, 2))
        a = self.audio(mfcc.transpose(1, 2))[:, :, :t]
        if a.shape[2] < t:  # padding arithmetic of the strided convs
            a = nn.functional.pad(a, (0, t - a.shape[2]), mode="replicate")
        x = self.dropout(torch.cat([v, a], dim=1).transpose(1, 2))
        return self.head(self.gru(x)[0]).squeeze(2)

    @torch.inference_mode()
    def score(self, lips: np.ndarray, mfcc: np.ndarray) -> np.ndarray:
        """Logits of one face track (the whole track in one pass).

        Args:
            lips: ``(T, F)`` float32 lip features.
            mfcc: ``(4T, 13)`` float32 MFCC of the track's audio (:func:`track_mfcc`).

        Returns:
            ``(T,)`` float32 logits.
        """
        was_training = self.training
        self.eval()
        try:
            out = self(torch.from_numpy(lips)[None], torch.from_numpy(mfcc)[None])
        finally:
            self.train(was_training)
        return out[0].numpy()
