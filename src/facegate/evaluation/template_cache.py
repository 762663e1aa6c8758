"""The central face of every image of an evaluation set, analysed once and kept on disk.

Why: a bias audit is re-run with other thresholds, groupings and seeds, but the costly
part (decode, detect, align, embed: about 0.3 s an image on this machine) depends only on
the image bytes and on the recipe that turns them into a template. So each image's
analysis is stored in a SQLite file keyed by the image's sha256 and by `analysis_key`
(the pipeline's template id plus the detector and quality settings that decide which
face is found and how it is graded). A re-run reads thousands of rows in a fraction of a
second; a changed photo has a new hash and is analysed again; another model (an ONNX
embedder with its own template id) never reads these templates.

The cache holds biometric templates of the evaluation set: keep it where that data set
may be kept, and delete it with the data set. Only the face nearest an image's centre is
analysed: evaluation sets hold one labelled person per photo, centred (a bigger face
beside them is someone else; see `Pipeline.prepare`).
"""

from __future__ import annotations

import hashlib
import sqlite3
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

from facegate.errors import ErrorCode, FacegateError
from facegate.vision import quality
from facegate.vision.parallel import BATCH, FileResult, PipelineFactory, analyze_files, analyze_inline
from facegate.vision.pipeline import Pipeline

FACE = "face"  # outcome of an image whose central face was analysed
NO_FACE = "no_face"  # outcome when no detector found a face; refusals store their error code
COMMIT_EVERY = 64

_SCHEMA = """
CREATE TABLE IF NOT EXISTS analyses (
    key TEXT NOT NULL,
    sha256 TEXT NOT NULL,
    outcome TEXT NOT NULL,
    level TEXT NOT NULL,
    template BLOB,
    PRIMARY KEY (key, sha256)
) WITHOUT ROWID
"""


@dataclass(frozen=True, slots=True)
class ImageAnalyses:
    """What the pipeline made of each input path, in input order.

    `outcome[i]` is `FACE`, `NO_FACE` or the error code that refused the file (e.g.
    INVALID_IMAGE); `level[i]` is the central face's quality level ("" without a face);
    `templates[i]` is its unit template (a zero row without a face).
    """

    key: str
    sha256: tuple[str, ...]
    outcome: tuple[str, ...]
    level: tuple[str, ...]
    templates: np.ndarray = field(repr=False)
    computed: int  # images analysed by this call; the others came from the cache


def analysis_key(pipeline: Pipeline) -> str:
    """Everything besides the image bytes that decides a cached row's content."""
    c = pipeline.config
    bars = hashlib.sha256(repr(sorted(quality.BARS.items())).encode()).hexdigest()[:12]
    return (
        f"{pipeline.template_id};detector={c.detector};fallback={c.fallback_detector};"
        f"min_face={c.min_face_size};upsample={c.upsample};quality={bars};face=central"
    )


def cached_analyses(
    paths: Sequence[Path],
    pipeline: Pipeline,
    cache_dir: Path,
    *,
    workers: int = 2,
    factory: PipelineFactory = Pipeline,
    progress: bool = True,
) -> ImageAnalyses:
    """Analyse the images not yet in the cache (on `workers` processes), then read all.

    Workers build their own pipeline with `factory(pipeline.config)` (dlib objects do not
    cross processes); it must produce the same template space as `pipeline`. With one
    worker, `pipeline` itself is used. A missing file raises FILE_NOT_FOUND: a manifest
    that names absent photos would silently bias the audit.
    """
    key = analysis_key(pipeline)
    digests = [_digest(p) for p in paths]
    cache_dir.mkdir(parents=True, exist_ok=True)
    with sqlite3.connect(cache_dir / "templates.sqlite") as db:
        db.execute(_SCHEMA)
        known = {row[0] for row in db.execute("SELECT sha256 FROM analyses WHERE key = ?", (key,))}
        todo = {d: p for d, p in zip(digests, paths) if d not in known}
        sha_of = {p: d for d, p in todo.items()}
        results = _analyse(list(todo.values()), pipeline, workers, factory)
        for done, result in enumerate(_with_progress(results, len(todo), progress), 1):
            row = (key, sha_of[result.path], *_row(result))
            db.execute("INSERT OR REPLACE INTO analyses VALUES (?, ?, ?, ?, ?)", row)
            if done % COMMIT_EVERY == 0:  # an interrupted run keeps what it computed
                db.commit()
        db.commit()
        wanted = set(digests)
        rows = {
            sha: (outcome, level, blob)
            for sha, outcome, level, blob in db.execute(
                "SELECT sha256, outcome, level, template FROM analyses WHERE key = ?", (key,)
            )
            if sha in wanted
        }
    return _assemble(key, digests, rows, computed=len(todo))


def _digest(path: Path) -> str:
    """sha256 of a file's bytes; files over the image limits are hashed too (and refused,
    and counted, by the analysis), but a missing file stops the audit."""
    try:
        with path.open("rb") as f:
            return hashlib.file_digest(f, "sha256").hexdigest()
    except (FileNotFoundError, NotADirectoryError, IsADirectoryError):
        raise FacegateError(ErrorCode.FILE_NOT_FOUND, f"no such image file: {path}") from None


def _analyse(
    paths: list[Path], pipeline: Pipeline, workers: int, factory: PipelineFactory
) -> Iterator[FileResult]:
    if workers <= 1 or len(paths) <= BATCH:  # one batch or less: the pipeline at hand, no new one
        return analyze_inline(pipeline, paths, max_faces=1, central=True)
    return analyze_files(paths, pipeline.config, workers, max_faces=1, factory=factory, central=True)


def _with_progress(results: Iterator[FileResult], total: int, shown: bool) -> Iterator[FileResult]:
    """Pass results through while a progress bar on stderr counts them."""
    columns = (TextColumn("templates"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn())
    with Progress(*columns, console=Console(stderr=True), disable=not shown or total == 0) as bar:
        task = bar.add_task("templates", total=total)
        for result in results:
            yield result
            bar.advance(task)


def _row(result: FileResult) -> tuple[str, str, bytes | None]:
    """(outcome, quality level, template bytes) of one analysed file."""
    if result.error is not None:
        return result.error.code.value, "", None
    if not result.faces:
        return NO_FACE, "", None
    face = result.faces[0]
    return FACE, face.quality.level.value, np.asarray(face.template, dtype=np.float32).tobytes()


def _assemble(
    key: str, digests: list[str], rows: dict[str, tuple[str, str, bytes | None]], computed: int
) -> ImageAnalyses:
    dims = {len(blob) // 4 for _, _, blob in rows.values() if blob is not None}
    if len(dims) > 1:  # two template sizes under one key: the key failed to name the model
        raise FacegateError(ErrorCode.INTERNAL, "template cache mixes template sizes", key=key)
    dim = dims.pop() if dims else 0
    templates = np.zeros((len(digests), dim), dtype=np.float32)
    outcomes, levels = [], []
    for i, sha in enumerate(digests):
        outcome, level, blob = rows[sha]
        outcomes.append(outcome)
        levels.append(level)
        if blob is not None:
            templates[i] = np.frombuffer(blob, dtype=np.float32)
    return ImageAnalyses(key, tuple(digests), tuple(outcomes), tuple(levels), templates, computed)

