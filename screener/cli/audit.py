"""`screener audit verify` and `screener audit checkpoint`: the hash chain, the ledger against it, and the
chain's head kept outside the database.

Exit codes of `audit verify`: 0 the chain and the ledger are intact, 1 tampering (or a checkpoint the chain no
longer matches) was found, 2 the check itself could not run (configuration, database, unreadable file).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer

from screener.cli.common import echo_json, handle_errors, state
from screener_base.errors import AuditError
from screener_base.text import printable

if TYPE_CHECKING:
    from sqlmodel import Session

    from screener.ledger.audit import VerifyReport
    from screener.ledger.checkpoint_rules import Checkpoint

audit_app = typer.Typer(help="The hash-chained audit trail.", no_args_is_help=True)
TAMPERED_EXIT = 1


def _signature_checker() -> Any:
    """Checks a signed checkpoint against review.allowed_signers_path; None when signing is not configured."""
    settings = state().settings
    if settings.review.signing != "ssh":
        return None
    from screener.ledger.checkpoint_rules import CHECKPOINT_NAMESPACE
    from screener.review import ssh
    from screener.review.signing import allowed_signers

    allowed = allowed_signers(settings)

    def check(cp: Checkpoint) -> str | None:
        said = ssh.verify(
            cp.signed_text(), cp.signature or "", cp.signer or "", allowed, namespace=CHECKPOINT_NAMESPACE
        )
        return None if said is None else f"does not verify for {cp.signer}: {said}"

    return check


def _check_outside(
    s: Session, report: VerifyReport, checkpoints: Path | None, expect_head: str | None
) -> dict[str, Any] | None:
    """The chain against what was kept outside it: a checkpoint file, a head hash noted earlier."""
    from sqlmodel import select

    from screener.ledger import checkpoints as cps
    from screener.models.ledger import GENESIS_HASH, AuditEvent

    summary: dict[str, Any] | None = None
    if checkpoints is not None:
        text = cps.read(checkpoints)
        if not text.strip():
            raise AuditError(
                f"checkpoint file {checkpoints} holds no checkpoints", "pass the file the daemon appends to"
            )
        checker = _signature_checker()
        judged = cps.judge_text(s, text, report.head_seq, checker)
        for problem in judged.problems:
            report.add(problem)
        last = judged.last_good
        summary = {
            "matched": len(judged.matched),
            "last_matching": {"seq": last.seq, "at": last.at, "line": last.line} if last else None,
            "signatures_checked": checker is not None,
        }
    if expect_head is not None:
        wanted = expect_head.strip().lower()
        if len(wanted) != 64 or any(c not in "0123456789abcdef" for c in wanted):
            raise AuditError(f"--expect-head {expect_head!r} is not a head hash", "pass the 64 hex digits noted")
        found = wanted == GENESIS_HASH or s.exec(select(AuditEvent.seq).where(AuditEvent.hash == wanted)).first()
        if not found:
            report.add(
                f"head hash {wanted[:16]}... noted earlier is no longer in the chain (its tail was cut or rewritten)"
            )
        summary = {**(summary or {}), "expected_head_found": bool(found)}
    return summary


def _signatures(s: Session, report: VerifyReport, signed_from: int) -> Any:
    settings = state().settings
    if settings.review.signing != "ssh":
        return None
    from screener.review.signed_audit import Policy, verify_signatures
    from screener.review.signing import allowed_signers

    policy = Policy(allowed_signers(settings), settings.review.four_eyes_above_units, signed_from)
    signed = verify_signatures(s, policy)
    for problem in signed.problems:
        report.add(problem)
    return signed


def _print_ok(report: VerifyReport, signed: Any, declared: int, outside: dict[str, Any] | None) -> None:
    typer.echo(f"ok: {report.events} events; ledger matches; head seq {report.head_seq} hash {report.head_hash}")
    if signed is not None:
        before = (
            f"; {signed.unsigned_before_signing} made before signing was on" if signed.unsigned_before_signing else ""
        )
        typer.echo(f"signatures: {signed.signed} signed decision(s) verified with ssh-keygen{before}")
    if outside is not None and "matched" in outside:
        last = outside["last_matching"]
        tail = f"; the newest is seq {last['seq']} of {last['at']}" if last else ""
        unchecked = "" if outside["signatures_checked"] else " (signatures not checked: review.signing is off)"
        typer.echo(f"checkpoints: {outside['matched']} match the chain{tail}{unchecked}")
    if outside is not None and outside.get("expected_head_found"):
        typer.echo("expected head: still in the chain")
    if declared:
        # Not a failure: the configuration allowed it. But those names were typed, not authenticated.
        typer.echo(f"note: {declared} decision(s) were made under a declared identity (review.identity = declared)")


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
    checkpoints: str | None = typer.Option(
        None, "--checkpoints", help="a JSON-lines file of `audit checkpoint` lines (the daemon's audit.checkpoint_path)"
    ),
    expect_head: str | None = typer.Option(
        None, "--expect-head", help="a head hash noted earlier; must be in the chain"
    ),
) -> None:
    """Recompute every event's hash, then check transfers, balances and holds against the events.

    With review.signing = ssh, every person's decision must carry a signature ssh-keygen accepts for its actor.
    Without a checkpoint (--checkpoints, --expect-head) a deletion of the newest events together with the head
    row cannot be seen: keep the daemon's checkpoints, or the head hash printed here, outside the database.
    Exit 0 intact, 1 tampering found (the first problem is named), 2 the check could not run.
    """
    from screener.db import is_postgres, session_scope
    from screener.ledger.audit import verify_chain
    from screener.ledger.stored import malformed_rows
    from screener.ledger.verify import verify_ledger
    from screener.ledger.verify_rows import verify_rows
    from screener.review.queries import declared_decisions

    engine = state().engine()
    if is_postgres(engine):
        # One snapshot for all the queries, so a concurrent writer cannot look like tampering.
        engine = engine.execution_options(isolation_level="REPEATABLE READ")
    with session_scope(engine) as s:
        report = verify_chain(s)
        if signed_from > report.head_seq + 1:
            raise AuditError(
                f"--signed-from {signed_from} is past the chain's end (seq {report.head_seq})",
                "pass the seq of the first event made with signing on (every decision after it must be signed)",
            )
        malformed = malformed_rows(s)
        for problem in malformed:
            report.add(problem)
        if not malformed:  # the ORM-based checks would trip over a value they cannot load
            verify_ledger(s, report)
        verify_rows(s, report)
        declared = 0 if malformed else declared_decisions(s)
        signed = None if malformed else _signatures(s, report, signed_from)
        outside = _check_outside(s, report, Path(checkpoints) if checkpoints else None, expect_head)
    summary = {
        "ok": report.ok,
        "events": report.events,
        "declared_identity_decisions": declared,
        "signed_decisions": signed.signed if signed else None,
        "unsigned_before_signing": signed.unsigned_before_signing if signed else None,
        "checkpoints": outside,
        "head_seq": report.head_seq,
        "head_hash": report.head_hash,
        "problems": report.problems,
    }
    if as_json:
        echo_json(summary)
    if not report.ok:
        more = len(report.problems) - 1
        tail = f" (and {more} more problem{'s' if more != 1 else ''}; see --json)" if more else ""
        first = printable(report.problems[0])
        typer.echo(f"error: audit verify failed: {first}{tail}; investigate before trusting the ledger", err=True)
        raise typer.Exit(TAMPERED_EXIT)
    if not as_json:
        _print_ok(report, signed, declared, outside)


@audit_app.command("checkpoint")
@handle_errors
def checkpoint_cmd(
    append: str | None = typer.Option(None, "--append", help="also append the line to this JSON-lines file"),
) -> None:
    """Print the chain's head as one JSON line {seq, head_hash, at}: keep it outside the database.

    With review.signing = ssh it is signed with your key (namespace screener-checkpoint) and names you as signer.
    `screener audit verify --checkpoints FILE` later shows whether the chain still contains it.
    """
    from screener.db import session_scope
    from screener.ledger import checkpoints as cps
    from screener.ledger.checkpoint_rules import CHECKPOINT_NAMESPACE, checkpoint_json
    from screener.review.signing import signer_for
    from screener_base.clock import utc_now

    sign = signer_for(state().settings, CHECKPOINT_NAMESPACE)
    signer = state().actor().name if sign is not None else None
    with session_scope(state().engine()) as s:
        cp = cps.take(s, utc_now(), sign, signer)
    checker = _signature_checker() if sign is not None else None
    problem = checker(cp) if checker is not None else None
    if problem is not None:  # a checkpoint nobody can verify later is worse than none: say so now
        raise AuditError(
            f"your signed checkpoint {problem}",
            f"list your key for namespace {CHECKPOINT_NAMESPACE} too in the allowed-signers file "
            f'(namespaces="screener-review,{CHECKPOINT_NAMESPACE}"); nothing was appended',
        )
    if append:
        cps.append(Path(append), cp)
    typer.echo(checkpoint_json(cp))


@audit_app.command("index")
@handle_errors
def index_cmd(
    chain: str = typer.Argument(..., help="chain name, e.g. ethereum"),
    kind: str = typer.Option("all", "--kind", help="mixer, blacklist or all"),
    from_block: int | None = typer.Option(None, "--from-block", min=0, help="first block (default: the index's)"),
    to_block: int | None = typer.Option(None, "--to-block", min=0, help="last block (default: last scanned)"),
    max_ranges: int = typer.Option(10_000, "--max-ranges", min=1, help="eth_getLogs ranges read at most, per kind"),
    as_json: bool = typer.Option(False, "--json", help="machine-readable report"),
) -> None:
    """Read an index's block range again from the chain and compare it with the stored facts.

    Finds what `audit verify` cannot without a node: facts never stored because the index cursor was moved past
    them in SQL, as well as facts deleted, edited or inserted. Each decision records the range it relied on
    (`indexes` in its event). Exit 0 the facts match the chain, 1 they differ (or the range was not finished
    within --max-ranges), 2 the check could not run (configuration, a range outside the index, no node served it).
    """
    from screener.indexes.recheck import recheck_index
    from screener.indexes.rules import IndexKind
    from screener.indexes.sources import build_index_source
    from screener_base.clock import utc_now
    from screener_base.errors import ConfigError

    kinds = [k.value for k in IndexKind] if kind == "all" else [kind]
    if any(k not in {k.value for k in IndexKind} for k in kinds):
        raise ConfigError(f"--kind {kind!r} is not an index", "pass mixer, blacklist or all")
    source = build_index_source(state().settings, chain)
    engine = state().engine()
    results = [
        recheck_index(engine, source, k, utc_now(), from_block=from_block, to_block=to_block, max_ranges=max_ranges)
        for k in kinds
    ]
    _report_index(results, as_json)


def _report_index(results: list[Any], as_json: bool) -> None:
    bad = [r for r in results if not (r.comparison.ok and r.complete)]
    if as_json:
        echo_json([
            {"chain": r.chain, "kind": r.kind, "from_block": r.from_block, "to_block": r.to_block,
             "complete": r.complete, "ranges": r.ranges, "on_chain": r.comparison.on_chain,
             "stored": r.comparison.stored, "counts": r.comparison.counts, "missing": r.comparison.missing,
             "extra": r.comparison.extra, "differing": r.comparison.differing}
            for r in results
        ])  # fmt: skip
    for r in results if not as_json else ():
        c = r.comparison
        typer.echo(f"{r.chain} {r.kind}: blocks {r.from_block}..{r.to_block}, {r.ranges} range(s), "
                   f"{c.on_chain} on chain, {c.stored} stored")  # fmt: skip
    for r in bad:
        typer.echo(f"error: {r.chain} {r.kind} index: {_why(r)}; investigate before trusting its decisions", err=True)
    if bad:
        raise typer.Exit(TAMPERED_EXIT)


def _why(r: Any) -> str:
    """The first difference of one kind's recheck, differences before an unfinished range."""
    c = r.comparison
    if c.counts["missing"]:
        why = (
            f"{c.counts['missing']} fact(s) on the chain are not stored, first {c.missing[0]} "
            "(deleted, or the cursor skipped them)"
        )
    elif c.counts["extra"]:
        why = (
            f"{c.counts['extra']} stored fact(s) are not on the chain, first {c.extra[0]} (inserted behind the worker)"
        )
    elif c.counts["differing"]:
        why = f"{c.counts['differing']} stored fact(s) differ from the chain, first {printable(c.differing[0])}"
    else:
        why = f"stopped at block {r.to_block} of {r.requested_to_block} (--max-ranges); nothing after it was compared"
    return why


def register(app: typer.Typer) -> None:
    """Add this module's commands to the root app."""
    app.add_typer(audit_app, name="audit")
