"""The review workflow on a real catalog: a repeated search opens no second lead, four eyes
compares key holders, key holders are hashed into the chain only when set."""

from __future__ import annotations

from dataclasses import replace

import pytest
from sqlalchemy import Engine, update
from sqlalchemy.orm import Session, sessionmaker

from facegate.errors import ErrorCode, FacegateError
from facegate.governance.audit import AuditEntry, MatchRef, append_entry, entry_body
from facegate.governance.audit_verify import verify, verify_naive
from facegate.governance.review import decide_review, list_reviews, open_reviews
from facegate.store.governance_tables import AuditLogRow
from tests.governance.gov_support import admin_record, at

Catalog = tuple[Engine, sessionmaker[Session]]
LEADS = (MatchRef("face-1", "subject-a", 91.5), MatchRef("face-2", None, 86.25))


def _search(when: str, *, case: str = "CASE-1", probe: str | None = "ab" * 32, holder: str | None = "alice",
            results: tuple[MatchRef, ...] = LEADS, purpose: str = "victim_identification") -> AuditEntry:
    return AuditEntry(
        time=at(when), operation="search_image", decision="allow", rule="purpose:victim_identification",
        policy_version="sha256:test", tenant="polaris", key_id="00000000000000aa", sector="nonprofit",
        purpose=purpose, case_reference=case, probe_sha256=probe, results=results,
        key_holder=holder,
    )


def _reviewer(holder: str | None, key_id: str | None = "00000000000000bb") -> AuditEntry:
    return replace(admin_record("2020-07-02T09:00:00Z", actor="polaris"), operation="review",
                   rule="role:reviewer", key_id=key_id, key_holder=holder)


def test_a_repeated_search_opens_no_second_lead(catalog: Catalog) -> None:
    _, sessions = catalog
    with sessions.begin() as session:
        first = open_reviews(session, append_entry(session, _search("2020-07-01T10:00:00Z")).seq)
        again = open_reviews(session, append_entry(session, _search("2020-07-01T11:00:00Z")).seq)
        more = (*LEADS, MatchRef("face-3", None, 84.0))
        wider = open_reviews(session, append_entry(session, _search("2020-07-01T12:00:00Z", results=more)).seq)
        other_case = open_reviews(session, append_entry(session, _search("2020-07-01T13:00:00Z", case="CASE-2")).seq)
        other_probe = open_reviews(session, append_entry(session, _search("2020-07-01T14:00:00Z", probe="cd" * 32)).seq)
    assert [r.face_id for r in first] == ["face-1", "face-2"] and again == []
    assert [r.face_id for r in wider] == ["face-3"]  # only the new candidate
    assert len(other_case) == 2 and len(other_probe) == 2
    assert first[0].searcher_holder == "alice" and first[0].searcher_key_id == "00000000000000aa"
    with sessions() as session:
        assert len(list_reviews(session, tenant="polaris", case_reference="CASE-1")) == 5


def test_only_the_same_evidence_under_the_same_purpose_is_deduplicated(catalog: Catalog) -> None:
    """A lead under a purpose without four eyes must not stand in for the lead a four-eyes
    purpose opens; and a search with no probe image (by face or subject) is no evidence."""
    _, sessions = catalog
    with sessions.begin() as session:
        open_reviews(session, append_entry(session, _search("2020-07-01T10:00:00Z", purpose="missing_person")).seq)
        other_purpose = open_reviews(session, append_entry(session, _search("2020-07-01T11:00:00Z")).seq)
        by_face = open_reviews(session, append_entry(session, _search("2020-07-01T12:00:00Z", probe=None)).seq)
        again_by_face = open_reviews(session, append_entry(session, _search("2020-07-01T13:00:00Z", probe=None)).seq)
    assert [r.purpose for r in other_purpose] == ["victim_identification"] * 2
    assert len(by_face) == 2 and len(again_by_face) == 2


def test_four_eyes_compares_key_holders(catalog: Catalog) -> None:
    _, sessions = catalog
    four = frozenset({"victim_identification"})
    with sessions.begin() as session:
        leads = open_reviews(session, append_entry(session, _search("2020-07-01T10:00:00Z")).seq)
        for who in (_reviewer("alice"), _reviewer("alice", key_id="00000000000000cc"), _reviewer(" Alice ")):
            with pytest.raises(FacegateError) as raised:
                decide_review(session, leads[0].review_id, verdict="confirmed", record=who, four_eyes_purposes=four)
            assert raised.value.code is ErrorCode.FOUR_EYES_REQUIRED  # same person, whichever key
        decided = decide_review(session, leads[0].review_id, verdict="confirmed", note="second pair of eyes",
                                record=_reviewer("bob"), four_eyes_purposes=four)
        # without four eyes the searcher may decide its own lead
        own = decide_review(session, leads[1].review_id, verdict="rejected", record=_reviewer("alice"))
    assert (decided.status, decided.reviewer_holder, decided.searcher_holder, decided.note) == (
        "confirmed", "bob", "alice", "second pair of eyes")
    assert own.status == "rejected"
    with sessions.begin() as session:
        nameless = open_reviews(session, append_entry(session, _search("2020-07-03T10:00:00Z", holder=None,
                                                                         probe="ef" * 32)).seq)
        with pytest.raises(FacegateError) as raised:  # a key without a holder stands for itself
            decide_review(session, nameless[0].review_id, verdict="confirmed", record=_reviewer(None, "00000000000000aa"),
                          four_eyes_purposes=four)
        assert raised.value.code is ErrorCode.FOUR_EYES_REQUIRED
        assert decide_review(session, nameless[0].review_id, verdict="confirmed", record=_reviewer(None),
                             four_eyes_purposes=four).status == "confirmed"


def test_key_holders_are_hashed_only_when_set(catalog: Catalog) -> None:
    _, sessions = catalog
    with sessions.begin() as session:
        without = append_entry(session, _search("2020-07-01T10:00:00Z", holder=None)).seq
        with_holder = append_entry(session, _search("2020-07-01T11:00:00Z", holder="alice")).seq
    with sessions() as session:
        rows = {r.seq: r for r in session.query(AuditLogRow)}
        assert "key_holder" not in entry_body(rows[without].__dict__)
        assert entry_body(rows[with_holder].__dict__)["key_holder"] == "alice"
        assert verify(session).ok and verify_naive(session).ok
    with sessions.begin() as session:  # the holder is covered by the chain: editing it is detected
        session.execute(update(AuditLogRow).where(AuditLogRow.seq == with_holder).values(key_holder="mallory"))
    with sessions() as session:
        result = verify(session)
        assert (result.ok, result.first_bad_entry, result.kind) == (False, with_holder, "edited")
    with sessions.begin() as session:  # nor can a holder be slipped into an entry that had none
        session.execute(update(AuditLogRow).where(AuditLogRow.seq == with_holder).values(key_holder="alice"))
        session.execute(update(AuditLogRow).where(AuditLogRow.seq == without).values(key_holder="alice"))
    with sessions() as session:
        assert (verify(session).first_bad_entry, verify_naive(session).first_bad_entry) == (without, without)
