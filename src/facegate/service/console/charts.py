"""Charts drawn on the server as inline SVG: nothing to fetch, nothing to run in the browser.

A horizontal bar per row, split into allowed and denied, with the counts written beside
it. The SVG is an image with a title for assistive technology; the table next to every
chart holds the same numbers for anyone who cannot see it.
"""

from __future__ import annotations

from collections.abc import Mapping
from html import escape

from markupsafe import Markup

from facegate.governance.report import Tally

ALLOWED, DENIED = "#2f6f4e", "#b3261e"  # contrast >= 4.5:1 against white
ROW, LABEL, BAR, GAP = 26, 190, 300, 8


def tally_bars(chart_id: str, title: str, tallies: Mapping[str, Tally]) -> Markup:
    """Allowed and denied requests per key, as one SVG bar chart."""
    top = max((t.requests for t in tallies.values()), default=0) or 1
    height = ROW * max(1, len(tallies)) + 30
    width = LABEL + BAR + 120
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" class="chart" role="img" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}" aria-labelledby="{chart_id}-title">',
        f'<title id="{chart_id}-title">{escape(title)}</title>',
    ]
    if not tallies:
        parts.append(f'<text x="0" y="18" font-size="13" fill="#333">{escape("No requests in this period.")}</text>')
    for i, (key, tally) in enumerate(tallies.items()):
        y = i * ROW
        allowed = BAR * (tally.requests - tally.denied) / top
        denied = BAR * tally.denied / top
        parts += [
            f'<text x="{LABEL - GAP}" y="{y + 17}" font-size="13" text-anchor="end" fill="#1a1a1a">'
            f"{escape(key[:28])}</text>",
            f'<rect x="{LABEL}" y="{y + 4}" width="{allowed:.1f}" height="{ROW - 8}" fill="{ALLOWED}"/>',
            f'<rect x="{LABEL + allowed:.1f}" y="{y + 4}" width="{denied:.1f}" height="{ROW - 8}" fill="{DENIED}"/>',
            f'<text x="{LABEL + allowed + denied + GAP:.1f}" y="{y + 17}" font-size="12" fill="#1a1a1a">'
            f"{tally.requests - tally.denied} / {tally.denied}</text>",
        ]
    legend_y = height - 8
    parts += [
        f'<rect x="{LABEL}" y="{legend_y - 10}" width="12" height="12" fill="{ALLOWED}"/>',
        f'<text x="{LABEL + 16}" y="{legend_y}" font-size="12" fill="#1a1a1a">allowed</text>',
        f'<rect x="{LABEL + 90}" y="{legend_y - 10}" width="12" height="12" fill="{DENIED}"/>',
        f'<text x="{LABEL + 106}" y="{legend_y}" font-size="12" fill="#1a1a1a">denied</text>',
        "</svg>",
    ]
    return Markup("".join(parts))
