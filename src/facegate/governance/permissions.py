"""The operations the gate knows, the roles they need, and which of them need a purpose.

Names are a contract: they appear in policy files, audit entries and reports, so they are
added, never renamed. Operations that process a face (enrol, search, compare, detect) need
a declared purpose; the others (housekeeping, erasure, reading the audit log, tenant
administration) are governed by the caller's role, by collection rules and by moratoria.
"""

from __future__ import annotations

from enum import StrEnum

from facegate.errors import ErrorCode, FacegateError


class Operation(StrEnum):
    INDEX = "index"
    SEARCH_IMAGE = "search_image"
    SEARCH_FACE = "search_face"
    SEARCH_SUBJECT = "search_subject"
    COMPARE = "compare"
    DETECT = "detect"
    LIST = "list"
    DELETE = "delete"
    ERASE = "erase"
    EXPORT = "export"
    CREATE_COLLECTION = "create_collection"
    DELETE_COLLECTION = "delete_collection"
    CREATE_SUBJECT = "create_subject"
    ASSOCIATE = "associate"
    AUDIT_READ = "audit_read"
    REVIEW = "review"
    TENANT_ADMIN = "tenant_admin"
    REQUEST_APPROVAL = "request_approval"
    BIAS_AUDIT = "bias_audit"
    CONSOLE_SIGN_IN = "console_sign_in"
    CONSOLE_SIGN_OUT = "console_sign_out"
    POLICY_READ = "policy_read"
    VIDEO_SEARCH = "video_search"
    VIDEO_RESULTS = "video_results"
    SHARE = "share"
    RETENTION = "retention"
    AUDIT_CHECKPOINT = "audit_checkpoint"
    CATALOG_REKEY = "catalog_rekey"
    CATALOG_COPY = "catalog_copy"
    EVALUATE = "evaluate"


class Mode(StrEnum):
    """Post-event search of a stored photo, or live (real-time) use on a stream."""

    POST_EVENT = "post_event"
    LIVE = "live"


class Role(StrEnum):
    OPERATOR = "operator"
    AUDITOR = "auditor"
    OVERSIGHT = "oversight"
    REVIEWER = "reviewer"
    ADMIN = "admin"


# A video search is a search: moratoria and collection rules naming "search" cover it.
SEARCH_OPERATIONS = frozenset({
    Operation.SEARCH_IMAGE, Operation.SEARCH_FACE, Operation.SEARCH_SUBJECT, Operation.VIDEO_SEARCH,
})

# Operations that compare templates against a threshold: the purpose's max FMR, max results,
# human review and bias-audit requirement apply to them.
MATCHING_OPERATIONS = SEARCH_OPERATIONS | {Operation.COMPARE}

# Operations that process a face: a declared, approved purpose is required.
PURPOSE_OPERATIONS = MATCHING_OPERATIONS | {Operation.INDEX, Operation.DETECT}

# Operations on one existing collection: only its owner, or a tenant it granted the
# operation to, may run them; to anyone else the collection does not exist.
COLLECTION_OPERATIONS = SEARCH_OPERATIONS | {
    Operation.INDEX, Operation.LIST, Operation.DELETE, Operation.ERASE, Operation.DELETE_COLLECTION, Operation.CREATE_SUBJECT, Operation.ASSOCIATE, Operation.SHARE,
}

# What an owner may share: deleting the collection and sharing it further stay the owner's.
GRANTABLE_OPERATIONS = COLLECTION_OPERATIONS - {Operation.DELETE_COLLECTION, Operation.SHARE}

REQUIRED_ROLE: dict[Operation, Role] = {
    **{op: Role.OPERATOR for op in Operation},
    Operation.AUDIT_READ: Role.AUDITOR,
    Operation.BIAS_AUDIT: Role.AUDITOR,
    Operation.EVALUATE: Role.AUDITOR,
    Operation.REVIEW: Role.REVIEWER,
    Operation.TENANT_ADMIN: Role.ADMIN,
    Operation.RETENTION: Role.ADMIN,
    Operation.AUDIT_CHECKPOINT: Role.ADMIN,
    Operation.CATALOG_REKEY: Role.ADMIN,
    Operation.CATALOG_COPY: Role.ADMIN,
}

# Operations open to every role (each tenant holds at least one): signing in to the console
# and out of it, and reading the policy that governs the tenant. What a signed-in tenant may
# then read or do is decided operation by operation.
ANY_ROLE_OPERATIONS = frozenset({Operation.CONSOLE_SIGN_IN, Operation.CONSOLE_SIGN_OUT, Operation.POLICY_READ})

# Roles that also admit an operation: the oversight board reads the audit trail (the whole
# installation's, where an auditor reads only its own tenant's entries).
ALSO_ADMITTED: dict[Operation, frozenset[Role]] = {Operation.AUDIT_READ: frozenset({Role.OVERSIGHT})}

# Names a policy file may use for several operations at once.
OPERATION_GROUPS: dict[str, frozenset[Operation]] = {
    "*": frozenset(Operation),
    "search": SEARCH_OPERATIONS,
}


def expand_operations(names: str | list[str]) -> frozenset[Operation]:
    """Policy spelling (`"*"`, `"search"`, or operation names) to a set; unknown names raise."""
    items = [names] if isinstance(names, str) else names
    found: set[Operation] = set()
    for name in items:
        if name in OPERATION_GROUPS:
            found |= OPERATION_GROUPS[name]
            continue
        try:
            found.add(Operation(name))
        except ValueError:
            known = ", ".join(sorted([*OPERATION_GROUPS, *Operation]))
            raise ValueError(f"unknown operation {name!r} (known: {known})") from None
    return frozenset(found)


def parse_operation(name: str) -> Operation:
    """A caller's operation name; `search` (the CLI's spelling) means search by image."""
    if isinstance(name, Operation):
        return name
    if name == "search":
        return Operation.SEARCH_IMAGE
    try:
        return Operation(name)
    except ValueError:
        raise FacegateError(
            ErrorCode.INVALID_ARGUMENT, f"unknown operation {name!r}", field="operation"
        ) from None


def parse_mode(name: str) -> Mode:
    if isinstance(name, Mode):
        return name
    try:
        return Mode(name)
    except ValueError:
        raise FacegateError(ErrorCode.INVALID_ARGUMENT, f"unknown mode {name!r}", field="mode") from None
