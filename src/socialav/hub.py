"""Weights registry: name → public URL, sha256, licence, input contract; download and cache.

Resolution order for a weights name:

1. ``SOCIALAV_WEIGHTS_DIR`` (if set): a folder laid out like the registry's ``relative_path``
   entries (``light-asd/pretrain_AVA_CVPR.model`` ...). Nothing is downloaded; a missing file
   is an error. Tests and CI point it at ``../shared/weights``.
2. Files shipped inside the package (``socialav/weights/``), for weights socialav trained itself,
   and files shipped inside another installed wheel (``WeightsEntry.package_file``, e.g. the
   Silero VAD ONNX model in ``silero-vad``), found without importing that package.
3. The user cache (``$SOCIALAV_CACHE_DIR`` or ``$XDG_CACHE_HOME/socialav`` or
   ``~/.cache/socialav``) under ``weights/``; a missing file is downloaded from its URL to a
   temporary file, verified, and renamed into place.

Every file is checked against its sha256 before use; a mismatch is refused with both values.
"""

from __future__ import annotations

import hashlib
import importlib.util
import logging
import os
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from socialav.io.atomic import atomic_write

logger = logging.getLogger(__name__)

__all__ = [
    "WeightsEntry",
    "WeightsError",
    "REGISTRY",
    "get_entry",
    "resolve_weights",
    "sha256_of",
    "cache_dir",
    "weights_status",
]

_LIGHT_ASD = "https://raw.githubusercontent.com/Junhua-Liao/Light-ASD/ed38c232de5efe0261dbd68627c0ade7cdfe14eb"
_LR_ASD = (
    "https://raw.githubusercontent.com/Junhua-Liao/LR-ASD/1b6dcd2d8fc2895683de6508ec6294ec47d388ca"
)
_ULFD = "https://raw.githubusercontent.com/Linzaer/Ultra-Light-Fast-Generic-Face-Detector-1MB/dffdddda9794a50607cba8f318507a28c1c27cab"
_FSANET = "https://raw.githubusercontent.com/omasaht/headpose-fsanet-pytorch/002549c981b607f722e0810d999afcde7e5aaa66"

_ASD_CONTRACT = (
    "faces: 112x112 grayscale uint8 crops at 25 fps (crop scale 0.40, pad 110); "
    "audio: 13 MFCC at 100 Hz from 16 kHz mono (python_speech_features), 4 per video frame"
)


class WeightsError(RuntimeError):
    """A weights file is unknown, missing, or does not match its registered checksum."""


@dataclass(frozen=True)
class WeightsEntry:
    """One registered weights file.

    Attributes:
        name: registry name used on the command line (``light-asd-ava``).
        kind: what it is for: ``asd``, ``face-detector``, ``head-pose``.
        architecture: for PyTorch weights (kind ``asd``), the architecture name of
            :mod:`socialav.models.registry` (``light-asd``, ``lr-asd``); for the ONNX files the
            model family (``ultra-light-face``, ``fsanet``).
        relative_path: path under a weights folder (``SOCIALAV_WEIGHTS_DIR`` or the cache).
        url: public download address (raw file in the upstream repository at a fixed commit),
            or ``None`` for files shipped inside the package.
        sha256: hex digest of the file.
        licence: licence of the file.
        source: paper / repository it comes from.
        contract: input contract in words.
        notes: anything else a user should know (training data, reported accuracy).
        package_file: ``"<top-level package>:<path inside it>"`` for a file shipped inside
            another installed wheel (``"silero_vad:data/silero_vad.onnx"``); it is looked for
            there (located with :func:`importlib.util.find_spec`, the package is not imported)
            after ``SOCIALAV_WEIGHTS_DIR`` / the socialav package and before the cache.
    """

    name: str
    kind: str
    architecture: str
    relative_path: str
    url: str | None
    sha256: str
    licence: str
    source: str
    contract: str = ""
    notes: str = ""
    extra: dict[str, str] = field(default_factory=dict)
    package_file: str | None = None


REGISTRY: dict[str, WeightsEntry] = {
    e.name: e
    for e in [
        WeightsEntry(
            "light-asd-ava",
            "asd",
            "light-asd",
            "light-asd/pretrain_AVA_CVPR.model",
            f"{_LIGHT_ASD}/weight/pretrain_AVA_CVPR.model",
            "d44bc3ea7baa8e0946fa3921311714a630ed8b90a1928fab0dbe30d918909317",
            "MIT",
            "Liao et al., A Light Weight Model for Active Speaker Detection, CVPR 2023 "
            "(github.com/Junhua-Liao/Light-ASD)",
            _ASD_CONTRACT,
            "trained on AVA-ActiveSpeaker; 94.06 mAP on AVA val (upstream README)",
        ),
        WeightsEntry(
            "light-asd-talkset",
            "asd",
            "light-asd",
            "light-asd/finetuning_TalkSet.model",
            f"{_LIGHT_ASD}/weight/finetuning_TalkSet.model",
            "efc375833887eefa9d209dc92810e18519b04c3c73ea35a549f2a7f40b7d94d5",
            "MIT",
            "Light-ASD (CVPR 2023), fine-tuned on TalkSet",
            _ASD_CONTRACT,
            "AVA weights fine-tuned on TalkSet; Columbia F1 95.5 (upstream README)",
        ),
        WeightsEntry(
            "lr-asd-ava",
            "asd",
            "lr-asd",
            "lr-asd/pretrain_AVA.model",
            f"{_LR_ASD}/weight/pretrain_AVA.model",
            "85e6c77fc981595234790d1e128ebb60352d37726b2445e0ef8891e2512fe9e3",
            "MIT",
            "Liao et al., LR-ASD, IJCV 2025 (github.com/Junhua-Liao/LR-ASD)",
            _ASD_CONTRACT,
            "trained on AVA-ActiveSpeaker; 94.45 mAP on AVA val (upstream README)",
        ),
        WeightsEntry(
            "lr-asd-talkset",
            "asd",
            "lr-asd",
            "lr-asd/finetuning_TalkSet.model",
            f"{_LR_ASD}/weight/finetuning_TalkSet.model",
            "6b4ef53694e874e96cf630198dc479c78aebb3993bbf166aee3d926dfe7d9342",
            "MIT",
            "LR-ASD (IJCV 2025), fine-tuned on TalkSet",
            _ASD_CONTRACT,
        ),
        WeightsEntry(
            "light-asd-sync",
            "asd",
            "light-asd",
            "socialav/light-asd-sync.model",
            None,
            "d0ad61daa74a1fb27ed2812dc7ca61a923ef815c21cd337b1fb18d5da0f6ef53",
            "MIT (derived from Light-ASD, MIT; trained on clips of ../shared/videos/more — see "
            "docs/sync_finetuning.md)",
            "light-asd-ava fine-tuned by socialav for audio-visual synchrony (audio encoder, "
            "GRU and head; in-batch offset/swap negatives and an offset-contrastive loss), "
            "then its speaking-logit margin calibrated to light-asd-ava's recall (socialav "
            "calibrate)",
            _ASD_CONTRACT,
            "socialav checkpoint (socialav train + socialav calibrate). GRID held-out, full "
            "windows: natural AP 98.67, sync AP 72.25 (published AVA weights 98.54 / 62.55). "
            "Reproduce: SOCIALAV_WEIGHTS_DIR=../shared/weights socialav data talkset --videos "
            "../shared/videos/more --out "
            "runs/talkset_more --seed 0 --val-fraction 0.15 --detect-every 2 --group-regex "
            "'(Obama|feifeili|andrew|M003|AlexandriaOcasioCortez|RD_Radio10|kim)' && "
            "socialav train configs/light_asd_sync.yaml && socialav calibrate "
            "runs/light_asd_sync/checkpoints/model_epoch0040.pt --root runs/talkset_more "
            "--threads 2 -o light-asd-sync.model",
        ),
        WeightsEntry(
            "ultra-light-face-rfb-640",
            "face-detector",
            "ultra-light-face",
            "ultra-light-face/version-RFB-640.onnx",
            f"{_ULFD}/models/onnx/version-RFB-640.onnx",
            "8f4c659275977e7a3bfbfa339a9c769ad793df50f9c0baa8c14b11baa1646430",
            "MIT",
            "Ultra-Light-Fast-Generic-Face-Detector-1MB (github.com/Linzaer)",
            "1x3x480x640 RGB (x-127)/128; scores [1,N,2], boxes [1,N,4] normalised xyxy",
        ),
        WeightsEntry(
            "ultra-light-face-rfb-320",
            "face-detector",
            "ultra-light-face",
            "ultra-light-face/version-RFB-320.onnx",
            f"{_ULFD}/models/onnx/version-RFB-320.onnx",
            "34cd7e60aeff28744c657de7a3dc64e872d506741de66987f3426f2b79f88017",
            "MIT",
            "Ultra-Light-Fast-Generic-Face-Detector-1MB (github.com/Linzaer)",
            "1x3x240x320 RGB (x-127)/128; scores [1,N,2], boxes [1,N,4] normalised xyxy",
        ),
        WeightsEntry(
            "ultra-light-face-slim-320",
            "face-detector",
            "ultra-light-face",
            "ultra-light-face/version-slim-320.onnx",
            f"{_ULFD}/models/onnx/version-slim-320.onnx",
            "e9adbd0f920ddcce9368434c4d34d72520dc0c19b526fd44b4ef49bde2c3b1a8",
            "MIT",
            "Ultra-Light-Fast-Generic-Face-Detector-1MB (github.com/Linzaer)",
            "1x3x240x320 RGB (x-127)/128; scores [1,N,2], boxes [1,N,4] normalised xyxy",
        ),
        WeightsEntry(
            "fsanet-1x1",
            "head-pose",
            "fsanet",
            "fsanet-head-pose/fsanet-1x1-iter-688590.onnx",
            f"{_FSANET}/pretrained/fsanet-1x1-iter-688590.onnx",
            "d85e90cb4b9d3a87e81bbfdcfcd130cbe0e175407042e439a570aa396c44eda6",
            "MIT (training data has its own terms)",
            "FSA-Net head pose (Yang et al., CVPR 2019), ONNX port omasaht/headpose-fsanet-pytorch",
            "1x3x64x64 BGR face crop (x-127.5)/128 → yaw, pitch, roll in degrees",
        ),
        WeightsEntry(
            "fsanet-var",
            "head-pose",
            "fsanet",
            "fsanet-head-pose/fsanet-var-iter-688590.onnx",
            f"{_FSANET}/pretrained/fsanet-var-iter-688590.onnx",
            "2877b1db98e3dc66468e90df8db4a21059facd1c3f107af91c6d4fe6476a03e1",
            "MIT (training data has its own terms)",
            "FSA-Net head pose (Yang et al., CVPR 2019), ONNX port omasaht/headpose-fsanet-pytorch",
            "1x3x64x64 BGR face crop (x-127.5)/128 → yaw, pitch, roll in degrees",
        ),
        WeightsEntry(
            "silero-vad",
            "vad",
            "silero-vad",
            "silero-vad/silero_vad.onnx",
            None,
            "1a153a22f4509e292a94e67d6f9b85e8deb25b4988682b7e174c65279d8788e3",
            "MIT",
            "Silero VAD v6 (github.com/snakers4/silero-vad), shipped in the silero-vad 6.2 wheel",
            "512-sample chunks of 16 kHz mono float32 with 64 samples of left context, "
            "state (2, 1, 128) → speech probability",
            package_file="silero_vad:data/silero_vad.onnx",
        ),
        WeightsEntry(
            "resemblyzer-ge2e",
            "voice-embedding",
            "ge2e",
            "resemblyzer/pretrained.pt",
            None,
            "39373b86598fa3da9fcddee6142382efe09777e8d37dc9c0561f41f0070f134e",
            "Apache-2.0",
            "GE2E speaker encoder (Wan et al., ICASSP 2018) trained by Resemble AI, shipped in "
            "the resemblyzer 0.1.4 wheel (github.com/resemble-ai/Resemblyzer)",
            "40-channel power mel (25 ms / 10 ms, 16 kHz), 160-frame partials → 256-d, L2-normed",
            "install the weights without resemblyzer's dependencies: pip install --no-deps "
            "resemblyzer==0.1.4",
            package_file="resemblyzer:pretrained.pt",
        ),
        WeightsEntry(
            "dlib-face-resnet",
            "face-embedding",
            "dlib-resnet",
            "dlib/dlib_face_recognition_resnet_model_v1.dat",
            None,
            "55533b28a95800a551ba546ba62fe69625c7e95a7061c338adffead08719da30",
            "CC0-1.0",
            "dlib ResNet face descriptor (dlib.net, King 2017), shipped in the "
            "face-recognition-models 0.3.0 wheel",
            "150x150 RGB face chip aligned by the 5-point landmarks (dlib.get_face_chip, "
            "padding 0.25) → 128-d; same person below 0.6 Euclidean distance (dlib's LFW rule)",
            package_file="face_recognition_models:models/dlib_face_recognition_resnet_model_v1.dat",
        ),
        WeightsEntry(
            "dlib-shape-5",
            "face-landmarks",
            "dlib-shape-predictor",
            "dlib/shape_predictor_5_face_landmarks.dat",
            None,
            "c4b1e9804792707d3a405c2c16a80a20269e6675021f64a41d30fffafbc41888",
            "CC0-1.0 (trained by Davis King on his own 5-point dataset)",
            "dlib 5-point face landmarks (eye corners, nose), shipped in the "
            "face-recognition-models 0.3.0 wheel",
            "RGB image + face rectangle → 5 points",
            package_file="face_recognition_models:models/shape_predictor_5_face_landmarks.dat",
        ),
        WeightsEntry(
            "dlib-shape-68",
            "face-landmarks",
            "dlib-shape-predictor",
            "dlib/shape_predictor_68_face_landmarks.dat",
            None,
            "fbdc2cb80eb9aa7a758672cbfdda32ba6300efe9b6e6c7a299ff7e736b11b92f",
            "dlib's licence for the file is Boost, but it was trained on iBUG 300-W, whose "
            "images exclude commercial use: research use only",
            "dlib 68-point face landmarks (Kazemi & Sullivan, CVPR 2014; iBUG 300-W markup), "
            "shipped in the face-recognition-models 0.3.0 wheel; used only by the lip-sync "
            "experiment (socialav.vision.lip_landmarks), never by detect",
            "grayscale image + face rectangle → 68 points (mouth: 48-67)",
            package_file="face_recognition_models:models/shape_predictor_68_face_landmarks.dat",
        ),
    ]
}

#: Folder of weights shipped inside the package (trained by socialav itself).
PACKAGE_WEIGHTS_DIR = Path(__file__).resolve().parent / "weights"


def get_entry(name: str) -> WeightsEntry:
    """The registry entry for ``name``.

    Raises:
        WeightsError: unknown name (the message lists the known ones).
    """
    try:
        return REGISTRY[name]
    except KeyError:
        known = ", ".join(sorted(REGISTRY))
        raise WeightsError(f"unknown weights {name!r}; expected one of: {known}") from None


def cache_dir() -> Path:
    """The user cache folder (``$SOCIALAV_CACHE_DIR`` > ``$XDG_CACHE_HOME/socialav`` > ``~/.cache/socialav``)."""
    if os.environ.get("SOCIALAV_CACHE_DIR"):
        return Path(os.environ["SOCIALAV_CACHE_DIR"])
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "socialav"


def sha256_of(path: Path, chunk_size: int = 1 << 20) -> str:
    """Hex sha256 digest of a file, read in 1 MiB chunks."""
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        while chunk := fh.read(chunk_size):
            digest.update(chunk)
    return digest.hexdigest()


def _verify(entry: WeightsEntry, path: Path) -> Path:
    found = sha256_of(path)
    if found != entry.sha256:
        raise WeightsError(
            f"{path}: sha256 mismatch for weights {entry.name!r}: expected {entry.sha256}, "
            f"found {found}; the file is corrupt or not the registered one (delete it to "
            f"download again, or fix SOCIALAV_WEIGHTS_DIR)"
        )
    return path


def _download(url: str, dest: Path, expected_sha256: str, timeout_s: float = 60.0) -> None:
    """Download ``url`` to ``dest`` through a temporary file (:func:`socialav.io.atomic.
    atomic_write`); verify before renaming, so a failed or corrupt download leaves nothing."""
    digest = hashlib.sha256()
    with atomic_write(dest, "wb") as out, urllib.request.urlopen(url, timeout=timeout_s) as resp:
        while chunk := resp.read(1 << 20):
            out.write(chunk)
            digest.update(chunk)
        if digest.hexdigest() != expected_sha256:
            raise WeightsError(
                f"download of {url} has sha256 {digest.hexdigest()}, expected {expected_sha256}"
            )


def installed_package_file(package_file: str) -> Path | None:
    """Path of ``"<package>:<relative path>"`` inside an installed package, or None.

    The package is located with :func:`importlib.util.find_spec` and never imported (some
    wheels that ship weights import heavy or broken code at import time).
    """
    package, _, relative = package_file.partition(":")
    try:
        spec = importlib.util.find_spec(package)
    except (ImportError, ValueError):
        return None
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(next(iter(spec.submodule_search_locations))) / relative


def candidate_paths(entry: WeightsEntry) -> list[Path]:
    """Local places where ``entry`` is looked for, in order (see the module docstring).

    With ``SOCIALAV_WEIGHTS_DIR`` set, that folder is the only place, except for weights
    shipped inside the package (``url`` is ``None``) or inside another installed wheel
    (``package_file``), which are also looked for there.
    """
    env_dir = os.environ.get("SOCIALAV_WEIGHTS_DIR")
    wheel = installed_package_file(entry.package_file) if entry.package_file else None
    in_wheel = [wheel] if wheel is not None else []
    if env_dir:
        shipped = [PACKAGE_WEIGHTS_DIR / entry.relative_path] if entry.url is None else []
        return [Path(env_dir) / entry.relative_path, *shipped, *in_wheel]
    return [
        PACKAGE_WEIGHTS_DIR / entry.relative_path,
        *in_wheel,
        cache_dir() / "weights" / entry.relative_path,
    ]


def resolve_weights(
    name: str,
    download: bool = True,
    downloader: Callable[[str, Path, str], None] = _download,
) -> Path:
    """Path of a verified local copy of the weights ``name``, downloading it if needed.

    Args:
        name: a registry name (see :data:`REGISTRY`, ``socialav weights list``).
        download: allow downloading into the cache when no local copy exists.
        downloader: ``(url, dest, sha256) -> None``; injectable for tests.

    Raises:
        WeightsError: unknown name; ``SOCIALAV_WEIGHTS_DIR`` is set but lacks the file; no
            local copy and downloading is off or impossible; checksum mismatch.
    """
    entry = get_entry(name)
    candidates = candidate_paths(entry)
    for path in candidates:
        if path.is_file():
            return _verify(entry, path)
    env_dir = os.environ.get("SOCIALAV_WEIGHTS_DIR")
    if entry.package_file:
        package = entry.package_file.partition(":")[0]
        hint = f" ({entry.notes})" if entry.notes else ""
        raise WeightsError(
            f"weights {name!r}: expected {entry.package_file} inside the installed Python "
            f"package {package!r}{hint}, or {entry.relative_path} under SOCIALAV_WEIGHTS_DIR; "
            f"found neither (looked in {[str(c) for c in candidates]})"
        )
    if env_dir:
        raise WeightsError(
            f"weights {name!r}: SOCIALAV_WEIGHTS_DIR={env_dir} is set but {candidates[0]} does "
            f"not exist (expected the registry layout: {entry.relative_path})"
        )
    cached = candidates[-1]
    if not download or entry.url is None:
        raise WeightsError(
            f"weights {name!r} not found locally ({cached}) and downloading is off; set "
            f"SOCIALAV_WEIGHTS_DIR to a folder holding {entry.relative_path}"
        )
    logger.info("downloading %s from %s", name, entry.url)
    try:
        downloader(entry.url, cached, entry.sha256)
    except OSError as exc:
        raise WeightsError(
            f"could not download weights {name!r} from {entry.url} ({exc}); offline, set "
            f"SOCIALAV_WEIGHTS_DIR to a folder holding {entry.relative_path}"
        ) from exc
    return _verify(entry, cached)


def weights_status(name: str) -> tuple[str, Path | None]:
    """``("ok" | "mismatch" | "missing", path)`` of a registry name's local copy; no download."""
    entry = get_entry(name)
    for path in candidate_paths(entry):
        if path.is_file():
            return ("ok" if sha256_of(path) == entry.sha256 else "mismatch"), path
    return "missing", None
