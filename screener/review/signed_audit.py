"""`screener audit verify` with review.signing = ssh: every person's decision carries a valid signature.

For each decision event (release request, release, approval, rejection, flag resolution) it checks that the
signed statement says what the event and the rows say (action, subject, actor, time, deposit, amount, verdict,
reason...), that ssh-keygen accepts the signature for the event's actor against the allowed-signers file with the
key valid at that point of the chain, that no signature is used twice, that a release by one person did not need
four-eyes, and that an approval names the pending request, is by another person and is signed by another key.

Moves that no person signs are checked too: a system clear (``hold.cleared``) only of a HOLD whose recorded
findings were all "screening unavailable", and no other event kind moving a hold or flag into a decided state.
Every decision must be signed, unless the auditor says from which event on (``signed_from_seq``: signing was
switched on then); the database itself cannot say, since whoever can write it could strip every signature.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from sqlmodel import Session

from screener.ledger import audit
from screener.models.deposits import Deposit
from screener.models.ledger import AuditEvent, Hold, ReviewFlag
from screener.review import ssh
from screener.review.rules import needs_four_eyes, same_operator
from screener.review.statements import (
    NAMESPACE,
    RELEASED,
    SIGNED_ACTIONS,
    digest,
    parse_sshsig,
    parse_statement,
)
from screener_base.clock import ensure_utc
from screener_base.errors import ReviewError

# Statement fields that are not payload fields of the same name (checked against the event or the rows).
_NOT_IN_PAYLOAD = frozenset({"v", "namespace", "action", "subject", "actor", "at", "deposit", "findings", "request"})
# Payload fields every statement of a hold decision must carry (a flag resolution: "flag" and "reason").
_HOLD_FIELDS = ("hold", "amount", "asset", "account", "verdict", "reason")
# States only a person's decision (or, for "released", a checked system clear) may move a hold or flag into.
_DECIDED = frozenset({"awaiting_approval", "released", "rejected", "resolved"})
_CLEARED = "hold.cleared"
# Events in which the system records the evidence a hold shows.
_EVIDENCE_KINDS = frozenset({"hold.opened", "hold.revised", "hold.escalated"})


@dataclass
class SignatureSummary:
    signed: int = 0
    unsigned_before_signing: int = 0
    problems: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class _Request:
    digest: str
    key: str
    actor: str


@dataclass
class _Seen:
    signatures: dict[bytes, int] = field(default_factory=dict)  # signature blob digest -> first seq using it
    requests: dict[str, _Request | None] = field(default_factory=dict)  # subject -> its pending signed request
    states: dict[str, str] = field(default_factory=dict)  # subject -> state in its latest event
    evidence: dict[str, tuple[str, list[Any]]] = field(default_factory=dict)  # subject -> (verdict, findings)
    latest_at: datetime | None = None


@dataclass(frozen=True)
class Policy:
    allowed_signers: Path
    four_eyes_above_units: int
    signed_from_seq: int = 1


def decision_action(event: AuditEvent) -> str | None:
    """The signed action an event records, or None when it is not a person's decision."""
    if event.kind in SIGNED_ACTIONS:
        return SIGNED_ACTIONS[event.kind]
    if event.kind == RELEASED:  # the system's credit of a hold is hold.cleared, never hold.released
        payload = event.payload if isinstance(event.payload, dict) else {}
        return "approve" if payload.get("approved_by") else "release"
    return None


def _rows(session: Session, subject: str) -> tuple[Any, Deposit | None]:
    kind, _, raw = subject.partition(":")
    if not (raw.isascii() and raw.isdigit()) or kind not in ("hold", "flag"):
        return None, None
    row: Hold | ReviewFlag | None = session.get(Hold, int(raw)) if kind == "hold" else session.get(ReviewFlag, int(raw))
    deposit = session.get(Deposit, row.deposit_id) if row is not None else None
    return row, deposit


def _against_rows(session: Session, event: AuditEvent, body: dict[str, Any], payload: dict[str, Any]) -> str | None:
    row, deposit = _rows(session, event.subject)
    if row is None or deposit is None:
        return f"names {event.subject}, which has no row with a deposit"
    if payload.get("deposit_id") != row.deposit_id:
        return f"says deposit {payload.get('deposit_id')!r}, the row {row.deposit_id}"
    key = deposit.event_label
    if body.get("deposit") != key:
        return f"the signed statement says deposit {body.get('deposit')!r}, the row {key!r}"
    return None


def _statement_matches(event: AuditEvent, action: str, body: dict[str, Any], payload: dict[str, Any]) -> str | None:
    expected = {"action": action, "subject": event.subject, "actor": event.actor, "at": audit.format_at(event.at)}
    for key, value in expected.items():
        if body.get(key) != value:
            return f"the signed statement says {key} {body.get(key)!r}, the event {value!r}"
    required = ("flag", "reason") if action == "resolve-flag" else _HOLD_FIELDS
    for key in required:
        if key not in body:
            return f"the signed statement does not say {key}"
    for key, value in body.items():
        if key not in _NOT_IN_PAYLOAD and payload.get(key) != value:
            return f"the signed statement says {key} {value!r}, the event {payload.get(key)!r}"
    return None


def _check_pair(event: AuditEvent, body: dict[str, Any], key: str, seen: _Seen) -> str | None:
    request = seen.requests.get(event.subject)
    if request is None:
        return "approves a release request that is not pending or was not signed"
    if body.get("request") != request.digest:
        return "approves a different release request than the one recorded"
    if same_operator(request.actor, event.actor):
        return f"four-eyes: {event.actor} approves their own request"
    if request.key == key:
        return f"four-eyes: request and approval are signed by one key ({key})"
    return None


def _check_four_eyes(session: Session, event: AuditEvent, payload: dict[str, Any], policy: Policy) -> str | None:
    _, deposit = _rows(session, event.subject)
    if deposit is None:
        return None  # reported by the row check
    if needs_four_eyes(str(payload.get("verdict")), deposit.amount_raw, deposit.decimals, policy.four_eyes_above_units):
        return "four-eyes: released by one person, but a BLOCK verdict or this amount needs a request and an approval"
    return None


def _check_signed(
    session: Session, event: AuditEvent, action: str, payload: dict[str, Any], policy: Policy, seen: _Seen
) -> tuple[str | None, str | None]:
    """(problem, key fingerprint) of one signed decision."""
    text, signature = payload.get("statement"), payload.get("signature")
    if not isinstance(text, str) or not isinstance(signature, str):
        return "the statement or the signature is missing", None
    try:
        body = parse_statement(text)
        sig = parse_sshsig(signature)
    except ReviewError as exc:
        return exc.cause, None
    if sig.namespace != NAMESPACE:
        return f"signed for namespace {sig.namespace!r}, not {NAMESPACE!r}", sig.fingerprint
    first = seen.signatures.setdefault(sig.blob_sha256, event.seq)  # the blob: armour whitespace may differ
    if first != event.seq:
        return f"replays the signature of event {first}", sig.fingerprint
    problem = _statement_matches(event, action, body, payload) or _against_rows(session, event, body, payload)
    if problem is None:
        said = ssh.verify(text, signature, event.actor, policy.allowed_signers, at=seen.latest_at)
        problem = None if said is None else f"ssh-keygen does not accept it for {event.actor}: {said}"
    if problem is None and action == "approve":
        problem = _check_pair(event, body, sig.fingerprint, seen)
    if problem is None and action == "release":
        problem = _check_four_eyes(session, event, payload, policy)
    return problem, sig.fingerprint


def _check_decision(
    session: Session, event: AuditEvent, action: str, policy: Policy, seen: _Seen, summary: SignatureSummary
) -> str | None:
    payload = event.payload if isinstance(event.payload, dict) else {}
    if "signature" not in payload and "statement" not in payload:
        if event.seq >= policy.signed_from_seq:
            return "a decision without a signature (review.signing = ssh)"
        summary.unsigned_before_signing += 1
        return None
    problem, key = _check_signed(session, event, action, payload, policy, seen)
    if problem is None:
        summary.signed += 1
    if action == "request":
        ok = problem is None and key is not None
        seen.requests[event.subject] = (
            _Request(digest(str(payload["statement"])), key or "", event.actor) if ok else None
        )
    return problem


def _check_unsigned_move(event: AuditEvent, payload: dict[str, Any], seen: _Seen) -> str | None:
    """A hold or flag moved into a decided state by an event nobody signs: only a system clear, and only of a
    HOLD that waited for data alone (its recorded findings all "unavailable", as clear_hold requires)."""
    state, before = payload.get("state"), seen.states.get(event.subject)
    if state == before or state not in _DECIDED or decision_action(event) is not None:
        return None
    if event.kind != _CLEARED or event.actor != "system" or state != "released":
        return f"moves {event.subject} to {state} outside a decision"
    verdict, findings = seen.evidence.get(event.subject, ("", []))
    waiting = all(
        isinstance(f, dict) and (f.get("rule_id") == "unavailable" or f.get("severity") == "info") for f in findings
    )
    if verdict != "HOLD" or not waiting:
        return (
            f"a system clear of a {verdict or 'unknown'} hold whose recorded findings hold: only a person may credit it"
        )
    return None


def _observe(event: AuditEvent, payload: dict[str, Any], seen: _Seen) -> None:
    state = payload.get("state")
    if isinstance(state, str):
        seen.states[event.subject] = state
        if state != "awaiting_approval":
            seen.requests.pop(event.subject, None)  # voided, withdrawn or decided: nothing to approve
    if event.kind in _EVIDENCE_KINDS and isinstance(payload.get("findings"), list):
        seen.evidence[event.subject] = (str(payload.get("verdict")), payload["findings"])


def verify_signatures(session: Session, policy: Policy, max_problems: int = 50) -> SignatureSummary:
    """Check every decision's signature and every unsigned move, in seq order (a page of events at a time)."""
    summary, seen = SignatureSummary(), _Seen()
    for event in audit.iter_events(session):
        payload = event.payload if isinstance(event.payload, dict) else {}
        # A key's validity is judged at the latest time the chain has reached: an event dated back behind newer
        # ones cannot bring a retired key back to life.
        seen.latest_at = max(seen.latest_at or ensure_utc(event.at), ensure_utc(event.at))
        action = decision_action(event)
        if action is not None:
            problem = _check_decision(session, event, action, policy, seen, summary)
        else:
            problem = _check_unsigned_move(event, payload, seen)
        if problem is not None and len(summary.problems) < max_problems:
            summary.problems.append(f"event {event.seq} ({event.kind} by {event.actor}): {problem}")
        _observe(event, payload, seen)
    return summary
