"""The AWS JSON 1.1 door: `POST /` with `X-Amz-Target: RekognitionService.<Operation>`.

So that boto3 and the AWS CLI work with only `endpoint_url` changed. Each request is:

1. matched to an operation facegate answers (UnknownOperationException otherwise);
2. refused at once (ThrottlingException) when its client address sent too many
   unauthenticated or failed-signature requests, exactly like a flood of bad bearer keys
   on the JSON API (service/admission.py; service/flood.py answers the flood's bulk);
3. read with the service's body cap (ImageTooLargeException past it), deadline and
   per-worker budget of body bytes (ThrottlingException: REQUEST_TIMEOUT, OVERLOADED);
4. authenticated by its Signature Version 4 signature, recomputed with the key's secret
   (sigv4.py), within AWS's 15-minute window; a failure draws from the address's bucket;
5. rate-limited per key like the JSON API (ThrottlingException);
6. refused unless its body is JSON (`application/x-amz-json-1.1`: SerializationException,
   recorded as UNSUPPORTED_MEDIA_TYPE), and for an operation that takes an image, given
   one of the worker's analysis slots (ThrottlingException, OVERLOADED);
7. given the key's purpose and case when it is bound to them, else the
   `X-Facegate-Purpose` / `X-Facegate-Case-Reference` headers;
8. handed to the operation's mapping (rekognition.py), which calls `facegate.operations`:
   the gate decides and records it like any other request.

Refusals before the gate (steps 1-7 and unreadable members) are recorded with
`Gatekeeper.refuse`, one audit entry each; those of a caller not yet authenticated are
aggregated per client address and minute (service/refusals.py), like the JSON API's. Every answer to an operation carries
`x-amzn-RequestId` (the facegate request id, as in the audit log) and
`X-Facegate-Decision` (compact JSON): the policy's decision, or the refusal as its audit
entry records it.
"""

from __future__ import annotations

import json
import logging
from typing import Any

from fastapi import APIRouter, Request, Response
from starlette.concurrency import run_in_threadpool

from facegate.engine import Facegate
from facegate.errors import ErrorCode, FacegateError
from facegate.gate import Caller
from facegate.governance import Decision, Operation, PolicyDenied
from facegate.governance.keys import apply_binding, aws_credential
from facegate.service.admission import client_address, is_json, read_capped
from facegate.service.aws import sigv4
from facegate.service.aws.errors import AwsError, aws_error
from facegate.service.aws.params import Params
from facegate.service.aws.call import Call, Handler
from facegate.service.aws.rekognition import OPERATIONS

log = logging.getLogger("facegate.service")

CONTENT_TYPE = "application/x-amz-json-1.1"
TARGET_PREFIX = "RekognitionService."
# The operations that carry an image to analyse: each holds one of the worker's analysis slots.
IMAGE_OPERATIONS = frozenset({"IndexFaces", "SearchFacesByImage", "CompareFaces", "DetectFaces", "SearchUsersByImage"})
PURPOSE_HEADER = "x-facegate-purpose"
CASE_HEADER = "x-facegate-case-reference"
DECISION_HEADER = "X-Facegate-Decision"

router = APIRouter()


class Refused(Exception):
    """A refusal before the gate: the AWS error to answer, the facegate code to record, and
    the caller when the signature was verified (else the entry names no tenant)."""

    def __init__(
        self, error: AwsError, code: ErrorCode, caller: Caller | None = None, retry_after: int | None = None
    ) -> None:
        super().__init__(error.message)
        self.error = error
        self.code = code
        self.caller = caller
        self.retry_after = retry_after


def _answer(
    request: Request, body: dict[str, Any], status: int, decision: dict[str, Any] | None,
    retry_after: int | None = None,
) -> Response:
    headers = {"x-amzn-RequestId": request.state.request_id}
    if retry_after:
        headers["Retry-After"] = str(retry_after)
    if decision is not None:
        headers[DECISION_HEADER] = json.dumps(decision, separators=(",", ":"), ensure_ascii=True)
    return Response(json.dumps(body), status_code=status, media_type=CONTENT_TYPE, headers=headers)


def _decided(decision: Decision | dict[str, Any]) -> dict[str, Any]:
    return decision.to_dict() if isinstance(decision, Decision) else decision


def _refusal(code: ErrorCode) -> dict[str, Any]:
    """A request refused before the policy decided, as its audit entry records it."""
    return {"decision": "deny", "code": code.value, "rule": "request:invalid"}


def _failed(code: ErrorCode) -> dict[str, Any]:
    """An operation that failed after admission (a bad image, an unknown collection): no
    decision to tell beyond the code; its audit entry holds the rest."""
    return {"decision": None, "code": code.value}


def _authenticate(engine: Facegate, request: Request, body: bytes) -> tuple[Caller, str]:
    """The verified caller (tenant, key and its holder, purpose, case) and the signature's region."""
    headers = request.headers
    try:
        signed = sigv4.parse_authorization(headers)
        now = engine.now()
        sigv4.check_time(signed, now)
        with engine.read_sessions.begin() as session:  # a read: no writer waits for it
            credential = aws_credential(session, signed.access_key_id)
        if credential is None:
            raise AwsError("UnrecognizedClientException", "The security token included in the request is invalid.")
        secret = engine.secret_box.open(credential.secret_sealed, credential.access_key_id)
        signed_values = {name: headers.getlist(name) for name in signed.signed_headers if name in headers}
        sigv4.verify(
            signed, secret, request.method, request.scope.get("raw_path", b"/").decode("latin-1"),
            request.scope.get("query_string", b"").decode("latin-1"), signed_values, body,
        )
        credential.check_usable(now)
    except AwsError as exc:
        raise Refused(exc, ErrorCode.UNAUTHENTICATED) from None
    except FacegateError as exc:
        if exc.code is ErrorCode.DATABASE_UNAVAILABLE:  # the server's fault, not the signature's
            raise
        raise Refused(aws_error(exc.code, exc.message), exc.code) from None
    try:
        purpose, case = apply_binding(
            credential.purpose, credential.case_reference, headers.get(PURPOSE_HEADER), headers.get(CASE_HEADER)
        )
    except FacegateError as exc:  # KEY_BOUND: the key is known, the request names another purpose or case
        known = Caller(
            tenant=credential.tenant, key_id=credential.key_id, request_id=request.state.request_id,
            key_holder=credential.holder,
        )
        raise Refused(aws_error(exc.code, exc.message), exc.code, known) from None
    caller = Caller(
        tenant=credential.tenant, key_id=credential.key_id, purpose=purpose, case_reference=case,
        request_id=request.state.request_id, key_holder=credential.holder,
    )
    return caller, signed.region


def _refused(engine: Facegate, request: Request, refused: Refused, caller: Caller, operation: Operation) -> Response:
    """Record a refusal made before the gate and answer it: one audit entry for a known
    caller, the client address's aggregated entry for a caller not authenticated."""
    who = refused.caller or caller
    exc = FacegateError(refused.code, refused.error.message)
    if who.tenant is None:
        request.app.state.refusals.refused(client_address(request), operation, exc, request.state.request_id)
    else:
        engine.gate.refuse(who, operation, exc)
    return _answer(request, refused.error.body(), refused.error.status, _refusal(refused.code), refused.retry_after)


def _parse(body: bytes) -> dict[str, Any]:
    try:
        parsed = json.loads(body or b"{}")
    except (json.JSONDecodeError, UnicodeDecodeError, RecursionError):  # RecursionError: nested past sense
        raise AwsError("SerializationException", "The request body is not JSON") from None
    if not isinstance(parsed, dict):
        raise AwsError("SerializationException", "The request body must be a JSON object")
    return parsed


@router.post("/", include_in_schema=False)
async def rekognition(request: Request) -> Response:
    """Answer one Rekognition request in AWS's JSON 1.1 protocol."""
    engine: Facegate = request.app.state.engine
    target = request.headers.get("x-amz-target", "")
    name = target.removeprefix(TARGET_PREFIX)
    if not target.startswith(TARGET_PREFIX) or name not in OPERATIONS:
        error = AwsError("UnknownOperationException", f"facegate does not answer the operation {target!r}")
        return _answer(request, error.body(), error.status, None)  # not an operation: nothing recorded
    handler, operation = OPERATIONS[name]
    state = request.app.state
    if state.engine_problem is not None:  # the wrong template key: nothing may be written
        error = aws_error(state.engine_problem.code, state.engine_problem.message)
        return _answer(request, error.body(), error.status, _failed(state.engine_problem.code))
    anonymous = Caller(request_id=request.state.request_id)
    address = client_address(request)
    try:
        return await _admitted(request, engine, handler, operation, name, anonymous, address)
    except FacegateError as exc:  # met before the gate or while recording a refusal (the database)
        log.error("request %s failed: %s %s", request.state.request_id, exc.code.value, exc.message)
        error = aws_error(exc.code, exc.message)
        return _answer(request, error.body(), error.status, _failed(exc.code))
    finally:
        state.body_budget.release(request)
        if getattr(request.state, "analysis_slot", False):
            state.slots.give_back()


async def _admitted(
    request: Request, engine: Facegate, handler: Handler, operation: Operation, name: str,
    anonymous: Caller, address: str,
) -> Response:
    """Steps 2-8 of the module's list; the caller releases the body bytes and the slot."""
    state = request.app.state
    settings = state.settings
    try:
        wait = state.address_limiter.wait(address)
        if wait:
            message = f"too many unauthenticated requests from {address}: over {state.address_limiter.per_minute} a minute"
            raise Refused(aws_error(ErrorCode.RATE_LIMITED, message), ErrorCode.RATE_LIMITED, retry_after=wait)
        try:
            body = await read_capped(request, settings.max_request_bytes, settings.body_timeout_seconds, state.body_budget)
        except FacegateError as exc:
            retry = exc.details.get("retry_after_seconds")
            raise Refused(aws_error(exc.code, exc.message), exc.code, retry_after=retry) from None
        try:
            caller, region = await run_in_threadpool(_authenticate, engine, request, body)
        except Refused as refused:
            if refused.caller is None:  # no key proved: draws from the address's bucket
                state.address_limiter.take(address)
            elif wait := state.limiter.take(refused.caller.key_id):  # a proved key: from its own
                message = f"Rate exceeded: retry in {wait} s"
                raise Refused(
                    aws_error(ErrorCode.RATE_LIMITED, message), ErrorCode.RATE_LIMITED, refused.caller, retry_after=wait,
                ) from None
            raise
    except Refused as refused:
        return await run_in_threadpool(_refused, engine, request, refused, anonymous, operation)
    wait = state.limiter.take(caller.key_id)
    try:
        if wait:
            message = f"Rate exceeded: retry in {wait} s"
            raise Refused(aws_error(ErrorCode.RATE_LIMITED, message), ErrorCode.RATE_LIMITED, retry_after=wait)
        media = request.headers.get("content-type", "").split(";")[0].strip().lower()
        if body and media != CONTENT_TYPE and not is_json(media):
            raise Refused(
                AwsError("SerializationException", f"send {CONTENT_TYPE}, not {media or 'no Content-Type'}"),
                ErrorCode.UNSUPPORTED_MEDIA_TYPE,
            )
        if name in IMAGE_OPERATIONS:
            request.state.analysis_slot = state.slots.take()
            if not request.state.analysis_slot:
                message = f"all {state.slots.limit} image analyses of this worker are busy"
                raise Refused(aws_error(ErrorCode.OVERLOADED, message), ErrorCode.OVERLOADED, retry_after=1)
        try:
            call = Call(engine, caller, region, Params(_parse(body)))
            answer, decision = await run_in_threadpool(handler, call)
        except AwsError as exc:  # a member refused before the gate saw the request
            raise Refused(exc, ErrorCode.INVALID_ARGUMENT) from None
    except Refused as refused:
        return await run_in_threadpool(_refused, engine, request, refused, caller, operation)
    except PolicyDenied as denied:  # recorded by the gate
        error = aws_error(denied.code, denied.message)
        return _answer(request, error.body(), error.status, _decided(denied.decision))
    except FacegateError as exc:  # recorded by the gate
        error = aws_error(exc.code, exc.message)
        if error.status >= 500:
            log.error("request %s failed: %s %s", request.state.request_id, exc.code.value, exc.message)
        return _answer(request, error.body(), error.status, _failed(exc.code))
    return _answer(request, answer, 200, _decided(decision))
