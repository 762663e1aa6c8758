"""The policy: purposes, moratoria, collection rules and the local operator, as validated data.

A policy is data, not code (as pycasbin keeps its model and policy in files): a governance
officer writes TOML, `policy_loading` validates it into these frozen models, and `decide`
reads them. Every field that matters for safety is explicit: there is no default purpose, a
moratorium names its operations, and live use is off unless a purpose turns it on.
Cross-references (sectors and purposes named elsewhere, duplicate ids) are checked by
`reference_errors`, so that each error still points at the field that holds the bad name.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StringConstraints,
    ValidationInfo,
    field_validator,
)

from facegate.governance.permissions import Operation, expand_operations

BUILTIN_SECTORS: tuple[str, ...] = ("law_enforcement", "government", "commercial", "nonprofit", "research")

Slug = Annotated[str, StringConstraints(pattern=r"^[a-z][a-z0-9_-]{0,63}$")]
Loc = tuple[str | int, ...]


def _to_utc(value: Any) -> Any:
    """TOML dates mean midnight UTC; local date-times are read as UTC, so a file means one instant."""
    if isinstance(value, datetime):
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
    if isinstance(value, date):
        return datetime(value.year, value.month, value.day, tzinfo=UTC)
    return value


Instant = Annotated[datetime, BeforeValidator(_to_utc)]
Operations = Annotated[frozenset[Operation], BeforeValidator(expand_operations)]


class _Rules(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class BiasAuditRequirement(_Rules):
    """A purpose may only match with a model audited on `dataset` within these limits."""

    dataset: str = Field(min_length=1)
    max_group_fmr: float = Field(gt=0, lt=1)
    max_fmr_ratio: float = Field(ge=1)
    dataset_sha256: str | None = None  # pins one version of the dataset when given


FmrHoldsFor = Literal["population", "every_group"]


class Purpose(_Rules):
    description: str = Field(min_length=1)
    max_fmr: float = Field(gt=0, lt=1)
    # Whom max_fmr is promised to: the population (one calibration over all impostor pairs)
    # or every group of the recorded group calibration; None: the policy-wide setting.
    fmr_holds_for: FmrHoldsFor | None = None
    # With every_group: when a group cannot support max_fmr, match at the lowest rate every
    # group supports (and report it) instead of refusing; None: the policy-wide setting.
    accept_lowest_certifiable_fmr: bool | None = None
    max_results: int = Field(ge=1, le=1000)
    case_reference_required: bool = False
    human_review_required: bool = False
    live_use_allowed: bool = False
    retention_days: int = Field(ge=0)
    sectors: list[Slug] | None = None  # sectors that may be approved for it; None = any
    require_bias_audit: BiasAuditRequirement | None = None
    # A lead found for this purpose must be confirmed or rejected by another person than the
    # one who searched (compared by the holders of their API keys): FOUR_EYES_REQUIRED.
    four_eyes: bool = False


class Moratorium(_Rules):
    """Denies `operations` to `sectors` from `start` until `end` (None: until further notice)."""

    id: Slug
    sectors: list[Slug] = Field(min_length=1)
    operations: Operations
    start: Instant
    end: Instant | None = None
    exempt_purposes: list[Slug] = []
    reason: str = Field(min_length=1)

    @field_validator("end")
    @classmethod
    def _end_after_start(cls, end: datetime | None, info: ValidationInfo) -> datetime | None:
        start = info.data.get("start")
        if end is not None and start is not None and end <= start:
            raise ValueError(f"end ({end.isoformat()}) must be after start ({start.isoformat()})")
        return end

    def active_at(self, now: datetime) -> bool:
        """Half-open [start, end): a moratorium ending 2021-06-10 no longer applies that day."""
        return self.start <= now and (self.end is None or now < self.end)


class CollectionRule(_Rules):
    """Rules for collections whose id matches the glob `match` (case-sensitive)."""

    id: Slug
    match: str = Field(min_length=1)
    sectors: list[Slug] | None = None  # only these sectors may run `operations` on them
    operations: Operations = frozenset(Operation)
    consent_reference_required: bool = False  # for `index` into them
    reason: str = ""

    def matches(self, collection_id: str) -> bool:
        return fnmatch.fnmatchcase(collection_id, self.match)


class LocalOperator(_Rules):
    """Who the CLI acts as without `--tenant`: its sector and the purposes it may declare."""

    sector: Slug
    purposes: list[Slug] | Literal["*"]
    # What the CLI declares when run without --purpose; unset: --purpose is required.
    default_purpose: Slug | None = None


class PolicyRules(_Rules):
    name: str = ""
    description: str = ""
    sectors: list[Slug] = []  # sectors beyond the built-in ones
    local_operator: LocalOperator
    purposes: dict[Slug, Purpose]
    moratoria: list[Moratorium] = []
    collections: list[CollectionRule] = []
    fmr_holds_for: FmrHoldsFor = "population"  # default of purposes that do not say
    accept_lowest_certifiable_fmr: bool = False
    # Sectors whose tenants may hold the oversight role (read the whole installation's audit
    # trail and report); None: any sector. The local operator always has it.
    oversight_sectors: list[Slug] | None = None

    def promise(self, purpose_id: str) -> tuple[FmrHoldsFor, bool]:
        """(fmr_holds_for, accept_lowest_certifiable_fmr) in force for a purpose."""
        purpose = self.purposes[purpose_id]
        mode = purpose.fmr_holds_for or self.fmr_holds_for
        accept = self.accept_lowest_certifiable_fmr
        if purpose.accept_lowest_certifiable_fmr is not None:
            accept = purpose.accept_lowest_certifiable_fmr
        return mode, accept

    @property
    def all_sectors(self) -> frozenset[str]:
        return frozenset(BUILTIN_SECTORS) | frozenset(self.sectors)

    def reference_errors(self) -> list[tuple[Loc, str]]:
        """Names used in one place that another place must define, and ids used twice."""
        errors: list[tuple[Loc, str]] = []
        sectors, purposes = self.all_sectors, set(self.purposes)

        def check(loc: Loc, names: list[str], known: set[str] | frozenset[str], kind: str) -> None:
            for i, name in enumerate(names):
                if name not in known:
                    errors.append(((*loc, i), f"unknown {kind} {name!r} (known: {', '.join(sorted(known))})"))

        if self.local_operator.sector not in sectors:
            errors.append((("local_operator", "sector"), f"unknown sector {self.local_operator.sector!r}"))
        if self.local_operator.purposes != "*":
            check(("local_operator", "purposes"), self.local_operator.purposes, purposes, "purpose")
        if self.local_operator.default_purpose is not None:
            check(("local_operator", "default_purpose"), [self.local_operator.default_purpose], purposes, "purpose")
        check(("oversight_sectors",), self.oversight_sectors or [], sectors, "sector")
        for pid, purpose in self.purposes.items():
            check(("purposes", pid, "sectors"), purpose.sectors or [], sectors, "sector")
        groups: tuple[tuple[str, Sequence[Moratorium | CollectionRule]], ...] = (
            ("moratoria", self.moratoria),
            ("collections", self.collections),
        )
        for kind, rules in groups:
            seen: set[str] = set()
            for i, rule in enumerate(rules):
                if rule.id in seen:
                    errors.append(((kind, i, "id"), f"duplicate id {rule.id!r}"))
                seen.add(rule.id)
                check((kind, i, "sectors"), rule.sectors or [], sectors, "sector")
        for i, moratorium in enumerate(self.moratoria):
            check(("moratoria", i, "exempt_purposes"), moratorium.exempt_purposes, purposes, "purpose")
        return errors


@dataclass(frozen=True, slots=True)
class Policy:
    """Validated rules plus where they came from; `version` is the content hash of the file."""

    rules: PolicyRules
    version: str  # "sha256:" + first 16 hex digits of the file's SHA-256
    sha256: str  # all 64 hex digits
    source: str  # the file path, or "builtin:default_policy.toml"
    text: str  # the file as written, for `facegate policy show`

    @property
    def local_operator_purposes(self) -> frozenset[str]:
        chosen = self.rules.local_operator.purposes
        return frozenset(self.rules.purposes) if chosen == "*" else frozenset(chosen)
