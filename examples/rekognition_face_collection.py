"""A face collection with boto3, after AWS's published Rekognition Python example.

AWS's SDK examples (aws-doc-sdk-examples, python/example_code/rekognition,
"rekognition_collections.py") show a collection's life: create it, index the faces of a
few photos, list them, search the collection with another photo, then delete it. This is
that walk-through in our own words. It is written for Amazon Rekognition and runs
unchanged against facegate: the only difference is the endpoint URL the client is given
(`--endpoint-url`; leave it out to talk to AWS itself). Credentials and region come from
the usual AWS places (AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_DEFAULT_REGION).

With facegate, use the `aws_access_key_id` / `aws_secret_access_key` that
`facegate key create TENANT --purpose photo_library --json` prints: the key carries the
purpose every request must declare.

    python examples/rekognition_face_collection.py --endpoint-url http://127.0.0.1:8000 \\
        --collection family-album --probe probe.jpg photo1.jpg photo2.jpg
"""

from __future__ import annotations

import argparse
import logging
from pathlib import Path
from typing import Any

import boto3
from botocore.exceptions import ClientError

log = logging.getLogger(__name__)


class FaceCollection:
    """One Rekognition collection and the calls the walk-through makes on it."""

    def __init__(self, client: Any, collection_id: str) -> None:
        self.client = client
        self.collection_id = collection_id

    def create(self) -> str:
        answer = self.client.create_collection(CollectionId=self.collection_id)
        log.info("created collection %s (%s)", self.collection_id, answer["CollectionArn"])
        return str(answer["CollectionArn"])

    def describe(self) -> dict[str, Any]:
        answer: dict[str, Any] = self.client.describe_collection(CollectionId=self.collection_id)
        return answer

    def index(self, photo: Path, max_faces: int = 1) -> list[dict[str, Any]]:
        """Index the largest face(s) of a photo, naming them after the file."""
        answer = self.client.index_faces(
            CollectionId=self.collection_id, Image={"Bytes": photo.read_bytes()},
            ExternalImageId=photo.name, MaxFaces=max_faces, DetectionAttributes=["DEFAULT"],
        )
        faces = [record["Face"] for record in answer["FaceRecords"]]
        log.info("indexed %d face(s) of %s, %d left out", len(faces), photo.name, len(answer["UnindexedFaces"]))
        return faces

    def faces(self) -> list[dict[str, Any]]:
        """Every face of the collection, page by page."""
        found: list[dict[str, Any]] = []
        for page in self.client.get_paginator("list_faces").paginate(CollectionId=self.collection_id):
            found.extend(page["Faces"])
        return found

    def search(self, photo: Path, threshold: float = 80.0, max_faces: int = 5) -> list[dict[str, Any]]:
        """Faces of the collection that match the largest face of `photo`."""
        answer = self.client.search_faces_by_image(
            CollectionId=self.collection_id, Image={"Bytes": photo.read_bytes()},
            FaceMatchThreshold=threshold, MaxFaces=max_faces,
        )
        matches: list[dict[str, Any]] = answer["FaceMatches"]
        return matches

    def delete_faces(self, face_ids: list[str]) -> list[str]:
        deleted: list[str] = self.client.delete_faces(CollectionId=self.collection_id, FaceIds=face_ids)["DeletedFaces"]
        return deleted

    def delete(self) -> None:
        self.client.delete_collection(CollectionId=self.collection_id)
        log.info("deleted collection %s", self.collection_id)


def walk_through(client: Any, collection_id: str, photos: list[Path], probe: Path) -> list[dict[str, Any]]:
    """Create, index, list, search, clean up; the matches found, printed as they come."""
    collection = FaceCollection(client, collection_id)
    collection.create()
    try:
        for photo in photos:
            collection.index(photo)
        stored = collection.faces()
        print(f"{collection_id}: {collection.describe()['FaceCount']} faces")
        for face in stored:
            print(f"  {face['FaceId']}  from {face.get('ExternalImageId')}")
        matches = collection.search(probe)
        print(f"{probe.name} matches {len(matches)} face(s):")
        for match in matches:
            print(f"  {match['Face']['ExternalImageId']}  similarity {match['Similarity']:.1f}")
        collection.delete_faces([face["FaceId"] for face in stored])
        return matches
    finally:
        try:
            collection.delete()
        except ClientError as error:
            log.warning("could not delete %s: %s", collection_id, error)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--endpoint-url", default=None, help="facegate's URL (omit for Amazon Rekognition)")
    parser.add_argument("--collection", default="face-collection-demo")
    parser.add_argument("--probe", type=Path, required=True, help="photo to search the collection with")
    parser.add_argument("photos", type=Path, nargs="+", help="photos whose faces to index")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(message)s")
    client = boto3.client("rekognition", endpoint_url=args.endpoint_url)  # the one line that differs
    walk_through(client, args.collection, args.photos, args.probe)


if __name__ == "__main__":
    main()
