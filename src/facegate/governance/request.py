"""What the gate is asked: who (a tenant view), for what purpose, to do which operation where.

These are plain frozen values so that `decide` can stay pure: the engine reads the tenant
and the recorded bias audits from the catalog, the time from its clock, and hands them in.
A malformed request (a looser-than-possible FMR, zero results, live mode for housekeeping)
raises at construction: it is a caller's bug, not something to decide and audit.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Protocol

from facegate.errors import ErrorCode, FacegateError
from facegate.governance.permissions import (
    PURPOSE_OPERATIONS,
    Mode,
    Operation,
    Role,
    parse_mode,
    parse_operation,
)


LOCAL_OPERATOR = "local"  # reserved tenant name: the CLI without --tenant, the installation's operator


class TenantStatus(StrEnum):
    ACTIVE = "active"
    SUSPENDED = "suspended"


@dataclass(frozen=True, slots=True)
class TenantView:
    """The facts about a tenant that a decision may depend on."""

    name: str
    sector: str
    status: TenantStatus
    purposes: frozenset[str]  # approved purposes
    roles: frozenset[Role]


@dataclass(frozen=True, slots=True)
class BiasAuditSummary:
    """One recorded demographic audit of the active model, as the gate needs it."""

    audit_id: int
    dataset: str
    dataset_sha256: str
    threshold: float  # similarity at which the audit measured
    max_group_fmr: float
    fmr_ratio: float  # max/min group FMR; +inf when some group had no false match
    passed: bool  # the verdict recorded with the audit; the gate re-judges the numbers
    created_at: datetime


class Calibration(Protocol):
    """Maps a false-match rate to the similarity threshold that achieves it for one model."""

    def threshold_at_fmr(self, fmr: float) -> float: ...


@dataclass(frozen=True, slots=True)
class CollectionAccess:
    """Who owns the collection a request names, and what it granted the requesting tenant.

    The gate reads it from the catalog for every request that names a collection; `None`
    in its place means the collection does not exist. `grants` maps an operation name to
    the purposes it was granted for (None: any purpose).
    """

    owner: str
    grants: tuple[tuple[str, frozenset[str] | None], ...] = ()

    def permits(self, tenant: str, operation: Operation, purpose: str | None) -> bool:
        """The owner may do anything; another tenant what was granted, for the granted
        purposes (operations that declare no purpose need only the operation granted)."""
        if tenant == self.owner:
            return True
        for name, purposes in self.grants:
            if name != operation.value:
                continue
            if purposes is None or operation not in PURPOSE_OPERATIONS or purpose in purposes:
                return True
        return False


def _invalid(field: str, message: str) -> FacegateError:
    return FacegateError(ErrorCode.INVALID_ARGUMENT, message, field=field)


@dataclass(frozen=True, slots=True)
class GateRequest:
    """One operation as the gate sees it; `requested_*` may only tighten the purpose's limits."""

    tenant: TenantView
    operation: Operation
    key_id: str | None = None
    purpose: str | None = None
    case_reference: str | None = None
    consent_reference: str | None = None
    collection_id: str | None = None
    mode: Mode = Mode.POST_EVENT
    requested_max_fmr: float | None = None
    requested_threshold: float | None = None
    requested_max_results: int | None = None
    # Facts about `collection_id` (None: no such collection). The gate always fills it in.
    collection_access: CollectionAccess | None = None

    def __post_init__(self) -> None:
        # Accept the spelling callers have (CLI and HTTP pass strings); refuse unknown names.
        object.__setattr__(self, "operation", parse_operation(self.operation))
        object.__setattr__(self, "mode", parse_mode(self.mode))
        if self.requested_max_fmr is not None and not 0.0 < self.requested_max_fmr < 1.0:
            raise _invalid("max_fmr", f"max_fmr must be between 0 and 1, got {self.requested_max_fmr}")
        if self.requested_threshold is not None and not math.isfinite(self.requested_threshold):
            raise _invalid("threshold", f"threshold must be a finite number, got {self.requested_threshold}")
        if self.requested_max_results is not None and self.requested_max_results < 1:
            raise _invalid("max_results", f"max_results must be at least 1, got {self.requested_max_results}")
        if self.mode is Mode.LIVE and self.operation not in PURPOSE_OPERATIONS:
            raise _invalid("mode", f"live mode does not apply to operation {self.operation.value!r}")

    @property
    def declared_purpose(self) -> str | None:
        """The purpose, with blank treated as none."""
        return self.purpose.strip() or None if self.purpose else None

    @property
    def has_case_reference(self) -> bool:
        return bool(self.case_reference and self.case_reference.strip())

    @property
    def has_consent_reference(self) -> bool:
        return bool(self.consent_reference and self.consent_reference.strip())
