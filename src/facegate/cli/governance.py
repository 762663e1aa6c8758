"""Governance commands: tenants, keys, purpose approvals, policy, audit trail, review."""

from __future__ import annotations

import sys
from datetime import datetime
from pathlib import Path

import click

from facegate.cli.common import (
    build_engine, caller_options, emit, engine_options, handles_errors, json_option, make_caller, stdout,
)
from facegate.cli.tables import fmr, print_fields, print_table
from facegate.errors import ErrorCode, FacegateError
from facegate.gate import Caller, Limits
from facegate.governance import parse_operation
from facegate.governance.checkpoints import read_checkpoint
from facegate.governance.leads import LEAD_NOTICE
from facegate.operations import admin, audit


def parse_time(value: str | None, field: str) -> datetime | None:
    if value is None:
        return None
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        raise FacegateError(ErrorCode.INVALID_ARGUMENT, f"{field} must be an ISO 8601 time, got {value!r}") from None
    if moment.tzinfo is None:  # as docs/governance.md says: a time without a zone is refused, never guessed
        raise FacegateError(
            ErrorCode.INVALID_ARGUMENT, f"{field} needs a time zone (e.g. {value}Z or {value}+02:00), got {value!r}",
            field=field.lstrip("-"),
        )
    return moment


def admin_caller(tenant: str | None) -> Caller:
    return Caller(tenant=tenant)


admin_option = click.option("--as-tenant", "as_tenant", default=None,
                            help="Act as this tenant (needs the admin role; default: the local operator).")


@click.group("tenant")
def tenant_group() -> None:
    """Customers of the service: sector, approved purposes, roles, keys."""


@tenant_group.command("create")
@click.argument("name")
@click.option("--sector", required=True, help="law_enforcement, government, commercial, nonprofit, research, ...")
@click.option("--purposes", default="", help="Comma-separated purposes approved at once.")
@click.option("--roles", default="operator", show_default=True,
              help="Comma-separated: operator,reviewer,auditor,oversight,admin")
@admin_option
@engine_options
@json_option
@handles_errors
def tenant_create(name: str, sector: str, purposes: str, roles: str, as_tenant: str | None,
                  data_dir: Path | None, policy: Path | None, as_json: bool) -> None:
    """Create a tenant."""
    engine = build_engine(data_dir, policy)
    info = admin.new_tenant(engine, admin_caller(as_tenant), name, sector, _csv(purposes), _csv(roles))
    emit(as_json, info.to_dict(), lambda: stdout.print(f"created tenant {name} ({sector})"))


@tenant_group.command("list")
@admin_option
@engine_options
@json_option
@handles_errors
def tenant_list(as_tenant: str | None, data_dir: Path | None, policy: Path | None, as_json: bool) -> None:
    """List tenants with their sector and status."""
    engine = build_engine(data_dir, policy)
    found = admin.tenants(engine, admin_caller(as_tenant))
    emit(as_json, {"tenants": [t.to_dict() for t in found]}, lambda: print_table(
        ["tenant", "sector", "status"], [(t.name, t.sector, t.status.value) for t in found], empty="no tenants"))


@tenant_group.command("describe")
@click.argument("name")
@admin_option
@engine_options
@json_option
@handles_errors
def tenant_describe(name: str, as_tenant: str | None, data_dir: Path | None, policy: Path | None, as_json: bool) -> None:
    """Show a tenant: sector, status, roles, approved purposes and keys."""
    engine = build_engine(data_dir, policy)
    info = admin.tenant(engine, admin_caller(as_tenant), name)
    emit(as_json, info.to_dict(), lambda: print_fields(info.to_dict()))


@tenant_group.command("suspend")
@click.argument("name")
@admin_option
@engine_options
@json_option
@handles_errors
def tenant_suspend(name: str, as_tenant: str | None, data_dir: Path | None, policy: Path | None, as_json: bool) -> None:
    """Suspend a tenant: every request it makes is denied (TENANT_SUSPENDED)."""
    engine = build_engine(data_dir, policy)
    info = admin.set_tenant_status(engine, admin_caller(as_tenant), name, "suspended")
    emit(as_json, info.to_dict(), lambda: stdout.print(f"suspended {name}"))


@tenant_group.command("activate")
@click.argument("name")
@admin_option
@engine_options
@json_option
@handles_errors
def tenant_activate(name: str, as_tenant: str | None, data_dir: Path | None, policy: Path | None, as_json: bool) -> None:
    """Re-activate a suspended tenant."""
    engine = build_engine(data_dir, policy)
    info = admin.set_tenant_status(engine, admin_caller(as_tenant), name, "active")
    emit(as_json, info.to_dict(), lambda: stdout.print(f"activated {name}"))


@tenant_group.command("roles")
@click.argument("name")
@click.option("--add", "add", multiple=True, help="Role to add (repeat or comma-separate).")
@click.option("--remove", "remove", multiple=True, help="Role to remove (repeat or comma-separate).")
@admin_option
@engine_options
@json_option
@handles_errors
def tenant_roles(name: str, add: tuple[str, ...], remove: tuple[str, ...], as_tenant: str | None,
                 data_dir: Path | None, policy: Path | None, as_json: bool) -> None:
    """Add or remove roles: operator, reviewer, auditor, oversight (local operator only), admin (audited)."""
    engine = build_engine(data_dir, policy)
    info = admin.tenant_roles(engine, admin_caller(as_tenant), name,
                              [r for v in add for r in _csv(v)], [r for v in remove for r in _csv(v)])
    emit(as_json, info.to_dict(), lambda: stdout.print(f"{name}: {', '.join(r.value for r in info.roles)}"))


@click.group("key")
def key_group() -> None:
    """API keys: shown once, stored only as a hash."""


@key_group.command("create")
@click.argument("tenant")
@click.option("--expires", default=None, help="ISO 8601 expiry time (default: never).")
@click.option("--holder", default=None, help="The person or system the key belongs to (recorded with each request).")
@click.option("--purpose", default=None, help="Bind the key to this purpose: every request made with it declares it.")
@click.option("--case-reference", "case_reference", default=None,
              help="Bind the key to this case too (with --purpose): a credential for one investigation.")
@admin_option
@engine_options
@json_option
@handles_errors
def key_create(tenant: str, expires: str | None, holder: str | None, purpose: str | None,
               case_reference: str | None, as_tenant: str | None, data_dir: Path | None, policy: Path | None,
               as_json: bool) -> None:
    """Create a key for TENANT (with AWS credentials); it is printed once and cannot be shown again."""
    engine = build_engine(data_dir, policy)
    new = admin.new_key(engine, admin_caller(as_tenant), tenant, parse_time(expires, "--expires"), holder,
                        purpose=purpose, case_reference=case_reference)
    emit(as_json, new.to_dict(), lambda: stdout.print(
        f"key id                {new.key_id}\nkey                   {new.key}\n"
        f"aws_access_key_id     {new.aws_access_key_id}\naws_secret_access_key {new.aws_secret_access_key}\n"
        "(shown once: store it now)"
    ))


@key_group.command("revoke")
@click.argument("key_id")
@admin_option
@engine_options
@json_option
@handles_errors
def key_revoke(key_id: str, as_tenant: str | None, data_dir: Path | None, policy: Path | None, as_json: bool) -> None:
    """Revoke a key: requests with it are refused from now on (UNAUTHENTICATED)."""
    engine = build_engine(data_dir, policy)
    info = admin.drop_key(engine, admin_caller(as_tenant), key_id)
    emit(as_json, info.to_dict(), lambda: stdout.print(f"revoked {key_id}"))


@click.group("approval")
def approval_group() -> None:
    """Purpose approvals: a tenant requests, an administrator approves or rejects."""


@approval_group.command("request")
@click.argument("tenant")
@click.argument("purpose")
@click.option("--note", default="", help="Why (kept with the request or verdict, and audited).")
@engine_options
@json_option
@handles_errors
def approval_request(tenant: str, purpose: str, note: str, data_dir: Path | None, policy: Path | None, as_json: bool) -> None:
    """Ask for TENANT to be approved for PURPOSE (an administrator decides)."""
    engine = build_engine(data_dir, policy)
    info = admin.ask_approval(engine, Caller(tenant=tenant), purpose, note)
    emit(as_json, info.to_dict(), lambda: stdout.print(f"{tenant} requested {purpose}: {info.status}"))


def _answer(approve: bool):  # type: ignore[no-untyped-def]
    verb = "approve" if approve else "reject"

    @click.argument("tenant")
    @click.argument("purpose")
    @click.option("--note", default="", help="Why (kept with the request or verdict, and audited).")
    @admin_option
    @engine_options
    @json_option
    @handles_errors
    def command(tenant: str, purpose: str, note: str, as_tenant: str | None, data_dir: Path | None,
                policy: Path | None, as_json: bool) -> None:
        engine = build_engine(data_dir, policy)
        info = admin.answer_approval(engine, admin_caller(as_tenant), tenant, purpose, approve, note)
        emit(as_json, info.to_dict(), lambda: stdout.print(f"{verb}d {purpose} for {tenant}"))

    command.__doc__ = f"{verb.capitalize()} a tenant's request for a purpose (audited)."
    return approval_group.command(verb)(command)


_answer(True)
_answer(False)


@click.group("policy")
def policy_group() -> None:
    """Show the policy in force, or dry-run a decision."""


@policy_group.command("show")
@engine_options
@json_option
@handles_errors
def policy_show(data_dir: Path | None, policy: Path | None, as_json: bool) -> None:
    """Print the policy in force (the built-in default when no file is given)."""
    current = build_engine(data_dir, policy).policy
    emit(as_json, {"version": current.version, "source": current.source, "text": current.text},
         lambda: click.echo(f"# policy {current.version} from {current.source}\n{current.text}"))


@policy_group.command("check")
@click.option("--operation", required=True, help="search, index, compare, detect, list, ...")
@click.option("--at", default=None, help="ISO 8601 time to decide at (default: now).")
@click.option("--collection", default=None, help="Collection the operation would touch.")
@click.option("--mode", type=click.Choice(["post_event", "live"]), default="post_event", show_default=True,
              help="post_event (a stored photo) or live (a camera stream).")
@click.option("--max-fmr", type=float, default=None, help="Stricter maximum false-match rate to ask for.")
@caller_options
@engine_options
@json_option
@handles_errors
def policy_check(operation: str, at: str | None, collection: str | None, mode: str, max_fmr: float | None,
                 data_dir: Path | None, policy: Path | None, as_json: bool, **who: str | None) -> None:
    """Dry run: the decision for a tenant, purpose and operation, without performing it."""
    engine = build_engine(data_dir, policy)
    when = parse_time(at, "--at") or engine.now()
    decision = admin.policy_check(
        engine, make_caller(**who, mode=mode), parse_operation(operation), when, collection, Limits(max_fmr=max_fmr)
    )
    payload = decision.to_dict()
    emit(as_json, payload, lambda: print_fields({
        **payload, "max_fmr": fmr(decision.max_fmr) if decision.max_fmr is not None else "- (not a matching operation)",
        "threshold": f"{decision.threshold:.2f} similarity" if decision.threshold is not None else "-",
    }))


@policy_group.command("thresholds")
@engine_options
@json_option
@handles_errors
def policy_thresholds(data_dir: Path | None, policy: Path | None, as_json: bool) -> None:
    """Per purpose: population and every-group thresholds, and each group's FMR and FNMR there."""
    from facegate.cli.thresholds import show_thresholds  # the table needs rich only here

    show_thresholds(build_engine(data_dir, policy), as_json)


@click.group("audit")
def audit_group() -> None:
    """The tamper-evident audit trail: verify, export, transparency report, signed checkpoints, proofs."""


@audit_group.command("verify")
@click.option("--checkpoint", "checkpoint_file", type=click.Path(path_type=Path), default=None,
              help="A signed checkpoint (JSON) that the log must extend.")
@click.option("--public-key", default=None,
              help="The public key (base64) the checkpoint must be signed by, as pinned by its keeper (without "
                   "--checkpoint, the newest in FACEGATE_CHECKPOINT_DIR and the last one stored in the catalog: "
                   "by default FACEGATE_AUDIT_SIGNING_KEY's).")
@admin_option
@engine_options
@json_option
@handles_errors
def audit_verify(checkpoint_file: Path | None, public_key: str | None, as_tenant: str | None, data_dir: Path | None,
                 policy: Path | None, as_json: bool) -> None:
    """Re-walk the hash chain, check it extends a signed checkpoint, name the first problem (exit 1 if any)."""
    engine = build_engine(data_dir, policy)
    document = None if checkpoint_file is None else read_checkpoint(checkpoint_file)
    result = audit.verify_chain(engine, admin_caller(as_tenant), document, public_key)
    payload = result.to_dict()
    redactions = payload["redactions"]["count"]
    emit(as_json, payload, lambda: stdout.print(
        f"audit chain OK: {result.entries} entries, {redactions} redacted"
        + (f"; extends the checkpoint at entry {result.checkpoint.get('seq')}"
           + (f" ({result.checkpoint['file']})" if "file" in result.checkpoint else "")
           if result.checkpoint is not None else "")
        if result.ok
        else f"audit chain BROKEN ({result.kind}) at entry {result.first_bad_entry}: {payload.get('problem')}"
    ))
    if not result.ok:
        sys.exit(1)


@audit_group.command("export")
@click.option("--out", type=click.Path(path_type=Path), default=None, help="JSONL file (default: stdout).")
@click.option("--since-seq", type=int, default=None, help="Only entries after this sequence number.")
@click.option("--limit", type=int, default=None, help="At most this many entries.")
@admin_option
@engine_options
@handles_errors
def audit_export(out: Path | None, since_seq: int | None, limit: int | None, as_tenant: str | None,
                 data_dir: Path | None, policy: Path | None) -> None:
    """Write audit entries as JSON lines."""
    engine = build_engine(data_dir, policy)
    if out is None:
        audit.export(engine, admin_caller(as_tenant), sys.stdout, since_seq, limit)
        return
    with out.open("w") as handle:
        count = audit.export(engine, admin_caller(as_tenant), handle, since_seq, limit)
    click.echo(f"wrote {count} entries to {out}", err=True)


@audit_group.command("report")
@click.option("--since", default=None, help="ISO 8601 start time (with zone; default: the first entry).")
@click.option("--until", default=None, help="ISO 8601 end time (with zone; default: now).")
@admin_option
@engine_options
@json_option
@handles_errors
def audit_report(since: str | None, until: str | None, as_tenant: str | None, data_dir: Path | None,
                 policy: Path | None, as_json: bool) -> None:
    """Transparency report: requests and denials by sector, purpose, decision and month."""
    engine = build_engine(data_dir, policy)
    rep = audit.report(engine, admin_caller(as_tenant), parse_time(since, "--since"), parse_time(until, "--until"))
    emit(as_json, rep.to_dict(), lambda: click.echo(rep.to_markdown()))


@click.group("review")
def review_group() -> None:
    """Human review of investigative leads."""


@review_group.command("list")
@click.option("--tenant", default=None, help="Whose leads: the tenant acting (default: the local operator).")
@click.option("--status", type=click.Choice(["pending", "confirmed", "rejected", "all"]), default="pending",
              show_default=True, help="Leads waiting for a verdict, those decided either way, or all.")
@click.option("--case-reference", default=None, help="Only the leads of this case.")
@click.option("--after-id", type=click.IntRange(0), default=0, help="Leads after this review id (paging).")
@click.option("--limit", type=click.IntRange(1, 1000), default=100, show_default=True,
              help="Leads per page (then --after-id for the next).")
@engine_options
@json_option
@handles_errors
def review_list(tenant: str | None, status: str, case_reference: str | None, after_id: int, limit: int,
                data_dir: Path | None, policy: Path | None, as_json: bool) -> None:
    """Leads of one tenant, oldest first (a tenant sees only its own)."""
    engine = build_engine(data_dir, policy)
    found = admin.pending_reviews(engine, Caller(tenant=tenant), status=None if status == "all" else status,
                                  case_reference=case_reference, after_id=after_id, limit=limit)
    leads = [admin.lead_dict(engine, r) for r in found]
    next_after_id = found[-1].review_id if len(found) == limit else None

    def human() -> None:
        print_table(
            ["review", "status", "similarity", "est. FMR", "worst group FMR", "face id", "subject", "purpose", "case",
             "searched by", "reviewer", "created"],
            [(r["review_id"], r["status"], f"{r['similarity']:.2f}", fmr(r["estimated_fmr"]),
              "-" if r["worst_group"] is None else f"{fmr(r['estimated_fmr_worst_group'])} {r['worst_group']}",
              r["face_id"],
              r["subject"], r["purpose"], r["case_reference"], r["searcher_holder"] or r["searcher_key_id"],
              r["reviewer_holder"] or r["reviewer"], r["created_at"]) for r in leads],
            empty=f"no {status} reviews" if status != "all" else "no reviews",
        )
        if leads:
            stdout.print(LEAD_NOTICE)
        if next_after_id is not None:
            stdout.print(f"next page: --after-id {next_after_id}")

    emit(as_json, {"reviews": leads, "next_after_id": next_after_id}, human)


def _verdict(verdict: str):  # type: ignore[no-untyped-def]
    @click.argument("review_id", type=int)
    @click.option("--note", default="", help="Why (kept with the request or verdict, and audited).")
    @click.option("--tenant", default=None, help="Reviewer tenant (default: the local operator).")
    @click.option("--holder", default=None,
                  help="The person reviewing (compared with the searcher's key holder where the purpose needs four eyes).")
    @engine_options
    @json_option
    @handles_errors
    def command(review_id: int, note: str, tenant: str | None, holder: str | None, data_dir: Path | None,
                policy: Path | None, as_json: bool) -> None:
        engine = build_engine(data_dir, policy)
        done = admin.review(engine, Caller(tenant=tenant, key_holder=holder), review_id, verdict, note)
        emit(as_json, admin.lead_dict(engine, done), lambda: stdout.print(f"review {review_id}: {verdict}ed"))

    command.__doc__ = f"{verdict.capitalize()} a candidate (the verdict is audited)."
    return review_group.command(verdict)(command)


_verdict("confirm")
_verdict("reject")


def _csv(value: str) -> list[str]:
    return [v.strip() for v in value.split(",") if v.strip()]
