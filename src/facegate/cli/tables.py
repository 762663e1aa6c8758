"""Human output of lists: one rich table per list, with headers, "no <things>" when
empty, and the token of the next page when there is one.

Every command that prints a list goes through `print_table`, so lists read alike and an
empty answer never prints nothing. Figures are rounded with their unit at the call site
(`fmr`), not printed with every digit a float holds.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import TYPE_CHECKING

from rich.console import Console
from rich.table import Table

from facegate.cli.common import stdout

if TYPE_CHECKING:
    from facegate.operations.scoring import Estimates


def print_table(
    columns: Sequence[str], rows: Iterable[Sequence[object]], *, empty: str, title: str | None = None,
    next_token: str | None = None,
) -> None:
    """Print `rows` under `columns`, or `empty` when there are none; then the next page's token."""
    rows = list(rows)
    if not rows:
        stdout.print(empty)
    else:
        table = Table(header_style="bold", box=None, pad_edge=False)
        for column in columns:
            table.add_column(column, overflow="fold")
        for row in rows:
            table.add_row(*("-" if v is None else str(v) for v in row))
        # Piped output is read by tools and people alike: never fold it into 80 columns.
        console = stdout if stdout.is_terminal else Console(file=stdout.file, width=1000, highlight=False)
        if title:  # on its own line: a table folds its title into the table's width
            console.print(title, soft_wrap=True)
        console.print(table)
    if next_token:
        stdout.print(f"next page: --next-token {next_token}")


def print_fields(fields: Mapping[str, object]) -> None:
    """One record as a two-column table; lists joined, nested records as key=value."""

    def text(value: object) -> str:
        if isinstance(value, Mapping):
            return ", ".join(f"{k}={text(v)}" for k, v in value.items()) or "-"
        if isinstance(value, list | tuple):
            return ", ".join(text(v) for v in value) or "-"
        return "-" if value is None else str(value)

    print_table(["field", "value"], [(k, text(v)) for k, v in fields.items()], empty="nothing to show")


def fmr(value: float | None) -> str:
    """A false-match rate, rounded: 1.2e-05 (or "-" when there is none)."""
    return "-" if value is None else f"{value:.2g}"


def worst(estimates: Estimates) -> str:
    """The worst group's false-match rate with its group, "1.2e-05 race=Asian" ("-" without
    a shipped group calibration)."""
    if estimates.estimated_fmr_worst_group is None:
        return "-"
    return f"{fmr(estimates.estimated_fmr_worst_group)} {estimates.worst_group}"
