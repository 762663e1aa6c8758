"""Each refusal in Rekognition's shape, through the real boto3 client (and raw signed
requests where boto3 would not send the request at all).

botocore raises the client's modelled exception named by `__type`; the tests check that
class, the HTTP status AWS documents, the message, and that the refusal left its one
audit entry and changed nothing else. Governance: a purpose-bound police key is refused
under the 2020 moratorium example policy with AccessDeniedException and the policy's reason.
"""

from __future__ import annotations

import json
import secrets
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from botocore.exceptions import ClientError

from tests.service.aws.conftest import CASE, MAX_IMAGE_BYTES, ClientFactory
from tests.service.aws.model_check import attach
from tests.service.aws.signing import signed_request
from tests.service.server import Server, lfw

GALLERY = "victims-aws"
MORATORIUM_REASON = "Police use of face recognition is paused from 2020-06-10 until further notice."


def photo(person: str = "Tony_Blair", n: int = 1) -> dict[str, bytes]:
    return {"Bytes": lfw(person, n).read_bytes()}


def refused(call: Any, **kwargs: Any) -> ClientError:
    with pytest.raises(ClientError) as raised:
        call(**kwargs)
    return raised.value


def code_of(error: ClientError) -> tuple[str, int]:
    return error.response["Error"]["Code"], error.response["ResponseMetadata"]["HTTPStatusCode"]


def header(error: ClientError) -> dict[str, Any]:
    found: dict[str, Any] = json.loads(error.response["ResponseMetadata"]["HTTPHeaders"]["x-facegate-decision"])
    return found


def fresh_address() -> str:
    """A loopback source address no other test uses (the per-address limit and the
    aggregated refusals of 127.0.0.1 stay the other tests')."""
    return f"127.{secrets.randbelow(200) + 20}.{secrets.randbelow(250)}.{secrets.randbelow(250) + 2}"


def from_address(address: str) -> httpx.Client:
    return httpx.Client(timeout=60, transport=httpx.HTTPTransport(local_address=address))


def entries(server: Server, error: ClientError | httpx.Response) -> list[dict[str, object]]:
    rid = error.headers["x-amzn-requestid"] if isinstance(error, httpx.Response) else error.response["ResponseMetadata"]["RequestId"]
    return server.entry_for(rid)


@pytest.fixture(scope="module")
def gallery(aws_server: Server, rekognition: ClientFactory) -> str:
    """A victim gallery of the nonprofit, with one enrolled face, shared with the police
    for searching to identify victims only (collections belong to their tenant)."""
    polaris = rekognition("polaris")
    polaris.create_collection(CollectionId=GALLERY)
    polaris.index_faces(CollectionId=GALLERY, Image=photo(), ExternalImageId="victim-1")
    aws_server.cli_all([["collection", "share", GALLERY, "--with", "metro-police", "--operations", "search",
                         "--purposes", "victim_identification", "--tenant", "polaris",
                         "--purpose", "victim_identification", "--case-reference", CASE]])
    return GALLERY


def test_police_key_for_an_investigation_is_refused_under_the_moratorium(
    aws_server: Server, rekognition: ClientFactory, gallery: str
) -> None:
    police = rekognition("police-investigation")
    before = aws_server.counts()
    error = refused(police.search_faces_by_image, CollectionId=gallery, Image=photo("Tony_Blair", 2))
    assert code_of(error) == ("AccessDeniedException", 400)
    assert error.response["Error"]["Message"].startswith(MORATORIUM_REASON)
    verdict = json.loads(error.response["ResponseMetadata"]["HTTPHeaders"]["x-facegate-decision"])
    assert (verdict["decision"], verdict["code"], verdict["rule"]) == ("deny", "MORATORIUM", "moratorium:law-enforcement-2020")
    [entry] = entries(aws_server, error)
    assert (entry["tenant"], entry["purpose"], entry["case_reference"], entry["decision"], entry["code"]) == (
        "metro-police", "criminal_investigation", CASE, "deny", "MORATORIUM")
    assert aws_server.counts()[:2] == before[:2]  # no face, no subject changed
    assert code_of(refused(police.index_faces, CollectionId=gallery, Image=photo()))[0] == "AccessDeniedException"
    # The same police tenant, with a key bound to the exempt purpose, may search.
    exempt = rekognition("police-victims").search_faces_by_image(CollectionId=gallery, Image=photo())
    assert exempt["FaceMatches"][0]["Face"]["ExternalImageId"] == "victim-1"
    verdict = json.loads(exempt["ResponseMetadata"]["HTTPHeaders"]["x-facegate-decision"])
    assert (verdict["decision"], verdict["rule"], verdict["review_required"]) == ("allow", "purpose:victim_identification", True)


def test_purpose_headers_and_key_binding(aws_server: Server, rekognition: ClientFactory) -> None:
    """A free key declares its purpose in X-Facegate-Purpose; a bound key cannot be talked out of its own."""
    free = rekognition("archive-free")
    error = refused(free.detect_faces, Image=photo())
    assert code_of(error) == ("AccessDeniedException", 400) and "requires a declared purpose" in error.response["Error"]["Message"]

    def declare(purpose: str) -> Any:
        def add(request: Any, **_: Any) -> None:
            request.headers["X-Facegate-Purpose"] = purpose
        return add

    free.meta.events.register("before-sign.rekognition.DetectFaces", declare("photo_library"))
    assert len(free.detect_faces(Image=photo())["FaceDetails"]) == 1

    bound = rekognition("archive")
    bound.meta.events.register("before-sign.rekognition.DetectFaces", declare("identity_verification"))
    error = refused(bound.detect_faces, Image=photo())
    assert code_of(error) == ("AccessDeniedException", 400)
    assert "bound to purpose 'photo_library'" in error.response["Error"]["Message"]
    [entry] = entries(aws_server, error)
    assert (entry["tenant"], entry["code"], entry["decision"]) == ("archive", "KEY_BOUND", "deny")
    assert header(error) == {"decision": "deny", "code": "KEY_BOUND", "rule": "request:invalid"}


def test_resource_errors(aws_server: Server, rekognition: ClientFactory) -> None:
    client = rekognition("archive-errors")
    check = attach(client)
    client.create_collection(CollectionId="errors-aws")
    assert code_of(refused(client.create_collection, CollectionId="errors-aws")) == ("ResourceAlreadyExistsException", 400)
    missing = refused(client.describe_collection, CollectionId="errors-aws-none")
    assert code_of(missing) == ("ResourceNotFoundException", 400)
    assert header(missing) == {"decision": None, "code": "COLLECTION_NOT_FOUND"}
    assert len(entries(aws_server, missing)) == 1
    unknown_face = refused(client.search_faces, CollectionId="errors-aws", FaceId="00000000-0000-0000-0000-00000000000f")
    assert code_of(unknown_face) == ("ResourceNotFoundException", 400)
    assert code_of(refused(client.delete_user, CollectionId="errors-aws", UserId="nobody"))[0] == "ResourceNotFoundException"
    client.create_user(CollectionId="errors-aws", UserId="someone")
    assert code_of(refused(client.create_user, CollectionId="errors-aws", UserId="someone"))[0] == "ConflictException"
    assert check.failures == [] and check.seen.count(400) == 5  # the refusals carried the headers too


def test_image_errors(aws_server: Server, rekognition: ClientFactory) -> None:
    client = rekognition("archive-errors")
    s3 = refused(client.detect_faces, Image={"S3Object": {"Bucket": "evidence", "Name": "probe.jpg"}})
    assert code_of(s3) == ("InvalidParameterException", 400)
    assert "facegate reads image bytes only" in s3.response["Error"]["Message"]
    assert len(entries(aws_server, s3)) == 1
    garbage = refused(client.detect_faces, Image={"Bytes": b"this is not a photograph"})
    assert code_of(garbage) == ("InvalidImageFormatException", 400)
    huge = refused(client.detect_faces, Image={"Bytes": b"\xff\xd8\xff" + bytes(MAX_IMAGE_BYTES)})
    assert code_of(huge) == ("ImageTooLargeException", 400)
    client.create_collection(CollectionId="errors-aws-images")
    no_face = refused(client.search_faces_by_image, CollectionId="errors-aws-images", Image={"Bytes": _blank_png()})
    assert code_of(no_face) == ("InvalidParameterException", 400)
    assert no_face.response["Error"]["Message"] == "There are no faces in the image. Should be at least 1."
    empty = client.index_faces(CollectionId="errors-aws-images", Image={"Bytes": _blank_png()})
    assert empty["FaceRecords"] == []  # as Rekognition: no faces is an empty answer
    assert json.loads(empty["ResponseMetadata"]["HTTPHeaders"]["x-facegate-decision"]) == {"decision": None, "code": "NO_FACE"}


def _blank_png() -> bytes:
    import io

    from PIL import Image

    out = io.BytesIO()
    Image.new("RGB", (200, 200), (200, 200, 200)).save(out, format="PNG")
    return out.getvalue()


def test_authentication_errors(aws_server: Server, rekognition: ClientFactory, credentials: dict[str, dict[str, Any]]) -> None:
    unknown = refused(rekognition("archive", access_key="AKFGAAAAAAAAAAAAAAAA").list_collections)
    assert code_of(unknown) == ("UnrecognizedClientException", 400)
    assert unknown.response["Error"]["Message"] == "The security token included in the request is invalid."
    wrong = refused(rekognition("archive", secret_key="not-the-secret").list_collections)
    assert code_of(wrong) == ("InvalidSignatureException", 400)
    revoked = refused(rekognition("revoked").list_collections)
    assert code_of(revoked) == ("UnrecognizedClientException", 400) and "revoked" in revoked.response["Error"]["Message"]

    # Refusals before a signature is proved are recorded once per client address and minute,
    # like bad bearer keys (service/refusals.py): from an address of its own, a request is
    # the first of its minute and its entry is written under its request id.
    cred = credentials["archive"]
    forged = signed_request(aws_server.url + "/", "ListCollections", {}, cred["aws_access_key_id"], "not-the-secret")
    address = fresh_address()
    with from_address(address) as client:
        answer = client.post(forged.url, content=forged.body, headers=dict(forged.headers.items()))
    assert (answer.status_code, answer.json()["__type"]) == (400, "InvalidSignatureException")
    [entry] = entries(aws_server, answer)
    assert (entry["tenant"], entry["code"], entry["operation"]) == (None, "UNAUTHENTICATED", "list")
    assert json.loads(str(entry["details"]))["client"] == address

    late = signed_request(aws_server.url + "/", "ListCollections", {}, cred["aws_access_key_id"],
                          cred["aws_secret_access_key"], at=datetime.now(UTC) - timedelta(minutes=20))
    with from_address(fresh_address()) as client:
        answer = client.post(late.url, content=late.body, headers=dict(late.headers.items()))
    assert answer.status_code == 400
    assert answer.json()["__type"] == "InvalidSignatureException"
    assert answer.json()["message"].startswith("Signature expired:")
    assert len(entries(aws_server, answer)) == 1

    tampered = signed_request(aws_server.url + "/", "DeleteCollection", {"CollectionId": "x"},
                              cred["aws_access_key_id"], cred["aws_secret_access_key"])
    answer = httpx.post(tampered.url, content=b'{"CollectionId": "y"}', headers=dict(tampered.headers.items()))
    assert (answer.status_code, answer.json()["__type"]) == (400, "InvalidSignatureException")
    unknown_op = signed_request(aws_server.url + "/", "DetectLabels", {}, cred["aws_access_key_id"], cred["aws_secret_access_key"])
    answer = httpx.post(unknown_op.url, content=unknown_op.body, headers=dict(unknown_op.headers.items()))
    assert (answer.status_code, answer.json()["__type"]) == (400, "UnknownOperationException")


def test_throttling(aws_server: Server, rekognition: ClientFactory) -> None:
    """Past the per-key rate limit: ThrottlingException (500, as Rekognition documents it)."""
    client = rekognition("archive-throttle")
    for _ in range(3 * 120):  # bounded: the bucket holds 120 and refills 2 a second
        try:
            client.list_collections()
        except ClientError as error:
            assert code_of(error) == ("ThrottlingException", 500)
            [entry] = entries(aws_server, error)
            assert entry["code"] == "RATE_LIMITED"
            break
    else:
        pytest.fail("no ThrottlingException after 360 requests")


@pytest.mark.parametrize(("label", "target", "body", "error"), [
    ("a body that is not JSON", "ListCollections", b"{not json", "SerializationException"),
    ("a JSON array", "ListCollections", b"[]", "SerializationException"),
    ("JSON nested 100,000 deep", "ListCollections", b"[" * 100_000 + b"]" * 100_000, "SerializationException"),
    ("a required member missing", "DescribeCollection", b"{}", "InvalidParameterException"),
    ("a member of the wrong type", "ListFaces", b'{"CollectionId": 7}', "InvalidParameterException"),
    ("a limit out of range", "ListFaces", b'{"CollectionId": "c", "MaxResults": 99999}', "InvalidParameterException"),
    ("an image that is not base64", "DetectFaces", b'{"Image": {"Bytes": "@@@"}}', "InvalidParameterException"),
])
def test_raw_requests_botocore_would_not_send(
    aws_server: Server, credentials: dict[str, dict[str, Any]], label: str, target: str, body: bytes, error: str
) -> None:
    """Any client may write to the wire: members are checked by the server, refused before
    the gate, and recorded (one entry, nothing else changed)."""
    cred = credentials["archive-errors"]
    before = aws_server.counts()
    request = signed_request(aws_server.url + "/", target, body, cred["aws_access_key_id"], cred["aws_secret_access_key"])
    answer = httpx.post(request.url, content=request.body, headers=dict(request.headers.items()))
    assert (answer.status_code, answer.json()["__type"]) == (400, error), label
    assert answer.headers["content-type"] == "application/x-amz-json-1.1"
    [entry] = entries(aws_server, answer)
    assert (entry["tenant"], entry["decision"], entry["rule"]) == ("archive", "deny", "request:invalid")
    assert aws_server.counts()[:2] == before[:2]
