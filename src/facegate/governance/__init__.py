"""Governance: who may do what, for which purpose, when, and the record that it happened.

One decision point (`decide`), pure and testable, fed by the policy (a versioned TOML file)
and by facts the engine reads from the catalog (the tenant, recorded bias audits). Every
operation, allowed or denied, leaves one entry in a hash-chained audit log that
`verify` can check. Imports only `facegate.store` and `facegate.errors`.
"""

from facegate.governance.approvals import ApprovalInfo, decide_approval, pending_approvals, request_approval
from facegate.governance.audit import (
    Anchor,
    AuditEntry,
    MatchRef,
    append_entry,
    export_jsonl,
    head,
    read_entries,
)
from facegate.governance.audit_verify import VerifyResult, verify, verify_naive
from facegate.governance.bias_evidence import record_bias_audit, recorded_audits
from facegate.governance.decision import Decision, PolicyDenied, decide
from facegate.governance.keys import NewKey, authenticate, create_key, revoke_key
from facegate.governance.permissions import Mode, Operation, Role, parse_mode, parse_operation
from facegate.governance.policy import Policy
from facegate.governance.policy_holder import PolicyHolder
from facegate.governance.policy_loading import default_policy, load_policy, parse_policy
from facegate.governance.report import TransparencyReport, transparency_report
from facegate.governance.request import BiasAuditSummary, Calibration, GateRequest, TenantStatus, TenantView
from facegate.governance.review import Review, decide_review, list_reviews, open_reviews
from facegate.governance.tenants import (
    LOCAL_OPERATOR,
    TenantInfo,
    create_tenant,
    describe_tenant,
    list_tenants,
    local_operator,
    set_roles,
    set_status,
    tenant_view,
)

__all__ = [
    "LOCAL_OPERATOR", "Anchor", "ApprovalInfo", "AuditEntry", "BiasAuditSummary", "Calibration",
    "Decision", "GateRequest", "MatchRef", "Mode", "NewKey", "Operation", "Policy", "PolicyDenied",
    "PolicyHolder", "Review", "Role", "TenantInfo", "TenantStatus", "TenantView",
    "TransparencyReport", "VerifyResult", "append_entry", "authenticate", "create_key",
    "create_tenant", "decide", "decide_approval", "decide_review", "default_policy",
    "describe_tenant", "export_jsonl", "head", "list_reviews", "list_tenants", "load_policy",
    "local_operator", "open_reviews", "parse_mode", "parse_operation", "parse_policy",
    "pending_approvals", "read_entries", "record_bias_audit", "recorded_audits", "request_approval",
    "revoke_key", "set_roles", "set_status", "tenant_view", "transparency_report", "verify",
    "verify_naive",
]  # fmt: skip
