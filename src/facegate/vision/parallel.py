"""Analyse many image files on all cores: one Pipeline per worker process, built once.

dlib releases no GIL-free parallelism of its own on this build, so processes it is. Each
worker takes files `BATCH` at a time: it decodes, detects and aligns each, then embeds the
chips of all of them in one runtime call (on one core that gains little per chip, 3.72
against 3.76 ms, but saves a call per file; docs/benchmarks.md). Each
file gets its faces or the `FacegateError` that refused it; one bad file never stops the
batch. Results come back in input order, lazily, so callers can show progress and write
results as they arrive.
"""

from __future__ import annotations

import hashlib
import multiprocessing as mp
import os
import queue
import threading
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, replace
from pathlib import Path

from facegate.errors import ErrorCode, FacegateError
from facegate.vision.image import read_image_file
from facegate.vision.pipeline import Pipeline, PipelineConfig, Prepared
from facegate.vision.thumbnail import face_thumbnail
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
    size: tuple[int, int] = (0, 0)  # (width, height) of the decoded image


_worker: Pipeline | None = None


def _init(config: PipelineConfig, factory: PipelineFactory) -> None:
    global _worker  # one pipeline per worker process, by design of multiprocessing
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    # one process per core already: more inference threads would only fight each other
    _worker = factory(replace(config, threads=1))


def analyze_inline(
    pipeline: Pipeline, paths: Sequence[Path], max_faces: int | None = None, central: bool = False,
    thumbnails: bool = False,
) -> Iterator[FileResult]:
    """`analyze_files` in this process, with a pipeline the caller already holds."""
    for i in range(0, len(paths), BATCH):
        yield from analyze_batch(pipeline, paths[i : i + BATCH], max_faces, central, thumbnails)


def analyze_batch(
    pipeline: Pipeline, paths: Sequence[Path], max_faces: int | None = None, central: bool = False,
    thumbnails: bool = False,
) -> list[FileResult]:
    """Analyse files, embedding all their faces in one batch; refusals are returned.

    `max_faces` and `central` choose the faces analysed, as in `Pipeline.prepare`; with
    `thumbnails` each face gets its crop from the decoded image (a collection that keeps them).
    """
    prepared: dict[int, tuple[Prepared, str, tuple[int, int]]] = {}
    crops: dict[int, list[bytes | None]] = {}
    refused: dict[int, FacegateError] = {}
    for i, path in enumerate(paths):
        try:
            data = read_image_file(path, pipeline.config.limits)
            image = pipeline.decode(data)
            size = (int(image.shape[1]), int(image.shape[0]))
            found = pipeline.prepare(image, max_faces, central)
            prepared[i] = found, hashlib.sha256(data).hexdigest(), size
            crops[i] = [face_thumbnail(image, b) if thumbnails else None for b in found.boxes]
        except FacegateError as exc:
            refused[i] = exc
    faces = {
        i: [replace(face, thumbnail=crop) for face, crop in zip(analysed, crops[i], strict=True)]
        for i, analysed in zip(prepared, pipeline.finish([p for p, _, _ in prepared.values()]))
    }
    return [
        FileResult(path, faces[i], None, prepared[i][1], prepared[i][2]) if i in prepared
        else FileResult(path, [], refused[i], None)
        for i, path in enumerate(paths)
    ]


def _help(
    config: PipelineConfig,
    factory: PipelineFactory,
    tasks: mp.Queue,
    results: mp.Queue,
    max_faces: int | None,
    central: bool,
    thumbnails: bool = False,
) -> None:
    """A helper process: analyse batches from `tasks` until its stop sign (None).

    It also stops when the process that started it is gone (killed mid-way through a
    bulk index, say): nobody would read its results, and it must not linger.
    """
    _init(config, factory)
    assert _worker is not None
    parent = mp.parent_process()
    while parent is None or parent.is_alive():
        try:
            task = tasks.get(timeout=1.0)
        except queue.Empty:
            continue
        if task is None:
            return
        index, batch = task
        try:
            results.put((index, analyze_batch(_worker, batch, max_faces, central, thumbnails)))
        except Exception as exc:  # noqa: BLE001 - handed to the caller, who raises it
            results.put((index, exc))
    results.cancel_join_thread()  # unread results must not keep an orphan from exiting


def analyze_files(
    paths: Sequence[Path],
    config: PipelineConfig,
    workers: int,
    max_faces: int | None = None,
    factory: PipelineFactory = Pipeline,
    central: bool = False,
    thumbnails: bool = False,
) -> Iterator[FileResult]:
    """Yield one `FileResult` per path, in order, using `workers` processes (1 = inline).

    This process is one of them: it takes batches from the same queue as `workers - 1`
    spawned helpers, so work starts while the helpers still import and load their models
    (about half a second, which on 200 LFW photos was a fifth of the run), and no core is
    left to a process that only collects results.
    """
    if workers <= 1 or len(paths) <= BATCH:
        yield from analyze_inline(factory(config), paths, max_faces, central, thumbnails)
        return
    ctx = mp.get_context("spawn")  # fork would copy half-initialised dlib and ONNX state
    tasks: mp.Queue = ctx.Queue()
    results: mp.Queue = ctx.Queue()
    starts = range(0, len(paths), BATCH)
    for index, start in enumerate(starts):
        tasks.put((index, list(paths[start : start + BATCH])))
    for _ in range(workers):
        tasks.put(None)  # one stop sign for each helper and one for this process
    helpers = [
        ctx.Process(target=_help, args=(config, factory, tasks, results, max_faces, central, thumbnails), daemon=True)
        for _ in range(workers - 1)
    ]
    for helper in helpers:
        helper.start()
    try:
        pipeline = factory(replace(config, threads=1))
        done: dict[int, list[FileResult]] = {}
        next_out, working = 0, True
        while next_out < len(starts):
            if next_out in done:
                yield from done.pop(next_out)
                next_out += 1
            elif working and (task := tasks.get()) is not None:
                done[task[0]] = analyze_batch(pipeline, task[1], max_faces, central, thumbnails)
                _collect(results, done, helpers, wait=False)
            else:
                working = False
                _collect(results, done, helpers, wait=True)
    finally:
        if next_out < len(starts):  # the caller stopped early, or something failed
            for helper in helpers:
                helper.terminate()
        # Helpers that got their stop sign exit by themselves; reap them in the background
        # so the caller does not wait for their interpreters to shut down.
        threading.Thread(target=lambda: [helper.join() for helper in helpers], daemon=True).start()


def _collect(results: mp.Queue, done: dict[int, list[FileResult]], helpers: list, wait: bool) -> None:
    """Move helpers' finished batches into `done`: all that are ready, or (`wait`) one."""
    while True:
        try:
            index, outcome = results.get(timeout=1.0) if wait else results.get_nowait()
        except queue.Empty:
            if not wait:
                return
            if not any(helper.is_alive() for helper in helpers):
                raise FacegateError(
                    ErrorCode.INTERNAL, "a worker process stopped before it finished its files"
                ) from None
            continue
        if isinstance(outcome, BaseException):
            raise outcome
        done[index] = outcome
        if wait:
            return
