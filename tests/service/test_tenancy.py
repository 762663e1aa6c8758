"""Tenant boundaries over HTTP, against a real server running the example policy.

Tenant B tries every collection operation on tenant A's collection: each is refused
exactly as for a collection that does not exist (404 COLLECTION_NOT_FOUND, same message and
body), audited as a denial, and A's data is unchanged. Sharing opens exactly the granted
operations and purposes and a revocation holds at once; audit reading is scoped by role;
leads are reviewed by a second key holder under a four-eyes purpose.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from facegate.client import FacegateClient, FacegateHTTPError
from tests.service.server import EXAMPLE_POLICY, Server, lfw, running_server

A_GALLERY = "a-gallery"
A_SHARED = "a-shared"
MISSING = "zz-no-such-gallery"
CASE = "CASE-T-1"
TENANTS = (
    ("ngo-a", "nonprofit", "victim_identification,research", "operator,reviewer"),
    ("ngo-b", "nonprofit", "victim_identification,research", "operator"),
    ("ngo-c", "nonprofit", "victim_identification,research", "operator,reviewer"),
    ("police-d", "law_enforcement", "victim_identification", "operator"),
    ("board", "government", "", "oversight"),
)


@dataclass
class World:
    server: Server
    keys: dict[str, str]  # "ngo-a" (holder alice), "bob" (ngo-a, holder bob), "ngo-b", ...
    face_ids: list[str]  # A's faces in A_GALLERY, Tony Blair's first
    baseline: dict[str, Any]  # A's own view of its gallery before anyone else touched it

    def client(self, who: str) -> FacegateClient:
        return self.server.client(self.keys[who])


def _a_view(client: FacegateClient, face_id: str) -> dict[str, Any]:
    """What A sees of its gallery: counts, faces, subjects and a search's results."""
    described = client.describe_collection(A_GALLERY)
    found = client.search_face(A_GALLERY, face_id, purpose="research")
    return {
        "counts": (described["face_count"], described["subject_count"]),
        "faces": sorted(f["face_id"] for f in client.list_faces(A_GALLERY)["faces"]),
        "subjects": sorted(s["subject"] for s in client.list_subjects(A_GALLERY)["subjects"]),
        "search": [(m["face_id"], m["similarity"]) for m in found["matches"]],
    }


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory, model_cache: Path) -> Iterator[World]:
    home = tmp_path_factory.mktemp("tenancy")
    with running_server(home, model_cache, policy=EXAMPLE_POLICY, tenants=TENANTS,
                        settings={"FACEGATE_RATE_LIMIT_PER_MINUTE": "0"}) as server:
        made = server.cli_all([
            ["key", "create", "ngo-a", "--holder", "alice"],
            ["key", "create", "ngo-a", "--holder", "bob"],
            ["key", "create", "ngo-b", "--holder", "mallory"],
        ])
        keys = {**server.keys, "ngo-a": str(made[0]["key"]), "bob": str(made[1]["key"]), "ngo-b": str(made[2]["key"])}
        assert made[0]["holder"] == "alice" and made[0]["tenant"] == "ngo-a"
        with server.client(keys["ngo-a"]) as a:
            assert a.create_collection(A_GALLERY)["owner"] == "ngo-a"
            a.create_collection(A_SHARED)
            ids = []
            for person, n in (("Tony_Blair", 1), ("Tony_Blair", 2), ("Colin_Powell", 1)):
                subject = person.lower()
                done = a.index_faces(A_GALLERY, lfw(person, n), subject=subject, purpose="research")
                ids += [f["face_id"] for f in done["indexed"]]
            a.index_faces(A_SHARED, lfw("Tony_Blair", 1), subject="tony_blair", purpose="research")
            baseline = _a_view(a, ids[0])
        assert baseline["counts"] == (3, 2) and len(baseline["search"]) >= 1
        yield World(server, keys, ids, baseline)


def _image(path: Path) -> dict[str, str]:
    return {"bytes": base64.b64encode(path.read_bytes()).decode()}


Call = Callable[[FacegateClient, str, World], Any]
SEARCH = {"purpose": "research"}
ROWS: list[tuple[str, Call]] = [
    ("describe", lambda c, cid, w: c.describe_collection(cid)),
    ("list faces", lambda c, cid, w: c.list_faces(cid)),
    ("list subjects", lambda c, cid, w: c.list_subjects(cid)),
    ("search by image", lambda c, cid, w: c.search(cid, lfw("Tony_Blair", 3), **SEARCH)),
    ("search by image, not even an image", lambda c, cid, w: c.request(
        "POST", f"/v1/collections/{cid}/search", json={"image": {"bytes": "bm90IGFuIGltYWdl"}, **SEARCH})),
    ("search by face", lambda c, cid, w: c.search_face(cid, w.face_ids[0], **SEARCH)),
    ("search by subject", lambda c, cid, w: c.search_subject(cid, "tony_blair", **SEARCH)),
    ("index", lambda c, cid, w: c.index_faces(cid, lfw("Tony_Blair", 3), subject="tony_blair", **SEARCH)),
    ("create subject", lambda c, cid, w: c.create_subject(cid, "intruder")),
    ("associate", lambda c, cid, w: c.associate_faces(cid, "tony_blair", [w.face_ids[2]])),
    ("delete face", lambda c, cid, w: c.delete_face(cid, w.face_ids[0])),
    ("erase subject", lambda c, cid, w: c.erase_subject(cid, "tony_blair")),
    ("delete collection", lambda c, cid, w: c.delete_collection(cid)),
    ("share onwards", lambda c, cid, w: c.share_collection(cid, "ngo-b", ["search"])),
    ("unshare", lambda c, cid, w: c.unshare_collection(cid, "ngo-c")),
]


def _refusal(world: World, who: str, collection_id: str, call: Call) -> tuple[FacegateHTTPError, dict[str, Any]]:
    with world.client(who) as client, pytest.raises(FacegateHTTPError) as raised:
        call(client, collection_id, world)
    [entry] = world.server.entry_for(raised.value.request_id or "")
    return raised.value, entry


@pytest.mark.parametrize("call", [c for _, c in ROWS], ids=[label for label, _ in ROWS])
def test_another_tenants_collection_is_a_missing_collection(world: World, call: Call) -> None:
    before = world.server.counts()
    foreign, foreign_entry = _refusal(world, "ngo-b", A_GALLERY, call)
    missing, missing_entry = _refusal(world, "ngo-b", MISSING, call)
    for error, cid in ((foreign, A_GALLERY), (missing, MISSING)):
        assert (error.status, error.code, error.message) == (404, "COLLECTION_NOT_FOUND", f"no collection {cid!r}")
        assert error.error["collection_id"] == cid
    assert set(foreign.error) == set(missing.error) == {"code", "message", "request_id", "collection_id"}
    for entry, cid in ((foreign_entry, A_GALLERY), (missing_entry, MISSING)):
        assert (entry["decision"], entry["code"], entry["rule"], entry["tenant"], entry["collection"]) == (
            "deny", "COLLECTION_NOT_FOUND", "collection:not-found", "ngo-b", cid)
        assert entry["key_holder"] == "mallory" and entry["results"] == "[]"
    after = world.server.counts()
    assert after[:2] == before[:2] and after[2] == before[2] + 2  # nothing changed; two denials recorded
    with world.client("ngo-a") as a:
        assert _a_view(a, world.face_ids[0]) == world.baseline


def test_listing_shows_only_owned_or_granted_collections(world: World) -> None:
    with world.client("ngo-a") as a, world.client("ngo-b") as b:
        assert {A_GALLERY, A_SHARED} <= {c["collection_id"] for c in a.list_collections()["collections"]}
        assert not {A_GALLERY, A_SHARED} & {c["collection_id"] for c in b.list_collections()["collections"]}
        b.create_collection("b-own")
        assert "b-own" in {c["collection_id"] for c in b.list_collections()["collections"]}
        assert "b-own" not in {c["collection_id"] for c in a.list_collections()["collections"]}


def test_a_grant_opens_exactly_its_operations_and_purposes_and_revocation_holds_at_once(world: World) -> None:
    probe = lfw("Tony_Blair", 2)
    with world.client("ngo-a") as a, world.client("ngo-c") as c, world.client("police-d") as police:
        granted = a.share_collection(A_SHARED, "ngo-c", ["search", "list"], ["research"])
        assert {(g["operation"], tuple(g["purposes"])) for g in granted["grants"]} == {
            ("search_image", ("research",)), ("search_face", ("research",)), ("search_subject", ("research",)),
            ("video_search", ("research",)), ("list", ("research",))}
        assert A_SHARED in {x["collection_id"] for x in c.list_collections()["collections"]}
        found = c.search(A_SHARED, probe, purpose="research")
        assert found["decision"]["decision"] == "allow" and found["matches"]
        assert c.describe_collection(A_SHARED)["face_count"] == 1  # list covers describe
        for refused in (
            lambda: c.search(A_SHARED, probe, purpose="victim_identification", case_reference=CASE),  # purpose
            lambda: c.index_faces(A_SHARED, probe, purpose="research"),  # operation
            lambda: c.erase_subject(A_SHARED, "tony_blair"),
            lambda: c.share_collection(A_SHARED, "ngo-b", ["search"]),  # sharing stays the owner's
        ):
            with pytest.raises(FacegateHTTPError) as raised:
                refused()
            assert (raised.value.status, raised.value.code) == (404, "COLLECTION_NOT_FOUND")
        # the NGO's gallery searchable by the police for victim identification only
        a.share_collection(A_SHARED, "police-d", ["search"], ["victim_identification"])
        exact = lfw("Tony_Blair", 1)  # the enrolled photo: a match even at the purpose's FMR of 1e-5
        assert police.search(A_SHARED, exact, purpose="victim_identification", case_reference=CASE)["matches"]
        # revoked: the very next request is refused
        assert sorted(a.unshare_collection(A_SHARED, "ngo-c", ["search"])["revoked"]) == [
            "search_face", "search_image", "search_subject", "video_search"]
        with pytest.raises(FacegateHTTPError) as raised:
            c.search(A_SHARED, probe, purpose="research")
        assert (raised.value.status, raised.value.code) == (404, "COLLECTION_NOT_FOUND")
        assert c.describe_collection(A_SHARED)["face_count"] == 1  # list is still granted
        a.unshare_collection(A_SHARED, "ngo-c")
        a.unshare_collection(A_SHARED, "police-d")
        assert A_SHARED not in {x["collection_id"] for x in c.list_collections()["collections"]}
    shares = world.server.entries("operation = 'share' AND tenant = 'ngo-a' AND decision = 'allow' "
                                  "AND collection = :c", c=A_SHARED)
    actions = [json.loads(str(e["details"])).get("action") for e in shares]
    assert actions.count("grant") >= 2 and actions.count("revoke") >= 3


def test_audit_reading_is_scoped_by_role(world: World) -> None:
    with world.client("ngo-a") as operator:  # operator and reviewer, no auditor
        for read in (operator.export_audit, operator.verify_audit, operator.transparency_report):
            with pytest.raises(FacegateHTTPError) as raised:
                read()
            assert (raised.value.status, raised.value.code) == (403, "ROLE_REQUIRED")
    world.server.cli("tenant", "roles", "ngo-b", "--add", "auditor")
    with world.client("ngo-b") as auditor, world.client("board") as board:
        auditor.list_collections()  # an entry of its own, whichever tests ran before (any order)
        own = _all_entries(auditor)
        everything = _all_entries(board)
        assert own and {e["tenant"] for e in own} == {"ngo-b"}
        assert {"ngo-a", "ngo-b", "local"} <= {e["tenant"] for e in everything}
        assert {e["seq"] for e in own} < {e["seq"] for e in everything}
        assert auditor.transparency_report()["total"]["requests"] < board.transparency_report()["total"]["requests"]
        assert set(auditor.transparency_report()["by_sector"]) == {"nonprofit"}
        assert auditor.verify_audit()["ok"] and board.verify_audit()["ok"]
    reads = world.server.entries("operation = 'audit_read' AND decision = 'allow'")
    scopes = {e["tenant"]: json.loads(str(e["details"]))["scope"] for e in reads
              if json.loads(str(e["details"])).get("scope") is not None}
    assert scopes == {"ngo-b": "ngo-b", "board": "all"}


def _all_entries(client: FacegateClient) -> list[dict[str, Any]]:
    entries, after = [], 0
    while True:
        page = client.export_audit(after_seq=after, limit=1000)
        entries += page["entries"]
        if page["next_after_seq"] is None:
            return entries
        after = page["next_after_seq"]


def test_review_flow_with_four_eyes(world: World) -> None:
    probe = lfw("Tony_Blair", 1)  # enrolled itself: a certain lead
    case = "CASE-FOUR-EYES"
    with world.client("ngo-a") as alice, world.client("bob") as bob, world.client("ngo-c") as other:
        found = alice.search(A_GALLERY, probe, purpose="victim_identification", case_reference=case)
        assert found["investigative_leads"] is True and found["matches"]
        leads = alice.list_reviews(status="pending", case_reference=case)["reviews"]
        assert {lead["face_id"] for lead in leads} == {m["face_id"] for m in found["matches"]}
        lead = leads[0]
        assert {"review_id", "status", "case_reference", "face_id", "subject", "similarity"} <= set(lead)
        assert (lead["status"], lead["case_reference"], lead["purpose"], lead["searcher_holder"]) == (
            "pending", case, "victim_identification", "alice")
        assert 0 < lead["estimated_fmr"] < 1 and lead["decided_at"] is None
        # a reviewer reads the worst group's false-match rate as a search result shows it
        match = next(m for m in found["matches"] if m["face_id"] == lead["face_id"])
        assert lead["estimated_fmr"] <= lead["estimated_fmr_worst_group"] and lead["worst_group"]
        assert (lead["estimated_fmr_worst_group"], lead["worst_group"]) == (
            match["estimated_fmr_worst_group"], match["worst_group"])
        # the same search again opens no second lead
        alice.search(A_GALLERY, probe, purpose="victim_identification", case_reference=case)
        assert len(alice.list_reviews(status="all", case_reference=case)["reviews"]) == len(leads)
        # another tenant neither sees nor decides A's leads
        assert all(r["case_reference"] != case for r in other.list_reviews(status="all")["reviews"])
        with pytest.raises(FacegateHTTPError) as raised:
            other.review(lead["review_id"], "confirmed")
        assert (raised.value.status, raised.value.code) == (404, "REVIEW_NOT_FOUND")
        # the searcher may not confirm its own lead; a second person may
        with pytest.raises(FacegateHTTPError) as raised:
            alice.review(lead["review_id"], "confirmed", "it is him")
        assert (raised.value.status, raised.value.code) == (403, "FOUR_EYES_REQUIRED")
        refused_id = raised.value.request_id
        decided = bob.review(lead["review_id"], "confirmed", "same person: ears, hairline, scar")
        confirmed_id = bob.last_request_id
        assert (decided["status"], decided["reviewer_holder"], decided["note"]) == (
            "confirmed", "bob", "same person: ears, hairline, scar")
        assert decided["decided_at"] is not None and decided["searcher_holder"] == "alice"
        assert alice.list_reviews(status="confirmed", case_reference=case)["reviews"][0]["reviewer_holder"] == "bob"
        with pytest.raises(FacegateHTTPError) as raised:
            bob.review(lead["review_id"], "rejected")
        assert raised.value.code == "INVALID_ARGUMENT"  # decided once
    [refused] = world.server.entry_for(refused_id or "")
    [confirmed] = world.server.entry_for(confirmed_id or "")
    assert (refused["operation"], refused["key_holder"], refused["case_reference"]) == ("review", "alice", None)
    assert '"error":"FOUR_EYES_REQUIRED"' in refused["details"]
    assert (confirmed["operation"], confirmed["key_holder"], confirmed["case_reference"]) == ("review", "bob", case)
    assert '"verdict":"confirmed"' in confirmed["details"]
    with world.client("board") as board:
        assert board.verify_audit()["ok"]


def test_a_key_bound_to_one_case_sees_and_decides_only_that_cases_leads(world: World) -> None:
    """`key create --purpose P --case-reference C` is a credential for one investigation: of
    the tenant's leads it lists, decides (and, in the console, shows) only that case's."""
    made = world.server.cli("key", "create", "ngo-a", "--holder", "carol", "--purpose", "victim_identification",
                            "--case-reference", "CASE-BOUND-1")
    probe = lfw("Tony_Blair", 2)
    with world.client("ngo-a") as alice, world.server.client(str(made["key"])) as carol:
        for case in ("CASE-BOUND-1", "CASE-BOUND-2"):
            assert alice.search(A_GALLERY, probe, purpose="victim_identification", case_reference=case)["matches"]
        mine = carol.list_reviews(status="all")["reviews"]
        assert mine and {r["case_reference"] for r in mine} == {"CASE-BOUND-1"}
        theirs = alice.list_reviews(status="pending", case_reference="CASE-BOUND-2")["reviews"]
        with pytest.raises(FacegateHTTPError) as hidden:
            carol.review(theirs[0]["review_id"], "confirmed")
        assert (hidden.value.status, hidden.value.code) == (404, "REVIEW_NOT_FOUND")
        with pytest.raises(FacegateHTTPError) as other_case:
            carol.list_reviews(status="all", case_reference="CASE-BOUND-2")
        assert (other_case.value.status, other_case.value.code) == (403, "KEY_BOUND")
        decided = carol.review(mine[0]["review_id"], "rejected", "not him")
        assert (decided["status"], decided["reviewer_holder"]) == ("rejected", "carol")
        assert alice.list_reviews(status="pending", case_reference="CASE-BOUND-2")["reviews"] == theirs


def test_purpose_and_case_reach_the_entries_of_grants_and_review_lists(world: World) -> None:
    """The tenancy routes take purpose and case like every other route (a policy may exempt
    any operation by purpose): the grant's in its body, the listing's in the query."""
    case = "CASE-P-1"
    with world.client("ngo-a") as a:
        a.create_collection("a-purposeful", purpose="research", case_reference=case)
        a.share_collection("a-purposeful", "ngo-c", ["list"], purpose="research", case_reference=case)
        granted = a.last_request_id
        a.list_reviews(status="all", case_reference=case, purpose="research")
        listed = a.last_request_id
        a.unshare_collection("a-purposeful", "ngo-c", purpose="research", case_reference=case)
        revoked = a.last_request_id
    for request_id, operation in ((granted, "share"), (listed, "review"), (revoked, "share")):
        [entry] = world.server.entry_for(request_id or "")
        assert (entry["operation"], entry["purpose"], entry["case_reference"], entry["decision"]) == (
            operation, "research", case, "allow")


def test_anothers_face_ids_do_nothing_in_ones_own_collection(world: World) -> None:
    """The ids of A's faces, sent by B against B's own collection, reach nothing of A's."""
    a_face = world.face_ids[0]
    with world.client("ngo-b") as b:
        b.create_collection("b-decoy")
        b.create_subject("b-decoy", "decoy")
        with pytest.raises(FacegateHTTPError) as raised:
            b.delete_face("b-decoy", a_face)
        assert (raised.value.status, raised.value.code) == (404, "FACE_NOT_FOUND")
        assert b.associate_faces("b-decoy", "decoy", [a_face])["unknown"] == [a_face]
        with pytest.raises(FacegateHTTPError) as raised:
            b.search_face("b-decoy", a_face, purpose="research")
        assert raised.value.status in (400, 404)
    with world.client("ngo-a") as a:
        assert _a_view(a, a_face) == world.baseline
