"""Policy files: valid ones load with their hash as version; broken ones are refused with
line and field, and a running holder keeps the policy it had."""

from __future__ import annotations

import logging
import os
from pathlib import Path

import pytest

from facegate.errors import ErrorCode, FacegateError
from facegate.governance.permissions import Operation
from facegate.governance.policy_holder import PolicyHolder
from facegate.governance.policy_loading import (
    DEFAULT_POLICY_SOURCE,
    default_policy,
    load_policy,
    parse_policy,
)
from tests.governance.gov_support import EXAMPLE_POLICY

EXAMPLE = EXAMPLE_POLICY.read_text()


def _line_of(text: str, needle: str, occurrence: int = 1) -> int:
    """1-based line number of the n-th line containing `needle`."""
    hits = [n for n, line in enumerate(text.splitlines(), start=1) if needle in line]
    return hits[occurrence - 1]


def _refusal(text: str) -> FacegateError:
    with pytest.raises(FacegateError) as raised:
        parse_policy(text.encode(), "edited.toml")
    assert raised.value.code is ErrorCode.POLICY_INVALID
    return raised.value


def test_example_policy_loads_with_its_hash_as_version() -> None:
    policy = load_policy(EXAMPLE_POLICY)
    import hashlib

    digest = hashlib.sha256(EXAMPLE_POLICY.read_bytes()).hexdigest()
    assert (policy.sha256, policy.version) == (digest, f"sha256:{digest[:16]}")
    (moratorium,) = policy.rules.moratoria
    assert moratorium.end is None and moratorium.exempt_purposes == ["victim_identification"]
    assert moratorium.sectors == ["law_enforcement"]
    assert Operation.SEARCH_SUBJECT in moratorium.operations and Operation.ERASE not in moratorium.operations
    assert policy.text == EXAMPLE


def test_default_policy_lets_a_fresh_install_work() -> None:
    policy = default_policy()
    assert policy.source == DEFAULT_POLICY_SOURCE
    assert policy.rules.moratoria == [] and policy.rules.collections == []
    assert policy.local_operator_purposes == set(policy.rules.purposes)
    assert "victim_identification" in policy.rules.purposes
    assert policy.version.startswith("sha256:") and len(policy.version) == 7 + 16


def test_a_comment_changes_the_version() -> None:
    assert (
        parse_policy((EXAMPLE + "\n# reviewed\n").encode(), "x").version
        != load_policy(EXAMPLE_POLICY).version
    )


@pytest.mark.parametrize(
    ("label", "old", "new", "needle", "field", "words"),
    [
        ("unknown sector in a moratorium", 'sectors = ["law_enforcement"]\noperations', 'sectors = ["police"]\noperations',
         'sectors = ["police"]', "moratoria[0].sectors[0]", "unknown sector 'police'"),
        ("unknown sector of a purpose", 'sectors = ["research", "nonprofit"]', 'sectors = ["research", "charity"]',
         'sectors = ["research", "charity"]', "purposes.research.sectors[1]", "unknown sector 'charity'"),
        ("local operator's sector", 'sector = "nonprofit"', 'sector = "ngo"', 'sector = "ngo"',
         "local_operator.sector", "unknown sector 'ngo'"),
        ("end before start", "start = 2020-06-10\n", "start = 2020-06-10\nend = 2020-06-01\n", "end = 2020-06-01",
         "moratoria[0].end", "must be after start"),
        ("FMR above 1", "max_fmr = 1e-3\nmax_results = 50", "max_fmr = 1.5\nmax_results = 50", "max_fmr = 1.5",
         "purposes.photo_library.max_fmr", "less than 1"),
        ("FMR of zero", "max_fmr = 1e-3\nmax_results = 100", "max_fmr = 0\nmax_results = 100", "max_fmr = 0",
         "purposes.research.max_fmr", "greater than 0"),
        ("FMR as text", "max_fmr = 1e-3\nmax_results = 50", 'max_fmr = "one in a thousand"\nmax_results = 50',
         'max_fmr = "one', "purposes.photo_library.max_fmr", "valid number"),
        ("duplicate purpose (TOML)", "[purposes.research]", "[purposes.photo_library]", "[purposes.photo_library]",
         "purposes.photo_library", "twice"),
        ("duplicate moratorium id", "\n# Galleries of known", '\n[[moratoria]]\nid = "law-enforcement-2020"\nsectors = ["government"]\n'
         'operations = "*"\nstart = 2021-01-01\nreason = "again"\n\n# Galleries of known',
         'id = "law-enforcement-2020"', "moratoria[1].id", "duplicate id"),
        ("unknown exempt purpose", 'exempt_purposes = ["victim_identification"]', 'exempt_purposes = ["victim_id"]',
         "exempt_purposes", "moratoria[0].exempt_purposes[0]", "unknown purpose 'victim_id'"),
        ("typo in a key", "live_use_allowed = true ", "live_use_alowed = true ", "live_use_alowed",
         "purposes.identity_verification.live_use_alowed", "Extra inputs"),
        ("unknown operation", 'operations = ["search", "compare"', 'operations = ["serch", "compare"', "serch",
         "moratoria[0].operations", "unknown operation 'serch'"),
        ("bad purpose id", "[purposes.research]", "[purposes.Research]", "[purposes.Research]",
         "purposes.Research", "pattern"),
        ("TOML syntax", "max_results = 100", "max_results = = 100", "max_results = = 100", "", "TOML syntax"),
    ],
)  # fmt: skip
def test_errors_name_line_and_field(
    label: str, old: str, new: str, needle: str, field: str, words: str
) -> None:
    assert old in EXAMPLE, label
    text = EXAMPLE.replace(old, new, 1)
    error = _refusal(text)
    occurrence = 2 if label.startswith("duplicate") else 1
    assert error.details["line"] == _line_of(text, needle, occurrence), (label, error.message)
    if field:
        assert error.details["field"] == field, (label, error.message)
    assert words in error.message, (label, error.message)
    assert f"line {error.details['line']}" in error.message


def test_a_missing_field_points_at_its_table() -> None:
    text = EXAMPLE.replace("retention_days = 30\n# no `sectors`", "# no `sectors`", 1)
    error = _refusal(text)
    assert (error.details["field"], error.details["line"]) == (
        "purposes.photo_library.retention_days",
        _line_of(text, "[purposes.photo_library]"),
    )


def test_every_error_is_listed_first_by_line() -> None:
    text = EXAMPLE.replace("max_fmr = 1e-3\nmax_results = 100", "max_fmr = 2\nmax_results = 0", 1)
    error = _refusal(text)
    assert [e["field"] for e in error.details["errors"]] == [
        "purposes.research.max_fmr",
        "purposes.research.max_results",
    ]


def test_not_utf8_and_missing_file_are_refused(tmp_path: Path) -> None:
    error = _refusal_bytes(b'name = "x"\n\xff\n')
    assert error.details["line"] == 2
    with pytest.raises(FacegateError) as raised:
        load_policy(tmp_path / "absent.toml")
    assert raised.value.code is ErrorCode.FILE_NOT_FOUND


def _refusal_bytes(data: bytes) -> FacegateError:
    with pytest.raises(FacegateError) as raised:
        parse_policy(data, "bytes.toml")
    return raised.value


def _write(path: Path, text: str, tick: int) -> None:
    """Write and move mtime forward explicitly: a fast test must not depend on clock granularity."""
    path.write_text(text)
    os.utime(path, ns=(tick * 10**9, tick * 10**9))


def test_holder_reloads_a_good_file_and_keeps_the_old_policy_on_a_bad_one(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "policy.toml"
    _write(path, EXAMPLE, 1)
    holder = PolicyHolder(path)
    first = holder.current()
    assert first.version == load_policy(EXAMPLE_POLICY).version
    assert holder.current() is first  # unchanged file: no re-read

    broken = EXAMPLE.replace('sectors = ["law_enforcement"]\noperations', 'sectors = ["police"]\noperations')
    with caplog.at_level(logging.WARNING, logger="facegate.governance.policy_holder"):
        _write(path, broken, 2)
        assert holder.current() is first
    (warning,) = [r for r in caplog.records if r.levelno == logging.WARNING]
    text = warning.getMessage()
    assert "POLICY_INVALID" in text and "moratoria[0].sectors[0]" in text and first.version in text
    assert "police" not in text  # the file's content is not copied into logs

    extended = EXAMPLE + "\n# 2026 review: unchanged\n"
    _write(path, extended, 3)
    assert holder.current().version == parse_policy(extended.encode(), "x").version


def test_holder_refuses_to_start_on_a_broken_file(tmp_path: Path) -> None:
    path = tmp_path / "policy.toml"
    path.write_text(EXAMPLE.replace("max_fmr = 1e-3", "max_fmr = 3", 1))
    with pytest.raises(FacegateError) as raised:
        PolicyHolder(path)
    assert raised.value.code is ErrorCode.POLICY_INVALID


def test_holder_keeps_the_policy_when_the_file_disappears(tmp_path: Path) -> None:
    path = tmp_path / "policy.toml"
    _write(path, EXAMPLE, 1)
    holder = PolicyHolder(path)
    first = holder.current()
    path.unlink()
    assert holder.current() is first
    assert PolicyHolder(None).current().source == DEFAULT_POLICY_SOURCE
