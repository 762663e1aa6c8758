"""What a caller declares (purpose, case reference, request id) is recorded in the audit
log's columns, and PostgreSQL enforces their lengths where SQLite stores anything: a value
that could not be recorded is INVALID_ARGUMENT on both backends, before any decision,
never a database error that loses the refusal's record. The longest value that fits is
decided and recorded as usual; a refusal recorded outside a decision keeps the words cut
to the columns. A bias audit's dataset name, likewise, is checked before the audit runs."""

from __future__ import annotations

from pathlib import Path

import pytest

from facegate.engine import Facegate
from facegate.errors import ErrorCode, FacegateError
from facegate.gate import Caller
from facegate.governance import Operation, PolicyDenied, read_entries, verify
from facegate.operations import bias, collections, search


def entries(engine: Facegate) -> list[dict]:
    with engine.sessions.begin() as session:
        return list(read_entries(session, limit=1000))


@pytest.mark.parametrize(("field", "length"), [("purpose", 64), ("case_reference", 255), ("request_id", 64)])
def test_a_declared_value_longer_than_its_column_is_refused_unrecorded(
    engine: Facegate, lfw: Path, field: str, length: int
) -> None:
    collections.create_collection(engine, Caller(), "people")
    before = len(entries(engine))
    probe = (lfw / "Tony_Blair" / "Tony_Blair_0001.jpg").read_bytes()
    declared = {"purpose": "victim_identification", "case_reference": "CASE-1", field: "x" * (length + 1)}
    with pytest.raises(FacegateError) as refused:
        search.search_image(engine, Caller(**declared), "people", probe)
    assert refused.value.code is ErrorCode.INVALID_ARGUMENT and refused.value.details["field"] == field
    assert str(length) in refused.value.message
    assert len(entries(engine)) == before


def test_the_longest_unknown_purpose_is_denied_and_recorded(engine: Facegate, lfw: Path) -> None:
    collections.create_collection(engine, Caller(), "people")
    longest = "p" * 64
    with pytest.raises(PolicyDenied) as denied:
        search.search_image(engine, Caller(purpose=longest, request_id="r" * 64), "people",
                            (lfw / "Tony_Blair" / "Tony_Blair_0001.jpg").read_bytes())
    assert denied.value.code is ErrorCode.PURPOSE_UNKNOWN
    last = entries(engine)[-1]
    assert (last["purpose"], last["request_id"], last["decision"]) == (longest, "r" * 64, "deny")


def test_a_refusal_outside_a_decision_is_recorded_with_the_words_cut_to_the_columns(engine: Facegate) -> None:
    caller = Caller(purpose="p" * 100, case_reference="c" * 300, request_id="r" * 80)
    engine.gate.refuse(caller, Operation.SEARCH_IMAGE, FacegateError(ErrorCode.RATE_LIMITED, "slow down"))
    last = entries(engine)[-1]
    assert (last["purpose"], last["case_reference"], last["request_id"]) == ("p" * 64, "c" * 255, "r" * 64)
    assert last["code"] == "RATE_LIMITED" and last["rule"] == "request:invalid"
    with engine.sessions.begin() as session:
        assert verify(session).ok


def test_a_dataset_name_a_recorded_audit_could_not_hold_is_refused_before_the_audit_runs(
    engine: Facegate, tmp_path: Path
) -> None:
    with pytest.raises(FacegateError) as refused:  # the manifest is never read: no work is done
        bias.audit_bias(engine, Caller(), tmp_path / "absent.csv", ["gender"], threshold=95.0, record=True,
                        dataset="d" * 129)
    assert refused.value.code is ErrorCode.INVALID_ARGUMENT and refused.value.details["field"] == "dataset"
