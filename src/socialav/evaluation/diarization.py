"""Diarization metrics ("who spoke when") with pyannote.metrics: DER, JER, purity, coverage.

Semantics are pyannote.metrics' own (Bredin, "pyannote.metrics: a toolkit for reproducible
evaluation, diagnostic, and error analysis of speaker diarization systems", Interspeech 2017):

- DER = (false alarm + missed detection + confusion) / total reference speech, after the
  optimal one-to-one mapping of system to reference speakers (Hungarian algorithm);
- ``collar_s`` is the *total* width of the no-score zone centred on every reference boundary
  (``collar_s / 2`` on each side). NIST md-eval's "0.25 s collar" (each side) is
  ``collar_s = 0.5`` here;
- ``skip_overlap`` removes the regions where several reference speakers talk;
- JER (Jaccard error rate, DIHARD II): mean over reference speakers of 1 - their
  intersection-over-union with the mapped system speaker;
- purity / coverage: cluster purity and coverage of the system speakers (no collar).

The scored region (UEM) is ``[0, max(end of any reference or system turn)]``, so speech the
system invents before the first reference turn counts as false alarm.
"""

from __future__ import annotations

import math
import os
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from socialav.io.text import read_text
from socialav.io.writers import RttmTurn, read_rttm

__all__ = [
    "RTTM_FIELDS",
    "read_rttm_checked",
    "turns_to_annotation",
    "diarization_metrics",
    "corpus_metrics",
    "evaluate_diarization",
]

#: Fields of an RTTM ``SPEAKER`` line (NIST RT-09 evaluation plan, appendix A):
#: type, file, channel, onset, duration, ortho, stype, name, conf, slat.
RTTM_FIELDS: int = 10
#: Record types an RTTM line may start with (NIST RT-09 evaluation plan, appendix A).
RTTM_TYPES: frozenset[str] = frozenset(
    "SEGMENT NOSCORE NO_RT_METADATA LEXEME NON-LEX NON-SPEECH FILLER EDIT IP CB A/P SU "
    "SPEAKER SPKR-INFO".split()
)


def read_rttm_checked(
    path_or_lines: str | os.PathLike[str] | Iterable[str],
    file_id: str | None = None,
    *,
    one_recording: bool = True,
) -> tuple[str | None, list[RttmTurn]]:
    """Read an RTTM strictly: every ``SPEAKER`` line has 10 fields, one file id throughout
    (unless ``one_recording=False``).

    Parsing (onset/duration numbers, non-negative finite duration) is
    :func:`socialav.io.writers.read_rttm`'s; this adds the checks a scorer needs.

    Args:
        path_or_lines: an RTTM file or its lines.
        file_id: if given, the file id every line must carry.
        one_recording: refuse several file ids (``False``: a corpus RTTM, the returned file
            id is then the first one).

    Returns:
        ``(file_id or None when there is no SPEAKER line, turns)``.

    Raises:
        ValueError: a line that is no RTTM record (a CSV, say), a ``SPEAKER`` line without
            exactly 10 fields, a negative / non-numeric duration, lines of several file ids, or a file id other than ``file_id``; the
            message names the file and line.
    """
    if isinstance(path_or_lines, (str, os.PathLike)):
        source = str(path_or_lines)
        lines = read_text(path_or_lines, "RTTM file").splitlines()
    else:
        source = "<lines>"
        lines = list(path_or_lines)
    for number, line in enumerate(lines, start=1):
        fields = line.split()
        if fields and not fields[0].startswith(";;") and fields[0] not in RTTM_TYPES:
            raise ValueError(
                f"{source}:{number}: expected an RTTM line (type file chan onset dur ortho "
                f"stype name conf slat, type SPEAKER for turns), but got {line[:80]!r}"
            )
        if fields and fields[0] == "SPEAKER" and len(fields) != RTTM_FIELDS:
            raise ValueError(
                f"{source}:{number}: an RTTM SPEAKER line has {RTTM_FIELDS} space-separated "
                f"fields (type file chan onset dur ortho stype name conf slat), but got "
                f"{len(fields)}: {line!r}"
            )
    try:
        turns = read_rttm(lines)
    except ValueError as exc:
        raise ValueError(str(exc).replace("<lines>", source)) from None
    ids = sorted({t.file_id for t in turns})
    if len(ids) > 1 and one_recording:
        raise ValueError(
            f"{source}: expected the turns of one recording, but found {len(ids)} file ids "
            f"{ids[:5]}; score one file id at a time"
        )
    found = turns[0].file_id if turns else None
    if file_id is not None and found is not None and found != file_id:
        raise ValueError(f"{source}: expected file id {file_id!r}, but found {found!r}")
    return found, turns


def turns_to_annotation(turns: Sequence[RttmTurn], uri: str | None = None) -> Any:
    """A ``pyannote.core.Annotation`` of RTTM turns (zero-length turns are dropped)."""
    from pyannote.core import Annotation, Segment

    annotation = Annotation(uri=uri)
    for k, turn in enumerate(turns):
        if turn.duration_s > 0:
            annotation[Segment(turn.onset_s, turn.end_s), k] = turn.speaker
    return annotation


def diarization_metrics(
    reference: Sequence[RttmTurn],
    system: Sequence[RttmTurn],
    collar_s: float = 0.25,
    skip_overlap: bool = False,
) -> dict[str, Any]:
    """DER and its parts, JER, purity, coverage and speaker counts of one recording.

    Args:
        reference, system: the turns (one recording).
        collar_s: total no-score width around each reference boundary (pyannote semantics,
            see the module docstring), >= 0.
        skip_overlap: do not score overlapped reference speech.

    Returns:
        ``{"der", "jer", "purity", "coverage"}`` as fractions (``der`` None when the
        reference has no speech: then only false alarm is defined), the DER components in
        seconds (``total_s``, ``correct_s``, ``false_alarm_s``, ``missed_detection_s``,
        ``confusion_s``) and as fractions of ``total_s`` (``false_alarm``, ``missed``,
        ``confusion``), ``num_reference_speakers``, ``num_system_speakers``, ``collar_s``,
        ``skip_overlap``, ``uem_s``.

    Raises:
        ValueError: a negative or non-finite collar.
    """
    if not math.isfinite(collar_s) or collar_s < 0:
        raise ValueError(f"collar_s must be a finite number >= 0, but got {collar_s}")
    from pyannote.core import Segment, Timeline
    from pyannote.metrics.diarization import (
        DiarizationCoverage,
        DiarizationErrorRate,
        DiarizationPurity,
        JaccardErrorRate,
    )

    ref = turns_to_annotation(reference)
    hyp = turns_to_annotation(system)
    end_s = max([t.end_s for t in [*reference, *system]] + [0.0])
    result: dict[str, Any] = {
        "num_reference_speakers": len(ref.labels()),
        "num_system_speakers": len(hyp.labels()),
        "collar_s": collar_s,
        "skip_overlap": skip_overlap,
        "uem_s": [0.0, end_s],
    }
    if end_s <= 0:
        zero = dict.fromkeys(
            ["total_s", "correct_s", "false_alarm_s", "missed_detection_s", "confusion_s"], 0.0
        )
        return {**result, **zero, "der": None, "jer": None, "purity": None, "coverage": None,
                "false_alarm": None, "missed": None, "confusion": None}  # fmt: skip
    uem = Timeline([Segment(0.0, end_s)])
    der = DiarizationErrorRate(collar=collar_s, skip_overlap=skip_overlap)
    parts = der.compute_components(ref, hyp, uem=uem)
    total = float(parts["total"])
    result.update(
        total_s=total,
        correct_s=float(parts["correct"]),
        false_alarm_s=float(parts["false alarm"]),
        missed_detection_s=float(parts["missed detection"]),
        confusion_s=float(parts["confusion"]),
    )
    if total > 0:
        errors = parts["false alarm"] + parts["missed detection"] + parts["confusion"]
        result.update(
            der=float(errors / total),
            false_alarm=float(parts["false alarm"] / total),
            missed=float(parts["missed detection"] / total),
            confusion=float(parts["confusion"] / total),
        )
        jer = JaccardErrorRate(collar=collar_s, skip_overlap=skip_overlap)
        result["jer"] = float(jer(ref, hyp, uem=uem))
    else:
        result.update(der=None, false_alarm=None, missed=None, confusion=None, jer=None)
    if len(hyp.labels()) and total > 0:
        result["purity"] = float(DiarizationPurity()(ref, hyp, uem=uem))
        result["coverage"] = float(DiarizationCoverage()(ref, hyp, uem=uem))
    else:
        result["purity"] = result["coverage"] = None
    return result


def _group_by_recording(turns: Sequence[RttmTurn]) -> dict[str, list[RttmTurn]]:
    groups: dict[str, list[RttmTurn]] = {}
    for turn in turns:
        groups.setdefault(turn.file_id, []).append(turn)
    return groups


def corpus_metrics(
    recordings: dict[str, tuple[Sequence[RttmTurn], Sequence[RttmTurn]]],
    collar_s: float = 0.25,
    skip_overlap: bool = False,
) -> dict[str, Any]:
    """DER, JER, purity and coverage accumulated over recordings, as pyannote.metrics
    accumulates them (``abs(metric)`` after one call per recording): DER = all errors / all
    reference speech, so long recordings weigh more; JER = mean over all reference speakers.

    Args:
        recordings: ``{file_id: (reference turns, system turns)}``.
        collar_s, skip_overlap: as in :func:`diarization_metrics`.

    Returns:
        ``der``, ``jer``, ``purity``, ``coverage`` (fractions, ``None`` without reference
        speech), ``total_s``, ``false_alarm_s``, ``missed_detection_s``, ``confusion_s``,
        ``num_recordings``.

    Raises:
        ValueError: a negative or non-finite collar.
    """
    if not math.isfinite(collar_s) or collar_s < 0:
        raise ValueError(f"collar_s must be a finite number >= 0, but got {collar_s}")
    from pyannote.core import Segment, Timeline
    from pyannote.metrics.diarization import (
        DiarizationCoverage,
        DiarizationErrorRate,
        DiarizationPurity,
        JaccardErrorRate,
    )

    der = DiarizationErrorRate(collar=collar_s, skip_overlap=skip_overlap)
    jer = JaccardErrorRate(collar=collar_s, skip_overlap=skip_overlap)
    purity, coverage = DiarizationPurity(), DiarizationCoverage()
    scored_jer = scored_purity = False
    for file_id, (reference, system) in recordings.items():
        end_s = max([t.end_s for t in [*reference, *system]] + [0.0])
        if end_s <= 0:
            continue
        ref = turns_to_annotation(reference, uri=file_id)
        hyp = turns_to_annotation(system, uri=file_id)
        uem = Timeline([Segment(0.0, end_s)], uri=file_id)
        der(ref, hyp, uem=uem)
        if ref.labels():
            jer(ref, hyp, uem=uem)
            scored_jer = True
            if hyp.labels():
                purity(ref, hyp, uem=uem)
                coverage(ref, hyp, uem=uem)
                scored_purity = True
    total = float(der["total"]) if der.results_ else 0.0
    parts = {
        name: float(der[key]) if der.results_ else 0.0
        for name, key in (
            ("false_alarm_s", "false alarm"),
            ("missed_detection_s", "missed detection"),
            ("confusion_s", "confusion"),
        )
    }
    return {
        "num_recordings": len(recordings),
        "total_s": total,
        **parts,
        "der": float(abs(der)) if total > 0 else None,
        "jer": float(abs(jer)) if scored_jer else None,
        "purity": float(abs(purity)) if scored_purity else None,
        "coverage": float(abs(coverage)) if scored_purity else None,
        "collar_s": collar_s,
        "skip_overlap": skip_overlap,
    }


def evaluate_diarization(
    reference_rttm: str | os.PathLike[str],
    system_rttm: str | os.PathLike[str],
    collar_s: float = 0.25,
    skip_overlap: bool = False,
) -> dict[str, Any]:
    """Score a system RTTM against a reference RTTM: one recording, or a corpus (several
    file ids in each file, scored per file id and accumulated).

    Both files are read with :func:`read_rttm_checked`. A reference recording the system
    file lacks is scored as all missed (the system said nothing); a system file id the
    reference lacks is refused (a typo would otherwise be silently ignored). See
    :func:`diarization_metrics` for the per-recording result and the collar semantics
    (pyannote.metrics: ``collar_s`` is the total width, half each side).

    Returns:
        The corpus metrics of :func:`corpus_metrics` plus ``file_id`` (the only file id, or
        ``None`` for a corpus), ``reference``, ``system`` (the paths), ``recordings`` (``{file_id:
        diarization_metrics(...)}``) and ``missing_in_system`` (reference file ids the system
        file lacks). For one recording the top-level numbers are that recording's, with its
        DER parts as fractions too.

    Raises:
        FileNotFoundError: a missing file.
        ValueError: malformed RTTM (field count, negative duration; the message names the
            file and line), system file ids the reference lacks, or a bad collar.
    """
    for label, path in (("reference", reference_rttm), ("system", system_rttm)):
        if not Path(path).is_file():
            raise FileNotFoundError(f"{label} RTTM not found: {path}")
    if not math.isfinite(collar_s) or collar_s < 0:
        raise ValueError(f"collar_s must be a finite number >= 0, but got {collar_s}")
    _, reference = read_rttm_checked(reference_rttm, one_recording=False)
    _, system = read_rttm_checked(system_rttm, one_recording=False)
    ref_groups, sys_groups = _group_by_recording(reference), _group_by_recording(system)
    extra = sorted(set(sys_groups) - set(ref_groups))
    if extra and ref_groups:
        raise ValueError(
            f"{system_rttm}: the system RTTM has file ids the reference {reference_rttm} lacks: "
            f"{extra[:5]}{' ...' if len(extra) > 5 else ''} (expected file ids among "
            f"{sorted(ref_groups)[:5]})"
        )
    ids = list(ref_groups) or list(sys_groups)
    recordings = {i: (ref_groups.get(i, []), sys_groups.get(i, [])) for i in ids}
    per_recording = {
        i: diarization_metrics(ref, hyp, collar_s=collar_s, skip_overlap=skip_overlap)
        for i, (ref, hyp) in recordings.items()
    }
    if len(ids) == 1:
        result = dict(per_recording[ids[0]])
        result["num_recordings"] = 1
    else:
        result = corpus_metrics(recordings, collar_s=collar_s, skip_overlap=skip_overlap)
    return {
        "file_id": ids[0] if len(ids) == 1 else None,
        "reference": str(reference_rttm),
        "system": str(system_rttm),
        **result,
        "recordings": per_recording,
        "missing_in_system": [i for i in ids if i not in sys_groups and ref_groups],
    }
