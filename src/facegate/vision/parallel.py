"""Analyse many image files on all cores: one Pipeline per worker process, built once.

dlib releases no GIL-free parallelism of its own on this build, so processes it is. Each
worker takes files `BATCH` at a time: it decodes, detects and aligns each, then embeds the
chips of all of them in one call (larger batches run the ResNet faster per chip). Each
file gets its faces or the `FacegateError` that refused it; one bad file never stops the
batch. Results come back in input order, lazily, so callers can show progress and write
results as they arrive.
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
from facegate.vision.pipeline import Pipeline, PipelineConfig, Prepared
from facegate.vision.types import Face

PipelineFactory = Callable[[PipelineConfig], Pipeline]
BATCH = 8  # files per embedding batch: about 9 faces, 18 chips with mirrors, on LFW


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


def analyze_inline(
    pipeline: Pipeline, paths: Sequence[Path], max_faces: int | None = None, central: bool = False
) -> Iterator[FileResult]:
    """`analyze_files` in this process, with a pipeline the caller already holds."""
    for i in range(0, len(paths), BATCH):
        yield from analyze_batch(pipeline, paths[i : i + BATCH], max_faces, central)


def analyze_batch(
    pipeline: Pipeline, paths: Sequence[Path], max_faces: int | None = None, central: bool = False
) -> list[FileResult]:
    """Analyse files, embedding all their faces in one batch; refusals are returned.

    `max_faces` and `central` choose the faces analysed, as in `Pipeline.prepare`.
    """
    prepared: dict[int, tuple[Prepared, str]] = {}
    refused: dict[int, FacegateError] = {}
    for i, path in enumerate(paths):
        try:
            data = read_image_file(path, pipeline.config.limits)
            prepared[i] = pipeline.prepare(pipeline.decode(data), max_faces, central), hashlib.sha256(data).hexdigest()
        except FacegateError as exc:
            refused[i] = exc
    faces = dict(zip(prepared, pipeline.finish([p for p, _ in prepared.values()])))
    return [
        FileResult(path, faces[i], None, prepared[i][1]) if i in prepared else FileResult(path, [], refused[i], None)
        for i, path in enumerate(paths)
    ]


def _run(args: tuple[list[Path], int | None, bool]) -> list[FileResult]:
    if _worker is None:  # pragma: no cover - initializer always ran
        raise RuntimeError("worker not initialised")
    return analyze_batch(_worker, *args)


def analyze_files(
    paths: Sequence[Path],
    config: PipelineConfig,
    workers: int,
    max_faces: int | None = None,
    factory: PipelineFactory = Pipeline,
    central: bool = False,
) -> Iterator[FileResult]:
    """Yield one `FileResult` per path, in order, using `workers` processes (1 = inline)."""
    if workers <= 1 or len(paths) <= 1:
        yield from analyze_inline(factory(config), paths, max_faces, central)
        return
    batches = [list(paths[i : i + BATCH]) for i in range(0, len(paths), BATCH)]
    ctx = mp.get_context("spawn")  # fork would copy half-initialised dlib state
    with ctx.Pool(workers, initializer=_init, initargs=(config, factory)) as pool:
        for results in pool.imap(_run, [(batch, max_faces, central) for batch in batches]):
            yield from results
