"""Migration revision 0007 (step 7 of the old runner) on a catalog made before it: keys and
faces keep their rows and gain the columns (purpose binding, AWS credentials, face image
size) and the unique index."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import inspect, text

from facegate.store.db import open_engine, sqlite_url
from facegate.store.migrations import migrate
from tests.store.conftest import NOW

NEW_KEY_COLUMNS = ("purpose", "case_reference", "aws_access_key_id", "aws_secret_sealed")


def test_step_7_upgrades_an_older_catalog(tmp_path: Path) -> None:
    engine = open_engine(sqlite_url(tmp_path))
    migrate(engine)
    with engine.begin() as conn:  # back to the schema before revision 0007, with a tenant and a key in it
        conn.execute(text("DROP INDEX ix_api_keys_aws_access_key_id"))
        for column in NEW_KEY_COLUMNS:
            conn.execute(text(f"ALTER TABLE api_keys DROP COLUMN {column}"))
        for column in ("image_width", "image_height"):
            conn.execute(text(f"ALTER TABLE faces DROP COLUMN {column}"))
        conn.execute(text("DROP TABLE console_sessions"))  # step 9's, which comes later
        conn.execute(text("UPDATE alembic_version SET version_num = '0006'"))
        conn.execute(text("INSERT INTO tenants VALUES ('old', 'nonprofit', 'active', '[\"operator\"]', :now)"), {"now": NOW})
        conn.execute(text("INSERT INTO api_keys (key_id, tenant, secret_sha256, created_at) "
                          "VALUES ('00112233445566ff', 'old', 'h', :now)"), {"now": NOW})
    assert migrate(engine).before == "0006"
    found = inspect(engine)
    assert "console_sessions" in found.get_table_names()
    assert set(NEW_KEY_COLUMNS) <= {c["name"] for c in found.get_columns("api_keys")}
    assert {"image_width", "image_height"} <= {c["name"] for c in found.get_columns("faces")}
    assert any(i["name"] == "ix_api_keys_aws_access_key_id" and i["unique"] for i in found.get_indexes("api_keys"))
    with engine.begin() as conn:
        row = conn.execute(text("SELECT key_id, purpose, aws_access_key_id FROM api_keys")).one()
    assert tuple(row) == ("00112233445566ff", None, None)  # an old key: no binding, no AWS credentials
    engine.dispose()
