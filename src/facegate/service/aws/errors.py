"""The one place where a facegate refusal becomes a Rekognition error.

AWS JSON 1.1 errors are `{"__type": <error type>, "message": <text>}` with the HTTP status
AWS gives that type (botocore reads the type from `__type` and raises the client's
modelled exception of that name). `AWS_ERROR` maps every facegate `ErrorCode` to one type
(tests/service/aws/test_error_table.py fails when a new code is missing); a code missing
from the table would answer InternalServerError, never a silent 200.
"""

from __future__ import annotations

from facegate.errors import ErrorCode, client_message

E = ErrorCode


class AwsError(Exception):
    """A refusal in Rekognition's terms: error type, message, HTTP status."""

    def __init__(self, error_type: str, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.error_type = error_type
        self.message = message
        self.status = status

    def body(self) -> dict[str, str]:
        return {"__type": self.error_type, "message": self.message}


INVALID_PARAMETER = ("InvalidParameterException", 400)
ACCESS_DENIED = ("AccessDeniedException", 400)
NOT_FOUND = ("ResourceNotFoundException", 400)
INTERNAL = ("InternalServerError", 500)

# Rekognition's documented statuses: every client error is 400, ThrottlingException and
# InternalServerError are 500 (botocore retries both; tests turn retries off).
AWS_ERROR: dict[ErrorCode, tuple[str, int]] = {
    **dict.fromkeys((
        E.INVALID_ARGUMENT, E.VALIDATION_ERROR, E.NO_FACE, E.TOO_MANY_FACES, E.LOW_QUALITY,
        E.MODEL_MISMATCH, E.INVALID_MANIFEST, E.FILE_NOT_FOUND, E.METHOD_NOT_ALLOWED, E.NOT_FOUND,
        E.POLICY_INVALID, E.CHECKPOINT_INVALID, E.INVALID_VIDEO, E.NO_VIDEO_STREAM, E.VIDEO_CORRUPT,
        E.VIDEO_TRUNCATED, E.VIDEO_DIMENSIONS, E.VIDEO_TOO_LONG,
        # The server's configuration (never met by a request, like POLICY_INVALID), and a
        # client that went away (nobody reads the answer: the code is for the audit entry).
        E.TEMPLATE_KEY_INVALID, E.CLIENT_DISCONNECTED, E.NOT_SUBJECT_FACE,
    ), INVALID_PARAMETER),
    **dict.fromkeys((E.INVALID_IMAGE, E.UNSUPPORTED_MEDIA_TYPE), ("InvalidImageFormatException", 400)),
    **dict.fromkeys((E.IMAGE_TOO_LARGE, E.REQUEST_TOO_LARGE), ("ImageTooLargeException", 400)),
    **dict.fromkeys((
        E.COLLECTION_NOT_FOUND, E.FACE_NOT_FOUND, E.SUBJECT_NOT_FOUND, E.TENANT_NOT_FOUND, E.KEY_NOT_FOUND,
        E.REVIEW_NOT_FOUND, E.CHECKPOINT_NOT_FOUND, E.VIDEO_JOB_NOT_FOUND,
    ), NOT_FOUND),
    **dict.fromkeys((E.COLLECTION_EXISTS, E.TENANT_EXISTS), ("ResourceAlreadyExistsException", 400)),
    E.SUBJECT_EXISTS: ("ConflictException", 400),
    # Every decision of the policy that denies, a key used against its binding, and a console
    # form without its CSRF token (never met through this door; the table is complete).
    **dict.fromkeys((
        E.PURPOSE_REQUIRED, E.PURPOSE_UNKNOWN, E.PURPOSE_NOT_APPROVED, E.MORATORIUM,
        E.CASE_REFERENCE_REQUIRED, E.CONSENT_REFERENCE_REQUIRED, E.LIVE_USE_FORBIDDEN, E.TENANT_SUSPENDED,
        E.OPERATION_NOT_ALLOWED, E.COLLECTION_FORBIDDEN, E.AUDIT_REQUIRED, E.ROLE_REQUIRED, E.FOUR_EYES_REQUIRED,
        E.KEY_BOUND, E.FMR_NOT_CERTIFIABLE, E.CSRF_INVALID,
    ), ACCESS_DENIED),
    E.UNAUTHENTICATED: ("UnrecognizedClientException", 400),
    E.RATE_LIMITED: ("ThrottlingException", 500),
    # A worker with all its image slots or body budget taken: try again, as for throttling.
    E.OVERLOADED: ("ThrottlingException", 500),
    # A body slower than FACEGATE_BODY_TIMEOUT_SECONDS: the client's side (4xx, as HTTP 408),
    # and worth retrying; botocore retries ThrottlingException whatever the status.
    E.REQUEST_TIMEOUT: ("ThrottlingException", 400),
    **dict.fromkeys((
        E.UNKNOWN_MODEL, E.TEMPLATE_KEY_MISMATCH, E.AUDIT_CHAIN_BROKEN, E.INTERNAL, E.CREDENTIALS_KEY_INVALID,
        E.AUDIT_SIGNING_KEY_MISSING, E.AUDIT_SIGNING_KEY_INVALID, E.VIDEO_JOB_INTERRUPTED, E.INVALID_SETTINGS,
        E.DATABASE_UNAVAILABLE,  # a 5xx that botocore retries, as it does every InternalServerError
        E.DATABASE_EXTENSION_MISSING, E.DATABASE_NOT_EMPTY,
    ), INTERNAL),
}


def aws_error(code: ErrorCode, message: str) -> AwsError:
    error_type, status = AWS_ERROR.get(code, INTERNAL)
    return AwsError(error_type, client_message(code, message), status)
