"""The bias audit as files: report.json for machines, one self-contained report.html for people.

The HTML embeds its figures as base64 PNGs and its style inline, and links nowhere: it
can be mailed, archived with the audit record, or opened on a machine without network,
and it shows the same thing in ten years. Tables list every group at every level; the
limits section says what the numbers cannot tell.
"""

from __future__ import annotations

import base64
import json
from html import escape
from pathlib import Path

from facegate.evaluation.bias_audit import BiasReport
from facegate.evaluation.bias_figures import (
    composition_figure,
    det_figure,
    detection_figure,
    label,
    png,
    rates_figure,
)

FIGURES = {
    "rates": rates_figure,
    "det": det_figure,
    "detection": detection_figure,
    "composition": composition_figure,
}

_STYLE = """
body{font-family:system-ui,sans-serif;max-width:1100px;margin:2em auto;padding:0 1em;color:#222}
table{border-collapse:collapse;margin:.5em 0 1.5em;font-size:.9em}
th,td{border:1px solid #ccc;padding:.25em .6em;text-align:right}
th{background:#f2f2f2}td:first-child,th:first-child{text-align:left}
tr.small td{color:#888}img{max-width:100%}code{background:#f4f4f4;padding:0 .2em}
"""


def write_report(report: BiasReport, out_dir: Path) -> tuple[Path, Path]:
    """Write report.json and report.html into `out_dir` (created); return both paths."""
    out_dir.mkdir(parents=True, exist_ok=True)
    json_path, html_path = out_dir / "report.json", out_dir / "report.html"
    json_path.write_text(json.dumps(report.to_dict(), indent=2, allow_nan=False) + "\n")
    html_path.write_text(render_html(report))
    return json_path, html_path


def save_figures(report: BiasReport, out_dir: Path, prefix: str) -> list[Path]:
    """Each figure as `<prefix>-<name>.png` (for documentation pages)."""
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = []
    for name, draw in FIGURES.items():
        figure = draw(report)
        if figure is not None:
            path = out_dir / f"{prefix}-{name}.png"
            path.write_bytes(png(figure))
            paths.append(path)
    return paths


def render_html(report: BiasReport) -> str:
    d = report.to_dict()
    parts = [
        "<!doctype html><html lang='en'><head><meta charset='utf-8'>",
        f"<title>facegate bias audit: {escape(Path(report.dataset.manifest).name)}</title>",
        f"<style>{_STYLE}</style></head><body>",
        "<h1>Demographic audit</h1>",
        _facts(report),
    ]
    v = d["verification"]
    if v is not None:
        parts += ["<h2>Verification: FMR and FNMR per group</h2>", _verification_table(v),
                  "<h3>Differentials</h3>", _differentials_table(v["differentials_by_level"]),
                  "<h3>Impostors across groups (finest level)</h3>", _cross_table(v["cross_group"])]
    parts += ["<h2>Detection failures per group</h2>", _detection_table(d["detection"]),
              "<h2>Dataset composition</h2>", _composition_table(d["composition"]),
              "<h2>Figures</h2>"]
    for name, draw in FIGURES.items():
        figure = draw(report)
        if figure is not None:
            data = base64.b64encode(png(figure)).decode("ascii")
            parts.append(f"<p><img alt='{name}' src='data:image/png;base64,{data}'></p>")
    parts += ["<h2>Limits</h2><ul>", *(f"<li>{escape(x)}</li>" for x in report.limits), "</ul>",
              "</body></html>"]
    return "\n".join(parts)


def _facts(report: BiasReport) -> str:
    s = report.settings
    facts = [
        ("dataset", f"{report.dataset.manifest} ({report.dataset.n_used} of {report.dataset.n_rows} rows)"),
        ("dataset sha256", report.dataset.sha256),
        ("labels", report.dataset.label_source),
        ("model / template space", f"{report.model_id} / {report.template_id}"),
        ("threshold", f"similarity {s.threshold:g} (0..100)"),
        ("calibrated FMR at threshold",
         f"{report.calibrated_fmr:.2e}" if report.calibrated_fmr is not None else "not given"),
        ("quality filter", report.quality_filter),
        ("grouped by", ", ".join(report.group_by)),
        ("sampling", (f"seed {s.seed}; {s.n_nonmated} matched impostor pairs per group; {s.n_cross} "
                      f"per two groups; at most {s.max_mated_per_subject} mated pairs per subject")),
        ("intervals", f"{s.confidence:.0%}, {s.n_boot} bootstrap replicates over subjects"),
    ]
    rows = "".join(f"<tr><th>{escape(k)}</th><td>{escape(str(x))}</td></tr>" for k, x in facts)
    return f"<table>{rows}</table>"


def _rate(value: float | None, ci: list[float] | None) -> str:
    if value is None or ci is None:
        return "n/a"
    return f"{value:.2e} [{ci[0]:.2e}, {ci[1]:.2e}]"


def _group(group: dict[str, str]) -> str:
    return escape(label(tuple(group.items())))


def _table(head: list[str], rows: list[tuple[list[str], bool]]) -> str:
    out = ["<table><tr>", *(f"<th>{escape(h)}</th>" for h in head), "</tr>"]
    for cells, small in rows:
        out.append(f"<tr{' class=small' if small else ''}>" + "".join(f"<td>{c}</td>" for c in cells) + "</tr>")
    out.append("</table>")
    return "".join(out)


def _verification_table(v: dict) -> str:
    rows = [v["overall"], *v["groups"]]
    return _table(
        ["group", "subjects", "images", "mated pairs", "non-mated pairs", "FMR [interval]",
         "FNMR [interval]", "small"],
        [([_group(r["group"]), str(r["n_subjects"]), str(r["n_images"]), str(r["n_mated"]),
           str(r["n_nonmated"]), _rate(r["fmr"], r["fmr_ci"]), _rate(r["fnmr"], r["fnmr_ci"]),
           "yes" if r["small"] else ""], r["small"]) for r in rows],
    )


def _differentials_table(levels: list[dict]) -> str:
    def num(x: float | None, fmt: str) -> str:
        return "n/a" if x is None else format(x, fmt)

    return _table(
        ["level", "groups compared", "FMR max/min", "FMR max-min", "FNMR max/min", "FNMR max-min",
         "zero rates floored", "left out (small)"],
        [([escape(" x ".join(d["level"])), str(len(d["compared"])), num(d["fmr_ratio"], ".2f"),
           num(d["fmr_difference"], ".2e"), num(d["fnmr_ratio"], ".2f"), num(d["fnmr_difference"], ".2e"),
           "; ".join(_group(g) for g in d["fmr_floored"] + d["fnmr_floored"]),
           "; ".join(_group(g) for g in d["excluded_small"])], False) for d in levels],
    )


def _cross_table(cross: list[dict]) -> str:
    return _table(
        ["group A", "group B", "pairs", "false matches", "FMR (or bound)"],
        [([_group(c["groups"][0]), _group(c["groups"][1]), str(c["n_nonmated"]), str(c["false_matches"]),
           f"{c['fmr']:.2e}" if c["false_matches"] else f"&lt; {c['fmr_upper']:.2e}"], False) for c in cross],
    )


def _detection_table(detection: dict) -> str:
    rows = [detection["overall"], *detection["groups"]]
    return _table(
        ["group", "images", "no face", "low quality", "failure rate [interval]", "interval", "small"],
        [([_group(r["group"]), str(r["n_images"]), str(r["no_face"]), str(r["low_quality"]),
           _rate(r["failure_rate"], r["failure_rate_ci"]), escape(r["ci_method"]),
           "yes" if r["small"] else ""], r["small"]) for r in rows],
    )


def _composition_table(rows: list[dict]) -> str:
    return _table(
        ["group", "images", "subjects"],
        [([escape(", ".join(f"{k}={x or '(unlabelled)'}" for k, x in r["group"].items())),
           str(r["n_images"]), str(r["n_subjects"])], False) for r in rows],
    )
