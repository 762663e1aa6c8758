"""The one core object: `Facegate`, built from `Settings`, driven by the CLI, the service
and the tests alike.

It owns what must exist once per process and data directory: the vision pipeline (models
load on first use, never at import, and stay loaded), the calibration of its template
space, the catalog database, the vector indexes, the policy and the gate. The verbs that
use them live in `facegate.operations`, one module per family of operations.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from datetime import UTC, datetime
from functools import cached_property
from importlib import resources

import numpy as np
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from sqlalchemy import Engine
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker

from facegate.errors import ErrorCode, FacegateError
from facegate.gate import Gatekeeper
from facegate.governance import Policy, PolicyHolder
from facegate.governance.checkpoints import load_signing_key
from facegate.settings import Settings
from facegate.store.crypto import TemplateCodec
from facegate.store import template_key
from facegate.store.catalog_meta import last_good_policy, remember_policy
from facegate.store.db import (
    create_private_catalog,
    open_engine,
    reachable,
    read_only_session_factory,
    server_url,
    session_factory,
    sqlite_url,
)
from facegate.store.migrations import Migrated, migrate
from facegate.store.sealing import SecretBox, load_kek, load_or_create_kek
from facegate.store.collection_indexes import VectorStore
from facegate.store.index_sync import IndexSettings
from facegate.store.server_index import ServerIndexSettings, ServerVectors
from facegate.vision import ImageLimits, Pipeline, PipelineConfig
from facegate.vision.calibration import Calibration, load_calibration
from facegate.vision.pipeline import template_space
from facegate.vision.space import TemplateSpace
from facegate.vision.group_calibration import GroupCalibration, load_group_calibration
from facegate.vision.score_normalization import Scorer, normalization_file_name, scorer_for
from facegate.vision.types import Face
from facegate.vision.video import VideoLimits

log = logging.getLogger(__name__)


def pipeline_config(settings: Settings) -> PipelineConfig:
    """The pipeline recipe that `settings` asks for."""
    return PipelineConfig(
        detector=settings.detector,
        fallback_detector=None if settings.fallback_detector == "none" else settings.fallback_detector,
        min_face_size=settings.min_face_size,
        limits=ImageLimits(settings.max_image_bytes, settings.max_image_pixels),
        runtime=settings.embedder_runtime,
        model_cache=settings.home / "models",
    )


class CatalogPolicyArchive:
    """The catalog's `policy_versions`, as the policy holder's archive (service workers)."""

    def __init__(self, sessions: sessionmaker[Session]) -> None:
        self._sessions = sessions

    def keep(self, policy: Policy, content: bytes) -> None:
        try:
            with self._sessions.begin() as session:
                remember_policy(
                    session, version=policy.version, sha256=policy.sha256, source=policy.source, content=content
                )
        except (FacegateError, SQLAlchemyError) as exc:  # runs in a thread: say so, do not raise
            log.warning("policy %s not kept in the catalog: %s", policy.version, exc)

    def last_good(self, source: str) -> tuple[bytes, str] | None:
        with self._sessions() as session:
            row = last_good_policy(session, source)
            return (row.content, row.source) if row is not None else None


class Facegate:
    """The engine: one per data directory and process; thread-safe for the service."""

    def __init__(
        self,
        settings: Settings,
        clock: Callable[[], datetime] | None = None,
        *,
        keep_last_good_policy: bool = False,
        rekeying: bool = False,
    ) -> None:
        """`keep_last_good_policy`: a service worker decides with the last good policy kept in
        the catalog when the file is broken (the CLI refuses instead). `rekeying`: only
        `catalog rekey` may open a catalog whose re-sealing was interrupted."""
        self.settings = settings
        self.config = pipeline_config(settings)
        self._clock = clock or (lambda: datetime.now(UTC))
        self._pipeline_lock = threading.Lock()
        self._keep_last_good_policy = keep_last_good_policy
        self._rekeying = rekeying
        self.migration: Migrated | None = None  # what opening the catalog found and left (`db`)

    # --- vision -----------------------------------------------------------------------
    @cached_property
    def pipeline(self) -> Pipeline:
        pipeline = Pipeline(self.config)
        if pipeline.space != self.space:  # the models loaded are not those the engine was keyed on
            raise FacegateError(
                ErrorCode.MODEL_MISMATCH, f"loaded models make {pipeline.space.audit_id}, not {self.space.audit_id}"
            )
        return pipeline

    @property
    def limits(self) -> ImageLimits:
        return self.config.limits

    @property
    def space(self) -> TemplateSpace:
        """Model id, dimension, chip recipe and detector as one value, named by the models
        the pipeline loads (known before loading them: a CLI call that analyses nothing
        loads nothing). Collections, calibration and recorded bias audits are keyed on it."""
        return template_space(self.config)

    @property
    def model_id(self) -> str:
        return self.space.model_id

    @property
    def template_id(self) -> str:
        """The template space of this engine's pipeline, known without loading models."""
        return self.space.template_id

    @cached_property
    def scorer(self) -> Scorer:
        """Raw or fair-normalized similarity (setting `score_normalization`); "auto" is fair
        when the template space ships a normalization, raw otherwise."""
        mode = self.settings.score_normalization
        if mode == "auto":
            shipped = resources.files("facegate.vision").joinpath(
                "calibration", normalization_file_name(self.template_id)
            )
            mode = "fair" if shipped.is_file() else "raw"
        return scorer_for(self.template_id, mode)

    @cached_property
    def calibration(self) -> Calibration:
        """The population calibration of the scores this engine reports (raw or normalized)."""
        return load_calibration(self.scorer.score_id)

    @cached_property
    def group_calibration(self) -> GroupCalibration | None:
        """Per-group curves of the same scores, if shipped (estimates and every-group thresholds)."""
        return load_group_calibration(self.scorer.score_id)

    def load_models(self) -> None:
        """Load the models now, once, under the analysis lock (service warm-up and readiness)."""
        with self._pipeline_lock:
            self.pipeline  # noqa: B018 - the cached property loads them
        self.calibration  # noqa: B018

    def analyze_frame(self, image: np.ndarray) -> list[Face]:
        """Faces of a decoded video frame, under the same lock. No fallback detector: on a
        stretch without faces it would run on every frame, and the next frame is near."""
        with self._pipeline_lock:
            return self.pipeline.faces(image, fallback=False)

    @property
    def video_limits(self) -> VideoLimits:
        return VideoLimits(max_seconds=self.settings.max_video_seconds, max_pixels=self.settings.max_video_pixels)

    def analyze(self, data: bytes, max_faces: int | None = None, thumbnails: bool = False) -> list[Face]:
        """Faces of encoded image bytes (with `thumbnails`, each with its crop); one analysis
        at a time per engine (dlib is not re-entrant), the service runs more in more worker
        processes."""
        with self._pipeline_lock:
            return self.pipeline.analyze(data, max_faces, thumbnails)

    def analyze_sized(self, data: bytes, thumbnails: bool = False) -> tuple[list[Face], tuple[int, int]]:
        """Faces of encoded image bytes (with `thumbnails`, each with its crop) and the image's
        (width, height): enrolment needs the size to tell which face a portrait is of (the
        central one)."""
        with self._pipeline_lock:
            return self.pipeline.analyze_sized(data, thumbnails=thumbnails)

    # --- store --------------------------------------------------------------------------
    @cached_property
    def db(self) -> Engine:
        """The catalog, opened only if this process's template key is the catalog's: the
        check reads before anything is written (migrations included), so a refused process
        leaves the file byte-for-byte as it was."""
        if self.settings.database_url is not None:
            engine = open_engine(server_url(self.settings.database_url))
        else:
            try:
                create_private_catalog(self.settings.home)
            except OSError as exc:
                raise FacegateError(
                    ErrorCode.INVALID_SETTINGS, f"data directory {self.settings.home} cannot be made: {exc.strerror}",
                    field="home",
                ) from None
            engine = open_engine(sqlite_url(self.settings.home))
        try:
            reachable(engine)
            template_key.check(engine, self.codec, rekeying=self._rekeying)
            self.migration = migrate(engine)
            template_key.claim(engine, self.codec)
        except BaseException:
            engine.dispose()
            raise
        return engine

    @cached_property
    def sessions(self) -> sessionmaker[Session]:
        return session_factory(self.db)

    @cached_property
    def read_sessions(self) -> sessionmaker[Session]:
        """Snapshot sessions for long reads that must not hold up writers (store/db.py)."""
        return read_only_session_factory(self.db)

    @cached_property
    def codec(self) -> TemplateCodec:
        return TemplateCodec(self.settings.template_key_bytes)

    @cached_property
    def secret_box(self) -> SecretBox:
        """Seals the secrets the server must read back (AWS secret keys), under a key file
        kept outside the catalog: beside it in the data directory, or in server mode the
        file FACEGATE_CREDENTIALS_KEY_FILE names (every host needs the same one)."""
        configured = self.settings.credentials_key_file
        if configured is not None:
            return SecretBox(load_kek(configured))
        if self.settings.server_mode:
            raise FacegateError(
                ErrorCode.CREDENTIALS_KEY_INVALID,
                "server mode keeps no files: set FACEGATE_CREDENTIALS_KEY_FILE to a key file that every host shares "
                "(make one with `facegate db credentials-key --out FILE`)",
            )
        self.settings.home.mkdir(parents=True, exist_ok=True)
        return SecretBox(load_or_create_kek(self.settings.home))

    @cached_property
    def vectors(self) -> VectorStore | ServerVectors:
        """The vector indexes. Embedded: per-collection files beside the catalog. Server mode:
        pgvector in the database, or, where templates are sealed (no plaintext copy in the
        database), this process's in-memory indexes rebuilt from the sealed templates and kept
        in step through the change log like the embedded ones, never written to disk."""
        if not self.settings.server_mode:
            return VectorStore(self.settings.home, self.sessions, self.codec, IndexSettings(self.settings.index_kind))
        if self.codec.encrypted:
            return VectorStore(None, self.sessions, self.codec, IndexSettings(self.settings.index_kind))
        return ServerVectors(self.sessions, self.read_sessions, ServerIndexSettings(kind=self.settings.index_kind))

    # --- governance ---------------------------------------------------------------------
    @cached_property
    def policy_holder(self) -> PolicyHolder:
        archive = CatalogPolicyArchive(self.sessions) if self._keep_last_good_policy else None
        return PolicyHolder(self.settings.policy, archive)

    @property
    def policy(self) -> Policy:
        return self.policy_holder.current()

    def policy_drift(self) -> str | None:
        """Server mode: the policy the installation's service last loaded (on any host), when
        it is not the one this process decides with, i.e. hosts on one database serve
        different policy files; None when they agree, or on the embedded catalog (there a
        newer file is simply the policy now). Every audit entry names the policy that decided."""
        if not self.settings.server_mode:
            return None
        with self.read_sessions.begin() as session:
            row = last_good_policy(session)
            latest = None if row is None else (row.version, row.source, row.stored_at)
        in_force = self.policy.version
        if latest is None or latest[0] == in_force:
            return None
        version, source, at = latest
        return (f"the service last loaded policy {version} ({source}) at {at.astimezone(UTC):%Y-%m-%dT%H:%M:%SZ}, "
                f"this host decides with {in_force}: every host on one database should serve the same policy file")

    @cached_property
    def gate(self) -> Gatekeeper:
        return Gatekeeper(
            self.sessions, self.policy_holder, lambda: self.calibration, self.model_id, self._clock,
            audit_space=self.space.audit_id, groups=lambda: self.group_calibration, reads=self.read_sessions,
        )

    @cached_property
    def signing_key(self) -> Ed25519PrivateKey | None:
        """The audit signing key (FACEGATE_AUDIT_SIGNING_KEY), or None when none is configured."""
        path = self.settings.audit_signing_key
        return None if path is None else load_signing_key(path)

    def now(self) -> datetime:
        return self._clock()

    def close(self) -> None:
        """Save indexes and release the database (the service calls this on shutdown)."""
        if "vectors" in self.__dict__:
            self.vectors.close()
        if "db" in self.__dict__:
            self.db.dispose()
