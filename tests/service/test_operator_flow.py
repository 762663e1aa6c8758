"""The operator's work over HTTP, on a real server with two worker processes sharing one
data directory (the session's server, conftest.py): create a collection, enrol LFW photos,
list, search (by image, face and subject), compare, detect, erase a subject and find
nothing of them, while the audit trail records every request under the id the response
carried, and verifies at the end.
"""

from __future__ import annotations

import json
import secrets
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest

from facegate.client import FacegateClient, FacegateHTTPError
from tests.service.server import LFW as LFW_ROOT
from tests.service.server import Server, lfw

PEOPLE = {"tony": "Tony_Blair", "colin": "Colin_Powell", "donald": "Donald_Rumsfeld", "gerhard": "Gerhard_Schroeder"}
ENROLLED = (1, 2, 3)  # photos enrolled per person; photo 4 is the probe
COLLECTION = "newsroom"


@pytest.fixture(scope="module")
def fg(server: Server, keys: dict[str, str]) -> Iterator[FacegateClient]:
    with server.client(keys["newsroom"]) as client:
        yield client


@pytest.fixture(scope="module")
def enrolled(fg: FacegateClient) -> dict[str, list[str]]:
    """Three photos of each of four people, half sent as JSON and half as multipart."""
    created = fg.create_collection(COLLECTION, "photos to verify")
    assert created["collection_id"] == COLLECTION and created["decision"]["decision"] == "allow"
    faces: dict[str, list[str]] = {}
    for subject, person in PEOPLE.items():
        for n in ENROLLED:
            answer = fg.index_faces(
                COLLECTION, lfw(person, n), subject=subject, external_image_id=f"{person}_{n}",
                purpose="photo_library", max_faces=1, multipart=n % 2 == 0,
            )
            assert len(answer["indexed"]) == 1, answer
            assert answer["indexed"][0]["subject"] == subject
            faces.setdefault(subject, []).append(answer["indexed"][0]["face_id"])
    return faces


def test_openapi_and_health_are_published(server: Server) -> None:
    spec = httpx.get(f"{server.url}/openapi.json").json()
    for path in ("/v1/collections", "/v1/collections/{collection_id}/faces", "/v1/collections/{collection_id}/search",
                 "/v1/audit/verify", "/healthz", "/readyz"):
        assert path in spec["paths"]
    assert "bearer" in str(spec["components"]["securitySchemes"]).lower()
    assert httpx.get(f"{server.url}/docs").status_code == 200
    assert httpx.get(f"{server.url}/healthz").json() == {"status": "ok"}
    assert httpx.get(f"{server.url}/readyz").json()["status"] == "ready"


def test_enrolment_is_idempotent_and_a_second_create_conflicts(
    fg: FacegateClient, enrolled: dict[str, list[str]]
) -> None:
    again = fg.index_faces(COLLECTION, lfw("Tony_Blair", 1), subject="tony", external_image_id="Tony_Blair_1",
                           purpose="photo_library")
    assert again["already_indexed"] is True
    assert [f["face_id"] for f in again["indexed"]] == enrolled["tony"][:1]
    with pytest.raises(FacegateHTTPError) as exc:
        fg.create_collection(COLLECTION)
    assert (exc.value.status, exc.value.code) == (409, "COLLECTION_EXISTS")


def test_listing_pages_through_every_face_and_subject(fg: FacegateClient, enrolled: dict[str, list[str]]) -> None:
    seen, token, pages = [], None, 0
    while True:
        page = fg.list_faces(COLLECTION, limit=5, next_token=token)
        seen += [f["face_id"] for f in page["faces"]]
        pages, token = pages + 1, page["next_token"]
        if token is None:
            break
    assert pages == 3
    assert sorted(seen) == sorted(f for ids in enrolled.values() for f in ids)
    subjects = fg.list_subjects(COLLECTION)["subjects"]
    assert {s["subject"]: s["face_count"] for s in subjects} == {s: 3 for s in PEOPLE}
    described = fg.describe_collection(COLLECTION)
    assert (described["face_count"], described["subject_count"]) == (12, 4)


def test_search_by_image_finds_the_person_and_the_audit_entry_carries_the_request_id(
    server: Server, fg: FacegateClient, enrolled: dict[str, list[str]]
) -> None:
    for subject, person in PEOPLE.items():
        found = fg.search(COLLECTION, lfw(person, 4), purpose="photo_library", max_results=5)
        assert found["matches"], f"no match for {person}"
        best = found["matches"][0]
        assert best["subject"] == subject and best["face_id"] in enrolled[subject]
        assert best["similarity"] >= found["threshold"] == round(found["decision"]["threshold"], 4)
        assert best["estimated_fmr"] <= found["decision"]["max_fmr"] == 1e-3
        assert found["decision"]["rule"] == "purpose:photo_library" and found["investigative_leads"] is False
        entries = server.entry_for(fg.last_request_id or "")
        assert len(entries) == 1 and entries[0]["operation"] == "search_image" and entries[0]["tenant"] == "newsroom"
        assert best["face_id"] in str(entries[0]["results"])


def test_search_by_face_and_by_subject(fg: FacegateClient, enrolled: dict[str, list[str]]) -> None:
    probe = enrolled["colin"][0]
    by_face = fg.search_face(COLLECTION, probe, purpose="photo_library")
    ids = [m["face_id"] for m in by_face["matches"]]
    assert probe not in ids and set(ids) & set(enrolled["colin"][1:])
    by_subject = fg.search_subject(COLLECTION, "colin", purpose="photo_library")
    assert all(m["subject"] != "colin" for m in by_subject["matches"])
    assert by_subject["decision"]["decision"] == "allow"


def test_compare_and_detect(fg: FacegateClient) -> None:
    same = fg.compare(lfw("Tony_Blair", 1), lfw("Tony_Blair", 4), purpose="photo_library")
    other = fg.compare(lfw("Tony_Blair", 1), lfw("Colin_Powell", 1), purpose="photo_library", multipart=True)
    assert same["match"] is True and other["match"] is False
    assert same["similarity"] > other["similarity"]
    faces = fg.detect(lfw("Donald_Rumsfeld", 1), purpose="photo_library")["faces"]
    assert len(faces) == 1 and faces[0]["box"]["width"] > 40


def own_collection(fg: FacegateClient, name: str, people: dict[str, tuple[str, tuple[int, ...]]]) -> dict[str, list[str]]:
    """A collection of a test's own, for tests that change what is stored: the shared
    `enrolled` collection stays as it was, whatever order the tests run in."""
    fg.create_collection(name)
    faces: dict[str, list[str]] = {}
    for subject, (person, numbers) in people.items():
        for n in numbers:
            answer = fg.index_faces(name, lfw(person, n), subject=subject, purpose="photo_library", max_faces=1)
            faces.setdefault(subject, []).extend(f["face_id"] for f in answer["indexed"])
    return faces


def test_two_workers_index_and_search_at_once(server: Server, fg: FacegateClient, keys: dict[str, str]) -> None:
    """Writers and readers in both workers: every request answers 200 and leaves one entry.

    The readers start with the writers (a barrier) and keep searching until the writers are
    done, so searches overlap enrolments however fast or slow the machine is."""
    name = "newsroom-concurrent"
    own_collection(fg, name, {"tony": ("Tony_Blair", (1,))})
    before = server.counts()
    indexed: list[str] = []
    searches: list[int] = []
    start = threading.Barrier(4)
    writing = threading.Event()
    writing.set()

    def enrol(numbers: tuple[int, ...]) -> None:
        with server.client(keys["newsroom"]) as own:
            start.wait(timeout=60)
            for n in numbers:
                answer = own.index_faces(name, lfw("Hugo_Chavez", n), subject="hugo", purpose="photo_library")
                indexed.extend(f["face_id"] for f in answer["indexed"])

    def search() -> None:
        with server.client(keys["newsroom"]) as own:
            start.wait(timeout=60)
            done = 0
            while writing.is_set():
                hits = own.search(name, lfw("Tony_Blair", 4), purpose="photo_library")
                assert hits["matches"][0]["subject"] == "tony"
                done += 1
            searches.append(done)

    with ThreadPoolExecutor(max_workers=4) as pool:
        writers = [pool.submit(enrol, (1, 2, 3)), pool.submit(enrol, (4, 5, 6))]
        readers = [pool.submit(search), pool.submit(search)]
        for work in writers:
            work.result(timeout=300)  # re-raises what failed in the thread
        writing.clear()
        for work in readers:
            work.result(timeout=300)
    after = server.counts()
    assert len(indexed) == 6 and len(searches) == 2 and min(searches) >= 1  # every reader overlapped the writers
    assert after[0] - before[0] == 6 and after[2] - before[2] == 6 + sum(searches)  # one entry per request
    hugo = fg.search(name, lfw("Hugo_Chavez", 7), purpose="photo_library", max_results=10)
    assert {m["face_id"] for m in hugo["matches"] if m["subject"] == "hugo"} <= set(indexed)
    assert hugo["matches"][0]["subject"] == "hugo"


def test_erasure_leaves_nothing_of_the_subject(fg: FacegateClient) -> None:
    name = "newsroom-erasure"
    enrolled = own_collection(fg, name, {"tony": ("Tony_Blair", (1, 2)), "colin": ("Colin_Powell", (1,))})
    erased = fg.erase_subject(name, "tony")
    assert erased["erased"] == "tony" and sorted(erased["face_ids"]) == sorted(enrolled["tony"])
    after = fg.search(name, lfw("Tony_Blair", 4), purpose="photo_library", max_results=50)
    assert all(m["subject"] != "tony" and m["face_id"] not in enrolled["tony"] for m in after["matches"])
    assert [f["subject"] for f in fg.list_faces(name, limit=1000)["faces"]] == ["colin"]
    with pytest.raises(FacegateHTTPError) as exc:
        fg.erase_subject(name, "tony")
    assert (exc.value.status, exc.value.code) == (404, "SUBJECT_NOT_FOUND")
    with pytest.raises(FacegateHTTPError) as exc:
        fg.search_face(name, enrolled["tony"][0], purpose="photo_library")
    assert exc.value.status == 404


def test_delete_one_face(fg: FacegateClient) -> None:
    name = "newsroom-delete"
    [face] = own_collection(fg, name, {"gerhard": ("Gerhard_Schroeder", (1,))})["gerhard"]
    assert fg.delete_face(name, face)["deleted"] == [face]
    with pytest.raises(FacegateHTTPError) as exc:
        fg.delete_face(name, face)
    assert (exc.value.status, exc.value.code) == (404, "FACE_NOT_FOUND")
    assert fg.list_faces(name)["faces"] == []


def test_auth_failures_are_401_and_recorded(server: Server, keys: dict[str, str]) -> None:
    """Refusals before authentication are recorded once per client address and minute
    (test_abuse.py shows the count); this address is used by no other test."""
    address = f"127.0.{secrets.randbelow(200) + 20}.{secrets.randbelow(250) + 2}"

    def client(key: str | None) -> FacegateClient:
        return FacegateClient(server.url, key, transport=httpx.HTTPTransport(local_address=address))

    leaver = client(keys["leaver"])
    key_id = keys["leaver"].split("_")[1]
    assert leaver.list_collections()["decision"]["decision"] == "allow"
    server.cli("key", "revoke", key_id)
    strangers = [client(None), client("fg_0123456789abcdef_not-a-key"), client("garbage")]
    request_ids = []
    for stranger in (*strangers, leaver):
        with pytest.raises(FacegateHTTPError) as exc:
            stranger.list_collections()
        assert (exc.value.status, exc.value.code) == (401, "UNAUTHENTICATED")
        request_ids.append(exc.value.request_id or "")
    opened = [e for rid in request_ids for e in server.entry_for(rid)]
    assert len(opened) in (1, 2)  # 2 only if a minute ended between the requests
    entry = opened[0]
    assert (entry["code"], entry["tenant"], entry["decision"]) == ("UNAUTHENTICATED", None, "deny")
    assert json.loads(str(entry["details"]))["client"] == address
    response = httpx.get(f"{server.url}/v1/collections")
    assert response.headers["www-authenticate"] == "Bearer"


def test_the_audit_trail_is_for_oversight_and_verifies(
    server: Server, fg: FacegateClient, keys: dict[str, str], enrolled: dict[str, list[str]]
) -> None:
    fg.search(COLLECTION, lfw("Tony_Blair", 4), purpose="photo_library")  # at least one, whatever ran before
    with pytest.raises(FacegateHTTPError) as exc:
        fg.verify_audit()
    assert (exc.value.status, exc.value.code) == (403, "ROLE_REQUIRED")
    assert exc.value.error["decision"]["rule"].startswith("role:")
    auditor = server.client(keys["watchdog"])
    seqs, after = [], 0
    while True:
        page = auditor.export_audit(after_seq=after, limit=500)
        seqs += [e["seq"] for e in page["entries"]]
        if page["next_after_seq"] is None:
            break
        after = page["next_after_seq"]
    assert seqs == list(range(1, len(seqs) + 1))
    report = auditor.transparency_report()
    assert report["total"]["requests"] >= len(seqs) and report["by_operation"]["search_image"]["allowed"] >= 1
    verified = auditor.verify_audit()
    assert verified["ok"] is True and verified["first_bad_entry"] is None and verified["entries"] > len(seqs)


PEERS = LFW_ROOT.parent / "peers"
COUPLE = PEERS / "deepface" / "couple.jpg"  # two people side by side
GROUP = PEERS / "insightface" / "python-package" / "t1.jpg"  # six people


def test_a_subject_labels_one_face_of_a_group_photo_over_http(fg: FacegateClient) -> None:
    """JSON and multipart alike: the central face, or the one at subject_box; the others are
    `unindexed` (NOT_SUBJECT_FACE) unless index_unlabelled; one name, external_image_id."""
    name = "newsroom-groups"
    fg.create_collection(name)
    faces = fg.detect(COUPLE, purpose="photo_library")["faces"]
    right = max(faces, key=lambda f: f["box"]["left"])["box"]
    box = (right["left"], right["top"], right["width"], right["height"])
    for multipart in (False, True):
        answer = fg.index_faces(name, COUPLE, subject=f"bob-{int(multipart)}", subject_box=box, purpose="photo_library",
                                external_image_id=f"couple-{int(multipart)}", multipart=multipart)
        assert [(f["subject"], f["box"], f["external_image_id"]) for f in answer["indexed"]] == [
            (f"bob-{int(multipart)}", right, f"couple-{int(multipart)}")]
        assert [u["reason"] for u in answer["unindexed"]] == ["NOT_SUBJECT_FACE"]
    group = fg.index_faces(name, GROUP, subject="anna", purpose="photo_library", external_image_id="t1")
    assert len(group["indexed"]) == 1 and len(group["unindexed"]) == 5
    both = fg.index_faces(name, GROUP, subject="anna", purpose="photo_library", external_image_id="t1-all",
                          index_unlabelled=True)
    assert sorted(f["subject"] or "" for f in both["indexed"]) == ["", "", "", "", "", "anna"]
    assert both["unindexed"] == []
    found = fg.search(name, GROUP, purpose="photo_library", max_results=5)  # its largest face, enrolled unlabelled
    assert "external_image_id" in found["matches"][0] and "external_id" not in found["matches"][0]
    with pytest.raises(FacegateHTTPError) as refused:
        fg.index_faces(name, COUPLE, subject="carl", subject_box=(0, 0, 40, 40), purpose="photo_library")
    assert (refused.value.status, refused.value.code) == (400, "NO_FACE")


def test_compare_answers_every_target_face_over_http(fg: FacegateClient) -> None:
    answer = fg.compare(lfw("Tony_Blair", 1), GROUP, purpose="photo_library")
    assert len(answer["target_faces"]) == 6 and answer["match"] is False and answer["matches"] == []
    assert len(answer["unmatched"]) == 6
    best = max(answer["target_faces"], key=lambda f: f["similarity"])
    assert (answer["best_target_index"], answer["similarity"]) == (best["target_index"], best["similarity"])


def test_matches_carry_the_worst_group_estimate(fg: FacegateClient, enrolled: dict[str, list[str]]) -> None:
    """Over HTTP, every match and comparison carries the population estimate and the worst
    group's (issue 18), and the decision says for whom the rate holds."""
    found = fg.search(COLLECTION, lfw("Colin_Powell", 4), purpose="photo_library")
    assert found["matches"] and found["decision"]["fmr_holds_for"] == "population"
    for match in [*found["matches"], *found["subjects"]]:
        assert 0 < match["estimated_fmr"] <= match["estimated_fmr_worst_group"] <= 1
        assert match["worst_group"].split("=")[0] in {"race", "gender"}
    same = fg.compare(lfw("Tony_Blair", 1), lfw("Tony_Blair", 4), purpose="photo_library")
    assert same["estimated_fmr_worst_group"] >= same["estimated_fmr"] and same["worst_group"]
    assert all(t["worst_group"] for t in same["target_faces"])
