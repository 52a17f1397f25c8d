"""Who spoke when, as people: face clusters, voice clusters, and the links between them.

Sits above ``audio``/``vision``/``inference`` and below ``pipelines``. Entry point:
:func:`~socialav.diarization.persons.diarize`; outputs in :mod:`socialav.diarization.outputs`.
"""

from socialav.diarization.persons import audio_only, diarize, faces_only
from socialav.diarization.records import DiarizationConfig, DiarizationResult, Person, TimeSpan

__all__ = [
    "DiarizationConfig",
    "DiarizationResult",
    "Person",
    "TimeSpan",
    "audio_only",
    "diarize",
    "faces_only",
]
