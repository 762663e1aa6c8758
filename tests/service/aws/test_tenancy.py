"""Tenant boundaries and key holders through the Rekognition door, with the real boto3 client.

A collection belongs to the tenant that created it. Through AWS's API, another tenant's
collection must be indistinguishable from a missing one: the same ResourceNotFoundException,
status, message, decision header and audit record, and nothing changed. ListCollections
lists only what the caller owns or was granted. Every request made with a key that names
its holder records that holder in its audit entry, as on the JSON API.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest
from botocore.exceptions import ClientError

from tests.service.aws.conftest import CASE, ClientFactory
from tests.service.server import Server, lfw

OWNED = "tenancy-archive-gallery"
MISSING = "tenancy-no-such-collection"
HOLDER, INTRUDER = "Ada (archivist)", "Mallory"


def photo(person: str = "Tony_Blair", n: int = 1) -> dict[str, bytes]:
    return {"Bytes": lfw(person, n).read_bytes()}


def request_id(answer: dict[str, Any]) -> str:
    return str(answer["ResponseMetadata"]["RequestId"])


@pytest.fixture(scope="module")
def owned(aws_server: Server, rekognition: ClientFactory) -> dict[str, str]:
    """The archive's collection with one face and one user; ids the intruder will try."""
    archive = rekognition("archive-held")
    archive.create_collection(CollectionId=OWNED)
    [record] = archive.index_faces(CollectionId=OWNED, Image=photo(), ExternalImageId="blair-1", MaxFaces=1)["FaceRecords"]
    archive.create_user(CollectionId=OWNED, UserId="blair")
    return {"face_id": record["Face"]["FaceId"]}


def test_aws_requests_record_the_keys_holder(aws_server: Server, rekognition: ClientFactory, owned: dict[str, str]) -> None:
    held = rekognition("archive-held")
    described = held.describe_collection(CollectionId=OWNED)
    [entry] = aws_server.entry_for(request_id(described))
    assert (entry["tenant"], entry["operation"], entry["key_holder"]) == ("archive", "list", HOLDER)
    # A refusal made before the gate (the key talked out of its binding) names the holder too.
    held.meta.events.register(
        "before-sign.rekognition.DetectFaces",
        lambda request, **_: request.headers.__setitem__("X-Facegate-Purpose", "identity_verification"),
    )
    with pytest.raises(ClientError) as raised:
        held.detect_faces(Image=photo())
    [refusal] = aws_server.entry_for(raised.value.response["ResponseMetadata"]["RequestId"])
    assert (refusal["code"], refusal["key_holder"]) == ("KEY_BOUND", HOLDER)
    # A key that names no holder records none (and its entry still verifies: hashed only when set).
    free = rekognition("archive").list_collections()
    [unnamed] = aws_server.entry_for(request_id(free))
    assert unnamed["tenant"] == "archive" and unnamed["key_holder"] is None


Attempt = Callable[[Any, str, dict[str, str]], Any]
ATTEMPTS: list[tuple[str, Attempt]] = [
    ("DescribeCollection", lambda c, cid, o: c.describe_collection(CollectionId=cid)),
    ("ListFaces", lambda c, cid, o: c.list_faces(CollectionId=cid)),
    ("ListUsers", lambda c, cid, o: c.list_users(CollectionId=cid)),
    ("SearchFacesByImage", lambda c, cid, o: c.search_faces_by_image(CollectionId=cid, Image=photo("Tony_Blair", 2))),
    ("SearchFaces", lambda c, cid, o: c.search_faces(CollectionId=cid, FaceId=o["face_id"])),
    ("SearchUsers", lambda c, cid, o: c.search_users(CollectionId=cid, UserId="blair")),
    ("SearchUsersByImage", lambda c, cid, o: c.search_users_by_image(CollectionId=cid, Image=photo("Tony_Blair", 2))),
    ("IndexFaces", lambda c, cid, o: c.index_faces(CollectionId=cid, Image=photo("Tony_Blair", 3))),
    ("DeleteFaces", lambda c, cid, o: c.delete_faces(CollectionId=cid, FaceIds=[o["face_id"]])),
    ("CreateUser", lambda c, cid, o: c.create_user(CollectionId=cid, UserId="intruder")),
    ("DeleteUser", lambda c, cid, o: c.delete_user(CollectionId=cid, UserId="blair")),
    ("AssociateFaces", lambda c, cid, o: c.associate_faces(CollectionId=cid, UserId="blair", FaceIds=[o["face_id"]])),
    ("DeleteCollection", lambda c, cid, o: c.delete_collection(CollectionId=cid)),
]


def _refusal(client: Any, attempt: Attempt, cid: str, ids: dict[str, str]) -> ClientError:
    with pytest.raises(ClientError) as raised:
        attempt(client, cid, ids)
    return raised.value


@pytest.mark.parametrize("attempt", [a for _, a in ATTEMPTS], ids=[name for name, _ in ATTEMPTS])
def test_another_tenants_collection_is_a_missing_collection(
    aws_server: Server, rekognition: ClientFactory, owned: dict[str, str], attempt: Attempt
) -> None:
    intruder = rekognition("polaris-held")
    before = aws_server.counts()
    foreign = _refusal(intruder, attempt, OWNED, owned)
    missing = _refusal(intruder, attempt, MISSING, owned)
    for error, cid in ((foreign, OWNED), (missing, MISSING)):
        assert error.response["Error"]["Code"] == "ResourceNotFoundException"
        assert error.response["ResponseMetadata"]["HTTPStatusCode"] == 400
        assert error.response["Error"]["Message"] == f"no collection {cid!r}"
    headers = [e.response["ResponseMetadata"]["HTTPHeaders"] for e in (foreign, missing)]
    assert json.loads(headers[0]["x-facegate-decision"]) == json.loads(headers[1]["x-facegate-decision"])
    assert set(foreign.response) == set(missing.response)
    for error, cid in ((foreign, OWNED), (missing, MISSING)):
        [entry] = aws_server.entry_for(error.response["ResponseMetadata"]["RequestId"])
        assert (entry["tenant"], entry["decision"], entry["code"], entry["rule"], entry["collection"]) == (
            "polaris", "deny", "COLLECTION_NOT_FOUND", "collection:not-found", cid)
        assert (entry["key_holder"], entry["purpose"], entry["case_reference"]) == (INTRUDER, "victim_identification", CASE)
    after = aws_server.counts()
    assert after[:2] == before[:2] and after[2] == before[2] + 2  # nothing changed; two denials recorded
    described = rekognition("archive-held").describe_collection(CollectionId=OWNED)
    assert (described["FaceCount"], described["UserCount"]) == (1, 1)


def test_list_collections_shows_only_owned_or_granted(
    aws_server: Server, rekognition: ClientFactory, owned: dict[str, str]
) -> None:
    archive, intruder = rekognition("archive-held"), rekognition("polaris-held")
    intruder.create_collection(CollectionId="tenancy-polaris-own")
    assert OWNED in archive.list_collections()["CollectionIds"]
    assert "tenancy-polaris-own" not in archive.list_collections()["CollectionIds"]
    listed = intruder.list_collections()["CollectionIds"]
    assert OWNED not in listed and "tenancy-polaris-own" in listed
    # Once shared for listing, the collection is listed and described (its ARN names the owner)...
    share = ["collection", "share", OWNED, "--with", "polaris", "--operations", "list",
             "--tenant", "archive", "--purpose", "photo_library"]
    aws_server.cli_all([share])
    assert OWNED in intruder.list_collections()["CollectionIds"]
    described = intruder.describe_collection(CollectionId=OWNED)
    assert described["FaceCount"] == 1 and f":archive:collection/{OWNED}" in described["CollectionARN"]
    # ...but the grant opens listing only: searching it is still a missing collection.
    error = _refusal(intruder, ATTEMPTS[3][1], OWNED, owned)
    assert error.response["Error"]["Code"] == "ResourceNotFoundException"
    # Unshared, it is gone again at the next request.
    aws_server.cli_all([["collection", "unshare", OWNED, "--with", "polaris",
                         "--tenant", "archive", "--purpose", "photo_library"]])
    assert OWNED not in intruder.list_collections()["CollectionIds"]
    error = _refusal(intruder, ATTEMPTS[0][1], OWNED, owned)
    assert error.response["Error"]["Code"] == "ResourceNotFoundException"
