"""Image request bodies: JSON with base64 `image.bytes` (as Rekognition takes them) or a
multipart upload (as a browser form or `curl -F image=@photo.jpg` sends them), on one URL.

FastAPI declares one body type per route, so image routes parse theirs here, with the
same pydantic models, and publish both media types in the OpenAPI document through
`openapi_extra` (`image_request_body`). Base64 that is not base64 is refused before any
decision (400 INVALID_ARGUMENT, recorded); bytes that are not an image reach the
operation, whose gate records the INVALID_IMAGE it raises. A form field given twice is
refused (400 INVALID_ARGUMENT) instead of one of its values being picked silently.
"""

from __future__ import annotations

import base64
import binascii
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from fastapi import Request
from fastapi.exceptions import RequestValidationError
from pydantic import BaseModel, ValidationError
from starlette.datastructures import UploadFile
from starlette.exceptions import HTTPException as StarletteHTTPException

from facegate.errors import ErrorCode
from facegate.service.errors import RequestRefused

P = TypeVar("P", bound=BaseModel)

JSON = "application/json"
MULTIPART = "multipart/form-data"


@dataclass(frozen=True, slots=True)
class ImageBody(Generic[P]):
    """The fields of an image request and its images, decoded, by field name."""

    params: P
    images: dict[str, bytes]


def decode_base64(value: str, field: str) -> bytes:
    try:
        return base64.b64decode("".join(value.split()), validate=True)
    except (binascii.Error, ValueError):
        raise RequestRefused(
            ErrorCode.INVALID_ARGUMENT, f"{field}.bytes is not base64", field=f"{field}.bytes"
        ) from None


def _invalid(exc: ValidationError, prefix: tuple[str, ...] = ("body",)) -> RequestValidationError:
    errors = exc.errors(include_url=False, include_input=False, include_context=False)
    return RequestValidationError([{**e, "loc": (*prefix, *e["loc"])} for e in errors])


def image_body(
    params: type[P], request_model: type[P], image_fields: tuple[str, ...] = ("image",)
) -> Callable[[Request], Awaitable[ImageBody[P]]]:
    """A dependency that reads `request_model` as JSON, or `params` plus files as multipart."""

    async def parse(request: Request) -> ImageBody[P]:
        media = request.headers.get("content-type", "").split(";")[0].strip().lower()
        if media == JSON:
            try:
                model = request_model.model_validate_json(await request.body())
            except ValidationError as exc:
                raise _invalid(exc) from None
            return ImageBody(model, {f: decode_base64(getattr(model, f).bytes, f) for f in image_fields})
        if media == MULTIPART:
            return await _multipart(request, params, image_fields)
        raise RequestRefused(
            ErrorCode.UNSUPPORTED_MEDIA_TYPE, f"send {JSON} or {MULTIPART}, not {media or 'no Content-Type'}"
        )

    return parse


async def _multipart(request: Request, params: type[P], image_fields: tuple[str, ...]) -> ImageBody[P]:
    try:
        form = await request.form(max_files=len(image_fields), max_fields=32)
    except StarletteHTTPException as exc:  # malformed multipart
        raise RequestRefused(ErrorCode.INVALID_ARGUMENT, f"unreadable multipart body: {exc.detail}") from None
    images: dict[str, bytes] = {}
    problems: list[dict[str, Any]] = []
    try:
        repeated = sorted(name for name, n in Counter(k for k, _ in form.multi_items()).items() if n > 1)
        if repeated:  # which one would count? Refuse rather than pick one silently.
            raise RequestRefused(
                ErrorCode.INVALID_ARGUMENT, f"form field {repeated[0]!r} is given more than once", field=repeated[0]
            )
        for name in image_fields:
            part = form.get(name)
            if isinstance(part, UploadFile):
                images[name] = await part.read()
            else:
                kind, msg = ("missing", "Field required") if part is None else ("file_required", "must be a file part")
                problems.append({"loc": ("body", name), "msg": msg, "type": kind})
        fields = {k: v for k, v in form.multi_items() if k not in image_fields}
    finally:
        await form.close()
    try:
        model = params.model_validate(fields)
    except ValidationError as exc:
        problems.extend(_invalid(exc).errors())
    if problems:
        raise RequestValidationError(problems)
    return ImageBody(model, images)


def _inline(schema: Any, defs: dict[str, Any]) -> Any:
    """Replace `#/$defs/X` references by their definitions (the spec has no `$defs` of its own)."""
    if isinstance(schema, dict):
        ref = schema.get("$ref", "")
        if ref.startswith("#/$defs/"):
            return _inline(defs[ref.removeprefix("#/$defs/")], defs)
        return {k: _inline(v, defs) for k, v in schema.items() if k != "$defs"}
    if isinstance(schema, list):
        return [_inline(v, defs) for v in schema]
    return schema


def _schema(model: type[BaseModel]) -> dict[str, Any]:
    raw = model.model_json_schema()
    return _inline(raw, raw.get("$defs", {}))


def image_request_body(
    params: type[BaseModel], request_model: type[BaseModel], image_fields: tuple[str, ...] = ("image",)
) -> dict[str, Any]:
    """The OpenAPI `requestBody` of an image route: JSON and multipart, both described."""
    form = _schema(params)
    form.pop("examples", None)
    form["properties"] = {
        **{f: {"type": "string", "format": "binary", "description": "The image file."} for f in image_fields},
        **form.get("properties", {}),
    }
    form["required"] = [*image_fields, *form.get("required", [])]
    form["title"] = f"{request_model.__name__}Form"
    return {"requestBody": {"required": True, "content": {
        JSON: {"schema": _schema(request_model)},
        MULTIPART: {"schema": form},
    }}}
