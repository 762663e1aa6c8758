"""AWS's face-collection walk-through (rewritten in examples/) runs against facegate with
only the endpoint URL changed: credentials and region from the usual AWS variables."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

from tests.conftest import REPO
from tests.service.server import Server, lfw

EXAMPLE = REPO / "examples" / "rekognition_face_collection.py"


def test_aws_face_collection_example_runs_unchanged(
    aws_server: Server, credentials: dict[str, dict[str, Any]], tmp_path: Path
) -> None:
    cred = credentials["archive-example"]
    env = {
        "PATH": os.environ.get("PATH", ""), "HOME": str(tmp_path),
        "AWS_ACCESS_KEY_ID": str(cred["aws_access_key_id"]), "AWS_SECRET_ACCESS_KEY": str(cred["aws_secret_access_key"]),
        "AWS_DEFAULT_REGION": "us-west-2", "AWS_CONFIG_FILE": str(tmp_path / "none"),
        "AWS_SHARED_CREDENTIALS_FILE": str(tmp_path / "none"), "AWS_EC2_METADATA_DISABLED": "true",
    }
    photos = [lfw("Tony_Blair", 1), lfw("Tony_Blair", 2), lfw("Colin_Powell", 1)]
    run = subprocess.run(
        [sys.executable, str(EXAMPLE), "--endpoint-url", aws_server.url, "--collection", "example-walk-through",
         "--probe", str(lfw("Tony_Blair", 5)), *map(str, photos)],
        env=env, capture_output=True, text=True, timeout=300, check=False,
    )
    assert run.returncode == 0, run.stderr
    assert "example-walk-through: 3 faces" in run.stdout
    matched = [line.split()[0] for line in run.stdout.splitlines()[run.stdout.splitlines().index(
        next(line for line in run.stdout.splitlines() if "matches" in line)) + 1:]]
    assert matched and set(matched) <= {"Tony_Blair_0001.jpg", "Tony_Blair_0002.jpg"}
    assert "deleted collection example-walk-through" in run.stderr
    assert aws_server.value("SELECT count(*) FROM collections WHERE collection_id = 'example-walk-through'") == 0
    operations = [e["operation"] for e in aws_server.entries("collection = 'example-walk-through'")]
    assert operations == ["create_collection", "index", "index", "index", "list", "list", "search_image", "delete",
                          "delete_collection"]
