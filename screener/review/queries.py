"""Read side of review: holds with their deposits, one hold's whole story, flags and balances as records.

Records are plain JSON-safe dicts (amounts as exact decimal strings from `screener.amounts.format_units` and raw
base-unit strings), shared by the CLI's tables, --json output and `holds export`.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlmodel import Session, col, select

from screener.amounts import format_units
from screener.ledger import audit
from screener.ledger import store as ledger
from screener.ledger.rules import DEBIT_NORMAL, TransferSpec, asset_code
from screener.models.deposits import Deposit
from screener.models.ledger import AuditEvent, Hold, LedgerAccount, ReviewFlag
from screener.review.rules import HoldState, flag_label, hold_label, is_overdue
from screener.review.statements import NAMESPACE
from screener_base.errors import ReviewError

UNRESOLVED = "unresolved"  # open + awaiting_approval: everything still held
STATES = (*HoldState, UNRESOLVED, "all")


def _iso(value: datetime | None) -> str | None:
    return audit.format_at(value) if value is not None else None


def list_holds(session: Session, state: str, now: datetime, overdue_only: bool = False) -> list[tuple[Hold, Deposit]]:
    if state not in STATES:
        raise ReviewError(f"--state must be one of {', '.join(STATES)}, not {state!r}", "pass a valid --state")
    stmt = select(Hold, Deposit).join(Deposit, col(Deposit.id) == col(Hold.deposit_id)).order_by(col(Hold.id))
    if state == UNRESOLVED:
        stmt = stmt.where(col(Hold.state).in_(HoldState.UNRESOLVED))
    elif state != "all":
        stmt = stmt.where(Hold.state == state)
    rows = [(h, d) for h, d in session.exec(stmt)]
    if overdue_only:
        rows = [(h, d) for h, d in rows if is_overdue(h.state, h.due_at, now)]
    return rows


def hold_record(hold: Hold, deposit: Deposit, now: datetime) -> dict[str, Any]:
    return {
        "id": hold_label(hold.id),
        "state": hold.state,
        "verdict": hold.verdict,
        "overdue": is_overdue(hold.state, hold.due_at, now),
        "reason": hold.reason,
        "chain": deposit.chain,
        "token": deposit.token_symbol,
        "amount": format_units(deposit.amount_raw, deposit.decimals),
        "amount_raw": str(deposit.amount_raw),
        "decimals": deposit.decimals,
        "account": deposit.account,
        "from_address": deposit.from_address,
        "initiator": deposit.initiator,
        "tx_hash": deposit.tx_hash,
        "log_index": deposit.log_index,
        "block_number": deposit.block_number,
        "opened_at": _iso(hold.opened_at),
        "due_at": _iso(hold.due_at),
        "sla_breached_at": _iso(hold.sla_breached_at),
        "release_requested_by": hold.release_requested_by,
        "release_requested_at": _iso(hold.release_requested_at),
        "release_reason": hold.release_reason,
        "resolved_by": hold.resolved_by,
        "resolved_at": _iso(hold.resolved_at),
        "resolution_reason": hold.resolution_reason,
        "rejected_to": hold.rejected_to,
    }


@dataclass
class HoldDetail:
    hold: Hold
    deposit: Deposit
    transfers: list[TransferSpec]
    events: list[AuditEvent]

    def record(self, now: datetime) -> dict[str, Any]:
        data = hold_record(self.hold, self.deposit, now)
        data["deposit_id"] = self.deposit.id
        data["to_address"] = self.deposit.to_address
        data["token_contract"] = self.deposit.token_contract
        data["list_version_id"] = self.deposit.list_version_id
        data["findings"] = self.deposit.findings
        data["ledger"] = [
            dict(t.comparable(), amount_units=format_units(t.amount, self.deposit.decimals)) for t in self.transfers
        ]
        data["history"] = [
            {"seq": e.seq, "at": _iso(e.at), "kind": e.kind, "actor": e.actor, "payload": e.payload}
            for e in self.events
        ]
        return data


def hold_detail(session: Session, hold_id: int) -> HoldDetail:
    hold = session.get(Hold, hold_id)
    if hold is None:
        raise ReviewError(f"hold {hold_label(hold_id)} does not exist", "check the id with `screener holds list`")
    deposit = session.get(Deposit, hold.deposit_id)
    if deposit is None:
        raise ReviewError(
            f"hold {hold_label(hold_id)} names missing deposit {hold.deposit_id}", "run `screener audit verify`"
        )
    ref = ledger.deposit_ref(deposit)
    transfers = ledger.transfers_for(session, ref)
    subjects = [f"hold:{hold.id}", f"deposit:{deposit.id}", *(f"transfer:{t.id}" for t in transfers)]
    return HoldDetail(hold, deposit, transfers, audit.events_for(session, subjects))


# The events in which a person decides a hold; their payload says how the person was identified.
DECISION_KINDS = ("hold.release_requested", "hold.released", "hold.rejected")


def decision_identities(session: Session) -> dict[int, str]:
    """hold id -> how the people who decided it were identified ("declared", "os", "database"; joined by ",")."""
    seen: dict[int, set[str]] = {}
    stmt = select(AuditEvent).where(col(AuditEvent.kind).in_(DECISION_KINDS))
    for event in session.exec(stmt):
        mode = event.payload.get("identity") if isinstance(event.payload, dict) else None
        if (
            isinstance(mode, str)
            and event.subject.startswith("hold:")
            and event.subject[5:].isascii()
            and event.subject[5:].isdigit()
        ):
            seen.setdefault(int(event.subject[5:]), set()).add(mode)
    return {hold_id: ",".join(sorted(modes)) for hold_id, modes in seen.items()}


def decision_signatures(session: Session, prefix: str = "hold") -> dict[int, list[dict[str, Any]]]:
    """hold (or ``prefix="flag"``: flag) id -> its signed decisions (review.signing = ssh), each with the exact
    statement and signature, so an auditor can check them with `ssh-keygen -Y verify -n screener-review` alone
    (docs/security.md)."""
    kinds = DECISION_KINDS if prefix == "hold" else ("flag.resolved",)
    found: dict[int, list[dict[str, Any]]] = {}
    stmt = select(AuditEvent).where(col(AuditEvent.kind).in_(kinds)).order_by(col(AuditEvent.seq))
    for event in session.exec(stmt):
        payload = event.payload if isinstance(event.payload, dict) else {}
        kind, _, raw = event.subject.partition(":")
        if "signature" not in payload or kind != prefix or not raw.isascii() or not raw.isdigit():
            continue
        found.setdefault(int(raw), []).append(
            {
                "event": event.seq,
                "kind": event.kind,
                "principal": event.actor,
                "namespace": NAMESPACE,
                "statement": payload.get("statement"),
                "signature": payload.get("signature"),
                "signed_key": payload.get("signed_key"),
            }
        )
    return found


def declared_decisions(session: Session) -> int:
    """Decisions (hold and flag) made under a typed, unauthenticated name (review.identity = declared)."""
    kinds = (*DECISION_KINDS, "flag.resolved")
    stmt = select(AuditEvent).where(col(AuditEvent.kind).in_(kinds))
    return sum(1 for e in session.exec(stmt) if isinstance(e.payload, dict) and e.payload.get("identity") == "declared")


def flag_record(flag: ReviewFlag, deposit: Deposit | None) -> dict[str, Any]:
    return {
        "id": flag_label(flag.id),
        "state": flag.state,
        "deposit_id": flag.deposit_id,
        "chain": deposit.chain if deposit else None,
        "tx_hash": deposit.tx_hash if deposit else None,
        "account": deposit.account if deposit else None,
        "amount": format_units(deposit.amount_raw, deposit.decimals) if deposit else None,
        "token": deposit.token_symbol if deposit else None,
        "rule_id": flag.rule_id,
        "matched_address": flag.matched_address or None,
        "reason": flag.reason,
        "findings": flag.findings,
        "raised_at": _iso(flag.raised_at),
        "resolved_by": flag.resolved_by,
        "resolved_at": _iso(flag.resolved_at),
        "resolution_reason": flag.resolution_reason,
    }


def asset_decimals(session: Session) -> dict[str, int]:
    """asset -> decimals, learnt from the deposits (accounts store base units only)."""
    stmt = select(Deposit.token_symbol, Deposit.chain, Deposit.decimals).distinct()
    return {asset_code(symbol, chain): decimals for symbol, chain, decimals in session.exec(stmt)}


def _units(value: int, decimals: int | None) -> str:
    return format_units(value, decimals) if decimals is not None else "?"


def account_record(account: LedgerAccount, decimals: int | None) -> dict[str, Any]:
    """One account's balances: ``posted`` on its normal side, pending debits and credits; raw and in tokens."""
    bal = ledger.balance_of(account)
    return {
        "account": account.name,
        "asset": account.asset,
        "normal": account.normal,
        "decimals": decimals,
        "posted": str(bal.posted),
        "posted_units": _units(bal.posted, decimals),
        "pending_debits": str(account.debits_pending),
        "pending_debits_units": _units(account.debits_pending, decimals),
        "pending_credits": str(account.credits_pending),
        "pending_credits_units": _units(account.credits_pending, decimals),
        "debits_posted": str(account.debits_posted),
        "credits_posted": str(account.credits_posted),
    }


@dataclass
class AssetTotals:
    """Per asset: posted on debit-normal vs credit-normal accounts, pending debits vs credits (equal if balanced)."""

    asset: str
    decimals: int | None
    posted_debit_normal: int = 0
    posted_credit_normal: int = 0
    pending_debits: int = 0
    pending_credits: int = 0

    @property
    def balanced(self) -> bool:
        return (self.posted_debit_normal, self.pending_debits) == (self.posted_credit_normal, self.pending_credits)

    def line(self) -> str:
        def u(value: int) -> str:
            return _units(value, self.decimals)

        verdict = "balanced" if self.balanced else "DOES NOT BALANCE (run `screener audit verify`)"
        return (
            f"{self.asset}: posted {u(self.posted_debit_normal)} on debit-normal accounts = "
            f"{u(self.posted_credit_normal)} on credit-normal; pending debits {u(self.pending_debits)} = "
            f"pending credits {u(self.pending_credits)}; {verdict}"
        )


def asset_totals(accounts: list[LedgerAccount], decimals: dict[str, int]) -> list[AssetTotals]:
    """Sums per asset in Python ints (never in SQL: SQLite stores amounts as text)."""
    totals: dict[str, AssetTotals] = {}
    for account in accounts:
        t = totals.setdefault(account.asset, AssetTotals(account.asset, decimals.get(account.asset)))
        posted = ledger.balance_of(account).posted
        if account.normal == DEBIT_NORMAL:
            t.posted_debit_normal += posted
        else:
            t.posted_credit_normal += posted
        t.pending_debits += account.debits_pending
        t.pending_credits += account.credits_pending
    return [totals[a] for a in sorted(totals)]
