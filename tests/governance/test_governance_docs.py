"""docs/governance.md cannot drift: every operation, denial code and verify kind is in it,
and its offline re-hashing recipe really verifies an export of a real catalog."""

from __future__ import annotations

import io
import re
from pathlib import Path

from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from facegate.governance.audit import AuditEntry, MatchRef, append_entry, export_jsonl
from facegate.governance.permissions import Operation
from tests.governance.gov_support import REPO, at

DOC = (REPO / "docs" / "governance.md").read_text()
DECISION_SOURCE = (REPO / "src" / "facegate" / "governance" / "decision.py").read_text()
VERIFY_SOURCE = (REPO / "src" / "facegate" / "governance" / "audit_verify.py").read_text()


def test_every_operation_is_documented() -> None:
    missing = [op.value for op in Operation if f"`{op.value}`" not in DOC]
    assert missing == []


def test_every_denial_code_and_verify_kind_is_documented() -> None:
    codes = set(re.findall(r"ErrorCode\.([A-Z_]+)", DECISION_SOURCE)) - {"INVALID_ARGUMENT"}
    assert codes and [c for c in sorted(codes) if f"`{c}`" not in DOC] == []
    kinds = set(re.findall(r'"(missing|inserted|link|edited|head)"', VERIFY_SOURCE))
    assert kinds == {"missing", "inserted", "link", "edited", "head"}
    assert [k for k in sorted(kinds) if f"`{k}`" not in DOC] == []


def test_the_offline_recipe_verifies_a_real_export(
    tmp_path: Path, catalog: tuple[Engine, sessionmaker[Session]]
) -> None:
    _, sessions = catalog
    with sessions.begin() as session:
        for i in range(5):
            entry = AuditEntry(
                time=at("2021-05-18T09:00:00Z"), operation="search_image", decision="allow",
                rule="purpose:victim_identification", policy_version="sha256:0123456789abcdef",
                tenant="polaris", case_reference=f"Fall-{i}-Zürich",
                results=(MatchRef(f"face-{i}", None, 88.0 + i / 3),), threshold=83.0 + i / 7,
                details={"requested": {"max_fmr": 1e-6}},
            )  # fmt: skip
            append_entry(session, entry)
    out = io.StringIO()
    with sessions() as session:
        export_jsonl(session, out)
    (tmp_path / "audit.jsonl").write_text(out.getvalue())
    (recipe,) = [block for block in re.findall(r"```python\n(.*?)```", DOC, re.S) if "audit.jsonl" in block]
    code = recipe.replace('open("audit.jsonl")', f"open({str(tmp_path / 'audit.jsonl')!r}, encoding='utf-8')")
    exec(compile(code, "docs/governance.md", "exec"), {})  # raises AssertionError if the recipe fails
    broken = out.getvalue().replace("Fall-3", "Fall-8")
    (tmp_path / "audit.jsonl").write_text(broken)
    try:
        exec(compile(code, "docs/governance.md", "exec"), {})
    except AssertionError as failure:
        assert str(failure) == "4"  # the recipe names the edited entry
    else:
        raise AssertionError("the recipe accepted an edited export")
