"""Migrations (Alembic, store/alembic/): on both backends a migrated empty database is exactly
what the ORM describes, migrating again changes nothing, data included, and ids are never
reused; a catalog of the hand-written runner (`schema_version`) is bridged; PostgreSQL gets
pgvector or says what an administrator must run, and two processes migrating at once never
both run DDL."""

from __future__ import annotations

import multiprocessing
import sqlite3
from collections.abc import Callable, Iterator
from concurrent.futures import ProcessPoolExecutor
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import Engine, inspect, make_url, select, text

from facegate.errors import ErrorCode, FacegateError
from facegate.store.db import CATALOG_FILE, Base, open_engine, server_url, sqlite_url
from facegate.store.embeddings import literal
from facegate.store.migrations import HEAD, LEGACY_TABLE, Migrated, head, migrate
from facegate.store.server_index import search_query
from facegate.store.tables import CollectionRow
from tests.store.conftest import NOW

SERVER_ONLY = {"embedding", "ix_faces_halfvec_hnsw_128"}  # PostgreSQL's, outside the ORM on purpose


@pytest.fixture()
def empty(backend: str, tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[Engine]:
    """An engine on an empty database: a new SQLite file, or a new PostgreSQL database."""
    if backend == "sqlite":
        engine = open_engine(sqlite_url(tmp_path))
    else:
        engine = open_engine(server_url(request.getfixturevalue("postgres_url_factory")(migrated=False)))
    yield engine
    engine.dispose()


def _insert_collection(engine: Engine, name: str = "kept") -> None:
    with engine.begin() as conn:
        conn.execute(
            text("INSERT INTO collections (collection_id, description, model_id, template_id, dimension, "
                 "created_at, keep_thumbnails) VALUES (:c, '', 'm', 't', 128, :now, false)"),
            {"c": name, "now": NOW},
        )


def _insert_face(engine: Engine, face_id: str) -> int:
    with engine.begin() as conn:
        conn.execute(
            text("INSERT INTO faces (face_id, collection_id, image_sha256, box_left, box_top, box_width, box_height, "
                 "confidence, landmarks, quality, template, created_at) VALUES (:f, 'kept', 'x', 0, 0, 1, 1, 1.0, "
                 "'[]', '{}', :t, :now)"),
            {"f": face_id, "t": b"\0" * 512, "now": NOW},
        )
        return int(conn.execute(text("SELECT row_id FROM faces WHERE face_id = :f"), {"f": face_id}).scalar_one())


def test_head_is_the_last_revision() -> None:
    """The constant that spares a catalog at HEAD the import of Alembic is the last revision."""
    assert head() == HEAD


def test_a_migrated_empty_database_matches_the_orm_metadata(empty: Engine, backend: str) -> None:
    assert migrate(empty) == Migrated(backend, None, HEAD)
    found = inspect(empty)
    assert set(found.get_table_names()) == set(Base.metadata.tables) | {"alembic_version"}
    for name, table in Base.metadata.tables.items():
        columns = {c["name"]: c for c in found.get_columns(name)}
        extra = {"embedding"} if backend == "postgresql" and name == "faces" else set()
        assert set(columns) == {c.name for c in table.columns} | extra, name
        for column in table.columns:
            assert columns[column.name]["nullable"] == column.nullable, (name, column.name)
            assert columns[column.name]["type"]._type_affinity is column.type._type_affinity, (name, column.name)
        assert set(found.get_pk_constraint(name)["constrained_columns"]) == {c.name for c in table.primary_key}
        indexes = {i["name"] for i in found.get_indexes(name)} - SERVER_ONLY
        if backend == "postgresql":  # PostgreSQL shows unique constraints' own indexes too
            indexes -= {u["name"] for u in found.get_unique_constraints(name)}
        assert indexes == {i.name for i in table.indexes}, name
    # Alembic's own comparison (types, server defaults): nothing to do but the server-only objects
    with empty.connect() as conn:
        context = MigrationContext.configure(
            conn, opts={"compare_type": True, "compare_server_default": True,
                        "include_object": lambda obj, name, *_: name not in SERVER_ONLY},
        )
        assert compare_metadata(context, Base.metadata) == []


def test_the_server_schema_has_the_embedding_column_and_its_hnsw_index(
    postgres_url_factory: Callable[..., str],
) -> None:
    engine = open_engine(server_url(postgres_url_factory(migrated=False)))
    migrate(engine)
    found = inspect(engine)
    embedding = next(c for c in found.get_columns("faces") if c["name"] == "embedding")
    assert embedding["nullable"]
    hnsw = next(i for i in found.get_indexes("faces") if i["name"] == "ix_faces_halfvec_hnsw_128")
    assert hnsw["dialect_options"]["postgresql_using"] == "hnsw"
    assert hnsw["dialect_options"]["postgresql_where"] == "(vector_dims(embedding) = 128)"
    with engine.connect() as conn:
        assert conn.execute(text("SELECT extversion FROM pg_extension WHERE extname = 'vector'")).scalar() >= "0.8"
        # the graph parameters benchmarks/pg_bench.py chose (recall@10 >= 0.99 at 1M needs m=32)
        definition = conn.execute(
            text("SELECT indexdef FROM pg_indexes WHERE indexname = 'ix_faces_halfvec_hnsw_128'")
        ).scalar_one()
        assert "m='32'" in definition and "ef_construction='128'" in definition, definition
    engine.dispose()


def test_the_full_precision_graphs_of_revision_0011_are_rebuilt_in_half_precision(
    postgres_url_factory: Callable[..., str],
) -> None:
    """A server database at 0012 (HNSW over `embedding::vector(d)`, 128-d and one other
    dimension made at first use) reaches 0013 with a halfvec graph for each, its faces kept,
    and the product's graph query walks the new graph."""
    engine = open_engine(server_url(postgres_url_factory(migrated=False)))
    migrate(engine)
    _insert_collection(engine)
    template = np.linspace(-1.0, 1.0, 128, dtype=np.float32)
    with engine.begin() as conn:  # the state 0011/0012 left
        conn.execute(text("DROP INDEX ix_faces_halfvec_hnsw_128"))
        for d in (128, 64):
            conn.execute(text(
                f"CREATE INDEX ix_faces_embedding_hnsw_{d} ON faces USING hnsw ((embedding::vector({d})) "
                f"vector_cosine_ops) WITH (m = 16, ef_construction = 64) WHERE vector_dims(embedding) = {d}"
            ))
        conn.execute(text("UPDATE alembic_version SET version_num = '0012'"))
    for n in range(3):
        row_id = _insert_face(engine, f"face-{n}")
        with engine.begin() as conn:
            conn.execute(text("UPDATE faces SET embedding = CAST(:e AS vector) WHERE row_id = :r"),
                         {"e": literal(np.roll(template, n)), "r": row_id})
    assert migrate(engine) == Migrated("postgresql", "0012", "0013")
    with engine.connect() as conn:
        found = dict(conn.execute(text("SELECT indexname, indexdef FROM pg_indexes WHERE tablename = 'faces' "
                                       "AND indexdef LIKE '%USING hnsw%'")).all())
        assert set(found) == {"ix_faces_halfvec_hnsw_128", "ix_faces_halfvec_hnsw_64"}
        for d, definition in ((128, found["ix_faces_halfvec_hnsw_128"]), (64, found["ix_faces_halfvec_hnsw_64"])):
            assert f"halfvec({d})" in definition and "halfvec_cosine_ops" in definition, definition
            assert "m='32'" in definition and "ef_construction='128'" in definition, definition
            assert f"(vector_dims(embedding) = {d})" in definition, definition
        assert conn.execute(text("SELECT count(*) FROM faces WHERE embedding IS NOT NULL")).scalar_one() == 3
        conn.execute(text("SET enable_seqscan = off"))  # three rows: make the planner show it can use the graph
        plan = "\n".join(r[0] for r in conn.execute(
            text("EXPLAIN " + search_query(128, exact=False)),
            {"probe": literal(template), "collection_id": "kept", "fetch": 2},
        ))
    assert "ix_faces_halfvec_hnsw_128" in plan, plan
    engine.dispose()


def test_an_index_an_administrator_named_like_the_old_graphs_is_left_alone(
    postgres_url_factory: Callable[..., str],
) -> None:
    """Revision 0013 replaces only the graphs earlier releases named `ix_faces_embedding_hnsw_<d>`:
    a hand-made index under a similar name neither stops the migration nor is dropped."""
    engine = open_engine(server_url(postgres_url_factory(migrated=False)))
    migrate(engine)
    with engine.begin() as conn:
        conn.execute(text("DROP INDEX ix_faces_halfvec_hnsw_128"))
        conn.execute(text(
            "CREATE INDEX ix_faces_embedding_hnsw_128 ON faces USING hnsw ((embedding::vector(128)) "
            "vector_cosine_ops) WHERE vector_dims(embedding) = 128"
        ))
        conn.execute(text("CREATE INDEX ix_faces_embedding_hnsw_128_old ON faces (created_at)"))
        conn.execute(text("UPDATE alembic_version SET version_num = '0012'"))
    assert migrate(engine) == Migrated("postgresql", "0012", "0013")
    with engine.connect() as conn:
        names = set(conn.execute(text("SELECT indexname FROM pg_indexes WHERE tablename = 'faces'")).scalars())
    assert {"ix_faces_halfvec_hnsw_128", "ix_faces_embedding_hnsw_128_old"} <= names
    assert "ix_faces_embedding_hnsw_128" not in names
    engine.dispose()


def test_face_and_change_ids_are_never_reused(empty: Engine, backend: str, tmp_path: Path) -> None:
    """The vector index keys faces by row id: a reused id could resurrect a deleted face."""
    migrate(empty)
    _insert_collection(empty)
    first = _insert_face(empty, "a")
    with empty.begin() as conn:
        conn.execute(text("DELETE FROM faces"))
    assert _insert_face(empty, "b") > first  # not max(row_id) + 1 of an empty table
    if backend == "sqlite":
        with sqlite3.connect(tmp_path / CATALOG_FILE) as raw:
            ddl = dict(raw.execute("SELECT name, sql FROM sqlite_master WHERE type = 'table'").fetchall())
        assert "AUTOINCREMENT" in ddl["faces"] and "AUTOINCREMENT" in ddl["face_changes"]
    else:
        with empty.connect() as conn:
            for table, column in (("faces", "row_id"), ("face_changes", "seq")):
                assert conn.execute(text("SELECT pg_get_serial_sequence(:t, :c)"), {"t": table, "c": column}).scalar()


def _schema(engine: Engine) -> dict[str, object]:
    found = inspect(engine)
    return {t: (found.get_columns(t), found.get_indexes(t)) for t in sorted(found.get_table_names())}


def test_migrating_again_is_a_no_op_that_keeps_the_data(empty: Engine, backend: str) -> None:
    migrate(empty)
    _insert_collection(empty)
    schema = repr(_schema(empty))
    assert migrate(empty) == Migrated(backend, HEAD, HEAD)
    second = open_engine(empty.url.render_as_string(hide_password=False))
    assert migrate(second) == Migrated(backend, HEAD, HEAD)
    second.dispose()
    with empty.begin() as conn:  # every revision runs again over the current schema: idempotent
        conn.execute(text("UPDATE alembic_version SET version_num = '0001'"))
    assert migrate(empty) == Migrated(backend, "0001", HEAD)
    assert repr(_schema(empty)) == schema
    with empty.begin() as conn:
        assert conn.execute(text("SELECT collection_id FROM collections")).scalars().all() == ["kept"]
        assert conn.execute(text("SELECT version_num FROM alembic_version")).scalars().all() == [HEAD]


def test_a_database_migrated_by_a_newer_release_is_refused_unchanged(empty: Engine) -> None:
    """A host still running the older release after another migrated the shared database."""
    migrate(empty)
    with empty.begin() as conn:
        conn.execute(text("UPDATE alembic_version SET version_num = '0099'"))
    schema = repr(_schema(empty))
    with pytest.raises(FacegateError) as refused:
        migrate(empty)
    assert refused.value.code is ErrorCode.INVALID_SETTINGS and "revision 0099" in refused.value.message
    assert repr(_schema(empty)) == schema


def test_times_round_trip_exactly(empty: Engine) -> None:
    """Aware times come back as they were stored, to the microsecond, in UTC (PostgreSQL
    sessions are opened in UTC; the audit chain hashes its own ISO text, not these)."""
    migrate(empty)
    when = datetime(2026, 11, 26, 12, 0, 0, 123456, tzinfo=UTC)
    with empty.begin() as conn:
        conn.execute(CollectionRow.__table__.insert().values(
            collection_id="t", description="", model_id="m", template_id="t", dimension=128, created_at=when))
        stored = conn.execute(select(CollectionRow.__table__.c.created_at)).scalar_one()
    assert stored.replace(tzinfo=stored.tzinfo or UTC) == when


def _legacy_catalog(tmp_path: Path, steps: list[int]) -> None:
    """A catalog as the hand-written runner left it: the schema, and `schema_version` with `steps`."""
    engine = open_engine(sqlite_url(tmp_path))
    migrate(engine)
    engine.dispose()
    _insert_collection(open_engine(sqlite_url(tmp_path)))
    with sqlite3.connect(tmp_path / CATALOG_FILE) as db:
        db.execute("DROP TABLE alembic_version")
        db.execute(f"CREATE TABLE {LEGACY_TABLE} (version INTEGER PRIMARY KEY, description TEXT NOT NULL, "
                   "applied_at TEXT NOT NULL)")
        db.executemany(f"INSERT INTO {LEGACY_TABLE} VALUES (?, 'step', '2026-11-01T00:00:00+00:00')",
                       [(s,) for s in steps])


def test_a_catalog_of_the_old_runner_is_stamped_then_upgraded(tmp_path: Path) -> None:
    _legacy_catalog(tmp_path, list(range(1, 11)))
    engine = open_engine(sqlite_url(tmp_path))
    assert migrate(engine) == Migrated("sqlite", "0010", HEAD)
    tables = set(inspect(engine).get_table_names())
    assert LEGACY_TABLE not in tables and "alembic_version" in tables
    with engine.begin() as conn:
        assert conn.execute(text("SELECT collection_id FROM collections")).scalars().all() == ["kept"]
    assert migrate(engine) == Migrated("sqlite", HEAD, HEAD)
    engine.dispose()


def test_a_step_missing_below_the_highest_recorded_one_still_runs(tmp_path: Path) -> None:
    """Lines of work landed in any order: a catalog with steps 1-4 and 6-10 but not step 5
    (bias_audits.space_id) is stamped at 0004, so 0005 and everything above run again."""
    _legacy_catalog(tmp_path, [1, 2, 3, 4, 6, 7, 8, 9, 10])
    with sqlite3.connect(tmp_path / CATALOG_FILE) as db:
        db.execute("ALTER TABLE bias_audits DROP COLUMN space_id")
    engine = open_engine(sqlite_url(tmp_path))
    assert migrate(engine) == Migrated("sqlite", "0004", HEAD)
    assert "space_id" in {c["name"] for c in inspect(engine).get_columns("bias_audits")}
    engine.dispose()


def _migrate_in_a_process(url: str) -> tuple[str | None, str]:
    engine = open_engine(url)
    try:
        done = migrate(engine)
        return done.before, done.after
    finally:
        engine.dispose()


def test_two_processes_migrating_one_server_database_run_its_ddl_once(
    postgres_url_factory: Callable[..., str],
) -> None:
    url = server_url(postgres_url_factory(migrated=False))
    with ProcessPoolExecutor(2, mp_context=multiprocessing.get_context("spawn")) as pool:
        results = sorted(pool.map(_migrate_in_a_process, [url, url]), key=repr)
    assert results == sorted([(None, HEAD), (HEAD, HEAD)], key=repr)  # the second found it done


def test_a_role_that_may_not_create_pgvector_is_told_what_to_ask_for(
    postgres_url_factory: Callable[..., str],
) -> None:
    admin_url = server_url(postgres_url_factory(migrated=False))
    admin = open_engine(admin_url)
    with admin.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        database = conn.execute(text("SELECT current_database()")).scalar_one()
        conn.execute(text("DROP ROLE IF EXISTS facegate_app"))
        conn.execute(text("CREATE ROLE facegate_app LOGIN"))
        conn.execute(text(f'ALTER DATABASE "{database}" OWNER TO facegate_app'))
    app = open_engine(make_url(admin_url).set(username="facegate_app").render_as_string(hide_password=False))
    try:
        with pytest.raises(FacegateError) as refused:
            migrate(app)
        assert refused.value.code is ErrorCode.DATABASE_EXTENSION_MISSING
        message = refused.value.message
        assert "`CREATE EXTENSION vector;`" in message and database in message and "superuser" in message
        assert "pgvector >= 0.8" in message and "nothing was written" in message
        assert inspect(app).get_table_names() == []  # one transaction: revisions 0001-0010 rolled back too
        with admin.begin() as conn:  # the administrator does as told; the role migrates
            conn.execute(text("CREATE EXTENSION vector"))
        assert migrate(app) == Migrated("postgresql", None, HEAD)
    finally:
        app.dispose()
        with admin.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            conn.execute(text(f'ALTER DATABASE "{database}" OWNER TO CURRENT_USER'))
            conn.execute(text("REASSIGN OWNED BY facegate_app TO CURRENT_USER"))
            conn.execute(text("DROP OWNED BY facegate_app"))
            conn.execute(text("DROP ROLE facegate_app"))
        admin.dispose()
