"""`facegate detect` and `facegate compare`."""

from __future__ import annotations

from pathlib import Path

import click

from facegate.cli.common import (
    build_engine, caller_options, decision_line, emit, engine_options, handles_errors, json_option, make_caller,
    stdout,
)
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
            stdout.print(f"{item['path']}: {len(item['faces'])} face(s)")
            for i, face in enumerate(item["faces"]):
                b, q = face["box"], face["quality"]
                stdout.print(
                    f"  #{i} box left={b['left']} top={b['top']} {b['width']}x{b['height']}"
                    f"  confidence={face['confidence']:.2f}  quality={q['level']}"
                    f" (size {q['face_size']}, sharpness {q['sharpness']:.0f},"
                    f" brightness {q['brightness']:.0f}, yaw {q['yaw']:.0f}, roll {q['roll']:.0f})"
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
    """Compare the largest face in SOURCE with every face in TARGET."""
    engine = build_engine(data_dir, policy)
    gated = vision.compare(
        engine, make_caller(**who), read_image_file(source, engine.limits), read_image_file(target, engine.limits),
        Limits(threshold=threshold),
    )
    payload = {**gated.value.to_dict(), "decision": gated.decision.to_dict()}

    def human() -> None:
        verdict = "MATCH" if payload["match"] else "no match"
        stdout.print(
            f"{verdict}: similarity {payload['similarity']:.2f} (threshold {payload['threshold']:.2f}),"
            f" estimated false-match rate {payload['estimated_fmr']:.2g}{gated.value.best.estimates.worst_text()}"
        )
        for i, face in enumerate(payload["target_faces"]):
            stdout.print(f"  target face #{i}: similarity {face['similarity']:.2f} match={face['match']}")
        stdout.print(decision_line(gated.decision))

    emit(as_json, payload, human)
