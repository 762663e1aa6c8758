"""The faces a reviewer sees side by side: the probe's crop kept with a lead, and the
candidate face's own thumbnail.

Only where a collection keeps thumbnails (an opt-in, see docs/governance.md); both are
sealed like templates, and handed out still sealed: the operation opens them with the
engine's key. A lead is visible only inside the tenant that searched (as the review queue
is), and the candidate's crop only while its face exists, in a collection that tenant owns
or was granted: after an erasure, the reviewer sees no face where there is none.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy.orm import Session

from facegate.errors import ErrorCode, FacegateError
from facegate.governance.permissions import Operation
from facegate.governance.request import CollectionAccess
from facegate.governance.review import Binding, within_binding
from facegate.store.faces import sealed_thumbnail
from facegate.store.governance_tables import ReviewRow
from facegate.store.grants import owner_and_grants


@dataclass(frozen=True, slots=True)
class LeadThumbnails:
    probe: bytes | None  # sealed; None: none kept
    candidate: bytes | None


def lead_thumbnails(
    session: Session, *, tenant: str, review_id: int, binding: Binding = (None, None)
) -> LeadThumbnails:
    """The sealed thumbnails of a lead of `tenant` within a key's `binding`; REVIEW_NOT_FOUND
    for any other lead."""
    row = session.get(ReviewRow, review_id)
    if row is None or row.tenant != tenant or not within_binding(row.purpose, row.case_reference, binding):
        raise FacegateError(
            ErrorCode.REVIEW_NOT_FOUND, f"no review {review_id} for tenant {tenant!r}", review_id=review_id
        )
    candidate = None
    found = sealed_thumbnail(session, row.face_id)
    if found is not None:
        collection_id, blob = found
        access = owner_and_grants(session, collection_id, tenant)
        # the candidate's crop is what a search of its collection returns: only to a tenant
        # that may search it for the lead's purpose (owner, or a search grant for it)
        if access is not None and CollectionAccess(access[0], tuple(access[1])).permits(
            tenant, Operation.SEARCH_IMAGE, row.purpose
        ):
            candidate = blob
    return LeadThumbnails(row.probe_thumbnail, candidate)
