"""The bias audit's figures: rates with intervals, DET curves, detection failures, composition.

Each function takes a `BiasReport` and returns a matplotlib `Figure` built without
pyplot (no global state, no display needed), or None when the report holds nothing to
draw. Rates span orders of magnitude, so FMR and FNMR are on log axes; a rate with no
error cannot sit on a log axis, so it is drawn as a "<" at its zero-event bound.
Plots show the single-column groups and the finest intersection; the tables in the
report list every level.
"""

from __future__ import annotations

import io
from collections.abc import Sequence

import numpy as np
from matplotlib.figure import Figure

from facegate.evaluation.bias_audit import BiasReport
from facegate.evaluation.demographics import Group, GroupRates, GroupScores
from facegate.evaluation.detection_failures import DetectionRate

SMALL_COLOUR = "#9a9a9a"
COLOURS = ("#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b", "#e377c2", "#17becf",
           "#bcbd22", "#7f7f7f")


def label(group: Group) -> str:
    return ", ".join(value for _, value in group) or "everyone"


def png(figure: Figure) -> bytes:
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=110, bbox_inches="tight")
    return buffer.getvalue()


def rates_figure(report: BiasReport) -> Figure | None:
    """FMR and FNMR per group with their intervals, on log axes."""
    v = report.verification
    if v is None:
        return None
    groups = [v.overall, *_plotted(v.groups, len(report.group_by))][::-1]
    fig = Figure(figsize=(11, 0.34 * len(groups) + 1.6))
    fmr_ax, fnmr_ax = fig.subplots(1, 2, sharey=True)
    for ax, name in ((fmr_ax, "fmr"), (fnmr_ax, "fnmr")):
        for y, g in enumerate(groups):
            rate, ci = getattr(g, name), getattr(g, f"{name}_ci")
            if rate is None or ci is None:
                continue
            colour = SMALL_COLOUR if g.small else "black"
            ax.plot(ci, [y, y], color=colour, lw=2)
            if rate > 0:
                ax.plot([rate], [y], "o", color=colour)
            else:
                ax.plot([ci[1]], [y], "<", color=colour, ms=8)
        for between in _level_breaks(groups):
            ax.axhline(between, color="#cccccc", lw=0.8)
        ax.set_xscale("log")
        ax.grid(axis="x", which="both", alpha=0.3)
        ax.set_title(f"{name.upper()} at similarity {v.threshold:.2f} ({report.settings.confidence:.0%} interval)")
    if report.calibrated_fmr is not None:
        fmr_ax.axvline(report.calibrated_fmr, color="#1f77b4", ls="--", lw=1,
                       label=f"calibration: {report.calibrated_fmr:.1e}")
        fmr_ax.legend(loc="lower right", fontsize=8)
    fmr_ax.set_yticks(range(len(groups)), [_row_label(g) for g in groups])
    fmr_ax.set_xlabel("false match rate, matched impostors\n(<: no false match, drawn at its zero-event bound)")
    fnmr_ax.set_xlabel("false non-match rate\n(grey: small group; a line to the left edge: interval down to 0)")
    return fig


def det_figure(report: BiasReport) -> Figure | None:
    """DET curves (FNMR against FMR over all thresholds) for everyone and each finest group."""
    v = report.verification
    if v is None:
        return None
    fig = Figure(figsize=(7.5, 6))
    ax = fig.subplots()
    small = {r.group for r in v.groups if r.small}
    for i, scores in enumerate(v.scores):
        fmr, fnmr = det_points(scores)
        if len(fmr) == 0:
            continue
        everyone = not scores.group
        colour = "black" if everyone else COLOURS[(i - 1) % len(COLOURS)]
        style = ":" if scores.group in small else "-"
        name = label(scores.group) + (" (small)" if scores.group in small else "")
        ax.plot(fmr, fnmr, style, color=colour, lw=2.5 if everyone else 1.4, label=name)
        at = _operating_point(scores, v.threshold)
        if at is not None:
            ax.plot(*at, "o", color=colour, ms=5)
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.grid(which="both", alpha=0.3)
    ax.set_xlabel("false match rate (demographically matched impostors)")
    ax.set_ylabel("false non-match rate")
    ax.set_title(f"DET per group; dots: similarity {v.threshold:.2f}")
    if ax.get_legend_handles_labels()[0]:
        ax.legend(fontsize=8, loc="upper right")
    return fig


def det_points(scores: GroupScores) -> tuple[np.ndarray, np.ndarray]:
    """(FMR, FNMR) where both are above zero (log axes), at thresholds spaced evenly in
    log FMR and in log FNMR, so both tails are drawn without plotting every score."""
    if len(scores.mated) == 0 or len(scores.nonmated) == 0:
        return np.zeros(0), np.zeros(0)
    nonmated, mated = np.sort(scores.nonmated), np.sort(scores.mated)
    tails = np.logspace(-7, 0, 300)
    thresholds = np.unique(np.concatenate([np.quantile(nonmated, 1.0 - tails), np.quantile(mated, tails)]))
    fmr = 1.0 - np.searchsorted(nonmated, thresholds, side="left") / len(nonmated)
    fnmr = np.searchsorted(mated, thresholds, side="left") / len(mated)
    keep = (fmr > 0) & (fnmr > 0)
    return fmr[keep], fnmr[keep]


def detection_figure(report: BiasReport) -> Figure:
    """Share of images per group with no face found or the face dropped by quality."""
    groups = [report.detection.overall, *_plotted(report.detection.groups, len(report.group_by))][::-1]
    fig = Figure(figsize=(8, 0.3 * len(groups) + 1.5))
    ax = fig.subplots()
    y = np.arange(len(groups))
    no_face = np.array([g.no_face / g.n_images for g in groups])
    low = np.array([g.low_quality / g.n_images for g in groups])
    ax.barh(y, no_face, color="#d62728", label="no face found")
    ax.barh(y, low, left=no_face, color="#ff7f0e", label=f"below {report.quality_filter} quality")
    # small groups' wide intervals would squash the others: they are cut at the edge, marked ">"
    edge = 1.15 * max([g.failure_rate_ci[1] for g in groups if not g.small] + [0.01])
    for yi, g in zip(y, groups):
        lo, hi = g.failure_rate_ci
        ax.plot([lo, min(hi, edge)], [yi, yi], color=SMALL_COLOUR if g.small else "black", lw=1.5)
        if hi > edge:
            ax.plot([edge], [yi], ">", color=SMALL_COLOUR, ms=6)
    for between in _level_breaks(groups):
        ax.axhline(between, color="#cccccc", lw=0.8)
    ax.set_xlim(0, edge * 1.03)
    ax.set_yticks(y, [f"{label(g.group)}  (n={g.n_images}{', small' if g.small else ''})" for g in groups])
    ax.set_xlabel(f"failure rate with {report.settings.confidence:.0%} interval (>: interval goes on)")
    ax.set_title("Detection failures per group")
    ax.grid(axis="x", alpha=0.3)
    ax.legend(fontsize=8, loc="lower right")
    return fig


def composition_figure(report: BiasReport) -> Figure:
    """Images (and subjects, where known) per label value of each group column."""
    columns = report.group_by
    fig = Figure(figsize=(4.2 * len(columns), 3.6))
    axes = np.atleast_1d(fig.subplots(1, len(columns)))
    for ax, column in zip(axes, columns):
        rows = [c for c in report.composition if c.level == (column,)]
        names = [c.group[0][1] or "(unlabelled)" for c in rows]
        bars = ax.bar(range(len(rows)), [c.n_images for c in rows], color="#4c72b0")
        for bar, c in zip(bars, rows):
            if c.n_subjects:
                ax.annotate(f"{c.n_subjects} subj.", (bar.get_x() + bar.get_width() / 2, bar.get_height()),
                            ha="center", va="bottom", fontsize=7)
        ax.set_xticks(range(len(rows)), names, rotation=30, ha="right")
        ax.set_title(f"{column}: images per label")
    return fig


def _plotted(rows: Sequence[GroupRates | DetectionRate], n_columns: int) -> list:
    """Single-column groups and the finest intersection (intermediate levels stay in tables)."""
    return [r for r in rows if len(r.group) in (1, n_columns)]


def _level_breaks(rows: Sequence[GroupRates | DetectionRate]) -> list[float]:
    """y positions between rows of different grouping levels (rows are drawn bottom-up)."""
    level = [tuple(column for column, _ in r.group) for r in rows]
    return [i + 0.5 for i in range(len(rows) - 1) if level[i] != level[i + 1]]


def _row_label(g: GroupRates) -> str:
    return f"{label(g.group)}  ({g.n_subjects} subj.{', small' if g.small else ''})"


def _operating_point(scores: GroupScores, threshold: float) -> tuple[float, float] | None:
    fmr = float(np.mean(scores.nonmated >= threshold))
    fnmr = float(np.mean(scores.mated < threshold))
    return (fmr, fnmr) if fmr > 0 and fnmr > 0 else None
