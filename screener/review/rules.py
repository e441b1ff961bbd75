"""Pure review decisions: who may do what to a hold, four-eyes, SLA, ids people type. No I/O."""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable, Sequence
from datetime import datetime, timedelta
from enum import StrEnum, nonmember
from typing import Any

from screener.ledger.rules import BLOCKED, RETURN_PAYABLE
from screener.screening.verdicts import Decision, Finding, Severity, Verdict
from screener_base.clock import ensure_utc
from screener_base.errors import ReviewError


class DepositStatus(StrEnum):
    """Lifecycle: recorded -> credited | held -> released | rejected; and unassigned, final from the start.

    ``unassigned``: a transfer to one of our EVM deposit addresses on an EVM chain where that address is not
    registered (the customer picked the wrong network). It is recorded with the account ``UNASSIGNED_ACCOUNT``
    and the ``wrong_network`` finding, sealed, audited and alerted in the tick's transaction, and never leaves
    that status: it is never screened, credited, held or flagged (a person handles it outside the screener).
    """

    RECORDED = "recorded"
    CREDITED = "credited"
    HELD = "held"
    RELEASED = "released"
    REJECTED = "rejected"
    UNASSIGNED = "unassigned"


class HoldState(StrEnum):
    """open -> released | awaiting_approval (four-eyes) -> released; open/awaiting_approval -> rejected."""

    OPEN = "open"
    AWAITING_APPROVAL = "awaiting_approval"
    RELEASED = "released"
    REJECTED = "rejected"

    # Not a state: the states a person still has to act on (a SQL IN list).
    UNRESOLVED = nonmember((OPEN, AWAITING_APPROVAL))


class FlagState(StrEnum):
    OPEN = "open"
    RESOLVED = "resolved"


# Deposit.account of an unassigned deposit. Never a customer's: a registered account has 1 to 128 printable
# characters (screener.pipeline.addresses.validate), and the ledger refuses a customer account without a name.
UNASSIGNED_ACCOUNT = ""
RULE_WRONG_NETWORK = "wrong_network"

_HOLD_ID = re.compile(r"^\s*(?:[hH]-?)?([0-9]{1,18})\s*$")
_FLAG_ID = re.compile(r"^\s*(?:[fF]-?)?([0-9]{1,18})\s*$")
# What `--to` accepts -> the ledger account the rejected funds move to.
REJECT_TARGET_NAMES = {"blocked": BLOCKED, "return": RETURN_PAYABLE, "return_payable": RETURN_PAYABLE}
MAX_TEXT_CHARS = 4000
# Hold and flag ids are INTEGER columns (int4 on PostgreSQL): a larger number cannot be an id, and passing it
# to PostgreSQL fails with "integer out of range" instead of "no such hold".
MAX_ID = 2**31 - 1
_RANK = {Decision.CREDIT: 0, Decision.HOLD: 1, Decision.BLOCK: 2}
_SEVERITY_DECISION = {Severity.INFO: Decision.CREDIT, Severity.REVIEW: Decision.HOLD, Severity.BLOCKING: Decision.BLOCK}


def hold_label(hold_id: int | None) -> str:
    return f"H-{hold_id}"


def flag_label(flag_id: int | None) -> str:
    return f"F-{flag_id}"


def parse_hold_id(text: str | int) -> int:
    """Accept 42, "42", "H-42" or "h42"."""
    match = _HOLD_ID.match(str(text))
    if not match or not 0 < int(match.group(1)) <= MAX_ID:
        raise ReviewError(
            f"hold id {str(text)!r} is not valid", "use the number shown by `screener holds list`, e.g. 42 or H-42"
        )
    return int(match.group(1))


def parse_flag_id(text: str | int) -> int:
    match = _FLAG_ID.match(str(text))
    if not match or not 0 < int(match.group(1)) <= MAX_ID:
        raise ReviewError(
            f"flag id {str(text)!r} is not valid", "use the number shown by `screener flags list`, e.g. 7 or F-7"
        )
    return int(match.group(1))


def require_text(value: str | None, what: str) -> str:
    """A reason, note or operator name: non-empty after trimming, one bounded string."""
    text = (value or "").strip()
    if not text:
        raise ReviewError(f"{what} is missing or empty", f"give a non-empty {what} (it is kept in the audit trail)")
    if len(text) > MAX_TEXT_CHARS:
        raise ReviewError(f"{what} is {len(text)} characters long", f"keep it under {MAX_TEXT_CHARS} characters")
    return text


def system_text(value: str | None, what: str) -> str:
    """A reason or note the system writes: non-empty, never truncated and never refused for its length.

    The limit of ``require_text`` is for what people type; a re-screen's text grows with its evidence, and
    refusing it would fail the list activation or index scan it runs in.
    """
    text = (value or "").strip()
    if not text:
        raise ReviewError(f"{what} is missing or empty", "this is a bug: the system must say why")
    return text


def reject_target(value: str | None) -> str:
    key = (value or "").strip().lower()
    if key not in REJECT_TARGET_NAMES:
        raise ReviewError(f"--to must be blocked or return, not {value!r}", "pass --to blocked or --to return")
    return REJECT_TARGET_NAMES[key]


# Operator names are identities in the audit trail: a plain, printable charset keeps lookalikes
# (zero-width characters, fullwidth or Cyrillic letters) from letting one person pass as two.
OPERATOR_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._@+-]{0,63}$")


def require_operator(value: str | None) -> str:
    """The operator's name, NFKC-normalised; refuse anything outside the plain charset."""
    text = unicodedata.normalize("NFKC", value or "").strip()
    if not text:
        raise ReviewError("operator is missing or empty", "pass --operator NAME or set SCREENER_OPERATOR")
    if not OPERATOR_RE.match(text):
        raise ReviewError(
            f"operator name {value!r} has characters outside letters, digits and . _ @ + -",
            "use a plain ASCII login name (at most 64 characters)",
        )
    return text


def same_operator(a: str | None, b: str | None) -> bool:
    # Case, compatibility forms and surrounding space must not let one person pass as two.
    def key(name: str | None) -> str:
        return unicodedata.normalize("NFKC", name or "").strip().casefold()

    return key(a) == key(b)


def needs_four_eyes(verdict: str, amount_raw: int, decimals: int, four_eyes_above_units: int) -> bool:
    """BLOCK verdicts, and amounts of at least the threshold in whole tokens, need a second operator."""
    return verdict == Decision.BLOCK.value or amount_raw >= four_eyes_above_units * 10**decimals


def due_at(opened_at: datetime, sla_h: float) -> datetime:
    return ensure_utc(opened_at) + timedelta(hours=sla_h)


def is_overdue(state: str, due: datetime, now: datetime) -> bool:
    return state in HoldState.UNRESOLVED and ensure_utc(due) <= ensure_utc(now)


def check_can_release(label: str, state: str, requested_by: str | None) -> None:
    if state == HoldState.AWAITING_APPROVAL:
        raise ReviewError(
            f"hold {label} already awaits approval (release requested by {requested_by})",
            "another operator must run `screener holds approve`; nothing was changed",
        )
    _check_unresolved(label, state, "release")


def check_can_approve(label: str, state: str, requested_by: str | None, operator: str) -> None:
    if state != HoldState.AWAITING_APPROVAL:
        _check_unresolved(label, state, "approve")
        raise ReviewError(
            f"hold {label} is {state}, nothing to approve", "run `screener holds release` first; nothing was changed"
        )
    if same_operator(requested_by, operator):
        raise ReviewError(
            f"{operator} requested the release of hold {label} and cannot also approve it",
            "four-eyes: a different operator must approve; nothing was changed",
        )


def check_can_reject(label: str, state: str, verdict: str, target: str) -> None:
    _check_unresolved(label, state, "reject")
    if verdict == Decision.BLOCK.value and target != BLOCKED:
        raise ReviewError(
            f"hold {label} is a sanctions block; its funds cannot be returned",
            "reject it with --to blocked (blocked property is reported, not returned); nothing was changed",
        )


def _check_unresolved(label: str, state: str, action: str) -> None:
    if state not in HoldState.UNRESOLVED:
        raise ReviewError(
            f"cannot {action} hold {label}: it is already {state}", "a hold is resolved once; nothing was changed"
        )


def rank(decision: str) -> int:
    return _RANK[Decision(decision)]


def effective_decision(verdict: Verdict, initiator_known: bool) -> tuple[Decision, tuple[Finding, ...], str | None]:
    """Fail closed: a decision is never weaker than its findings, and an unknown initiator cannot credit.

    Returns the decision to act on, the findings to keep, and why the decision was raised (None if not).
    """
    decision, findings, why = Decision(verdict.decision), verdict.findings, None
    for finding in findings:
        implied = _SEVERITY_DECISION[Severity(finding.severity)]
        if _RANK[implied] > _RANK[decision]:
            decision, why = implied, f"finding {finding.rule_id} is {finding.severity}"
    if decision == Decision.CREDIT and not initiator_known:
        missing = Finding(
            rule_id="unavailable",
            severity=Severity.REVIEW,
            party="initiator",
            detail="transaction initiator unknown; sender screening incomplete",
        )
        findings = (*findings, missing)
        decision, why = Decision.HOLD, "the transaction initiator is unknown"
    if why is not None:
        why = f"{verdict.decision.value} raised to {decision.value}: {why}"
    return decision, findings, why


def primary_finding(findings: list[Finding] | tuple[Finding, ...]) -> Finding:
    """The most severe finding (the first of equals): it keys a review flag."""
    if not findings:
        raise ReviewError("no findings given", "a review flag needs at least one finding")
    order = {Severity.BLOCKING: 0, Severity.REVIEW: 1, Severity.INFO: 2}
    return min(findings, key=lambda f: order[Severity(f.severity)])


def merge_findings(old: Sequence[Finding], new: Iterable[Finding]) -> list[Finding]:
    """The recorded findings, then each new one not among them (evidence is added, never replaced)."""
    merged = list(old)
    for item in new:
        if item not in merged:
            merged.append(item)
    return merged


def wrong_network_finding(chain: str, address: str, registered: Iterable[tuple[str, str]]) -> dict[str, Any]:
    """The evidence kept with an unassigned deposit: a ``wrong_network`` Finding (as JSON) to ``address`` on
    ``chain``, plus where that address is registered (``registered``: (chain, account) pairs) and to whom."""
    pairs = sorted(set(registered))
    chains = sorted({c for c, _ in pairs})
    accounts = sorted({a for _, a in pairs})
    finding = Finding(
        rule_id=RULE_WRONG_NETWORK,
        severity=Severity.REVIEW,
        party="-",
        matched_address=address,
        detail=(
            f"deposit address registered on {', '.join(chains)} (account {', '.join(accounts)}), not on {chain}: "
            "sent on the wrong network; recorded unassigned, never credited"
        ),
    )
    return {**finding.to_json(), "registered_on": chains, "accounts": accounts}


def check_assigned(what: str, status: str) -> None:
    """ReviewError unless the deposit is one of a customer's: an unassigned deposit is never credited or held."""
    if status == DepositStatus.UNASSIGNED:
        raise ReviewError(
            f"{what} is unassigned (sent to our address on a chain where it is not registered): it is never "
            "credited, held or released by screener",
            "nothing was changed; settle it outside screener (return it to the sender, or credit the customer by "
            "hand after checking the sender with `screener lists check`)",
        )
