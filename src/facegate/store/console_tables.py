"""The console's sessions: a browser signed in with an API key, known by the hash of its token.

A table of its own (registered on `Base` like the other tables) so that every worker
process of the service sees the same sessions, and a sign-out ends a session everywhere.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, String
from sqlalchemy.orm import Mapped, mapped_column

from facegate.store.db import Base
from facegate.store.governance_tables import UTCDateTime


class ConsoleSessionRow(Base):
    """One signed-in browser; the cookie's token is never stored, only its SHA-256."""

    __tablename__ = "console_sessions"

    token_sha256: Mapped[str] = mapped_column(String(64), primary_key=True)
    tenant: Mapped[str] = mapped_column(ForeignKey("tenants.name"), index=True)
    key_id: Mapped[str] = mapped_column(String(32))
    csrf_token: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)
    ended_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
