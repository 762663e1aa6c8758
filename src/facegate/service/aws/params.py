"""Reading a Rekognition request body: typed members, or InvalidParameterException.

botocore validates what boto3 sends, but the wire is open to any client: every member is
checked for presence and type here, before an operation sees it. `Image` is accepted as
`Bytes` only; an `S3Object` is refused with a clear message (facegate reads no buckets).
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Mapping
from typing import Any

from facegate.service.aws.errors import AwsError

S3_REFUSED = (
    "facegate reads image bytes only: send Image.Bytes; Image.S3Object is not supported "
    "(facegate has no access to S3 buckets)"
)


def invalid(message: str) -> AwsError:
    return AwsError("InvalidParameterException", message, 400)


class Params:
    """The members of one request; `name` in errors is the member as AWS spells it."""

    def __init__(self, body: Mapping[str, Any]) -> None:
        self._body = body

    def _get(self, name: str, kind: type | tuple[type, ...], required: bool) -> Any:
        value = self._body.get(name)
        if value is None:
            if required:
                raise invalid(f"Request has missing parameter {name}")
            return None
        if isinstance(value, bool) or not isinstance(value, kind):
            raise invalid(f"Request parameter {name} has the wrong type")
        return value

    def text(self, name: str, required: bool = False) -> str | None:
        value: str | None = self._get(name, str, required)
        if value is not None and not value:
            raise invalid(f"Request parameter {name} must not be empty")
        return value

    def required_text(self, name: str) -> str:
        value = self.text(name, required=True)
        if value is None:
            raise invalid(f"Request has missing parameter {name}")
        return value

    def integer(self, name: str, low: int, high: int) -> int | None:
        value: int | None = self._get(name, int, False)
        if value is not None and not low <= value <= high:
            raise invalid(f"Request parameter {name} must be between {low} and {high}")
        return value

    def number(self, name: str, low: float = 0.0, high: float = 100.0) -> float | None:
        value = self._get(name, (int, float), False)
        if value is not None and not low <= float(value) <= high:
            raise invalid(f"Request parameter {name} must be between {low:g} and {high:g}")
        return None if value is None else float(value)

    def texts(self, name: str, required: bool = False, most: int = 4096) -> list[str]:
        value = self._get(name, list, required)
        if value is None:
            return []
        if not value and required:
            raise invalid(f"Request parameter {name} must not be empty")
        if len(value) > most or not all(isinstance(v, str) and v for v in value):
            raise invalid(f"Request parameter {name} must be a list of at most {most} non-empty strings")
        return list(value)

    def choice(self, name: str, choices: tuple[str, ...]) -> str | None:
        value = self.text(name)
        if value is not None and value not in choices:
            raise invalid(f"Request parameter {name} must be one of {', '.join(choices)}")
        return value

    def image(self, name: str) -> bytes:
        """`Image.Bytes` as raw bytes (base64 on the JSON wire)."""
        image = self._get(name, dict, True)
        if image.get("S3Object") is not None:
            raise invalid(S3_REFUSED)
        data = image.get("Bytes")
        if not isinstance(data, str) or not data:
            raise invalid(f"Request parameter {name}.Bytes is missing: {S3_REFUSED}")
        try:
            return base64.b64decode(data, validate=True)
        except (binascii.Error, ValueError):
            raise invalid(f"Request parameter {name}.Bytes is not base64") from None
