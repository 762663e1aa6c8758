"""Copying an embedded catalog into a PostgreSQL database (`facegate db copy --to URL`).

Every ORM table is copied in foreign-key order with its primary keys as they are: face row
ids (the vector indexes' keys), change numbers, audit sequence numbers, review and grant
ids. The source is read in one transaction (SQLite's write lock: a consistent snapshot that
no writer changes meanwhile), the target written in ONE transaction: a failure leaves it
as it was. Values cross as stored, not as the ORM would re-encode them:

- JSON columns as their stored text (a JSON `null` stays distinct from SQL NULL);
- `DateTime(timezone=True)` columns, which SQLite keeps as UTC wall-clock text without an
  offset, as UTC; `UTCDateTime` columns already read back aware;
- the audit log's hashed fields are text and integers, copied byte for byte, so the chain
  verifies on the copy exactly as on the source.

Then the target's id sequences continue past the highest id the source ever handed out
(its `sqlite_sequence`, which remembers deleted faces too), so no id is reused, and
`faces.embedding` (pgvector) is filled from plain templates; templates sealed under a
template key leave it NULL (store/embeddings.py says why); its HNSW indexes are dropped for
the load and built again from all rows at the end, in the same transaction (one build is
far faster than an insertion per row). Video searches still queued keep
their upload as a file in the data directory; it moves into the database (`video_uploads`),
where a server's runners on any host read it.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import (
    JSON, Column, Connection, DateTime, Engine, MetaData, Table, Text, bindparam, cast, func, insert, inspect, select,
    text, type_coerce, update,
)
from pgvector.sqlalchemy import VECTOR
from sqlalchemy.exc import DBAPIError
from sqlalchemy.sql.elements import ColumnElement

from facegate.errors import ErrorCode, FacegateError
from facegate.store import embeddings
from facegate.store.crypto import MAGIC, TemplateCodec
from facegate.store.db import Base
from facegate.store.video_jobs import IN_DATABASE, QUEUED, RUNNING, VideoJobRow, VideoUploadRow
from facegate.store import migrations  # noqa: F401  (registers every ORM table on Base)

# Written by any process that opens a database (template key fingerprint, last good
# policy): a target may hold them without holding anything; the source's replace them.
REPLACED = ("catalog_settings", "policy_versions")
BATCH = 1000


@dataclass(frozen=True, slots=True)
class CopyReport:
    rows: dict[str, int]  # table -> rows copied, in copy order
    embeddings: int  # faces.embedding filled (0 where templates are sealed)
    next_ids: dict[str, int] = field(default_factory=dict)  # "table.column" -> the target's next id
    uploads: int = 0  # queued video uploads moved from the data directory into the database

    def to_dict(self) -> dict[str, Any]:
        return {"rows": self.rows, "embeddings": self.embeddings, "next_ids": self.next_ids, "uploads": self.uploads}


def tables() -> list[Table]:
    """Every ORM table, parents before children."""
    return list(Base.metadata.sorted_tables)


def occupied(conn: Connection) -> dict[str, int]:
    """Tables of the database at `conn` that hold rows (apart from REPLACED): a copy target must have none."""
    present = set(inspect(conn).get_table_names())
    found = {}
    for table in tables():
        if table.name in present and table.name not in REPLACED:
            count = conn.execute(select(func.count()).select_from(table)).scalar_one()
            if count:
                found[table.name] = int(count)
    return found


def refuse_if_occupied(conn: Connection, where: str) -> None:
    busy = occupied(conn)
    if busy:
        held = ", ".join(f"{name} ({n})" for name, n in busy.items())
        raise FacegateError(
            ErrorCode.DATABASE_NOT_EMPTY,
            f"{where} already holds data: {held}; a copy goes into an empty database only (create a new one, "
            "or drop and recreate this one); nothing was written",
            tables=busy,
        )


def _source_columns(table: Table) -> list[ColumnElement[Any]]:
    return [type_coerce(c, Text).label(c.name) if isinstance(c.type, JSON) else c for c in table.columns]


def _binds(table: Table) -> dict[str, Any]:
    """One bound value per column; JSON ones take their stored text as it is."""
    return {
        c.name: cast(bindparam(c.name, type_=Text()), c.type) if isinstance(c.type, JSON)
        else bindparam(c.name, type_=c.type)
        for c in table.columns
    }


def _target_insert(table: Table, server: bool) -> Any:
    return _faces_insert() if server and table.name == "faces" else insert(table).values(_binds(table))


def _as_stored(table: Table, row: Mapping[str, Any]) -> dict[str, Any]:
    out = dict(row)
    for c in table.columns:
        value = out[c.name]
        if isinstance(c.type, DateTime) and c.type.timezone and isinstance(value, datetime) and value.tzinfo is None:
            out[c.name] = value.replace(tzinfo=UTC)
    return out


def _highest_ids(conn: Connection) -> dict[str, int]:
    """SQLite's AUTOINCREMENT high-water marks (deleted rows included)."""
    if not inspect(conn).has_table("sqlite_sequence"):
        return {}
    return {name: int(seq) for name, seq in conn.execute(text("SELECT name, seq FROM sqlite_sequence"))}


def _continue_sequences(dst: Connection, highest: dict[str, int]) -> dict[str, int]:
    """Set each serial column's sequence past the highest id used; "table.column" -> next id."""
    next_ids = {}
    for table in tables():
        for column in table.primary_key.columns:
            sequence = dst.execute(
                text("SELECT pg_get_serial_sequence(:t, :c)"), {"t": table.name, "c": column.name}
            ).scalar()
            if sequence is None:
                continue
            used = dst.execute(select(func.max(column))).scalar() or 0
            last = max(int(used), highest.get(table.name, 0))
            if last:
                dst.execute(text("SELECT setval(:s, :v, true)"), {"s": sequence, "v": last})
            else:
                dst.execute(text("SELECT setval(:s, 1, false)"), {"s": sequence})
            next_ids[f"{table.name}.{column.name}"] = last + 1
    return next_ids


def _move_uploads(dst: Connection, jobs: list[dict[str, Any]]) -> int:
    """Video jobs not yet ended keep their upload as a file in the data directory; a server's
    runners, on any host, read it from the database: move it there (the file stays)."""
    moved = 0
    for job in jobs:
        path = str(job["video_path"])
        if job["status"] not in (QUEUED, RUNNING) or path.startswith(IN_DATABASE) or not Path(path).is_file():
            continue  # ended (its upload is gone), already in the database, or lost: it fails as it would have
        dst.execute(insert(VideoUploadRow.__table__).values(job_id=job["job_id"], content=Path(path).read_bytes()))
        dst.execute(
            update(VideoJobRow.__table__).where(VideoJobRow.job_id == job["job_id"])
            .values(video_path=IN_DATABASE + job["job_id"])
        )
        moved += 1
    return moved


def _refused(table: str, exc: DBAPIError) -> FacegateError:
    """The target's refusal of a row, named without the row (it may hold templates or hashes)."""
    diag = getattr(exc.orig, "diag", None)
    reason = getattr(diag, "message_primary", None) or type(exc.orig).__name__
    return FacegateError(
        ErrorCode.INTERNAL, f"the target database refused a row of {table}: {reason}; nothing was written", table=table
    )


def _faces_insert() -> Any:
    """The faces insert with the pgvector column beside the ORM's (not in the ORM metadata)."""
    faces = Base.metadata.tables["faces"]
    wide = Table("faces", MetaData(), *(Column(c.name, c.type, primary_key=c.primary_key) for c in faces.columns),
                 Column("embedding", Text))
    values = _binds(faces)
    values["embedding"] = cast(bindparam("embedding", type_=Text()), VECTOR())
    return insert(wide).values(values)


def _with_embeddings(codec: TemplateCodec, rows: list[dict[str, Any]]) -> int:
    """Set each row's `embedding` (pgvector text) from its template where that is plain; the count."""
    filled = 0
    for row in rows:
        plain = not codec.encrypted and row["template"][: len(MAGIC)] != MAGIC
        row["embedding"] = embeddings.literal(codec.decode(row["template"])) if plain else None
        filled += plain
    return filled


def _drop_vector_indexes(dst: Connection) -> list[str]:
    """Drop the HNSW indexes of faces.embedding for the load; their definitions, to build them
    again after it (one build from all rows is far faster than one insertion per row)."""
    found = dst.execute(text(
        "SELECT indexname, indexdef FROM pg_indexes WHERE schemaname = current_schema() AND tablename = 'faces' "
        "AND indexdef ILIKE '%USING hnsw%'"
    )).all()
    for name, _definition in found:
        dst.execute(text(f'DROP INDEX "{name}"'))
    return [definition for _name, definition in found]


def copy_catalog(
    source: Engine,
    target: Engine,
    codec: TemplateCodec,
    *,
    batch: int = BATCH,
    progress: Callable[[str, int, int | None], None] | None = None,
) -> CopyReport:
    """Copy every row of `source` (the embedded catalog, opened and checked by the engine)
    into `target` (a migrated PostgreSQL database without data), in one target transaction.

    `codec` is the source's: where it holds no key, the templates are plain and fill
    `faces.embedding`. `progress(what, done, total)` is called after each batch."""
    rows: dict[str, int] = {}
    filled = moved = 0
    with source.begin() as src, target.begin() as dst:
        server = dst.dialect.name == "postgresql"
        refuse_if_occupied(dst, "the target database")
        for name in REPLACED:
            dst.execute(Base.metadata.tables[name].delete())
        vector_indexes = _drop_vector_indexes(dst) if server else []
        for table in tables():
            total = src.execute(select(func.count()).select_from(table)).scalar_one()
            done = 0
            statement = _target_insert(table, server)
            query = select(*_source_columns(table)).order_by(*table.primary_key.columns)
            for part in src.execute(query.execution_options(yield_per=batch)).mappings().partitions():
                values = [_as_stored(table, r) for r in part]
                if server and table.name == "faces":
                    filled += _with_embeddings(codec, values)
                try:
                    dst.execute(statement, values)
                except DBAPIError as exc:  # e.g. a value longer than its column allows (SQLite never checked)
                    raise _refused(table.name, exc) from None
                if table.name == "video_jobs":
                    moved += _move_uploads(dst, values)
                done += len(values)
                if progress is not None:
                    progress(f"copying {table.name}", done, total)
            rows[table.name] = done
        for definition in vector_indexes:
            if progress is not None:
                progress("building the HNSW index", 0, None)
            dst.execute(text(definition))
        next_ids = _continue_sequences(dst, _highest_ids(src)) if server else {}
    return CopyReport(rows, filled, next_ids, moved)
