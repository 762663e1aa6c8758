"""`facegate detect` and `facegate compare`."""

from __future__ import annotations

from pathlib import Path

import click

from facegate.cli.common import build_engine, emit, engine_options, handles_errors, json_option, stdout
from facegate.vision.image import read_image_file


@click.command()
@click.argument("images", nargs=-1, required=True, type=click.Path(path_type=Path))
@engine_options
@json_option
@handles_errors
def detect(images: tuple[Path, ...], data_dir: Path | None, policy: Path | None, as_json: bool) -> None:
    """Find faces: box, detector confidence, 5 landmarks and quality, largest first."""
    engine = build_engine(data_dir, policy)
    limits = engine.pipeline.config.limits
    results = []
    for path in images:
        faces = engine.detect(read_image_file(path, limits))
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
              help="Similarity needed for a match (default: the calibrated default).")
@engine_options
@json_option
@handles_errors
def compare(
    source: Path, target: Path, threshold: float | None,
    data_dir: Path | None, policy: Path | None, as_json: bool,
) -> None:
    """Compare the largest face in SOURCE with every face in TARGET."""
    engine = build_engine(data_dir, policy)
    limits = engine.pipeline.config.limits
    result = engine.compare(read_image_file(source, limits), read_image_file(target, limits), threshold)
    payload = result.to_dict()

    def human() -> None:
        verdict = "MATCH" if payload["match"] else "no match"
        stdout.print(
            f"{verdict}: similarity {payload['similarity']:.2f} (threshold {payload['threshold']:.2f}),"
            f" estimated false-match rate {payload['estimated_fmr']:.2g}"
        )
        for i, face in enumerate(payload["target_faces"]):
            stdout.print(f"  target face #{i}: similarity {face['similarity']:.2f} match={face['match']}")

    emit(as_json, payload, human)
