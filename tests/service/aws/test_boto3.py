"""Every Rekognition face operation through the real boto3 client against a running server.

Only `endpoint_url` differs from a script written for AWS. botocore validates each request
against its service model; `model_check` checks each raw answer against the same model
(members, types, enums, required members). Photos are real (LFW, the peers' test images).
Each call's request id (`x-amzn-RequestId`) finds exactly one audit entry.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from tests.conftest import PEERS
from tests.service.aws.conftest import ClientFactory
from tests.service.aws.model_check import attach
from tests.service.server import Server, lfw

GROUP = PEERS / "insightface" / "python-package" / "t1.jpg"  # a group photo: several faces
ALL_OPERATIONS = {
    "CreateCollection", "DescribeCollection", "ListCollections", "DeleteCollection", "IndexFaces", "ListFaces",
    "DeleteFaces", "SearchFaces", "SearchFacesByImage", "CompareFaces", "DetectFaces", "CreateUser", "DeleteUser",
    "ListUsers", "AssociateFaces", "DisassociateFaces", "SearchUsers", "SearchUsersByImage",
}


def photo(person: str, n: int) -> dict[str, bytes]:
    return {"Bytes": lfw(person, n).read_bytes()}


def decision(answer: dict[str, Any]) -> dict[str, Any]:
    found: dict[str, Any] = json.loads(answer["ResponseMetadata"]["HTTPHeaders"]["x-facegate-decision"])
    return found


def one_entry(server: Server, answer: dict[str, Any], operation: str) -> dict[str, object]:
    entries = server.entry_for(answer["ResponseMetadata"]["RequestId"])
    assert len(entries) == 1, entries
    assert entries[0]["operation"] == operation
    return entries[0]


def test_every_face_operation(aws_server: Server, rekognition: ClientFactory) -> None:
    client = rekognition("archive")
    check = attach(client)
    cid = "boto3-every-operation"

    made = client.create_collection(CollectionId=cid)
    assert made["StatusCode"] == 200 and made["CollectionArn"].endswith(f":collection/{cid}")
    entry = one_entry(aws_server, made, "create_collection")
    assert (entry["tenant"], entry["purpose"], entry["decision"]) == ("archive", "photo_library", "allow")

    faces: dict[str, str] = {}
    for person, n in (("Tony_Blair", 1), ("Tony_Blair", 2), ("Tony_Blair", 3), ("Colin_Powell", 1), ("Colin_Powell", 2)):
        indexed = client.index_faces(CollectionId=cid, Image=photo(person, n), ExternalImageId=f"{person}-{n}",
                                     MaxFaces=1, QualityFilter="AUTO", DetectionAttributes=["DEFAULT"])
        [record] = indexed["FaceRecords"]
        assert record["Face"]["ExternalImageId"] == f"{person}-{n}"
        box = record["Face"]["BoundingBox"]
        assert 0 < box["Width"] < 1 and 0 <= box["Left"] < 1  # fractions of the image, as Rekognition gives
        assert {lm["Type"] for lm in record["FaceDetail"]["Landmarks"]} >= {"nose"}
        faces[f"{person}-{n}"] = record["Face"]["FaceId"]
        one_entry(aws_server, indexed, "index")

    described = client.describe_collection(CollectionId=cid)
    assert (described["FaceCount"], described["UserCount"]) == (5, 0)
    assert cid in client.list_collections()["CollectionIds"]

    client.create_user(CollectionId=cid, UserId="blair")
    client.create_user(CollectionId=cid, UserId="powell")
    blair = [faces["Tony_Blair-1"], faces["Tony_Blair-2"]]
    associated = client.associate_faces(CollectionId=cid, UserId="blair", FaceIds=[*blair, "00000000-0000-0000-0000-000000000000"])
    assert sorted(f["FaceId"] for f in associated["AssociatedFaces"]) == sorted(blair)
    assert associated["UnsuccessfulFaceAssociations"][0]["Reasons"] == ["FACE_NOT_FOUND"]
    client.associate_faces(CollectionId=cid, UserId="powell", FaceIds=[faces["Colin_Powell-1"], faces["Colin_Powell-2"]])
    assert sorted(u["UserId"] for u in client.list_users(CollectionId=cid)["Users"]) == ["blair", "powell"]
    listed = client.list_faces(CollectionId=cid, UserId="blair")["Faces"]
    assert sorted(f["FaceId"] for f in listed) == sorted(blair) and {f["UserId"] for f in listed} == {"blair"}

    # The contract: a match's Face.ExternalImageId is what IndexFaces stored.
    found = client.search_faces_by_image(CollectionId=cid, Image=photo("Tony_Blair", 4))
    assert found["FaceMatches"], "Blair's fourth photo should match his enrolled faces"
    assert {m["Face"]["ExternalImageId"] for m in found["FaceMatches"]} <= {"Tony_Blair-1", "Tony_Blair-2", "Tony_Blair-3"}
    assert all(m["Face"]["FaceId"] == faces[m["Face"]["ExternalImageId"]] for m in found["FaceMatches"])
    assert 0 < found["SearchedFaceBoundingBox"]["Width"] < 1 and found["SearchedFaceConfidence"] > 50
    verdict = decision(found)
    assert (verdict["decision"], verdict["rule"]) == ("allow", "purpose:photo_library")
    entry = one_entry(aws_server, found, "search_image")
    assert entry["purpose"] == "photo_library" and entry["probe_sha256"]

    by_face = client.search_faces(CollectionId=cid, FaceId=faces["Tony_Blair-3"], MaxFaces=5)
    assert by_face["SearchedFaceId"] == faces["Tony_Blair-3"]
    assert faces["Tony_Blair-3"] not in {m["Face"]["FaceId"] for m in by_face["FaceMatches"]}
    assert {m["Face"]["ExternalImageId"] for m in by_face["FaceMatches"]} <= {"Tony_Blair-1", "Tony_Blair-2"}

    users = client.search_users(CollectionId=cid, FaceId=faces["Tony_Blair-3"])
    assert users["UserMatches"][0]["User"]["UserId"] == "blair" and users["SearchedFace"]["FaceId"] == faces["Tony_Blair-3"]
    by_user = client.search_users(CollectionId=cid, UserId="powell")
    assert by_user["SearchedUser"]["UserId"] == "powell"
    assert "powell" not in {m["User"]["UserId"] for m in by_user["UserMatches"]}
    by_image = client.search_users_by_image(CollectionId=cid, Image=photo("Colin_Powell", 3), MaxUsers=2)
    assert by_image["UserMatches"][0]["User"]["UserId"] == "powell"
    assert by_image["SearchedFace"]["FaceDetail"]["Confidence"] > 50

    same = client.compare_faces(SourceImage=photo("Tony_Blair", 1), TargetImage=photo("Tony_Blair", 4))
    assert len(same["FaceMatches"]) == 1 and not same["UnmatchedFaces"]
    other = client.compare_faces(SourceImage=photo("Tony_Blair", 1), TargetImage=photo("Colin_Powell", 1))
    assert not other["FaceMatches"] and len(other["UnmatchedFaces"]) == 1

    detected = client.detect_faces(Image={"Bytes": GROUP.read_bytes()}, Attributes=["ALL"])
    assert len(detected["FaceDetails"]) >= 3
    for detail in detected["FaceDetails"]:  # by design: no age, gender or emotion
        assert not {"AgeRange", "Gender", "Emotions", "Smile"} & set(detail)

    gone = client.disassociate_faces(CollectionId=cid, UserId="blair", FaceIds=[blair[0], faces["Colin_Powell-1"]])
    assert gone["DisassociatedFaces"] == [{"FaceId": blair[0]}]
    assert gone["UnsuccessfulFaceDisassociations"][0]["Reasons"] == ["ASSOCIATED_TO_A_DIFFERENT_USER"]
    client.delete_user(CollectionId=cid, UserId="blair")
    assert [u["UserId"] for u in client.list_users(CollectionId=cid)["Users"]] == ["powell"]
    assert len(client.list_faces(CollectionId=cid)["Faces"]) == 5  # DeleteUser keeps the faces, as in AWS

    deleted = client.delete_faces(CollectionId=cid, FaceIds=[faces["Colin_Powell-2"], "00000000-0000-0000-0000-000000000001"])
    assert deleted["DeletedFaces"] == [faces["Colin_Powell-2"]]
    assert deleted["UnsuccessfulFaceDeletions"][0]["Reasons"] == ["FACE_NOT_FOUND"]
    assert client.delete_collection(CollectionId=cid)["StatusCode"] == 200
    assert cid not in client.list_collections()["CollectionIds"]

    assert check.failures == []
    assert set(check.checked) == ALL_OPERATIONS


def test_face_match_threshold_only_tightens(rekognition: ClientFactory) -> None:
    """FaceMatchThreshold is read on facegate's similarity scale; below the purpose's it changes nothing."""
    client = rekognition("archive")
    cid = "boto3-threshold"
    client.create_collection(CollectionId=cid)
    client.index_faces(CollectionId=cid, Image=photo("Tony_Blair", 1), ExternalImageId="blair-1")
    loose = client.search_faces_by_image(CollectionId=cid, Image=photo("Tony_Blair", 2), FaceMatchThreshold=10.0)
    purpose_threshold = decision(loose)["threshold"]
    assert purpose_threshold > 10.0 and loose["FaceMatches"]
    assert all(m["Similarity"] >= purpose_threshold for m in loose["FaceMatches"])
    strict = client.search_faces_by_image(CollectionId=cid, Image=photo("Tony_Blair", 2), FaceMatchThreshold=99.99)
    assert decision(strict)["threshold"] == pytest.approx(99.99)
    assert strict["FaceMatches"] == []


def test_pagination_across_pages(rekognition: ClientFactory) -> None:
    """NextToken and MaxResults page through faces, users and collections without gaps or repeats,
    also with boto3's own paginators."""
    client = rekognition("archive-pages")
    check = attach(client)
    cid = "boto3-pages"
    client.create_collection(CollectionId=cid)
    for extra in ("boto3-pages-x", "boto3-pages-y"):
        client.create_collection(CollectionId=extra)
    indexed = [
        client.index_faces(CollectionId=cid, Image=photo("Donald_Rumsfeld", n), MaxFaces=1)["FaceRecords"][0]["Face"]["FaceId"]
        for n in range(1, 6)
    ]
    for n in range(3):
        client.create_user(CollectionId=cid, UserId=f"user-{n}")

    pages, token = [], None
    while True:
        page = client.list_faces(CollectionId=cid, MaxResults=2, **({"NextToken": token} if token else {}))
        pages.append([f["FaceId"] for f in page["Faces"]])
        token = page.get("NextToken")
        if token is None:
            break
    assert [len(p) for p in pages] == [2, 2, 1]
    assert [f for p in pages for f in p] == indexed

    users = [u["UserId"] for p in client.get_paginator("list_users").paginate(CollectionId=cid, PaginationConfig={"PageSize": 1})
             for u in p["Users"]]
    assert users == ["user-0", "user-1", "user-2"]
    collections = [c for p in client.get_paginator("list_collections").paginate(PaginationConfig={"PageSize": 1})
                   for c in p["CollectionIds"]]
    assert {cid, "boto3-pages-x", "boto3-pages-y"} <= set(collections) and len(collections) == len(set(collections))
    faces = [f["FaceId"] for p in client.get_paginator("list_faces").paginate(CollectionId=cid, PaginationConfig={"PageSize": 3})
             for f in p["Faces"]]
    assert faces == indexed
    only = client.list_faces(CollectionId=cid, FaceIds=[indexed[1], indexed[3]])["Faces"]
    assert [f["FaceId"] for f in only] == [indexed[1], indexed[3]]
    assert check.failures == []
