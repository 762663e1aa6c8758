"""Failed console sign-ins (a wrong key, a form without its CSRF token) are recorded as the
API records failed authentication: aggregated per client address and minute, and drawing
from the address's bucket (FACEGATE_UNAUTHENTICATED_PER_MINUTE), so a flood of posts to
/console/login, which needs no key at all, neither grows the audit log by one entry per post
nor takes the installation's write lock (every host's, in server mode) once per post."""

from __future__ import annotations

import json
import re

from fastapi.testclient import TestClient
from sqlalchemy import func, select

from facegate.service.app import create_app
from facegate.settings import Settings
from facegate.store.governance_tables import AuditLogRow

LIMIT = 10


def sign_in_entries(app) -> list[tuple[str, dict]]:  # type: ignore[no-untyped-def]
    with app.state.engine.sessions() as session:
        rows = session.execute(
            select(AuditLogRow.code, AuditLogRow.details).where(AuditLogRow.operation == "console_sign_in")
            .order_by(AuditLogRow.seq)
        ).all()
    return [(code, json.loads(details) if isinstance(details, str) else details) for code, details in rows]


def test_a_flood_of_failed_sign_ins_is_aggregated_and_limited(settings: Settings) -> None:
    flooded = settings.model_copy(update={"unauthenticated_per_minute": LIMIT})
    app = create_app(flooded)
    with TestClient(app) as client:
        form = client.get("/console/login")
        token = re.search(r'name="csrf" value="([^"]+)"', form.text).group(1)  # type: ignore[union-attr]
        wrong = client.post("/console/login", data={"key": "fg_0123456789abcdef_nope", "csrf": token})
        assert wrong.status_code == 401 and "UNAUTHENTICATED" in wrong.text
        statuses = [client.post("/console/login", data={"key": "fg_0123456789abcdef_nope", "csrf": "forged"}).status_code
                    for _ in range(3 * LIMIT)]
        assert statuses[: LIMIT - 1] == [403] * (LIMIT - 1)  # CSRF_INVALID, until the bucket is empty
        assert set(statuses[LIMIT - 1:]) == {429}
        entries = sign_in_entries(app)
        assert len(entries) == 1  # the minute's opening entry; the rest are counted
        code, details = entries[0]
        assert code == "UNAUTHENTICATED" and details["aggregated"] == "open" and details["client"] == "testclient"
        assert app.state.refusals.flush(everything=True) == 1
        code, details = sign_in_entries(app)[-1]
        assert details["aggregated"] == "closed" and details["count"] == 1 + 3 * LIMIT
        assert details["codes"] == {"UNAUTHENTICATED": 1, "CSRF_INVALID": LIMIT - 1, "RATE_LIMITED": 2 * LIMIT + 1}
