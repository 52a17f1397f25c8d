"""Load Resemblyzer's ``pretrained.pt`` (the GE2E speaker encoder, Apache-2.0) into
:class:`socialav.models.ge2e.GE2E`: ``weights_only=True``, the explicit key map below,
``strict=True``."""

from __future__ import annotations

from pathlib import Path

from socialav.checkpoints.asd_reference import CheckpointMismatchError
from socialav.checkpoints.format import CheckpointError, read_torch_file
from socialav.models.ge2e import GE2E

__all__ = ["GE2E_KEY_MAP", "load_ge2e"]

#: Resemblyzer ``model_state`` key -> our key (the same names: the module layout matches).
GE2E_KEY_MAP: dict[str, str] = {
    **{
        f"lstm.{kind}_l{layer}": f"lstm.{kind}_l{layer}"
        for layer in range(3)
        for kind in ("weight_ih", "weight_hh", "bias_ih", "bias_hh")
    },
    "linear.weight": "linear.weight",
    "linear.bias": "linear.bias",
}
#: Keys of the GE2E training loss in the checkpoint, not part of the encoder.
_TRAINING_ONLY_KEYS = frozenset({"similarity_weight", "similarity_bias"})


def load_ge2e(path: str | Path) -> GE2E:
    """The GE2E encoder of a Resemblyzer ``pretrained.pt`` (a dict with ``model_state``), in
    eval mode on the CPU.

    Raises:
        FileNotFoundError: no such file.
        CheckpointError: not a PyTorch file, or no ``model_state``.
        CheckpointMismatchError: missing or unexpected keys (both listed).
    """
    checkpoint = read_torch_file(path, "Resemblyzer GE2E checkpoint (pretrained.pt)")
    if not isinstance(checkpoint, dict) or "model_state" not in checkpoint:
        found = list(checkpoint)[:10] if isinstance(checkpoint, dict) else type(checkpoint)
        raise CheckpointError(
            f"{path}: expected a Resemblyzer checkpoint with 'model_state', found {found}"
        )
    state = checkpoint["model_state"]
    unexpected = sorted(set(state) - set(GE2E_KEY_MAP) - _TRAINING_ONLY_KEYS)
    missing = sorted(set(GE2E_KEY_MAP) - set(state))
    if unexpected or missing:
        raise CheckpointMismatchError(
            f"{path}: GE2E checkpoint keys do not match: missing {missing}, unexpected "
            f"{unexpected}",
            unexpected,
            missing,
            [],
        )
    model = GE2E()
    model.load_state_dict({GE2E_KEY_MAP[k]: state[k] for k in GE2E_KEY_MAP}, strict=True)
    return model.eval()
