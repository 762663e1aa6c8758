"""Settings: where data lives, which models and limits apply, read once from the environment.

Built explicitly (`Settings()` or `Settings(home=...)`) and handed to the engine, never a
module-level global: two engines in one process (as in the tests) never share a database.
Environment variables carry the `FACEGATE_` prefix: `FACEGATE_HOME` is the data directory,
`FACEGATE_POLICY` the policy file, `FACEGATE_DATABASE_URL` (when set) the PostgreSQL
server that holds every piece of state instead of the data directory (server mode).
"""

from __future__ import annotations

import base64
import binascii
import os
from pathlib import Path
from typing import Literal

from platformdirs import user_data_dir
from pydantic import Field, ValidationError, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from facegate.errors import ErrorCode, FacegateError


def default_home() -> Path:
    return Path(user_data_dir("facegate", appauthor=False))


def available_cpus() -> int:
    """The CPUs this process may run on (its affinity, e.g. under `taskset` or a container's
    cpuset), not the machine's count: one more worker than cores only adds a process."""
    try:
        count = len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        count = os.cpu_count() or 1
    return max(1, min(64, count))


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="FACEGATE_", frozen=True, extra="ignore")

    home: Path = Field(default_factory=default_home, description="data directory")
    database_url: str | None = Field(
        default=None,
        description="postgresql://user:pass@host:port/db: server mode, all state in PostgreSQL (else SQLite in home)",
    )
    credentials_key_file: Path | None = Field(
        default=None,
        description="key file that seals AWS secret keys (default: credentials.kek in home; required in server mode)",
    )
    policy: Path | None = Field(default=None, description="policy TOML; built-in default if unset")
    template_key: str | None = Field(
        default=None, description="base64 of 32 bytes: encrypts templates at rest when set"
    )
    # vision
    detector: Literal["mtcnn", "hog", "hog-scaled", "cnn", "cnn-onnx"] = "mtcnn"
    fallback_detector: Literal["mtcnn", "hog", "hog-scaled", "cnn", "cnn-onnx", "none"] = "cnn-onnx"
    min_face_size: int = Field(default=40, ge=8, le=4096)
    embedder_runtime: Literal["onnx", "dlib"] = "onnx"
    max_image_bytes: int = Field(default=40 * 1024 * 1024, ge=1024)
    max_image_pixels: int = Field(default=40_000_000, ge=1)
    # fair score normalization (docs/fairness.md): "auto" = on when the template space ships it
    score_normalization: Literal["auto", "fair", "raw"] = "auto"
    # video
    video_fps: float = Field(default=4.0, gt=0, le=60, description="frames sampled per second of video")
    max_video_seconds: float = Field(default=3 * 3600.0, gt=0)
    max_video_pixels: int = Field(default=3840 * 2160, ge=1024)
    max_pending_video_jobs: int = Field(
        default=4, ge=1, description="queued or running video searches per tenant (uploads wait on disk)"
    )
    video_job_lease_seconds: float = Field(
        default=60.0, gt=0, description="a running job not renewed for this long is resumed by another runner"
    )
    # store
    index_kind: Literal["auto", "exact", "hnsw"] = "auto"
    workers: int = Field(
        default_factory=available_cpus, ge=1, le=64,
        description="processes for bulk work (default: the CPUs this process may use)",
    )
    # service
    max_request_bytes: int = Field(default=50 * 1024 * 1024, ge=1024)
    rate_limit_per_minute: int = Field(default=600, ge=0, description="per API key; 0 = off")
    console_session_minutes: int = Field(default=480, ge=1, le=7 * 24 * 60, description="console sign-in lifetime")
    unauthenticated_per_minute: int = Field(
        default=30, ge=0, description="unauthenticated or failed-auth requests per client address and worker; 0 = off"
    )
    max_concurrent_analyses: int = Field(
        default=8, ge=1, le=64, description="image requests admitted at once per worker (analysed one at a time)"
    )
    max_body_bytes_in_flight: int = Field(
        default=128 * 1024 * 1024, ge=1024, description="bytes of request bodies one worker holds at once"
    )
    body_timeout_seconds: float = Field(default=30.0, gt=0, le=3600, description="time for a request body to arrive")
    # audit integrity and retention
    audit_signing_key: Path | None = Field(
        default=None, description="Ed25519 private key (PEM) that signs audit checkpoints; kept outside the catalog"
    )
    checkpoint_dir: Path | None = Field(default=None, description="where `serve` writes signed checkpoints")
    checkpoint_interval_seconds: int = Field(default=3600, ge=0, description="serve: between checkpoints; 0 = off")
    retention_interval_seconds: int = Field(default=86400, ge=0, description="serve: between retention runs; 0 = off")

    @field_validator("template_key")
    @classmethod
    def _key_is_32_bytes(cls, value: str | None) -> str | None:
        if value is None or value == "":
            return None
        parse_template_key(value, "FACEGATE_TEMPLATE_KEY")
        return value

    @field_validator("database_url")
    @classmethod
    def _database_url_is_postgresql(cls, value: str | None) -> str | None:
        if value is None or value.strip() == "":
            return None
        if not value.startswith(("postgresql://", "postgresql+psycopg://", "postgres://")):
            raise ValueError("must be a postgresql://user:pass@host:port/db URL")  # never echoed: it may hold a password
        return "postgresql://" + value.split("://", 1)[1] if value.startswith("postgres://") else value

    @property
    def server_mode(self) -> bool:
        """All state in PostgreSQL: nothing but model caches is written under `home`."""
        return self.database_url is not None

    @property
    def template_key_bytes(self) -> bytes | None:
        return base64.b64decode(self.template_key) if self.template_key else None


def parse_template_key(value: str, where: str) -> bytes:
    """32 raw key bytes from base64 text; a refusal that names `where` but never echoes the key."""
    try:
        raw = base64.b64decode(value.strip(), validate=True)
    except (binascii.Error, ValueError):
        raise ValueError(f"{where} must be base64 (e.g. from `openssl rand -base64 32`)") from None
    if len(raw) != 32:
        raise ValueError(f"{where} must decode to 32 bytes (AES-256), got {len(raw)}")
    return raw


def load_settings(**overrides: object) -> Settings:
    """Settings from the environment and `overrides`, or one FacegateError that names each
    bad variable and what is wrong with it (never a pydantic traceback): TEMPLATE_KEY_INVALID
    for a malformed template key, else INVALID_SETTINGS. Values are never echoed: one of
    them may be a key."""
    try:
        settings = Settings(**overrides)  # type: ignore[arg-type]
    except ValidationError as exc:
        errors = exc.errors(include_url=False, include_input=False)
        fields = [".".join(str(part) for part in error["loc"]) or "settings" for error in errors]
        if "template_key" in fields:  # the key's own message names FACEGATE_TEMPLATE_KEY
            key_error = errors[fields.index("template_key")]
            raise FacegateError(
                ErrorCode.TEMPLATE_KEY_INVALID, str(key_error["msg"]).removeprefix("Value error, "),
                setting="template_key",
            ) from None
        problems = []
        for name, error in zip(fields, errors, strict=True):
            where = name if name in overrides else f"FACEGATE_{name.upper()}"
            problems.append(f"{where}: {str(error['msg']).removeprefix('Value error, ')}")
        raise FacegateError(ErrorCode.INVALID_SETTINGS, "; ".join(problems), setting=fields[0]) from None
    if settings.home.exists() and not settings.home.is_dir():
        raise FacegateError(
            ErrorCode.INVALID_SETTINGS, f"data directory {settings.home} is a file, not a directory", field="home"
        )
    return settings
