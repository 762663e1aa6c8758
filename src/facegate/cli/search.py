"""`facegate search`: by image, by enrolled face id, or by subject."""

from __future__ import annotations

from pathlib import Path

import click

from facegate.cli.common import (
    build_engine, caller_options, decision_line, emit, engine_options, handles_errors, json_option, make_caller,
    stdout,
)
from facegate.cli.tables import fmr, print_table, worst
from facegate.errors import ErrorCode, FacegateError
from facegate.gate import Limits
from facegate.operations import search as ops
from facegate.vision.image import read_image_file


@click.command()
@click.argument("name")
@click.argument("image", required=False, type=click.Path(path_type=Path))
@click.option("--face-id", default=None, help="Search with an enrolled face instead of an image.")
@click.option("--subject", default=None, help="Search with all faces of a subject (subjects vote).")
@click.option("--max-results", type=click.IntRange(1, 1000), default=None,
              help="At most this many matches (never more than the purpose allows).")
@click.option("--threshold", type=click.FloatRange(0, 100), default=None,
              help="Minimum similarity (never looser than the purpose allows).")
@click.option("--max-fmr", type=click.FloatRange(0, 1, min_open=True, max_open=True), default=None,
              help="Maximum estimated false-match rate (never looser than the purpose allows).")
@click.option("--mode", type=click.Choice(["post_event", "live"]), default="post_event", show_default=True,
              help="post_event (a stored photo) or live (a camera stream; only where the purpose allows).")
@caller_options
@engine_options
@json_option
@handles_errors
def search(
    name: str, image: Path | None, face_id: str | None, subject: str | None, max_results: int | None,
    threshold: float | None, max_fmr: float | None, mode: str,
    data_dir: Path | None, policy: Path | None, as_json: bool, **who: str | None,
) -> None:
    """Search collection NAME for the largest face of IMAGE (or --face-id, or --subject)."""
    if sum(x is not None for x in (image, face_id, subject)) != 1:
        raise FacegateError(ErrorCode.INVALID_ARGUMENT, "give exactly one of IMAGE, --face-id, --subject")
    engine = build_engine(data_dir, policy)
    caller = make_caller(**who, mode=mode)
    limits = Limits(max_fmr=max_fmr, threshold=threshold, max_results=max_results)
    if image is not None:
        gated = ops.search_image(engine, caller, name, read_image_file(image, engine.limits), limits)
    elif face_id is not None:
        gated = ops.search_face(engine, caller, name, face_id, limits)
    else:
        gated = ops.search_subject(engine, caller, name, subject or "", limits)
    result = gated.value
    payload: dict[str, object] = {**result.to_dict(), "decision": gated.decision.to_dict()}

    def human() -> None:
        stdout.print(f"{len(result.matches)} match(es) at similarity >= {result.threshold:.2f}")
        print_table(
            ["similarity", "est. FMR", "worst group FMR", "face id", "subject", "external image id"],
            [(f"{m.similarity:.2f}", fmr(m.estimated_fmr), worst(m.estimates), m.face_id, m.subject,
              m.external_image_id) for m in result.matches],
            empty="no matches",
        )
        if result.subjects and subject is not None:
            print_table(["subject", "similarity", "est. FMR", "worst group FMR", "votes"],
                        [(s.subject, f"{s.similarity:.2f}", fmr(s.estimated_fmr), worst(s.estimates), s.votes)
                         for s in result.subjects],
                        empty="no subjects", title="subjects")
        if result.review_required:
            stdout.print(f"[bold yellow]{result.notice()}[/]")
        stdout.print(decision_line(gated.decision))

    emit(as_json, payload, human)
