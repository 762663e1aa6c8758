"""A key bound to a purpose binds the JSON API too: the purpose comes from the key, and a
request that declares another is refused (403 KEY_BOUND, recorded)."""

from __future__ import annotations

from typing import Any

import pytest

from facegate.client import FacegateHTTPError
from tests.service.server import Server, lfw


def test_bound_key_on_the_json_api(aws_server: Server, credentials: dict[str, dict[str, Any]]) -> None:
    with aws_server.client(str(credentials["archive"]["key"])) as client:
        found = client.detect(lfw("Tony_Blair", 1))  # no purpose sent: the key's applies
        assert found["decision"]["rule"] == "purpose:photo_library"
        with pytest.raises(FacegateHTTPError) as refused:
            client.detect(lfw("Tony_Blair", 1), purpose="identity_verification")
    assert refused.value.status == 403 and refused.value.code == "KEY_BOUND"
    [entry] = aws_server.entry_for(str(refused.value.request_id))
    assert (entry["tenant"], entry["code"], entry["operation"]) == ("archive", "KEY_BOUND", "detect")
