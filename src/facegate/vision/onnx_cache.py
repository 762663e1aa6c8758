"""ONNX models converted on this machine from dlib `.dat` files, cached with checksums.

Why: conversion takes a second or two and the result is the same for the same input file
and converter, so it is done once per cache directory. A cache entry is keyed by the
`.dat` content (sha256) and the converter version; a sidecar JSON holds the `.onnx`
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

import onnx
import onnxruntime as ort

from facegate.errors import ErrorCode, FacegateError
from facegate.vision import dlib_format as df


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def cache_paths(model_name: str, dat_sha256: str, version: int, cache_dir: Path) -> tuple[Path, Path]:
    """The .onnx file for one .dat content and converter version, and its checksum sidecar."""
    stem = f"{model_name}.{dat_sha256}.c{version}"
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
    dat_path: Path,
    cache_dir: Path,
    model_name: str,
    version: int,
    convert: Callable[[df.Network], onnx.ModelProto],
) -> Path:
    """The cached ONNX model for `dat_path`, rebuilt with `convert` when missing or corrupt.

    A file that is not a network `convert` understands is refused as UNKNOWN_MODEL.
    """
    if not dat_path.is_file():
        raise FacegateError(ErrorCode.UNKNOWN_MODEL, f"model file missing: {dat_path}")
    data = dat_path.read_bytes()
    dat_sha = hashlib.sha256(data).hexdigest()
    onnx_path, meta_path = cache_paths(model_name, dat_sha, version, cache_dir)
    if _cached_ok(onnx_path, meta_path):
        return onnx_path
    try:
        model = convert(df.read_network(data))
    except df.DlibFormatError as exc:
        raise FacegateError(ErrorCode.UNKNOWN_MODEL, f"{dat_path.name}: {exc}") from None
    blob = model.SerializeToString()
    cache_dir.mkdir(parents=True, exist_ok=True)
    _atomic_write(onnx_path, blob)
    meta = {
        "onnx_sha256": hashlib.sha256(blob).hexdigest(),
        "dat_sha256": dat_sha,
        "dat_name": dat_path.name,
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
    """
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads or 1
    options.inter_op_num_threads = 1
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    return ort.InferenceSession(str(onnx_path), options, providers=["CPUExecutionProvider"])


def finish_model(graph: onnx.GraphProto, producer: str, version: int, opset: int) -> onnx.ModelProto:
    """Wrap a converted graph as a checked model, stamped with the converter that made it."""
    model = onnx.helper.make_model(
        graph,
        opset_imports=[onnx.helper.make_opsetid("", opset)],
        producer_name=producer,
        producer_version=str(version),
    )
    model.ir_version = 8
    onnx.checker.check_model(model)
    return model
