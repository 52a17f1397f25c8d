"""Architectures only: modules hold no optimiser, device or file I/O (loading is in
:mod:`socialav.models.checkpoints` and :mod:`socialav.training.checkpoint`)."""

from socialav.models.checkpoints import CheckpointMismatchError, load_asd_model
from socialav.models.light_asd import AudioVisualASD, LightASD
from socialav.models.lr_asd import LRASD

__all__ = ["AudioVisualASD", "CheckpointMismatchError", "LightASD", "LRASD", "load_asd_model"]
