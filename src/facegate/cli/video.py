"""`facegate video search`: faces of a stored video searched after the fact, or of a live
source where the purpose allows live use."""

from __future__ import annotations

import json
from pathlib import Path

import click
from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn

from facegate.cli.common import (
    build_engine,
    caller_options,
    decision_line,
    emit,
    engine_options,
    handles_errors,
    json_option,
    make_caller,
    stderr,
    stdout,
)
from facegate.cli.tables import fmr, print_table
from facegate.engine import Facegate
from facegate.errors import ErrorCode, FacegateError
from facegate.gate import Caller, Limits
from facegate.governance.leads import LEAD_NOTICE
from facegate.operations import video as ops
from facegate.operations.video_live import LiveMatch, watch_live


@click.group("video")
def video_group() -> None:
    """Search faces in video: stored footage, or live sources where the purpose allows it."""


def _progress() -> Progress:
    return Progress(
        "[progress.description]{task.description}", BarColumn(), TextColumn("{task.completed:.1f} s of video"),
        TimeRemainingColumn(), console=stderr, transient=True,
    )


@video_group.command("search")
@click.argument("collection")
@click.argument("file", required=False, type=click.Path(path_type=Path))
@click.option("--fps", type=click.FloatRange(0, 60, min_open=True), default=None,
              help="Frames analysed per second of video [default: FACEGATE_VIDEO_FPS, 4].")
@click.option("--source", default=None, help="A live source: stream URL (rtsp://, http://) or device (/dev/video0).")
@click.option("--realtime", is_flag=True, help="Play FILE at real time as a live source (live mode).")
@click.option("--mode", type=click.Choice(["post_event", "live"]), default="post_event", show_default=True,
              help="live: the live mode of the gate (also implied by --source and --realtime).")
@click.option("--max-fmr", type=click.FloatRange(0, 1, min_open=True, max_open=True), default=None,
              help="Maximum estimated false-match rate (never looser than the purpose allows).")
@caller_options
@engine_options
@json_option
@handles_errors
def video_search(
    collection: str, file: Path | None, fps: float | None, source: str | None, realtime: bool, mode: str,
    max_fmr: float | None, data_dir: Path | None, policy: Path | None, as_json: bool, **who: str | None,
) -> None:
    """Search collection COLLECTION for the faces of video FILE.

    Stored footage is searched after the event: faces are followed across frames and each
    track is searched with its best frames; the answer gives, per matched face and subject,
    the time ranges (seconds) where they appear. With --source, --realtime or --mode live
    the search is live: refused (LIVE_USE_FORBIDDEN) unless the purpose allows live use,
    and each match is printed (one JSON line with --json) and audited as it happens.
    """
    if (file is None) == (source is None):
        raise FacegateError(ErrorCode.INVALID_ARGUMENT, "give exactly one of FILE and --source")
    engine = build_engine(data_dir, policy)
    live = source is not None or realtime or mode == "live"
    caller = make_caller(**who, mode="live" if live else "post_event")
    if file is None or live:
        _live(engine, caller, collection, file if file is not None else str(source), fps, as_json)
        return
    with _progress() as bar:
        task = bar.add_task("analysing video", total=None)

        def progress(done: float, total: float) -> None:
            bar.update(task, completed=done, total=total or None)

        gated = ops.search_video(engine, caller, collection, file, fps=fps, limits=Limits(max_fmr=max_fmr),
                                 progress=progress)
    result = gated.value
    payload = {**result.to_dict(), "decision": gated.decision.to_dict()}
    if result.review_required:
        payload["investigative_leads"] = True
        payload["notice"] = LEAD_NOTICE

    def human() -> None:
        stdout.print(f"{result.frames_analysed} frames of {result.duration:.1f} s analysed at {result.fps:g} fps, "
                     f"{result.tracks} face track(s); {len(result.matches)} match(es)")
        print_table(
            ["similarity", "est. FMR", "subject", "face id", "external image id", "appears at"],
            [(f"{m['similarity']:.2f}", fmr(m["estimated_fmr"]), m["subject"], m["face_id"],
              m.get("external_image_id"), ", ".join(f"{a['start']:.1f}-{a['end']:.1f} s" for a in m["appearances"]))
             for m in result.matches],
            empty="no matches",
        )
        if result.review_required:
            stdout.print(f"[bold yellow]{LEAD_NOTICE}[/]")
        stdout.print(decision_line(gated.decision))

    emit(as_json, payload, human)


def _live(engine: Facegate, caller: Caller, collection: str, source: Path | str, fps: float | None,
          as_json: bool) -> None:
    def report(match: LiveMatch) -> None:
        if as_json:
            click.echo(json.dumps(match.to_dict()), nl=True)
        else:
            h = match.hit
            stdout.print(f"{match.time:8.2f} s  {h.similarity:6.2f}  subject {h.subject or '-'}  face {h.face_id}"
                         f"  external image id {h.external_image_id or '-'}  (latency {match.latency:.2f} s)")

    summary = watch_live(engine, caller, collection, source, fps=fps, on_match=report)
    if as_json:
        click.echo(json.dumps(summary.to_dict()))
    else:
        stdout.print(f"source ended: {summary.frames_analysed} frames analysed, {summary.frames_dropped} dropped, "
                     f"{summary.matches} match(es)")
        stdout.print(decision_line(summary.decision))
