"""`facegate audit keygen|checkpoint|prove|prove-consistency`: signed checkpoints, inclusion and consistency proofs."""

from __future__ import annotations

from pathlib import Path

import click

from facegate.cli.common import build_engine, emit, engine_options, handles_errors, json_option, stdout
from facegate.cli.governance import admin_caller, admin_option, audit_group
from facegate.governance.checkpoints import generate_key, read_checkpoint
from facegate.operations import audit


@audit_group.command("keygen")
@click.option("--out", type=click.Path(path_type=Path), required=True,
              help="Private key file to create (mode 0600; keep it outside the data directory).")
@json_option
@handles_errors
def audit_keygen(out: Path, as_json: bool) -> None:
    """Create an Ed25519 audit signing key; print its public key (give that to the oversight board)."""
    public_key = generate_key(out)
    emit(as_json, {"private_key_file": str(out), "public_key": public_key}, lambda: (
        stdout.print(f"public key {public_key}"),
        click.echo(f"private key written to {out}; use it with FACEGATE_AUDIT_SIGNING_KEY={out}", err=True),
    ))


@audit_group.command("checkpoint")
@click.option("--out", type=click.Path(path_type=Path), default=None, help="Also write the checkpoint to this file.")
@admin_option
@engine_options
@json_option
@handles_errors
def audit_checkpoint(out: Path | None, as_tenant: str | None, data_dir: Path | None, policy: Path | None,
                     as_json: bool) -> None:
    """Sign the audit log's head and Merkle root with FACEGATE_AUDIT_SIGNING_KEY (chained to the last checkpoint)."""
    engine = build_engine(data_dir, policy)
    document = audit.checkpoint(engine, admin_caller(as_tenant), out)
    emit(as_json, document, lambda: stdout.print(
        f"checkpoint at entry {document['seq']}, head {document['head']}, root {document['merkle_root']}"
    ))


@audit_group.command("prove")
@click.argument("seq", type=click.IntRange(min=1))
@click.option("--checkpoint", "checkpoint_file", type=click.Path(path_type=Path), default=None,
              help="Signed checkpoint to prove against (default: the latest in the catalog).")
@admin_option
@engine_options
@json_option
@handles_errors
def audit_prove(seq: int, checkpoint_file: Path | None, as_tenant: str | None, data_dir: Path | None,
                policy: Path | None, as_json: bool) -> None:
    """Merkle inclusion proof (RFC 9162) of entry SEQ in a signed checkpoint."""
    engine = build_engine(data_dir, policy)
    document = None if checkpoint_file is None else read_checkpoint(checkpoint_file)
    proof = audit.prove(engine, admin_caller(as_tenant), seq, document)
    emit(as_json, proof, lambda: stdout.print(
        f"entry {seq} is leaf {proof['leaf_index']} of {proof['tree_size']}; "
        f"path of {len(proof['path'])} hashes to root {proof['merkle_root']}"
    ))


@audit_group.command("prove-consistency")
@click.option("--from", "first_file", type=click.Path(path_type=Path), required=True,
              help="The earlier signed checkpoint (the one its keeper holds).")
@click.option("--to", "second_file", type=click.Path(path_type=Path), default=None,
              help="The later signed checkpoint (default: the latest in the catalog).")
@admin_option
@engine_options
@json_option
@handles_errors
def audit_prove_consistency(first_file: Path, second_file: Path | None, as_tenant: str | None, data_dir: Path | None,
                            policy: Path | None, as_json: bool) -> None:
    """Merkle consistency proof (RFC 9162): the log the later checkpoint signed extends the earlier one's."""
    engine = build_engine(data_dir, policy)
    second = None if second_file is None else read_checkpoint(second_file)
    proof = audit.prove_consistency(engine, admin_caller(as_tenant), read_checkpoint(first_file), second)
    emit(as_json, proof, lambda: stdout.print(
        f"the tree of {proof['second']['seq']} entries extends that of {proof['first']['seq']}; "
        f"path of {len(proof['path'])} hashes"
    ))
