"""Face thumbnails, opt-in per collection, on real LFW photos and a real catalog.

A collection created with `keep_thumbnails` stores a 112-pixel JPEG crop per face, sealed
with the template key exactly as templates are; searches of a purpose that requires review
keep the probe's crop with each lead. Every way a face leaves (face delete, subject erasure,
collection retention, collection delete) takes its crop with it, and the purpose's retention
purges the lead with its probe's. A collection that did not opt in keeps nothing. The
reviewer of the searching tenant sees both crops; any other tenant sees no such lead.
"""

from __future__ import annotations

import base64
import io
import os
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from PIL import Image

from facegate.engine import Facegate
from facegate.errors import ErrorCode, FacegateError
from facegate.gate import Caller
from facegate.operations import admin, bulk, catalog_keys, collections, console, faces, retention, search
from facegate.settings import Settings
from facegate.store.crypto import MAGIC
from tests.backend import execute, rows as catalog
from tests.service.server import EXAMPLE_POLICY, lfw

START = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
SEARCH = {"purpose": "victim_identification", "case_reference": "CASE-7"}


@pytest.fixture()
def clock() -> list[datetime]:
    return [START]


@pytest.fixture()
def engine(settings: Settings, clock: list[datetime]) -> Facegate:
    key = base64.b64encode(os.urandom(32)).decode()
    engine = Facegate(settings.model_copy(update={"template_key": key, "policy": EXAMPLE_POLICY}),
                      clock=lambda: clock[0])
    admin.new_tenant(engine, Caller(), "ngo", "nonprofit", ["victim_identification"], ["operator", "reviewer"])
    admin.new_tenant(engine, Caller(), "other", "nonprofit", ["victim_identification"], ["operator", "reviewer"])
    return engine


def ngo(**extra: str) -> Caller:
    return Caller(tenant="ngo", **extra)


def kept(engine: Facegate, collection_id: str) -> list[bytes]:
    rows = catalog(engine, "SELECT thumbnail FROM faces WHERE collection_id = :c AND thumbnail IS NOT NULL",
                   c=collection_id)
    return [r[0] for r in rows]


def enrol(engine: Facegate, collection_id: str) -> dict[str, str]:
    """Tony Blair and Colin Powell, one photo each; subject -> face id."""
    made = {}
    for person in ("Tony_Blair", "Colin_Powell"):
        done = faces.index_faces(engine, ngo(**SEARCH), collection_id, lfw(person, 1).read_bytes(),
                                 subject=person.lower())
        made[person.lower()] = done.value.indexed[0].face_id
    return made


def test_a_collection_that_opts_in_keeps_sealed_crops_and_the_reviewer_sees_them(engine: Facegate) -> None:
    info = collections.create_collection(engine, ngo(), "kept", keep_thumbnails=True).value
    assert info.keep_thumbnails and collections.info_dict(info)["keep_thumbnails"] is True
    collections.create_collection(engine, ngo(), "plain")
    enrol(engine, "kept")
    enrol(engine, "plain")

    sealed = kept(engine, "kept")
    assert len(sealed) == 2 and all(blob.startswith(MAGIC) for blob in sealed)  # sealed, not a JPEG
    assert all(b"\xff\xd8" not in blob[:64] for blob in sealed)
    crop = Image.open(io.BytesIO(engine.codec.open_thumbnail(sealed[0])))
    assert crop.format == "JPEG" and max(crop.size) == 112
    assert kept(engine, "plain") == []  # no opt-in: nothing kept

    # A template and a thumbnail are sealed for their kind: one never opens as the other.
    with pytest.raises(FacegateError) as swapped:
        engine.codec.decode(sealed[0])
    assert swapped.value.code is ErrorCode.TEMPLATE_KEY_MISMATCH

    found = search.search_image(engine, ngo(**SEARCH), "kept", lfw("Tony_Blair", 3).read_bytes())
    assert found.value.matches and found.value.matches[0].subject == "tony_blair"
    search.search_image(engine, ngo(**SEARCH), "plain", lfw("Colin_Powell", 5).read_bytes())
    leads = catalog(engine, "SELECT r.review_id, r.probe_thumbnail, a.collection FROM reviews r "
                            "JOIN audit_log a ON a.seq = r.audit_seq ORDER BY r.review_id")
    by_collection = {c: [(i, p) for i, p, col in leads if col == c] for c in ("kept", "plain")}
    assert by_collection["kept"] and all(p is not None and p.startswith(MAGIC) for _, p in by_collection["kept"])
    assert by_collection["plain"] and all(p is None for _, p in by_collection["plain"])

    lead = by_collection["kept"][0][0]
    reviewer = ngo()
    assert console.thumbnails_shown(engine, reviewer, [lead, by_collection["plain"][0][0]]) == {
        lead: (True, True), by_collection["plain"][0][0]: (False, False)}
    for which in ("probe", "candidate"):
        jpeg = console.thumbnail(engine, reviewer, lead, which)
        assert Image.open(io.BytesIO(jpeg)).format == "JPEG"
    with pytest.raises(FacegateError) as none_kept:
        console.thumbnail(engine, reviewer, by_collection["plain"][0][0], "probe")
    assert none_kept.value.code is ErrorCode.NOT_FOUND
    with pytest.raises(FacegateError) as foreign:  # another tenant's reviewer: no such lead
        console.thumbnail(engine, Caller(tenant="other"), lead, "probe")
    assert foreign.value.code is ErrorCode.REVIEW_NOT_FOUND
    looks = catalog(engine, "SELECT tenant, details FROM audit_log WHERE operation = 'review' AND seq > :seq "
                            "ORDER BY seq", seq=found.audit_seq)
    shown = [t for t, d in looks if '"action":"review_thumbnail"' in d]
    refused = [(t, d.split('"error":"')[1].split('"')[0]) for t, d in looks if '"error"' in d]
    assert shown == ["ngo", "ngo"] and refused == [("ngo", "NOT_FOUND"), ("other", "REVIEW_NOT_FOUND")]

    # A crop altered in the catalog is refused, never shown as some other face.
    blob = bytearray(catalog(engine, "SELECT probe_thumbnail FROM reviews WHERE review_id = :r", r=lead)[0][0])
    blob[-1] ^= 1
    execute(engine, ("UPDATE reviews SET probe_thumbnail = :b WHERE review_id = :r", {"b": bytes(blob), "r": lead}))
    with pytest.raises(FacegateError) as altered:
        console.thumbnail(engine, reviewer, lead, "probe")
    assert altered.value.code is ErrorCode.TEMPLATE_KEY_MISMATCH


def test_every_way_a_face_leaves_takes_its_thumbnail(engine: Facegate, clock: list[datetime]) -> None:
    collections.create_collection(engine, ngo(), "kept", keep_thumbnails=True)
    made = enrol(engine, "kept")
    search.search_image(engine, ngo(**SEARCH), "kept", lfw("Tony_Blair", 3).read_bytes())
    lead = catalog(engine, "SELECT review_id FROM reviews WHERE face_id = :f", f=made["tony_blair"])[0][0]

    faces.delete_faces(engine, ngo(), "kept", [made["colin_powell"]])
    assert len(kept(engine, "kept")) == 1
    faces.erase_subject(engine, ngo(), "kept", "tony_blair")
    assert kept(engine, "kept") == []
    with pytest.raises(FacegateError) as gone:  # the candidate is erased: the reviewer sees no face
        console.thumbnail(engine, ngo(), lead, "candidate")
    assert gone.value.code is ErrorCode.NOT_FOUND
    assert console.thumbnail(engine, ngo(), lead, "probe")  # the probe stays with its lead ...

    clock[0] = START + timedelta(days=366)  # ... until the purpose's retention purges the lead
    retention.apply(engine, Caller(), at=clock[0])
    assert catalog(engine, "SELECT count(*) FROM reviews WHERE probe_thumbnail IS NOT NULL") == [(0,)]

    collections.create_collection(engine, ngo(), "aging", keep_thumbnails=True, retention_days=30)
    enrol(engine, "aging")
    assert len(kept(engine, "aging")) == 2
    retention.apply(engine, Caller(), at=clock[0] + timedelta(days=31))
    assert kept(engine, "aging") == []

    collections.create_collection(engine, ngo(), "closing", keep_thumbnails=True)
    enrol(engine, "closing")
    collections.delete_collection(engine, ngo(), "closing")
    assert catalog(engine, "SELECT count(*) FROM faces WHERE thumbnail IS NOT NULL") == [(0,)]


def test_bulk_enrolment_keeps_thumbnails_only_where_asked(engine: Facegate, tmp_path: Path) -> None:
    manifest = tmp_path / "faces.csv"
    manifest.write_text("path,subject\n" + "".join(f"{lfw(p, 1)},{p.lower()}\n" for p in ("Tony_Blair", "Colin_Powell")))
    for name, keep in (("kept", True), ("plain", False)):
        collections.create_collection(engine, ngo(), name, keep_thumbnails=keep)
        report = bulk.index_manifest(engine, ngo(**SEARCH), name, manifest, workers=1)
        assert len(report.indexed) == 2
    sealed = kept(engine, "kept")
    assert len(sealed) == 2 and all(blob.startswith(MAGIC) for blob in sealed)
    assert max(Image.open(io.BytesIO(engine.codec.open_thumbnail(sealed[0]))).size) == 112
    assert kept(engine, "plain") == []


def test_a_rekey_reseals_thumbnails_and_probe_crops(engine: Facegate) -> None:
    collections.create_collection(engine, ngo(), "kept", keep_thumbnails=True)
    enrol(engine, "kept")
    search.search_image(engine, ngo(**SEARCH), "kept", lfw("Tony_Blair", 3).read_bytes())
    new_key = os.urandom(32)
    rekeying = Facegate(engine.settings, rekeying=True)
    report = catalog_keys.rekey(rekeying, Caller(), new_key)
    assert report.resealed == 2
    after = Facegate(engine.settings.model_copy(update={"template_key": base64.b64encode(new_key).decode()}))
    blobs = kept(engine, "kept") + [r[0] for r in catalog(engine, "SELECT probe_thumbnail FROM reviews")]
    assert len(blobs) >= 3
    for blob in blobs:
        assert after.codec.seals(blob) and Image.open(io.BytesIO(after.codec.open_thumbnail(blob))).format == "JPEG"
    finish = catalog(engine, "SELECT details FROM audit_log WHERE operation = 'catalog_rekey' ORDER BY seq DESC")
    assert f'"thumbnails_resealed":{len(blobs)}' in finish[0][0]


def test_a_search_by_enrolled_face_keeps_that_faces_crop_with_its_leads(engine: Facegate) -> None:
    collections.create_collection(engine, ngo(), "kept", keep_thumbnails=True)
    enrol(engine, "kept")
    probe = faces.index_faces(engine, ngo(**SEARCH), "kept", lfw("Tony_Blair", 3).read_bytes()).value.indexed[0]
    found = search.search_face(engine, ngo(**SEARCH), "kept", probe.face_id)
    assert found.value.matches
    stored = catalog(engine, "SELECT thumbnail FROM faces WHERE face_id = :f", f=probe.face_id)[0][0]
    leads = catalog(engine, "SELECT review_id, probe_thumbnail FROM reviews WHERE audit_seq = :s ORDER BY review_id",
                    s=found.audit_seq)
    assert leads and all(p == stored for _, p in leads)
    assert console.thumbnail(engine, ngo(), leads[0][0], "probe") == engine.codec.open_thumbnail(stored)


def test_a_grantee_sees_the_candidates_crop_only_while_it_may_search_for_the_leads_purpose(engine: Facegate) -> None:
    """The candidate's crop is what a search of its collection returns: a grant of `list`
    alone (or for another purpose) shows the grantee's own probe, never the owner's face."""
    collections.create_collection(engine, ngo(), "kept", keep_thumbnails=True)
    enrol(engine, "kept")
    other = Caller(tenant="other", **SEARCH)
    collections.share(engine, ngo(), "kept", "other", ["search"], ["victim_identification"])
    search.search_image(engine, other, "kept", lfw("Tony_Blair", 3).read_bytes())
    [lead] = [r for (r,) in catalog(engine, "SELECT review_id FROM reviews WHERE tenant = 'other' ORDER BY review_id")][:1]
    assert console.thumbnails_shown(engine, Caller(tenant="other"), [lead]) == {lead: (True, True)}
    collections.unshare(engine, ngo(), "kept", "other")
    collections.share(engine, ngo(), "kept", "other", ["list"])
    assert console.thumbnails_shown(engine, Caller(tenant="other"), [lead]) == {lead: (True, False)}
    with pytest.raises(FacegateError) as hidden:
        console.thumbnail(engine, Caller(tenant="other"), lead, "candidate")
    assert hidden.value.code is ErrorCode.NOT_FOUND
