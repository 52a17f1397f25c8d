"""socialav: who speaks, who talks to me, who looks at me -- frame by frame, on any video.

The public API (imported on first use, so ``import socialav`` stays light)::

    from socialav import SpeakerDetector

    detector = SpeakerDetector.from_pretrained("lr-asd-ava", device="cpu")
    result = detector("video.mp4")          # DetectResult: video info, face tracks, scores
    result.write("out/")                    # the files of ``socialav detect``

- :class:`SpeakerDetector` (:mod:`socialav.pipelines.detect`), :class:`DetectConfig`
  (:mod:`socialav.pipelines.config`), :class:`DetectResult` (:mod:`socialav.pipelines.result`);
- :func:`load_pretrained` (:mod:`socialav.checkpoints.load`): any registered model from a
  weights name or a checkpoint file.
"""

from __future__ import annotations

import importlib
from importlib.metadata import PackageNotFoundError, version
from typing import TYPE_CHECKING, Any

try:
    __version__ = version("socialav")
except PackageNotFoundError:  # running from a source tree that was not installed
    __version__ = "0.0.0+unknown"

#: Public name -> the module that defines it.
_PUBLIC: dict[str, str] = {
    "SpeakerDetector": "socialav.pipelines.detect",
    "DetectConfig": "socialav.pipelines.config",
    "DetectResult": "socialav.pipelines.result",
    "load_pretrained": "socialav.checkpoints.load",
    "WeightsInfo": "socialav.checkpoints.load",
}

__all__ = [
    "__version__",
    "DetectConfig",
    "DetectResult",
    "SpeakerDetector",
    "WeightsInfo",
    "load_pretrained",
]

if TYPE_CHECKING:
    from socialav.checkpoints.load import WeightsInfo, load_pretrained
    from socialav.pipelines.config import DetectConfig
    from socialav.pipelines.detect import SpeakerDetector
    from socialav.pipelines.result import DetectResult


def __getattr__(name: str) -> Any:
    if name in _PUBLIC:
        value = getattr(importlib.import_module(_PUBLIC[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'socialav' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted({*globals(), *_PUBLIC})
