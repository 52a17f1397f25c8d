"""GazeLSTM: the Ego4D Looking-at-Me baseline (architecture only).

Sources: ``model/model.py`` of EGO4D/social-interactions (branch ``lam``), classes
``GazeLSTM`` and ``BaselineLSTM``, whose backbone is the ResNet-18 of Gaze360
(erkil1452/gaze360 ``code/resnet.py``): the torchvision ResNet-18 trunk (7x7/2 conv, BN, ReLU,
3x3/2 max-pool, four stages of two basic blocks with 64/128/256/512 channels, 1x1/2
downsample shortcuts) followed by adaptive average pooling, ``fc1`` (512 -> 1000), ReLU and
``fc2``; the Ego4D model replaces ``fc2`` by ``Linear(1000, 256)``. Each of the 7 frames of
the window goes through the backbone; the ``(N, 7, 256)`` features go through a
2-layer bidirectional LSTM (hidden 256, batch-first); the output at the centre frame (index 3)
goes to ``last_layer`` = ``Linear(512, 2)``: two logits, not looking / looking at me
(``BaselineLSTM``, the repository's default ``--model``, has ``last_layer1`` =
``Linear(512, 128)`` then ``last_layer2`` = ``Linear(128, 2)`` with no activation between).

Parameter names equal the reference's (``base_model.conv1.weight``, ``base_model.layer1.0.
bn1.running_mean``, ``lstm.weight_ih_l0_reverse``, ``last_layer.weight``, ...), so the
released checkpoints load with :func:`gaze_lstm_state_dict` (``module.`` prefix removed) and
``load_state_dict(strict=True)``.

Input: ``(N, 7, 3, H, W)`` float32 RGB crops normalised with the ImageNet mean/std
(224x224 in the baseline; any ``H, W >= 32`` works thanks to the adaptive pooling).
Output: ``(N, 2)`` logits; ``softmax(...)[:, 1]`` is the look-at-me probability.
Training: ``CrossEntropyLoss(weight=[0.136, 0.864])``, Adam lr 5e-4 (``common/config.py``).
torchvision is not used: the ResNet-18 is written here.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Literal

import torch
from torch import nn

__all__ = ["BasicBlock", "GazeLSTM", "ResNet18", "gaze_lstm_state_dict"]


class BasicBlock(nn.Module):
    """ResNet basic block: 3x3 conv-BN-ReLU, 3x3 conv-BN, identity or 1x1 shortcut, ReLU."""

    def __init__(self, in_channels: int, channels: int, stride: int = 1) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(in_channels, channels, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(channels)
        self.relu = nn.ReLU(inplace=True)
        self.conv2 = nn.Conv2d(channels, channels, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(channels)
        self.downsample: nn.Module | None = None
        if stride != 1 or in_channels != channels:
            self.downsample = nn.Sequential(
                nn.Conv2d(in_channels, channels, 1, stride, bias=False), nn.BatchNorm2d(channels)
            )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        residual = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return self.relu(out + residual)


class ResNet18(nn.Module):
    """The Gaze360 ResNet-18: trunk, adaptive average pool, ``fc1`` (-> 1000), ReLU, ``fc2``.

    Args:
        num_outputs: size of ``fc2`` (3 in Gaze360, 256 in the Ego4D LAM model).
        base_width: channels of the first stage (64 in ResNet-18; smaller only for
            debug-size models in tests).

    Input ``(B, 3, H, W)``; output ``(B, num_outputs)``.
    """

    def __init__(self, num_outputs: int = 256, base_width: int = 64) -> None:
        super().__init__()
        w = base_width
        self.conv1 = nn.Conv2d(3, w, 7, 2, 3, bias=False)
        self.bn1 = nn.BatchNorm2d(w)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(3, 2, 1)
        self.layer1 = nn.Sequential(BasicBlock(w, w), BasicBlock(w, w))
        self.layer2 = nn.Sequential(BasicBlock(w, 2 * w, 2), BasicBlock(2 * w, 2 * w))
        self.layer3 = nn.Sequential(BasicBlock(2 * w, 4 * w, 2), BasicBlock(4 * w, 4 * w))
        self.layer4 = nn.Sequential(BasicBlock(4 * w, 8 * w, 2), BasicBlock(8 * w, 8 * w))
        self.avgpool = nn.AdaptiveAvgPool2d((1, 1))
        self.fc1 = nn.Linear(8 * w, 1000)
        self.fc2 = nn.Linear(1000, num_outputs)
        for m in self.modules():  # initialisation of the reference ResNet
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.constant_(m.weight, 1)
                nn.init.constant_(m.bias, 0)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
        x = torch.flatten(self.avgpool(x), 1)
        return self.fc2(torch.relu(self.fc1(x)))


class GazeLSTM(nn.Module):
    """Ego4D LAM baseline: per-frame ResNet-18 -> 2-layer BiLSTM -> centre-frame 2-way head.

    Args:
        img_feature_dim: per-frame feature size (256).
        head: ``"gaze360"`` (class ``GazeLSTM``: ``last_layer``) or ``"baseline"`` (class
            ``BaselineLSTM``: ``last_layer1``, ``last_layer2``).
        base_width: backbone width (64 = ResNet-18).

    ``forward(frames)``: ``(N, T, 3, H, W)`` -> ``(N, 2)`` logits, using the LSTM output at
    frame ``T // 2`` (3 for the 7-frame window).
    """

    def __init__(
        self,
        img_feature_dim: int = 256,
        head: Literal["gaze360", "baseline"] = "gaze360",
        base_width: int = 64,
    ) -> None:
        super().__init__()
        if head not in ("gaze360", "baseline"):
            raise ValueError(f"head must be 'gaze360' or 'baseline', but got {head!r}")
        self.img_feature_dim = img_feature_dim
        self.head = head
        self.base_model = ResNet18(img_feature_dim, base_width)
        self.lstm = nn.LSTM(
            img_feature_dim, img_feature_dim, num_layers=2, bidirectional=True, batch_first=True
        )
        if head == "gaze360":
            self.last_layer = nn.Linear(2 * img_feature_dim, 2)
        else:
            self.last_layer1 = nn.Linear(2 * img_feature_dim, 128)
            self.last_layer2 = nn.Linear(128, 2)

    def forward(self, frames: torch.Tensor) -> torch.Tensor:
        if frames.dim() != 5 or frames.shape[2] != 3:
            raise ValueError(
                f"frames must have shape (N, T, 3, H, W), but got {tuple(frames.shape)}"
            )
        n, t = frames.shape[:2]
        features = self.base_model(frames.reshape(n * t, *frames.shape[2:]))
        return self.forward_features(features.view(n, t, self.img_feature_dim))

    def forward_features(self, window_features: torch.Tensor) -> torch.Tensor:
        """The model after its backbone: ``(N, T, img_feature_dim)`` per-frame features of the
        windows -> ``(N, 2)`` logits (BiLSTM, output at frame ``T // 2``, the head). Lets
        inference compute each frame's backbone features once for all windows holding it."""
        out, _ = self.lstm(window_features)
        centre = out[:, window_features.shape[1] // 2, :]
        if self.head == "gaze360":
            return self.last_layer(centre)
        return self.last_layer2(self.last_layer1(centre))


def gaze_lstm_state_dict(checkpoint: Mapping[str, object]) -> dict[str, torch.Tensor]:
    """The model weights of a reference LAM checkpoint, ready for ``load_state_dict``.

    Accepts the reference ``{"epoch", "state_dict", "mAP"}`` dict (``save_checkpoint`` in
    ``common/utils.py``) or a bare state dict; strips the DDP ``module.`` prefix the reference
    strips (``k[7:]``). Load with ``torch.load(path, weights_only=True)`` and
    ``model.load_state_dict(..., strict=True)``; torch then names missing and unexpected keys.

    Raises:
        ValueError: the dict holds no tensors.
    """
    state = checkpoint.get("state_dict", checkpoint)
    if not isinstance(state, Mapping):
        raise ValueError(f"expected a state dict, but found {type(state).__name__}")
    out = {}
    for key, value in state.items():
        if not isinstance(value, torch.Tensor):
            continue
        out[key[len("module.") :] if key.startswith("module.") else key] = value
    if not out:
        raise ValueError("the checkpoint holds no tensors (expected a GazeLSTM state dict)")
    return out
