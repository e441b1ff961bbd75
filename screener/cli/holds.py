"""`screener holds ...`, `screener flags ...` and `screener balances`: finance staff's review commands.

Thin: validate the input, open one transaction, call screener.review.service, print. Every refusal is a one-line
`error: ...` and rolls the transaction back, so a bad command changes nothing. Service modules are imported
inside the commands to keep the CLI's start-up fast.
"""

from __future__ import annotations

from contextlib import AbstractContextManager
from datetime import datetime
from typing import TYPE_CHECKING, Any

import typer
from typer.core import TyperCommand

from screener.cli.common import echo_json, handle_errors, quiet_broken_pipe, state
from screener_base.errors import ReviewError
from screener_base.text import printable

if TYPE_CHECKING:
    from sqlmodel import Session

    from screener.review.signing import Signing

holds_app = typer.Typer(
    help="Deposits on hold: list, inspect, release, approve, withdraw, reject, note, rescreen, export."
)
flags_app = typer.Typer(help="Review flags on deposits already credited.")

ID_HELP = "hold id as shown by `holds list`, e.g. H-42 or 42"
OPERATOR_HELP = (
    "who is acting, only with review.identity = declared; otherwise it must be your database login (PostgreSQL) "
    "or OS account (SQLite), which are used anyway"
)
# Required id arguments: what is missing, an example, and the command that lists the ids.
_ID_ARGS = {"hold": ("hold id", "H-42", "screener holds list"), "flag": ("flag id", "F-7", "screener flags list")}


def _id_required(name: str, command: str | None = None) -> ReviewError:
    what, example, lister = _ID_ARGS[name]
    usage = f"`{command} {example}`" if command else example
    return ReviewError(f"the {what} is required", f"give it, e.g. {usage}; `{lister}` shows the ids")


class IdCommand(TyperCommand):
    """A command whose id argument is required (and --help says so); leaving it out is one `error:` line."""

    def parse_args(self, ctx: Any, args: list[str]) -> list[str]:
        try:
            return super().parse_args(ctx, args)
        except typer.BadParameter as exc:  # click's MissingParameter
            name = exc.param.name if exc.param is not None else None
            if name not in _ID_ARGS:
                raise
            typer.echo(f"error: {_id_required(name, ctx.command_path)}", err=True)
            raise typer.Exit(ReviewError.exit_code) from None


def _operator_option() -> Any:
    return typer.Option(None, "--operator", help=OPERATOR_HELP)


def _signing() -> Signing:
    """How this person's decisions are signed (review.signing); checked before anything is locked."""
    from screener.review.signing import signing_for

    return signing_for(state().settings)


def _hold_id(text: str | None) -> int:
    from screener.review.rules import parse_hold_id

    if not (text or "").strip():
        raise _id_required("hold")
    return parse_hold_id(text or "")


def _now() -> datetime:
    from screener_base.clock import utc_now

    return utc_now()


def _session() -> AbstractContextManager[Session]:
    from screener.db import session_scope

    return session_scope(state().engine())


@holds_app.command("list")
@handle_errors
def list_cmd(
    hold_state: str = typer.Option(
        "unresolved", "--state", help="open|awaiting_approval|unresolved (both)|released|rejected|all"
    ),
    overdue: bool = typer.Option(False, "--overdue", help="only unresolved holds past their SLA"),
    as_json: bool = typer.Option(False, "--json", help="machine-readable output"),
) -> None:
    """Holds in one state (default: unresolved, i.e. open or awaiting approval), oldest first."""
    from screener.cli.render import table
    from screener.review.queries import hold_record, list_holds

    now = _now()
    with _session() as s:
        records = [hold_record(h, d, now) for h, d in list_holds(s, hold_state.strip(), now, overdue)]
    with quiet_broken_pipe():
        if as_json:
            echo_json(records)
            return
        if not records:
            typer.echo(f"no {hold_state} holds" + (" past their SLA" if overdue else ""))
            return
        headers = ["ID", "STATE", "VERDICT", "AMOUNT", "TOKEN", "CHAIN", "ACCOUNT", "OPENED", "DUE", "REASON"]
        rows = [
            [
                r["id"],
                r["state"] + (f" ({r['release_requested_by']})" if r["state"] == "awaiting_approval" else ""),
                r["verdict"],
                r["amount"],
                r["token"],
                r["chain"],
                r["account"],
                r["opened_at"][:16],
                r["due_at"][:16] + (" OVERDUE" if r["overdue"] else ""),
                r["reason"],
            ]
            for r in records
        ]
        typer.echo(table(headers, rows, right=(3,)))


@holds_app.command("show", cls=IdCommand)
@handle_errors
def show_cmd(
    hold: str = typer.Argument(..., help=ID_HELP, show_default=False),
    as_json: bool = typer.Option(False, "--json", help="machine-readable output"),
) -> None:
    """One hold: the deposit, why it is held (findings), its ledger entries and its history."""
    from screener.review.queries import hold_detail

    hold_id = _hold_id(hold)
    with _session() as s:
        record = hold_detail(s, hold_id).record(_now())
    with quiet_broken_pipe():
        if as_json:
            echo_json(record)
        else:
            typer.echo(_render_detail(record))


def _plain(value: Any) -> str:
    return ",".join(str(v) for v in value) if isinstance(value, list) else str(value)


def _render_detail(r: dict[str, Any]) -> str:
    lines = [
        f"{r['id']}  {r['state']}  verdict {r['verdict']}" + ("  OVERDUE" if r["overdue"] else ""),
        f"  deposit   {r['amount']} {r['token']} on {r['chain']} to account {r['account']} (raw {r['amount_raw']})",
        f"  tx        {r['tx_hash']} log {r['log_index']} block {r['block_number']}",
        f"  from      {r['from_address']}   initiator {r['initiator'] or 'UNKNOWN'}",
        f"  opened    {r['opened_at']}   due {r['due_at']}   list version {r['list_version_id']}",
        f"  reason    {r['reason']}",
        "findings:",
    ]
    for f in r["findings"] or [{"rule_id": "(none)"}]:
        extra = " ".join(
            f"{k}={_plain(f[k])}"
            for k in ("matched_address", "entity", "programs", "evidence_tx", "hop_path")
            if f.get(k)
        )
        lines.append(f"  - {f['rule_id']} [{f.get('severity', '')}] party={f.get('party', '')} {extra}".rstrip())
        if f.get("detail"):
            lines.append(f"      {f['detail']}")
    lines.append("ledger:")
    for t in r["ledger"]:
        lines.append(
            f"  {t['step']:<12} {t['flags']:<13} {t['debit']} -> {t['credit']}  {t['amount_units']}  {t['id']}"
        )
    lines.append("history:")
    for e in r["history"]:
        p = e["payload"]
        said = p.get("reason") or p.get("text") or ""
        if p.get("approval_note"):  # an approval: its own note, then the reason it approved
            said = f"{p['approval_note']} (approving: {said})"
        # A name typed, not authenticated (review.identity = declared): an auditor must be able to tell.
        who = e["actor"] + (" [declared identity]" if p.get("identity") == "declared" else "")
        who += f" [signed {p['signed_key']}]" if isinstance(p.get("signed_key"), str) else ""
        lines.append(f"  #{e['seq']} {e['at'][:19]} {e['kind']:<22} by {who}" + (f": {said}" if said else ""))
    return "\n".join(printable(line) for line in lines)  # stored text never forges a line


@holds_app.command("release", cls=IdCommand)
@handle_errors
def release_cmd(
    hold: str = typer.Argument(..., help=ID_HELP, show_default=False),
    reason: str | None = typer.Option(None, "--reason", help="why it may be credited (kept in the audit trail)"),
    operator: str | None = _operator_option(),
) -> None:
    """Release a hold. BLOCK verdicts and large amounts then wait for `holds approve` by another operator.

    The deposit is screened again first: a stale list, or evidence the hold does not show yet, refuses it.
    """
    from screener.decide import credit
    from screener.review.rules import hold_label, require_text

    hold_id, why = _hold_id(hold), require_text(reason, "--reason")
    actor = state().actor(operator)
    operator = actor.name
    h = credit.release(state().engine(), hold_id, why, operator, state().settings, _now(), actor.mode, _signing())
    label, new_state = hold_label(h.id), h.state
    if new_state == "released":
        typer.echo(f"{label} released by {operator}; the deposit is credited")
    else:
        typer.echo(f"{label} awaits approval: another operator must run `screener holds approve {label}`")


@holds_app.command("approve", cls=IdCommand)
@handle_errors
def approve_cmd(
    hold: str = typer.Argument(..., help=ID_HELP, show_default=False),
    reason: str | None = typer.Option(None, "--reason", help="optional note from the approver"),
    operator: str | None = _operator_option(),
) -> None:
    """Approve a release requested by a different operator (four-eyes); the deposit is credited.

    The deposit is screened again first: a stale list, or evidence the hold does not show yet, refuses it.
    """
    from screener.decide import credit
    from screener.review.rules import hold_label

    hold_id, actor = _hold_id(hold), state().actor(operator)
    operator = actor.name
    h = credit.approve(state().engine(), hold_id, operator, _now(), state().settings, reason, actor.mode, _signing())
    label, requester = hold_label(h.id), h.release_requested_by
    typer.echo(f"{label} approved by {operator} (requested by {requester}); the deposit is credited")


@holds_app.command("withdraw", cls=IdCommand)
@handle_errors
def withdraw_cmd(
    hold: str = typer.Argument(..., help=ID_HELP, show_default=False),
    operator: str | None = _operator_option(),
) -> None:
    """Take back your own release request: the hold is open again (e.g. to release it again, signed)."""
    from screener.review.rules import hold_label
    from screener.review.service import withdraw_request

    hold_id, actor = _hold_id(hold), state().actor(operator)
    with _session() as s:
        withdraw_request(s, hold_id, actor.name, _now(), identity=actor.mode)
    typer.echo(f"{hold_label(hold_id)}: the release request is withdrawn; the hold is open")


@holds_app.command("reject", cls=IdCommand)
@handle_errors
def reject_cmd(
    hold: str = typer.Argument(..., help=ID_HELP, show_default=False),
    reason: str | None = typer.Option(None, "--reason", help="why (kept in the audit trail)"),
    to: str | None = typer.Option(
        None, "--to", help="required: blocked (sanctions: blocked property) or return (to sender)"
    ),
    operator: str | None = _operator_option(),
) -> None:
    """Reject a hold: the pending credit is voided and the funds move to `blocked` or `return_payable`."""
    from screener.decide import credit
    from screener.review.rules import hold_label, reject_target, require_text

    hold_id, why = _hold_id(hold), require_text(reason, "--reason")
    if not (to or "").strip():
        raise ReviewError(
            "--to is required: blocked (sanctioned property, kept and reported) or return (owed back to the sender)",
            "pass --to blocked or --to return",
        )
    target, actor = reject_target(to), state().actor(operator)
    operator = actor.name
    settings = state().settings
    h = credit.reject(state().engine(), hold_id, why, target, operator, settings, _now(), actor.mode, _signing())
    label = hold_label(h.id)
    typer.echo(f"{label} rejected by {operator}; funds moved to {target}")


@holds_app.command("rescreen")
@handle_errors
def rescreen_cmd() -> None:
    """Screen every open hold again now, as a list refresh or an index scan does (the daemon does it itself).

    New evidence is added to a hold (voiding a pending release request); a hold that was only "screening
    unavailable" and now screens clean is credited when review.credit_after_rescreen is true. Exit 2 when some
    hold could not be re-screened (each is listed; it stays held).
    """
    from screener.decide.holds import rescreen_open_holds

    counts = rescreen_open_holds(state().engine(), state().settings, _now())
    for problem in counts.problems:
        typer.echo(f"error: {problem}", err=True)
    typer.echo(counts.summary())
    if counts.failed:
        raise typer.Exit(ReviewError.exit_code)


@holds_app.command("note", cls=IdCommand)
@handle_errors
def note_cmd(
    hold: str = typer.Argument(..., help=ID_HELP, show_default=False),
    text: str | None = typer.Argument(None, help="the note (quote it)"),
    operator: str | None = _operator_option(),
) -> None:
    """Add a note to a hold's history (any state)."""
    from screener.review import service as review
    from screener.review.rules import hold_label, require_text

    hold_id, note = _hold_id(hold), require_text(text, "note text")
    actor = state().actor(operator)
    operator = actor.name
    with _session() as s:
        event = review.note_hold(s, hold_id, note, operator, _now(), identity=actor.mode)
        seq = event.seq
    typer.echo(f"note added to {hold_label(hold_id)} by {operator} (audit event {seq})")


@holds_app.command("export")
@handle_errors
def export_cmd(
    fmt: str = typer.Option("csv", "--format", help="csv or json"),
    hold_state: str = typer.Option("all", "--state", help="open|awaiting_approval|unresolved|released|rejected|all"),
) -> None:
    """Every hold (default: all states) as CSV or JSON on stdout, for reports and reconciliation.

    JSON also carries each hold's signed decisions (review.signing = ssh): the exact statement, the signature and
    the principal, enough for `ssh-keygen -Y verify -n screener-review` without this program or its database.
    """
    from screener.cli.render import check_format, render
    from screener.review.queries import decision_identities, decision_signatures, hold_record, list_holds

    fmt = check_format(fmt)
    now = _now()
    with _session() as s:
        identities = decision_identities(s)
        signatures = decision_signatures(s) if fmt == "json" else {}
        records = [
            {**hold_record(h, d, now), "decided_identity": identities.get(h.id or 0, "")}
            | ({"signatures": signatures.get(h.id or 0, [])} if fmt == "json" else {})
            for h, d in list_holds(s, hold_state.strip(), now)
        ]
    with quiet_broken_pipe():
        typer.echo(render(records, fmt), nl=False)


@flags_app.command("list")
@handle_errors
def flags_list_cmd(
    flag_state: str = typer.Option("open", "--state", help="open|resolved|all"),
    as_json: bool = typer.Option(False, "--json", help="machine-readable output"),
) -> None:
    """Review flags (default: open)."""
    from sqlmodel import col, select

    from screener.cli.render import table
    from screener.models.deposits import Deposit
    from screener.review.queries import decision_signatures, flag_record
    from screener.review.service import list_flags

    with _session() as s:
        flags = list_flags(s, flag_state.strip())
        ids = [f.deposit_id for f in flags]
        deposits = {d.id: d for d in s.exec(select(Deposit).where(col(Deposit.id).in_(ids)))}
        records = [flag_record(f, deposits.get(f.deposit_id)) for f in flags]
        if as_json:  # each resolution's statement and signature (review.signing = ssh), as `holds export` gives
            signed = decision_signatures(s, "flag")
            records = [{**r, "signatures": signed.get(f.id or 0, [])} for r, f in zip(records, flags, strict=True)]
    with quiet_broken_pipe():
        if as_json:
            echo_json(records)
        elif not records:
            typer.echo(f"no {flag_state} flags")
        else:
            headers = ["ID", "STATE", "RULE", "AMOUNT", "TOKEN", "CHAIN", "ACCOUNT", "RAISED", "REASON"]
            rows = [
                [
                    *(r["id"], r["state"], r["rule_id"], str(r["amount"]), str(r["token"]), str(r["chain"])),
                    *(str(r["account"]), r["raised_at"][:16], r["reason"]),
                ]
                for r in records
            ]
            typer.echo(table(headers, rows))


@flags_app.command("resolve", cls=IdCommand)
@handle_errors
def flags_resolve_cmd(
    flag: str = typer.Argument(..., help="flag id as shown by `flags list`, e.g. F-7 or 7", show_default=False),
    reason: str | None = typer.Option(None, "--reason", help="what was done (kept in the audit trail)"),
    operator: str | None = _operator_option(),
) -> None:
    """Resolve a review flag with a reason."""
    from screener.review.rules import flag_label, parse_flag_id, require_text
    from screener.review.service import resolve_flag

    if not (flag or "").strip():
        raise _id_required("flag")
    flag_id, why = parse_flag_id(flag or ""), require_text(reason, "--reason")
    actor = state().actor(operator)
    operator = actor.name
    with _session() as s:
        resolve_flag(s, flag_id, why, operator, _now(), identity=actor.mode, signing=_signing())
    typer.echo(f"{flag_label(flag_id)} resolved by {operator}")


@handle_errors
def balances_cmd(
    account: str | None = typer.Argument(None, help="account name (custody, blocked, return_payable, customer:X or X)"),
    as_json: bool = typer.Option(False, "--json", help="machine-readable output"),
) -> None:
    """Ledger balances per account and asset: posted (on the account's normal side), pending debits and credits.

    Without an account, one line per asset checks that it balances. Raw base units are in --json.
    """
    from screener.cli.render import table
    from screener.ledger import store as ledger
    from screener.review.queries import account_record, asset_decimals, asset_totals

    with _session() as s:
        accounts = ledger.list_accounts(s, account.strip() if account else None)
        decimals = asset_decimals(s)
        records = [account_record(a, decimals.get(a.asset)) for a in accounts]
        totals = [] if account else asset_totals(accounts, decimals)
    if account and not records:
        raise ReviewError(f"no ledger account named {account!r}", "run `screener balances` to see every account")
    with quiet_broken_pipe():
        if as_json:
            echo_json(records)
        elif not records:
            typer.echo("the ledger is empty")
        else:
            headers = ["ACCOUNT", "ASSET", "NORMAL", "POSTED", "PENDING DEBITS", "PENDING CREDITS"]
            keys = ("account", "asset", "normal", "posted_units", "pending_debits_units", "pending_credits_units")
            rows = [[str(r[k]) for k in keys] for r in records]
            typer.echo(table(headers, rows, max_width=80, right=(3, 4, 5)))
            for t in totals:
                typer.echo(t.line())


def register(app: typer.Typer) -> None:
    """Add this module's commands to the root app."""
    app.add_typer(holds_app, name="holds", no_args_is_help=True)
    app.add_typer(flags_app, name="flags", no_args_is_help=True)
    app.command("balances")(balances_cmd)
