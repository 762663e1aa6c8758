"""Bulk enrolment from a manifest CSV: both cores, resumable, idempotent, and honest about
what it did not enrol.

The manifest has a `path` column (relative to the CSV) and optional `subject`,
`external_image_id` (or `external_id`, its earlier name) and `subject_box`
("left,top,width,height": which face of a group photo is the subject's; the central face
otherwise). A subject labels one face per photo; the others are left out (or enrolled
without a subject with `index_unlabelled`). Images are analysed in worker processes; the
main process commits each image (faces + audit entry) in its own transaction, so a run
killed at any moment leaves whole images enrolled or not at all. A re-run skips what is already there: the same file
(SHA-256) with the same external id in the same collection is enrolled once.
"""

from __future__ import annotations

import csv
import hashlib
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from facegate.engine import Facegate
from facegate.errors import ITEM_CODES, ErrorCode, FacegateError
from facegate.gate import Caller
from facegate.governance import Operation, PolicyDenied
from facegate.operations.faces import DEFAULT_QUALITY_FILTER, index_analysed, keeps_thumbnails
from facegate.store import faces as store_faces
from facegate.store.catalog import get_collection
from facegate.vision.parallel import FileResult, analyze_files
from facegate.vision.types import Box, QualityFilter


@dataclass(frozen=True, slots=True)
class ManifestRow:
    line: int
    path: Path
    subject: str | None
    external_image_id: str | None
    subject_box: Box | None = None


@dataclass(slots=True)
class BulkReport:
    """What a run did, image by image; `unindexed` entries carry the path and a reason."""

    indexed: list[dict[str, object]] = field(default_factory=list)
    unindexed: list[dict[str, object]] = field(default_factory=list)
    skipped: int = 0  # already enrolled by an earlier run

    def to_dict(self) -> dict[str, object]:
        return {"indexed": self.indexed, "unindexed": self.unindexed, "skipped": self.skipped}


def read_manifest(manifest: Path) -> tuple[list[ManifestRow], list[dict[str, object]]]:
    """Rows to enrol, and broken rows reported as unindexed (`INVALID_MANIFEST`)."""
    try:
        text = manifest.read_text(encoding="utf-8-sig")
    except FileNotFoundError:
        raise FacegateError(ErrorCode.FILE_NOT_FOUND, f"no such manifest: {manifest}") from None
    except UnicodeDecodeError:
        raise FacegateError(ErrorCode.INVALID_MANIFEST, f"{manifest} is not UTF-8 text") from None
    reader = csv.DictReader(text.splitlines())
    if reader.fieldnames is None or "path" not in reader.fieldnames:
        raise FacegateError(ErrorCode.INVALID_MANIFEST, f"{manifest} has no 'path' column")
    rows, broken = [], []
    for line, record in enumerate(reader, start=2):
        raw = (record.get("path") or "").strip()
        try:
            box = parse_box(record.get("subject_box") or "")
        except FacegateError as exc:
            broken.append({"path": raw or None, "line": line, "reason": ErrorCode.INVALID_MANIFEST.value,
                           "message": exc.message})
            continue
        if not raw or None in record:  # empty path, or more fields than columns
            broken.append({"path": raw or None, "line": line, "reason": ErrorCode.INVALID_MANIFEST.value})
            continue
        external = record.get("external_image_id") or record.get("external_id") or ""
        rows.append(ManifestRow(
            line, (manifest.parent / raw), (record.get("subject") or "").strip() or None,
            external.strip() or None, box,
        ))
    return rows, broken


def parse_box(text: str) -> Box | None:
    """`left,top,width,height` (commas or spaces; `detect`'s `left,top wxh` too) to a Box; blank is None."""
    parts = [p for p in re.split(r"[,x\s]+", text.strip()) if p]
    if not parts:
        return None
    try:
        left, top, width, height = (int(p) for p in parts)
    except ValueError:
        left = width = -1
    if left < 0 or width < 1 or top < 0 or height < 1:
        raise FacegateError(
            ErrorCode.INVALID_ARGUMENT, f"a box is left,top,width,height in pixels, got {text!r}", field="subject_box"
        )
    return Box(left, top, width, height)


def _already(engine: Facegate, collection_id: str, rows: list[ManifestRow]) -> set[int]:
    """Lines whose image is already enrolled (same bytes, same external id).

    The files are read and hashed before the transaction: every transaction holds the
    installation's write lock (on PostgreSQL, every host's), which must not wait on disks."""
    with engine.sessions.begin() as session:
        get_collection(session, collection_id=collection_id)  # COLLECTION_NOT_FOUND before any work
    digests: list[tuple[ManifestRow, str]] = []
    for row in rows:
        try:
            digests.append((row, hashlib.sha256(row.path.read_bytes()).hexdigest()))
        except OSError:
            continue  # reported when analysed
    done: set[int] = set()
    with engine.sessions.begin() as session:
        for row, digest in digests:
            if store_faces.find_indexed_image(
                session, collection_id=collection_id, image_sha256=digest, external_image_id=row.external_image_id
            ):
                done.add(row.line)
    return done


def index_manifest(
    engine: Facegate,
    caller: Caller,
    collection_id: str,
    manifest: Path,
    *,
    max_faces: int | None = None,
    quality_filter: QualityFilter = DEFAULT_QUALITY_FILTER,
    workers: int | None = None,
    index_unlabelled: bool = False,
    progress: Callable[[int, int], None] | None = None,  # (done, total)
) -> BulkReport:
    """Enrol every image of a manifest; a policy denial stops the run, bad rows do not."""
    rows, broken = read_manifest(manifest)
    # Decided before any file is read: a collection the caller may not use costs no work.
    engine.gate.admit(caller, Operation.INDEX, collection_id)
    report = BulkReport(unindexed=list(broken))
    done = _already(engine, collection_id, rows)
    report.skipped = len(done)
    todo = [r for r in rows if r.line not in done]
    total = len(rows)
    if progress is not None:
        progress(len(done), total)
    results = analyze_files([r.path for r in todo], engine.config, workers or engine.settings.workers,
                            thumbnails=keeps_thumbnails(engine, collection_id))
    try:
        for count, (row, result) in enumerate(zip(todo, results), start=1):
            _commit_one(engine, caller, collection_id, row, result, report, max_faces, quality_filter, index_unlabelled)
            if progress is not None:
                progress(len(done) + count, total)
    finally:
        engine.vectors.refresh(collection_id)
    return report


def _commit_one(
    engine: Facegate, caller: Caller, collection_id: str, row: ManifestRow, result: FileResult,
    report: BulkReport, max_faces: int | None, quality_filter: QualityFilter, index_unlabelled: bool,
) -> None:
    """Commit one analysed image; refusals become report lines, a policy denial stops all."""
    where = {"path": str(row.path), "line": row.line}
    if result.error is not None:
        engine.gate.refuse(caller, Operation.INDEX, result.error, collection_id)
        report.unindexed.append({**where, "reason": result.error.code.value, "message": result.error.message})
        return
    try:
        gated = index_analysed(
            engine, caller, collection_id, result.image_sha256 or "", lambda: (result.faces, result.size),
            subject=row.subject, external_image_id=row.external_image_id, max_faces=max_faces,
            quality_filter=quality_filter, subject_box=row.subject_box, index_unlabelled=index_unlabelled,
            refresh=False,
        )
    except PolicyDenied:
        raise
    except FacegateError as exc:  # NO_FACE, and whatever else refused this one image
        if exc.code not in ITEM_CODES:
            # the catalog or the key, not this image; or the collection was deleted (or its
            # grant revoked) during the run: stop, the CLI exits non-zero
            raise
        report.unindexed.append({**where, "reason": exc.code.value, "message": exc.message})
        return
    for face in gated.value.indexed:
        report.indexed.append({**where, **face.to_dict()})
    for dropped in gated.value.unindexed:
        report.unindexed.append({**where, **dropped.to_dict()})
