"""Analyse many image files on all cores: one Pipeline per worker process, built once.

dlib releases no GIL-free parallelism of its own on this build, so processes it is. Each
worker returns faces or the `FacegateError` that refused the file; one bad file never
stops the batch. Results come back in input order, lazily, so callers can show progress
and write results as they arrive.
"""

from __future__ import annotations

import hashlib
import multiprocessing as mp
import os
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, replace
from pathlib import Path

from facegate.errors import FacegateError
from facegate.vision.image import read_image_file
from facegate.vision.pipeline import Pipeline, PipelineConfig
from facegate.vision.types import Face

PipelineFactory = Callable[[PipelineConfig], Pipeline]


@dataclass(frozen=True, slots=True)
class FileResult:
    """What analysing one file gave: its faces (largest first) or the refusal."""

    path: Path
    faces: list[Face]
    error: FacegateError | None
    image_sha256: str | None


_worker: Pipeline | None = None


def _init(config: PipelineConfig, factory: PipelineFactory) -> None:
    global _worker  # one pipeline per worker process, by design of multiprocessing
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    # one process per core already: more inference threads would only fight each other
    _worker = factory(replace(config, threads=1))


def analyze_one(pipeline: Pipeline, path: Path, max_faces: int | None = None) -> FileResult:
    """Analyse one file; a refusal is returned, not raised, so batches go on."""
    try:
        data = read_image_file(path, pipeline.config.limits)
        faces = pipeline.faces(pipeline.decode(data), max_faces)
        return FileResult(path, faces, None, hashlib.sha256(data).hexdigest())
    except FacegateError as exc:
        return FileResult(path, [], exc, None)


def _run(args: tuple[Path, int | None]) -> FileResult:
    if _worker is None:  # pragma: no cover - initializer always ran
        raise RuntimeError("worker not initialised")
    return analyze_one(_worker, *args)


def analyze_files(
    paths: Sequence[Path],
    config: PipelineConfig,
    workers: int,
    max_faces: int | None = None,
    factory: PipelineFactory = Pipeline,
) -> Iterator[FileResult]:
    """Yield one `FileResult` per path, in order, using `workers` processes (1 = inline)."""
    if workers <= 1 or len(paths) <= 1:
        pipeline = factory(config)
        for path in paths:
            yield analyze_one(pipeline, path, max_faces)
        return
    ctx = mp.get_context("spawn")  # fork would copy half-initialised dlib state
    with ctx.Pool(workers, initializer=_init, initargs=(config, factory)) as pool:
        yield from pool.imap(_run, [(p, max_faces) for p in paths], chunksize=4)
