"""Facts about the catalog itself: which template key it is sealed with, the last good policy.

`catalog_settings` holds named values: `template_key` is the fingerprint of the key every
template is sealed with (`aes256gcm:<key id>`, or `none` for plain floats), and
`rekey_target` is present while `facegate catalog rekey` is re-sealing towards another
key. `policy_versions` keeps each policy that loaded cleanly, by version, so a worker that
starts while the policy file is broken decides with the last good one instead of refusing.
"""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import Connection, DateTime, LargeBinary, String, Text, select
from sqlalchemy.orm import Mapped, Session, mapped_column

from facegate.store.db import Base, upsert

TEMPLATE_KEY = "template_key"
REKEY_TARGET = "rekey_target"


class CatalogSettingRow(Base):
    __tablename__ = "catalog_settings"

    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    value: Mapped[str] = mapped_column(Text)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class PolicyVersionRow(Base):
    """A policy file's bytes as they loaded cleanly; `stored_at` is when it was last in force."""

    __tablename__ = "policy_versions"

    version: Mapped[str] = mapped_column(String(64), primary_key=True)
    sha256: Mapped[str] = mapped_column(String(64))
    source: Mapped[str] = mapped_column(Text)
    content: Mapped[bytes] = mapped_column(LargeBinary)
    stored_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


def read_setting(conn: Connection | Session, name: str) -> str | None:
    """A setting's value; None when unset or when the table does not exist yet (old catalog)."""
    if isinstance(conn, Connection) and not conn.dialect.has_table(conn, CatalogSettingRow.__tablename__):
        return None
    return conn.execute(select(CatalogSettingRow.value).where(CatalogSettingRow.name == name)).scalar_one_or_none()


def write_setting(conn: Connection | Session, name: str, value: str | None) -> None:
    """Set (or with None, remove) a setting, in the caller's transaction."""
    table = CatalogSettingRow.__table__
    if value is None:
        conn.execute(table.delete().where(table.c.name == name))
        return
    now = datetime.now(UTC)
    stmt = upsert(conn, table).values(name=name, value=value, updated_at=now)
    conn.execute(stmt.on_conflict_do_update(index_elements=["name"], set_={"value": value, "updated_at": now}))


def insert_setting_once(conn: Connection | Session, name: str, value: str) -> str:
    """Set a setting only if unset (first writer wins, under the write lock); the value in force."""
    stmt = upsert(conn, CatalogSettingRow.__table__).values(name=name, value=value, updated_at=datetime.now(UTC))
    conn.execute(stmt.on_conflict_do_nothing(index_elements=["name"]))
    return read_setting(conn, name) or value


def remember_policy(session: Session, *, version: str, sha256: str, source: str, content: bytes) -> None:
    """Keep a policy that loaded cleanly, and note that it is the latest in force."""
    now = datetime.now(UTC)
    stmt = upsert(session, PolicyVersionRow.__table__).values(
        version=version, sha256=sha256, source=source, content=content, stored_at=now
    )
    session.execute(stmt.on_conflict_do_update(index_elements=["version"], set_={"stored_at": now}))


def last_good_policy(session: Session, source: str | None = None) -> PolicyVersionRow | None:
    """The policy most recently in force, as stored; with `source`, the one most recently
    loaded from that file if any was (in server mode other hosts keep theirs here too, and
    one of them may serve another file)."""
    latest = select(PolicyVersionRow).order_by(PolicyVersionRow.stored_at.desc()).limit(1)
    if source is not None:
        same = session.scalars(latest.where(PolicyVersionRow.source == source)).first()
        if same is not None:
            return same
    return session.scalars(latest).first()
