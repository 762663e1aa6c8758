"""Catalog tables: collections (with their owner and grants), subjects and faces.

A face row is the source of truth for its template; `row_id` is its key in the vector
index (AUTOINCREMENT so a deleted key is never reused and a stale index entry can never
point at a different face). Public ids (`face_id`) are UUIDs.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import (
    JSON,
    Boolean,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    Text,
    UniqueConstraint,
    false,
)
from sqlalchemy.orm import Mapped, mapped_column

from facegate.store.db import Base


class CollectionRow(Base):
    __tablename__ = "collections"

    collection_id: Mapped[str] = mapped_column(String(255), primary_key=True)
    description: Mapped[str] = mapped_column(Text, default="")
    model_id: Mapped[str] = mapped_column(String(64))
    template_id: Mapped[str] = mapped_column(String(64))  # model id + template recipe
    dimension: Mapped[int] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    retention_days: Mapped[int | None] = mapped_column(Integer, nullable=True)  # faces older are erased
    # The tenant that created it ("local": the CLI's local operator, and every collection
    # made before collections had owners). Nullable only so the migration can add it.
    owner: Mapped[str | None] = mapped_column(String(64), nullable=True)
    # Opt-in: each face keeps a small sealed JPEG crop for reviewers (and searches keep the
    # probe's with their leads). Off for every collection made before it existed.
    keep_thumbnails: Mapped[bool] = mapped_column(Boolean, server_default=false(), default=False)


class CollectionGrantRow(Base):
    """One operation on one collection that its owner opened to another tenant, optionally
    only for named purposes (None: any purpose the grantee may otherwise declare)."""

    __tablename__ = "collection_grants"
    __table_args__ = (UniqueConstraint("collection_id", "grantee", "operation"),)

    row_id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    collection_id: Mapped[str] = mapped_column(
        ForeignKey("collections.collection_id", ondelete="CASCADE"), index=True
    )
    grantee: Mapped[str] = mapped_column(String(64))
    operation: Mapped[str] = mapped_column(String(32))
    purposes: Mapped[list | None] = mapped_column(JSON, nullable=True)
    granted_by: Mapped[str] = mapped_column(String(64))
    granted_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class SubjectRow(Base):
    __tablename__ = "subjects"
    __table_args__ = (UniqueConstraint("collection_id", "subject_id"),)

    row_id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    collection_id: Mapped[str] = mapped_column(
        ForeignKey("collections.collection_id", ondelete="CASCADE")
    )
    subject_id: Mapped[str] = mapped_column(String(255))
    attributes: Mapped[dict] = mapped_column(JSON, default=dict)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class FaceRow(Base):
    __tablename__ = "faces"
    __table_args__ = (
        Index("ix_faces_collection_image", "collection_id", "image_sha256", "external_image_id"),
        Index("ix_faces_collection_subject", "collection_id", "subject_row_id"),
        {"sqlite_autoincrement": True},
    )

    row_id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    face_id: Mapped[str] = mapped_column(String(36), unique=True)
    collection_id: Mapped[str] = mapped_column(
        ForeignKey("collections.collection_id", ondelete="CASCADE")
    )
    subject_row_id: Mapped[int | None] = mapped_column(
        ForeignKey("subjects.row_id", ondelete="SET NULL"), nullable=True
    )
    external_image_id: Mapped[str | None] = mapped_column(String(255), nullable=True)
    image_sha256: Mapped[str] = mapped_column(String(64))
    box_left: Mapped[int] = mapped_column(Integer)
    box_top: Mapped[int] = mapped_column(Integer)
    box_width: Mapped[int] = mapped_column(Integer)
    box_height: Mapped[int] = mapped_column(Integer)
    confidence: Mapped[float] = mapped_column(Float)
    landmarks: Mapped[list] = mapped_column(JSON)
    quality: Mapped[dict] = mapped_column(JSON)
    template: Mapped[bytes] = mapped_column(LargeBinary)  # float32 bytes, encrypted if keyed
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    # Fair score normalization: this template's cluster offset (similarity points), stored at
    # enrolment; NULL for faces enrolled before it (or with it off): computed when searched.
    score_offset: Mapped[float | None] = mapped_column(Float, nullable=True)
    # Size of the (EXIF-rotated) image the face came from; unknown for faces enrolled before.
    image_width: Mapped[int | None] = mapped_column(Integer, nullable=True)
    image_height: Mapped[int | None] = mapped_column(Integer, nullable=True)
    # The face's thumbnail (JPEG, sealed like the template) where the collection keeps them;
    # deferred, so that no query loads one unless it asks for it.
    thumbnail: Mapped[bytes | None] = mapped_column(LargeBinary, nullable=True, deferred=True)


class FaceChangeRow(Base):
    """Append-only log of index-relevant changes, written in the same transaction as the face.

    A vector index remembers the last `seq` it applied; on open (or when another process
    has written) it replays newer changes, so catalog and index converge after any crash.
    """

    __tablename__ = "face_changes"
    __table_args__ = ({"sqlite_autoincrement": True},)

    seq: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    collection_id: Mapped[str] = mapped_column(String(255), index=True)
    face_row_id: Mapped[int] = mapped_column(Integer)
    op: Mapped[str] = mapped_column(String(8))  # "add" | "remove"
