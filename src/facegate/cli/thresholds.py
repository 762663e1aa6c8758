"""`facegate policy thresholds`: what each purpose's promise costs, as a table or JSON."""

from __future__ import annotations

from facegate.cli.common import emit, stdout
from facegate.cli.tables import print_table
from facegate.engine import Facegate
from facegate.operations.thresholds import purpose_thresholds


def _rate(value: float | None) -> str:
    return "-" if value is None else f"{value:.1e}"


def _sim(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}"


def show_thresholds(engine: Facegate, as_json: bool) -> None:
    score_id, groups_id, rows = purpose_thresholds(engine)
    payload = {
        "score_space": score_id,
        "score_normalization": "fair" if engine.scorer.normalized else "raw",
        "group_calibration": groups_id,
        "purposes": [r.to_dict() for r in rows],
    }

    def human() -> None:
        stdout.print(f"score space {score_id}; group calibration {groups_id or 'none shipped'}")
        for r in rows:
            state = (f"threshold {_sim(r.threshold)}" if r.threshold is not None
                     else "[bold red]refused: FMR_NOT_CERTIFIABLE[/]")
            stdout.print(
                f"\n[bold]{r.purpose}[/]: max FMR {r.max_fmr:g} for {r.fmr_holds_for}; population "
                f"{_sim(r.population_threshold)}, every group {_sim(r.every_group_threshold)}; {state}"
                + (f" (certified FMR {r.certified_fmr:g})" if r.certified_fmr not in (None, r.max_fmr) else "")
            )
            print_table(
                ["group", "own threshold", "lowest certifiable FMR", "FMR (upper) there", "FNMR there"],
                [(g.group, _sim(g.threshold_at_max_fmr), _rate(g.lowest_certifiable_fmr), _rate(g.fmr_upper),
                  _rate(g.fnmr)) for g in r.groups],
                empty="no group calibration for this score space",
            )

    emit(as_json, payload, human)
