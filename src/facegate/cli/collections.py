"""`facegate collection ...`, `facegate index`, `facegate faces ...`, `facegate subject ...`."""

from __future__ import annotations

from pathlib import Path

import click

from facegate.cli.common import (
    build_engine, caller_options, emit, engine_options, handles_errors, json_option, make_caller, progress_bar,
    stdout,
)
from facegate.cli.tables import print_fields, print_table
from facegate.cli.vision import box_text
from facegate.errors import ITEM_CODES, ErrorCode, FacegateError
from facegate.operations import bulk, collections, faces
from facegate.vision.image import read_image_file
from facegate.vision.types import QualityFilter


@click.group("collection")
def collection() -> None:
    """Create, list, describe and delete collections."""


@collection.command("create")
@click.argument("name")
@click.option("--description", default="", help="What the collection holds and why.")
@click.option("--retention-days", type=click.IntRange(min=1), default=None,
              help="Erase faces this many days after enrolment (`facegate retention apply`).")
@click.option("--keep-thumbnails", is_flag=True, default=False,
              help="Keep a small sealed face crop per face, and the probe's with each lead, for reviewers "
                   "(biometric data: see docs/governance.md).")
@caller_options
@engine_options
@json_option
@handles_errors
def collection_create(name: str, description: str, retention_days: int | None, keep_thumbnails: bool,
                      data_dir: Path | None, policy: Path | None, as_json: bool, **who: str | None) -> None:
    """Create an empty collection bound to the current model."""
    engine = build_engine(data_dir, policy)
    info = collections.create_collection(
        engine, make_caller(**who), name, description, retention_days, keep_thumbnails=keep_thumbnails
    ).value
    emit(as_json, collections.info_dict(info), lambda: stdout.print(f"created collection {info.collection_id} ({info.template_id})"))


@collection.command("list")
@caller_options
@engine_options
@json_option
@handles_errors
def collection_list(data_dir: Path | None, policy: Path | None, as_json: bool, **who: str | None) -> None:
    """List collections."""
    engine = build_engine(data_dir, policy)
    found = collections.list_collections(engine, make_caller(**who)).value
    emit(as_json, {"collections": [collections.info_dict(c) for c in found]}, lambda: print_table(
        ["collection", "template space", "created", "description"],
        [(c.collection_id, c.template_id, c.created_at.strftime("%Y-%m-%d %H:%M UTC"), c.description) for c in found],
        empty="no collections",
    ))


@collection.command("describe")
@click.argument("name")
@caller_options
@engine_options
@json_option
@handles_errors
def collection_describe(name: str, data_dir: Path | None, policy: Path | None, as_json: bool, **who: str | None) -> None:
    """Show a collection with its face and subject counts."""
    engine = build_engine(data_dir, policy)
    stats = collections.describe_collection(engine, make_caller(**who), name).value
    payload = collections.stats_dict(stats)
    emit(as_json, payload, lambda: print_fields(payload))


@collection.command("delete")
@click.argument("name")
@caller_options
@engine_options
@json_option
@handles_errors
def collection_delete(name: str, data_dir: Path | None, policy: Path | None, as_json: bool, **who: str | None) -> None:
    """Delete a collection with every face and subject in it."""
    engine = build_engine(data_dir, policy)
    stats = collections.delete_collection(engine, make_caller(**who), name).value
    emit(as_json, {"deleted": collections.stats_dict(stats)},
         lambda: stdout.print(f"deleted {name}: {stats.face_count} faces, {stats.subject_count} subjects"))


@collection.command("share")
@click.argument("name")
@click.option("--with", "grantee", required=True, help="The tenant to share with.")
@click.option("--operations", required=True,
              help="Comma-separated: search (the searches, video_search included), list, index, delete, "
                   "erase, create_subject, associate.")
@click.option("--purposes", default=None, help="Comma-separated purposes the grant is limited to (default: any).")
@caller_options
@engine_options
@json_option
@handles_errors
def collection_share(name: str, grantee: str, operations: str, purposes: str | None, data_dir: Path | None,
                     policy: Path | None, as_json: bool, **who: str | None) -> None:
    """Grant another tenant named operations on a collection you own (audited)."""
    engine = build_engine(data_dir, policy)
    made = collections.share(engine, make_caller(**who), name, grantee, _csv(operations),
                             _csv(purposes) if purposes else None).value
    emit(as_json, {"grants": [g.to_dict() for g in made]}, lambda: print_table(
        ["collection", "tenant", "operation", "purposes"],
        [(g.collection_id, g.grantee, g.operation, ", ".join(g.purposes) if g.purposes else "any") for g in made],
        empty="no grants",
    ))


@collection.command("unshare")
@click.argument("name")
@click.option("--with", "grantee", required=True, help="The tenant to take grants back from.")
@click.option("--operations", default=None, help="Comma-separated operations to revoke (default: all).")
@caller_options
@engine_options
@json_option
@handles_errors
def collection_unshare(name: str, grantee: str, operations: str | None, data_dir: Path | None,
                       policy: Path | None, as_json: bool, **who: str | None) -> None:
    """Take back grants on a collection you own; they stop at the tenant's next request (audited)."""
    engine = build_engine(data_dir, policy)
    revoked = collections.unshare(engine, make_caller(**who), name, grantee,
                                  _csv(operations) if operations else None).value
    emit(as_json, {"revoked": revoked}, lambda: stdout.print(f"revoked from {grantee}: {', '.join(revoked) or 'nothing'}"))


def _csv(value: str) -> list[str]:
    return [v.strip() for v in value.split(",") if v.strip()]


@click.command("index")
@click.argument("name")
@click.argument("images", nargs=-1, type=click.Path(path_type=Path))
@click.option("--manifest", type=click.Path(path_type=Path), default=None,
              help="CSV with columns path (relative to the CSV), optional subject, external_image_id "
                   "(or external_id) and subject_box (\"left,top,width,height\").")
@click.option("--subject", default=None,
              help="Subject (person) of the photo: labels one face, the central one or the one at --subject-box.")
@click.option("--subject-box", default=None, metavar="LEFT,TOP,WIDTH,HEIGHT",
              help="Which face is the subject's, by its box in pixels (as detect prints it).")
@click.option("--index-unlabelled", is_flag=True,
              help="With --subject, also enrol the photo's other faces, without a subject.")
@click.option("--external-image-id", "--external-id", "external_image_id", default=None,
              help="Your id for the image.")
@click.option("--max-faces", type=click.IntRange(1, 100), default=None, help="Enrol at most the N largest faces.")
@click.option("--quality-filter", type=click.Choice([q.value for q in QualityFilter], case_sensitive=False),
              default="LOW", show_default=True, help="Drop faces below this quality.")
@click.option("--consent-reference", default=None, help="Consent reference, where the collection needs one.")
@click.option("--workers", type=click.IntRange(1, 64), default=None, help="Processes for --manifest.")
@caller_options
@engine_options
@json_option
@handles_errors
def index(
    name: str, images: tuple[Path, ...], manifest: Path | None, subject: str | None, subject_box: str | None,
    index_unlabelled: bool, external_image_id: str | None, max_faces: int | None, quality_filter: str,
    consent_reference: str | None, workers: int | None,
    data_dir: Path | None, policy: Path | None, as_json: bool, **who: str | None,
) -> None:
    """Enrol the faces of IMAGES (or of a --manifest) into collection NAME.

    With a subject, only the subject's face of each photo is enrolled; the others are
    listed as not indexed (NOT_SUBJECT_FACE) unless --index-unlabelled."""
    if bool(images) == (manifest is not None):
        raise FacegateError(ErrorCode.INVALID_ARGUMENT, "give IMAGES or --manifest, not both or neither")
    box = bulk.parse_box(subject_box or "")
    engine = build_engine(data_dir, policy)
    caller = make_caller(**who, consent_reference=consent_reference)
    level = QualityFilter(quality_filter.upper())
    if manifest is not None:
        with progress_bar() as bar:
            task = bar.add_task("indexing", total=None)
            report = bulk.index_manifest(
                engine, caller, name, manifest, max_faces=max_faces, quality_filter=level, workers=workers,
                index_unlabelled=index_unlabelled,
                progress=lambda done, total: bar.update(task, completed=done, total=total),
            )
        payload = report.to_dict()
    else:
        payload = {"indexed": [], "unindexed": [], "skipped": 0}
        for path in images:
            try:
                result = faces.index_faces(
                    engine, caller, name, read_image_file(path, engine.limits), subject=subject,
                    external_image_id=external_image_id, max_faces=max_faces, quality_filter=level,
                    subject_box=box, index_unlabelled=index_unlabelled,
                ).value
            except FacegateError as exc:
                if exc.code not in ITEM_CODES or len(images) == 1:
                    raise  # not this image's fault (collection, policy, key): stop with exit 1
                payload["unindexed"].append({"path": str(path), "reason": exc.code.value, "message": exc.message})
                continue
            payload["skipped"] += int(result.already_indexed)
            payload["indexed"] += [{"path": str(path), **f.to_dict()} for f in result.indexed]
            payload["unindexed"] += [{"path": str(path), **u.to_dict()} for u in result.unindexed]

    def human() -> None:
        stdout.print(f"indexed {len(payload['indexed'])} face(s); {payload['skipped']} image(s) already enrolled")
        print_table(["face id", "subject", "image", "box left,top wxh (px)"],
                    [(f["face_id"], f.get("subject"), f.get("path"), box_text(f["box"])) for f in payload["indexed"]],
                    empty="no faces indexed", title="indexed")
        if payload["unindexed"]:
            print_table(["image", "reason", "box left,top wxh (px)"],
                        [(u.get("path"), u["reason"], box_text(u["face"]["box"]) if u.get("face") else None)
                         for u in payload["unindexed"]],
                        empty="", title="not indexed")

    emit(as_json, payload, human)


@click.group("faces")
def faces_group() -> None:
    """List and delete enrolled faces."""


@faces_group.command("list")
@click.argument("name")
@click.option("--subject", default=None, help="Only the faces of this subject.")
@click.option("--limit", type=click.IntRange(1, 1000), default=100, show_default=True, help="Faces per page.")
@click.option("--next-token", default=None, help="Token from the previous page.")
@caller_options
@engine_options
@json_option
@handles_errors
def faces_list(name: str, subject: str | None, limit: int, next_token: str | None,
               data_dir: Path | None, policy: Path | None, as_json: bool, **who: str | None) -> None:
    """List the faces of a collection, page by page."""
    engine = build_engine(data_dir, policy)
    page = faces.list_faces(engine, make_caller(**who), name, subject=subject, limit=limit, next_token=next_token).value
    payload = {"faces": [f.to_dict() for f in page.items], "next_token": page.next_token}
    emit(as_json, payload, lambda: print_table(
        ["face id", "subject", "external image id", "box left,top wxh (px)", "quality", "enrolled"],
        [(f.face_id, f.subject, f.external_image_id, box_text(f.box.to_dict()), f.quality.get("level"),
          f.created_at.strftime("%Y-%m-%d %H:%M UTC")) for f in page.items],
        empty="no faces", next_token=page.next_token,
    ))


@faces_group.command("delete")
@click.argument("name")
@click.argument("face_ids", nargs=-1, required=True)
@caller_options
@engine_options
@json_option
@handles_errors
def faces_delete(name: str, face_ids: tuple[str, ...], data_dir: Path | None, policy: Path | None,
                 as_json: bool, **who: str | None) -> None:
    """Delete faces by id (unknown ids are reported, not fatal)."""
    engine = build_engine(data_dir, policy)
    deletion = faces.delete_faces(engine, make_caller(**who), name, list(face_ids)).value
    payload = {"deleted": deletion.deleted, "unknown": deletion.unknown}
    emit(as_json, payload, lambda: stdout.print(f"deleted {len(deletion.deleted)}, unknown {len(deletion.unknown)}"))


@click.group("subject")
def subject_group() -> None:
    """Subjects (persons): create, associate faces, list, erase."""


@subject_group.command("create")
@click.argument("name")
@click.argument("subject")
@caller_options
@engine_options
@json_option
@handles_errors
def subject_create(name: str, subject: str, data_dir: Path | None, policy: Path | None, as_json: bool, **who: str | None) -> None:
    """Create SUBJECT (a person) in collection NAME, with no faces yet."""
    engine = build_engine(data_dir, policy)
    info = faces.create_subject(engine, make_caller(**who), name, subject).value
    emit(as_json, {"subject": info.subject_id, "face_count": info.face_count}, lambda: stdout.print(f"created {subject}"))


@subject_group.command("associate")
@click.argument("name")
@click.argument("subject")
@click.argument("face_ids", nargs=-1, required=True)
@caller_options
@engine_options
@json_option
@handles_errors
def subject_associate(name: str, subject: str, face_ids: tuple[str, ...], data_dir: Path | None,
                      policy: Path | None, as_json: bool, **who: str | None) -> None:
    """Attach enrolled faces to a subject."""
    engine = build_engine(data_dir, policy)
    a = faces.associate_faces(engine, make_caller(**who), name, subject, list(face_ids)).value
    payload = {"associated": a.associated, "unknown": a.unknown, "conflicting": a.conflicting}
    emit(as_json, payload, lambda: stdout.print(f"associated {len(a.associated)} face(s) with {subject}"))


@subject_group.command("list")
@click.argument("name")
@click.option("--limit", type=click.IntRange(1, 1000), default=100, show_default=True, help="Subjects per page.")
@click.option("--next-token", default=None, help="Token from the previous page.")
@caller_options
@engine_options
@json_option
@handles_errors
def subject_list(name: str, limit: int, next_token: str | None, data_dir: Path | None, policy: Path | None,
                 as_json: bool, **who: str | None) -> None:
    """List the subjects of collection NAME with their face counts, page by page."""
    engine = build_engine(data_dir, policy)
    page = faces.list_subjects(engine, make_caller(**who), name, limit=limit, next_token=next_token).value
    payload = {"subjects": [{"subject": s.subject_id, "face_count": s.face_count} for s in page.items],
               "next_token": page.next_token}
    emit(as_json, payload, lambda: print_table(
        ["subject", "faces"], [(s.subject_id, s.face_count) for s in page.items],
        empty="no subjects", next_token=page.next_token,
    ))


@subject_group.command("erase")
@click.argument("name")
@click.argument("subject")
@caller_options
@engine_options
@json_option
@handles_errors
def subject_erase(name: str, subject: str, data_dir: Path | None, policy: Path | None, as_json: bool, **who: str | None) -> None:
    """Right to erasure: remove a subject and all its faces from catalog and index."""
    engine = build_engine(data_dir, policy)
    erasure = faces.erase_subject(engine, make_caller(**who), name, subject).value
    emit(as_json, {"erased": erasure.subject_id, "face_ids": erasure.face_ids},
         lambda: stdout.print(f"erased {subject}: {len(erasure.face_ids)} face(s)"))
