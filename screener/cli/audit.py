"""`screener audit verify`: recompute the audit hash chain and check the ledger against it."""

from __future__ import annotations

import typer

from screener.cli.common import echo_json, handle_errors, state
from screener_base.errors import AuditError

audit_app = typer.Typer(help="The hash-chained audit trail.", no_args_is_help=True)


@audit_app.command("verify")
@handle_errors
def verify_cmd(
    as_json: bool = typer.Option(False, "--json", help="machine-readable report"),
    signed_from: int = typer.Option(
        1,
        "--signed-from",
        min=1,
        help="review.signing = ssh: decisions from this event seq on must be signed (the seq where signing began)",
    ),
) -> None:
    """Recompute every event's hash, then check transfers, balances and holds against the events.

    With review.signing = ssh, every person's decision must carry a signature ssh-keygen accepts for its actor.
    Exits non-zero naming the first broken event. Note the head hash it prints: keeping it somewhere else
    (a ticket, a log shipper) lets a later run prove the whole chain was not rewritten since.
    """
    from screener.db import is_postgres, session_scope
    from screener.ledger.audit import verify_chain
    from screener.ledger.verify import verify_ledger
    from screener.review.queries import declared_decisions

    engine = state().engine()
    if is_postgres(engine):
        # One snapshot for all the queries, so a concurrent writer cannot look like tampering.
        engine = engine.execution_options(isolation_level="REPEATABLE READ")
    settings = state().settings
    signed = None
    with session_scope(engine) as s:
        report = verify_ledger(s, verify_chain(s))
        declared = declared_decisions(s)
        if settings.review.signing == "ssh":
            from screener.review.signed_audit import Policy, verify_signatures
            from screener.review.signing import allowed_signers

            policy = Policy(allowed_signers(settings), settings.review.four_eyes_above_units, signed_from)
            signed = verify_signatures(s, policy)
            for problem in signed.problems:
                report.add(problem)
    summary = {
        "ok": report.ok,
        "events": report.events,
        "declared_identity_decisions": declared,
        "signed_decisions": signed.signed if signed else None,
        "unsigned_before_signing": signed.unsigned_before_signing if signed else None,
        "head_seq": report.head_seq,
        "head_hash": report.head_hash,
        "problems": report.problems,
    }
    if as_json:
        echo_json(summary)
    if not report.ok:
        more = len(report.problems) - 1
        tail = f" (and {more} more problem{'s' if more != 1 else ''}; see --json)" if more else ""
        raise AuditError(f"audit verify failed: {report.problems[0]}{tail}", "investigate before trusting the ledger")
    if not as_json:
        typer.echo(f"ok: {report.events} events; ledger matches; head seq {report.head_seq} hash {report.head_hash}")
        if signed is not None:
            before = (
                f"; {signed.unsigned_before_signing} made before signing was on"
                if signed.unsigned_before_signing
                else ""
            )
            typer.echo(f"signatures: {signed.signed} signed decision(s) verified with ssh-keygen{before}")
        if declared:
            # Not a failure: the configuration allowed it. But those names were typed, not authenticated.
            typer.echo(f"note: {declared} decision(s) were made under a declared identity (review.identity = declared)")


def register(app: typer.Typer) -> None:
    """Add this module's commands to the root app."""
    app.add_typer(audit_app, name="audit")
