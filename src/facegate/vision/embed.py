"""Embedders: aligned chips in, 128-d templates out.

`Embedder` is the one interface; `open_embedder` picks the implementation by runtime and
refuses what it does not know. Templates are L2-normalised so that cosine similarity and
Euclidean distance rank the same way and a vector index can use inner product.
"""

from __future__ import annotations

from pathlib import Path
from typing import Protocol

import numpy as np

from facegate.vision.models import RESNET_FILE, model_path

MODEL_ID = "dlib-resnet-v1"
DIMENSION = 128


class Embedder(Protocol):
    model_id: str  # kept with every template and audit entry
    dimension: int  # length of the templates it makes
    runtime: str

    def embed_chips(self, chips: np.ndarray) -> np.ndarray:
        """(N, 150, 150, 3) uint8 RGB chips to (N, 128) float32 raw descriptors."""
        ...


class DlibResNet:
    """The reference: dlib's own runtime for `dlib_face_recognition_resnet_model_v1`."""

    model_id = MODEL_ID
    dimension = DIMENSION
    runtime = "dlib"

    def __init__(self) -> None:
        import dlib  # noqa: PLC0415 - loaded with the model, not with facegate

        self._net = dlib.face_recognition_model_v1(str(model_path(RESNET_FILE)))

    def embed_chips(self, chips: np.ndarray) -> np.ndarray:
        if len(chips) == 0:
            return np.zeros((0, DIMENSION), dtype=np.float32)
        batch = [np.ascontiguousarray(c) for c in chips]
        return np.asarray(self._net.compute_face_descriptor(batch), dtype=np.float32)


def normalise(vectors: np.ndarray) -> np.ndarray:
    """Rows scaled to unit length; an all-zero row stays zero instead of becoming NaN."""
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    return (vectors / np.where(norms == 0, 1.0, norms)).astype(np.float32)


def embedder_class(runtime: str) -> type[Embedder]:
    """The class `open_embedder` would build, without loading its model: its `model_id` and
    `dimension` name the template space before any weights are read."""
    from facegate.errors import ErrorCode, FacegateError

    if runtime == "onnx":
        from facegate.vision.embed_onnx import OnnxResNet

        return OnnxResNet
    if runtime == "dlib":
        return DlibResNet
    raise FacegateError(ErrorCode.UNKNOWN_MODEL, f"unknown embedder runtime {runtime!r}; use onnx or dlib")


def open_embedder(runtime: str, cache_dir: Path, threads: int | None = None) -> Embedder:
    """The embedder for a runtime name; both runtimes give the same template space.

    "onnx" (the default) runs dlib's network, converted locally from the same CC0 file,
    on ONNX Runtime (about 20x faster); "dlib" is the reference implementation.
    `threads` caps ONNX Runtime's intra-op threads (None: one per core).
    """
    from facegate.errors import ErrorCode, FacegateError

    if runtime == "onnx":
        from facegate.vision.embed_onnx import OnnxResNet

        return OnnxResNet(model_path(RESNET_FILE), cache_dir, threads=threads)
    if runtime == "dlib":
        return DlibResNet()
    raise FacegateError(ErrorCode.UNKNOWN_MODEL, f"unknown embedder runtime {runtime!r}; use onnx or dlib")
