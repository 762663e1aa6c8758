"""Every face operation through the real `aws` CLI (awscli), only `--endpoint-url` changed.

The CLI cannot send facegate's purpose headers, so it uses a key bound to its purpose
(`facegate key create archive --purpose photo_library`): the credential carries the
purpose. The CLI's own botocore validates the requests and parses the answers; its JSON
output is what a shell script would read.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

from tests.conftest import PEERS
from tests.service.server import Server, lfw

AWS = Path(sys.executable).parent / "aws"
GROUP = PEERS / "insightface" / "python-package" / "t1.jpg"


class AwsCli:
    def __init__(self, server: Server, credential: dict[str, Any], home: Path) -> None:
        self.url = server.url
        self.env = {
            "PATH": os.environ.get("PATH", ""), "HOME": str(home),
            "AWS_ACCESS_KEY_ID": str(credential["aws_access_key_id"]),
            "AWS_SECRET_ACCESS_KEY": str(credential["aws_secret_access_key"]),
            "AWS_DEFAULT_REGION": "ap-southeast-2", "AWS_CONFIG_FILE": str(home / "none"),
            "AWS_SHARED_CREDENTIALS_FILE": str(home / "none"), "AWS_MAX_ATTEMPTS": "1",
            "AWS_RETRY_MODE": "standard", "AWS_EC2_METADATA_DISABLED": "true",
        }

    def run(self, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([str(AWS), "rekognition", *args, "--endpoint-url", self.url, "--output", "json"],
                              env=self.env, capture_output=True, text=True, timeout=120, check=False)

    def __call__(self, *args: str) -> dict[str, Any]:
        done = self.run(*args)
        assert done.returncode == 0, f"aws rekognition {args[0]} failed: {done.stderr}"
        answer: dict[str, Any] = json.loads(done.stdout) if done.stdout.strip() else {}
        return answer


def fileb(person: str, n: int) -> str:
    return f"fileb://{lfw(person, n)}"


def test_every_face_operation_with_the_aws_cli(
    aws_server: Server, credentials: dict[str, dict[str, Any]], tmp_path: Path
) -> None:
    aws = AwsCli(aws_server, credentials["archive-cli"], tmp_path)
    cid = "cli-every-operation"
    assert aws("create-collection", "--collection-id", cid)["StatusCode"] == 200
    faces = {}
    for person, n in (("Tony_Blair", 1), ("Tony_Blair", 2), ("Colin_Powell", 1)):
        indexed = aws("index-faces", "--collection-id", cid, "--image-bytes", fileb(person, n),
                      "--external-image-id", f"{person}-{n}", "--max-faces", "1")
        faces[f"{person}-{n}"] = indexed["FaceRecords"][0]["Face"]["FaceId"]
    assert aws("describe-collection", "--collection-id", cid)["FaceCount"] == 3
    assert cid in aws("list-collections")["CollectionIds"]
    listed = aws("list-faces", "--collection-id", cid, "--max-items", "2")  # the CLI's own pagination
    assert len(listed["Faces"]) == 2 and listed["NextToken"]
    rest = aws("list-faces", "--collection-id", cid, "--starting-token", listed["NextToken"])
    assert {f["FaceId"] for f in listed["Faces"] + rest["Faces"]} == set(faces.values())

    aws("create-user", "--collection-id", cid, "--user-id", "blair")
    associated = aws("associate-faces", "--collection-id", cid, "--user-id", "blair",
                     "--face-ids", faces["Tony_Blair-1"], faces["Tony_Blair-2"])
    assert len(associated["AssociatedFaces"]) == 2
    assert aws("list-users", "--collection-id", cid)["Users"] == [{"UserId": "blair", "UserStatus": "ACTIVE"}]

    found = aws("search-faces-by-image", "--collection-id", cid, "--image-bytes", fileb("Tony_Blair", 4))
    assert found["FaceMatches"] and {m["Face"]["ExternalImageId"] for m in found["FaceMatches"]} <= {"Tony_Blair-1", "Tony_Blair-2"}
    by_face = aws("search-faces", "--collection-id", cid, "--face-id", faces["Tony_Blair-1"])
    assert [m["Face"]["FaceId"] for m in by_face["FaceMatches"]] == [faces["Tony_Blair-2"]]
    users = aws("search-users", "--collection-id", cid, "--face-id", faces["Tony_Blair-2"])
    assert users["UserMatches"][0]["User"]["UserId"] == "blair"
    by_image = aws("search-users-by-image", "--collection-id", cid, "--image-bytes", fileb("Tony_Blair", 3))
    assert by_image["UserMatches"][0]["User"]["UserId"] == "blair"

    compared = aws("compare-faces", "--source-image-bytes", fileb("Tony_Blair", 1),
                   "--target-image-bytes", fileb("Tony_Blair", 4))
    assert len(compared["FaceMatches"]) == 1
    detected = aws("detect-faces", "--image-bytes", f"fileb://{GROUP}", "--attributes", "ALL")
    assert len(detected["FaceDetails"]) >= 3 and not any("AgeRange" in d for d in detected["FaceDetails"])

    gone = aws("disassociate-faces", "--collection-id", cid, "--user-id", "blair", "--face-ids", faces["Tony_Blair-2"])
    assert gone["DisassociatedFaces"] == [{"FaceId": faces["Tony_Blair-2"]}]
    aws("delete-user", "--collection-id", cid, "--user-id", "blair")
    deleted = aws("delete-faces", "--collection-id", cid, "--face-ids", faces["Colin_Powell-1"])
    assert deleted["DeletedFaces"] == [faces["Colin_Powell-1"]]
    assert aws("delete-collection", "--collection-id", cid)["StatusCode"] == 200

    missing = aws.run("describe-collection", "--collection-id", cid)
    assert missing.returncode != 0
    assert "ResourceNotFoundException" in missing.stderr and "DescribeCollection" in missing.stderr
