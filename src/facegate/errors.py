"""The one error type of facegate, and the stable codes it carries.

Every refusal in the core raises `FacegateError` with a code from `ErrorCode`. The CLI
and the HTTP service each map codes to their own surface (exit status, HTTP status) in one
place, so a code means the same thing wherever a caller meets it. Codes are a contract:
add new ones, never rename or reuse old ones.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Any


class ErrorCode(StrEnum):
    """Stable, machine-readable reasons for a refusal."""

    # input
    INVALID_IMAGE = "INVALID_IMAGE"
    IMAGE_TOO_LARGE = "IMAGE_TOO_LARGE"
    FILE_NOT_FOUND = "FILE_NOT_FOUND"
    NO_FACE = "NO_FACE"
    TOO_MANY_FACES = "TOO_MANY_FACES"
    LOW_QUALITY = "LOW_QUALITY"
    INVALID_ARGUMENT = "INVALID_ARGUMENT"
    INVALID_MANIFEST = "INVALID_MANIFEST"
    UNKNOWN_MODEL = "UNKNOWN_MODEL"
    NOT_SUBJECT_FACE = "NOT_SUBJECT_FACE"
    INVALID_SETTINGS = "INVALID_SETTINGS"
    # video
    INVALID_VIDEO = "INVALID_VIDEO"
    NO_VIDEO_STREAM = "NO_VIDEO_STREAM"
    VIDEO_CORRUPT = "VIDEO_CORRUPT"
    VIDEO_TRUNCATED = "VIDEO_TRUNCATED"
    VIDEO_DIMENSIONS = "VIDEO_DIMENSIONS"
    VIDEO_TOO_LONG = "VIDEO_TOO_LONG"
    VIDEO_JOB_NOT_FOUND = "VIDEO_JOB_NOT_FOUND"
    VIDEO_JOB_INTERRUPTED = "VIDEO_JOB_INTERRUPTED"
    # store
    COLLECTION_NOT_FOUND = "COLLECTION_NOT_FOUND"
    COLLECTION_EXISTS = "COLLECTION_EXISTS"
    FACE_NOT_FOUND = "FACE_NOT_FOUND"
    SUBJECT_NOT_FOUND = "SUBJECT_NOT_FOUND"
    SUBJECT_EXISTS = "SUBJECT_EXISTS"
    MODEL_MISMATCH = "MODEL_MISMATCH"
    TEMPLATE_KEY_MISMATCH = "TEMPLATE_KEY_MISMATCH"
    TEMPLATE_KEY_INVALID = "TEMPLATE_KEY_INVALID"
    DATABASE_EXTENSION_MISSING = "DATABASE_EXTENSION_MISSING"
    DATABASE_NOT_EMPTY = "DATABASE_NOT_EMPTY"
    # governance
    UNAUTHENTICATED = "UNAUTHENTICATED"
    TENANT_NOT_FOUND = "TENANT_NOT_FOUND"
    TENANT_EXISTS = "TENANT_EXISTS"
    KEY_NOT_FOUND = "KEY_NOT_FOUND"
    POLICY_INVALID = "POLICY_INVALID"
    PURPOSE_REQUIRED = "PURPOSE_REQUIRED"
    PURPOSE_UNKNOWN = "PURPOSE_UNKNOWN"
    PURPOSE_NOT_APPROVED = "PURPOSE_NOT_APPROVED"
    MORATORIUM = "MORATORIUM"
    CASE_REFERENCE_REQUIRED = "CASE_REFERENCE_REQUIRED"
    CONSENT_REFERENCE_REQUIRED = "CONSENT_REFERENCE_REQUIRED"
    LIVE_USE_FORBIDDEN = "LIVE_USE_FORBIDDEN"
    TENANT_SUSPENDED = "TENANT_SUSPENDED"
    OPERATION_NOT_ALLOWED = "OPERATION_NOT_ALLOWED"
    COLLECTION_FORBIDDEN = "COLLECTION_FORBIDDEN"
    AUDIT_REQUIRED = "AUDIT_REQUIRED"
    FMR_NOT_CERTIFIABLE = "FMR_NOT_CERTIFIABLE"
    ROLE_REQUIRED = "ROLE_REQUIRED"
    REVIEW_NOT_FOUND = "REVIEW_NOT_FOUND"
    FOUR_EYES_REQUIRED = "FOUR_EYES_REQUIRED"
    AUDIT_CHAIN_BROKEN = "AUDIT_CHAIN_BROKEN"
    CSRF_INVALID = "CSRF_INVALID"
    AUDIT_SIGNING_KEY_MISSING = "AUDIT_SIGNING_KEY_MISSING"
    AUDIT_SIGNING_KEY_INVALID = "AUDIT_SIGNING_KEY_INVALID"
    CHECKPOINT_INVALID = "CHECKPOINT_INVALID"
    CHECKPOINT_NOT_FOUND = "CHECKPOINT_NOT_FOUND"
    CREDENTIALS_KEY_INVALID = "CREDENTIALS_KEY_INVALID"
    KEY_BOUND = "KEY_BOUND"
    # service
    RATE_LIMITED = "RATE_LIMITED"
    OVERLOADED = "OVERLOADED"
    DATABASE_UNAVAILABLE = "DATABASE_UNAVAILABLE"
    REQUEST_TIMEOUT = "REQUEST_TIMEOUT"
    CLIENT_DISCONNECTED = "CLIENT_DISCONNECTED"
    REQUEST_TOO_LARGE = "REQUEST_TOO_LARGE"
    UNSUPPORTED_MEDIA_TYPE = "UNSUPPORTED_MEDIA_TYPE"
    VALIDATION_ERROR = "VALIDATION_ERROR"
    NOT_FOUND = "NOT_FOUND"
    INTERNAL = "INTERNAL"
    METHOD_NOT_ALLOWED = "METHOD_NOT_ALLOWED"


# Refusals that concern one input of a batch (an image, a manifest row): a batch reports
# them and goes on. Any other error (the policy, the catalog, the template key) stops it.
ITEM_CODES = frozenset({
    ErrorCode.INVALID_IMAGE, ErrorCode.IMAGE_TOO_LARGE, ErrorCode.FILE_NOT_FOUND, ErrorCode.NO_FACE,
    ErrorCode.TOO_MANY_FACES, ErrorCode.LOW_QUALITY, ErrorCode.INVALID_MANIFEST,
})


# What a client of the service is told where the message meant for the operator would say
# too much: where the database is (host, user, database name) is the service's log's to say.
UNAVAILABLE_TO_CLIENTS = "the service's database does not answer; try again later (the service log says why)"


def client_message(code: ErrorCode, message: str) -> str:
    """The message an HTTP client gets for `code`: the operator's, except where it would
    describe the installation's insides to anyone who can reach the port."""
    return UNAVAILABLE_TO_CLIENTS if code is ErrorCode.DATABASE_UNAVAILABLE else message


class FacegateError(Exception):
    """A refusal with a stable code, a human message and optional structured details.

    Details never hold images or templates: they are shown to callers and may be logged.
    """

    def __init__(self, code: ErrorCode, message: str, **details: Any) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.details = details

    def __reduce__(self) -> tuple[Any, ...]:
        """Pickle with code and details, so refusals cross process boundaries (worker pools)."""
        return (_rebuild, (type(self), self.code, self.message, self.details))

    def to_dict(self) -> dict[str, Any]:
        """The error as the JSON body shared by CLI and HTTP: `{"code", "message", ...}`."""
        body: dict[str, Any] = {"code": self.code.value, "message": self.message}
        body.update(self.details)
        return body

    def __repr__(self) -> str:
        return f"FacegateError({self.code.value!r}, {self.message!r})"


def _rebuild(cls: type[FacegateError], code: ErrorCode, message: str, details: dict[str, Any]) -> FacegateError:
    error = cls.__new__(cls)
    FacegateError.__init__(error, code, message, **details)
    return error
