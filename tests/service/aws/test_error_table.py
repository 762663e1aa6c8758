"""The one table from facegate's codes to Rekognition's error types is complete, and only
the server's own faults (and throttling, as Rekognition documents it) answer 5xx."""

from __future__ import annotations

from botocore.session import get_session

from facegate.errors import ErrorCode
from facegate.service.aws.errors import AWS_ERROR
from facegate.service.errors import STATUS


def test_every_code_has_a_rekognition_error_type() -> None:
    assert set(AWS_ERROR) == set(ErrorCode)
    for code, (_, status) in AWS_ERROR.items():
        if code is ErrorCode.RATE_LIMITED:
            assert status == 500
        else:
            assert (status >= 500) == (STATUS[code] >= 500), code


def test_every_error_type_a_client_meets_is_one_botocore_knows() -> None:
    """Modelled types become the client's exception classes (client.exceptions.X); the
    others are AWS's common authentication errors, which botocore raises as ClientError."""
    model = get_session().get_service_model("rekognition")
    modelled = {shape.name for shape in (model.shape_for(n) for n in model.shape_names) if shape.metadata.get("exception")}
    common = {"UnrecognizedClientException"}
    assert {error for error, _ in AWS_ERROR.values()} <= modelled | common
