"""`facegate detect` and `facegate compare`."""

from __future__ import annotations

from pathlib import Path

import click

from facegate.cli.common import (
    build_engine, caller_options, decision_line, emit, engine_options, handles_errors, json_option, make_caller,
    stdout,
)
from facegate.cli.tables import fmr, print_table
from facegate.gate import Limits
from facegate.operations import vision
from facegate.vision.image import read_image_file


@click.command()
@click.argument("images", nargs=-1, required=True, type=click.Path(path_type=Path))
@caller_options
@engine_options
@json_option
@handles_errors
def detect(images: tuple[Path, ...], data_dir: Path | None, policy: Path | None, as_json: bool, **who: str | None) -> None:
    """Find faces: box, detector confidence, 5 landmarks and quality, largest first."""
    engine = build_engine(data_dir, policy)
    caller = make_caller(**who)
    results = []
    for path in images:
        faces = vision.detect(engine, caller, read_image_file(path, engine.limits)).value
        results.append({"path": str(path), "faces": [f.to_dict() for f in faces]})

    def human() -> None:
        for item in results:
            print_table(
                ["face", "box left,top wxh (px)", "confidence", "quality", "sharpness", "brightness",
                 "yaw", "roll"],
                [(f"#{i}", box_text(f["box"]), f"{f['confidence']:.2f}", f["quality"]["level"],
                  f"{f['quality']['sharpness']:.0f}", f"{f['quality']['brightness']:.0f}",
                  f"{f['quality']['yaw']:.0f}°", f"{f['quality']['roll']:.0f}°") for i, f in enumerate(item["faces"])],
                empty=f"{item['path']}: no faces", title=f"{item['path']}: {len(item['faces'])} face(s)",
            )

    emit(as_json, {"images": results}, human)


@click.command()
@click.argument("source", type=click.Path(path_type=Path))
@click.argument("target", type=click.Path(path_type=Path))
@click.option("--threshold", type=click.FloatRange(0, 100), default=None,
              help="Similarity needed for a match; may only be stricter than the purpose's.")
@caller_options
@engine_options
@json_option
@handles_errors
def compare(
    source: Path, target: Path, threshold: float | None,
    data_dir: Path | None, policy: Path | None, as_json: bool, **who: str | None,
) -> None:
    """Compare the largest face in SOURCE with every face in TARGET.

    Every target face is listed with its similarity; the headline is the best match."""
    engine = build_engine(data_dir, policy)
    gated = vision.compare(
        engine, make_caller(**who), read_image_file(source, engine.limits), read_image_file(target, engine.limits),
        Limits(threshold=threshold),
    )
    payload = {**gated.value.to_dict(), "decision": gated.decision.to_dict()}

    def human() -> None:
        verdict = "MATCH" if payload["match"] else "no match"
        stdout.print(
            f"{verdict}: best target face #{payload['best_target_index']}, similarity {payload['similarity']:.2f}"
            f" (threshold {payload['threshold']:.2f}), estimated false-match rate {fmr(payload['estimated_fmr'])}"
            f"{gated.value.best.estimates.worst_text()}"
        )
        print_table(
            ["target face", "similarity", "est. FMR", "match", "box left,top wxh (px)"],
            [(f"#{f['target_index']}", f"{f['similarity']:.2f}", fmr(f["estimated_fmr"]),
              "yes" if f["match"] else "no", box_text(f["box"])) for f in payload["target_faces"]],
            empty="no faces",
        )
        stdout.print(f"{len(payload['matches'])} match(es), {len(payload['unmatched'])} unmatched")
        if payload["notice"]:
            stdout.print(f"[bold yellow]{payload['notice']}[/]")
        stdout.print(decision_line(gated.decision))

    emit(as_json, payload, human)


def box_text(box: dict[str, int]) -> str:
    """A box as `detect` prints it and `--subject-box` takes it back: left,top widthxheight."""
    return f"{box['left']},{box['top']} {box['width']}x{box['height']}"
