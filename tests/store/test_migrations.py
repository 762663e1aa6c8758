"""Migrations: a migrated empty catalog is exactly what the ORM describes, and migrating
again changes nothing, data included."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from sqlalchemy import Engine, inspect, text

from facegate.store.db import CATALOG_FILE, Base, open_engine, sqlite_url
from facegate.store.migrations import MIGRATIONS, migrate
from tests.store.conftest import NOW


def migrated(tmp_path: Path) -> Engine:
    engine = open_engine(sqlite_url(tmp_path))
    assert migrate(engine) == MIGRATIONS[-1].version
    return engine


def test_a_migrated_empty_catalog_matches_the_orm_metadata(tmp_path: Path) -> None:
    engine = migrated(tmp_path)
    found = inspect(engine)
    assert set(found.get_table_names()) == set(Base.metadata.tables) | {"schema_version"}
    for name, table in Base.metadata.tables.items():
        columns = {c["name"]: c for c in found.get_columns(name)}
        assert set(columns) == {c.name for c in table.columns}, name
        for column in table.columns:
            assert columns[column.name]["nullable"] == column.nullable, (name, column.name)
            assert columns[column.name]["type"]._type_affinity is column.type._type_affinity, (
                name,
                column.name,
            )
        assert set(found.get_pk_constraint(name)["constrained_columns"]) == {
            c.name for c in table.primary_key
        }
        assert {i["name"] for i in found.get_indexes(name)} == {i.name for i in table.indexes}, name
    engine.dispose()


def test_face_and_change_ids_are_never_reused(tmp_path: Path) -> None:
    """The vector index keys faces by row id: a reused id could resurrect a deleted face."""
    migrated(tmp_path).dispose()
    with sqlite3.connect(tmp_path / CATALOG_FILE) as raw:
        ddl = dict(raw.execute("SELECT name, sql FROM sqlite_master WHERE type = 'table'").fetchall())
    assert "AUTOINCREMENT" in ddl["faces"] and "AUTOINCREMENT" in ddl["face_changes"]


def test_migrating_again_is_a_no_op_that_keeps_the_data(tmp_path: Path) -> None:
    engine = migrated(tmp_path)
    with engine.begin() as conn:
        conn.execute(
            text(
                "INSERT INTO collections (collection_id, description, model_id, template_id, "
                "dimension, created_at) VALUES ('kept', '', 'm', 't', 128, :now)"
            ),
            {"now": NOW},
        )
        before = conn.execute(text("SELECT * FROM schema_version ORDER BY version")).all()
    assert migrate(engine) == MIGRATIONS[-1].version
    assert migrate(open_engine(sqlite_url(tmp_path))) == MIGRATIONS[-1].version
    with engine.begin() as conn:
        assert conn.execute(text("SELECT * FROM schema_version ORDER BY version")).all() == before
        assert conn.execute(text("SELECT collection_id FROM collections")).scalars().all() == ["kept"]
    assert [v for v, *_ in before] == [m.version for m in MIGRATIONS]
    engine.dispose()


def test_a_step_below_the_highest_applied_one_is_still_applied(tmp_path: Path) -> None:
    """Lines of work land in any order: a catalog of a release with steps 2-3 and 6-8 but not
    step 5 (bias_audits.space_id) gets step 5 on the next start, its rows kept."""
    engine = migrated(tmp_path)
    with engine.begin() as conn:
        conn.execute(text("ALTER TABLE bias_audits DROP COLUMN space_id"))
        conn.execute(text("DELETE FROM schema_version WHERE version = 5"))
    assert migrate(engine) == MIGRATIONS[-1].version
    assert "space_id" in {c["name"] for c in inspect(engine).get_columns("bias_audits")}
    with engine.begin() as conn:
        versions = conn.execute(text("SELECT version FROM schema_version ORDER BY version")).scalars().all()
    assert versions == [m.version for m in MIGRATIONS]
    engine.dispose()
