"""The investigative-leads notice, said once for every adapter (CLI, HTTP, Python) and
for the review queue.

Results of a purpose that requires human review are leads, never identifications; every
answer that carries matches says so in the same two fields, built here, and every review
item carries the same words.
"""

from __future__ import annotations

LEAD_NOTICE = (
    "Investigative leads only: the purpose requires human review. A candidate is not an "
    "identification and must not be the sole basis for any action."
)


def lead_fields(review_required: bool) -> dict[str, object]:
    """`investigative_leads` and `notice` of an answer with matches."""
    return {"investigative_leads": review_required, "notice": LEAD_NOTICE if review_required else None}
