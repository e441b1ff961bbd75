"""`screener audit verify` with review.signing = ssh: every person's decision carries a valid signature.

For each decision event (release request, release, approval, rejection, flag resolution) it checks that the
signed statement says what the event says (action, subject, actor, time, amount, verdict, reason...), that
ssh-keygen accepts the signature for the event's actor against the allowed-signers file, that no signature is
used twice, and that an approval names the request it approves and is signed by a different key. Decisions
recorded before the first signed one are counted, not failed (signing was switched on later); an unsigned
decision after it is a problem: something wrote it behind the CLI's back.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlmodel import Session

from screener.ledger import audit
from screener.models.ledger import AuditEvent
from screener.review import ssh
from screener.review.statements import (
    NAMESPACE,
    RELEASED,
    SIGNED_ACTIONS,
    digest,
    parse_sshsig,
    parse_statement,
)
from screener_base.errors import ReviewError

# Statement fields that are not payload fields of the same name (checked against the event, or not at all).
_NOT_IN_PAYLOAD = frozenset({"v", "namespace", "action", "subject", "actor", "at", "deposit", "findings", "request"})
# Payload fields every statement of a hold decision must carry (a flag resolution: "flag" and "reason").
_HOLD_FIELDS = ("hold", "amount", "asset", "account", "verdict", "reason")


@dataclass
class SignatureSummary:
    signed: int = 0
    unsigned_before_signing: int = 0
    problems: list[str] = field(default_factory=list)


@dataclass
class _Seen:
    signatures: dict[str, int] = field(default_factory=dict)  # signature text -> seq that used it first
    requests: dict[str, tuple[str, str] | None] = field(default_factory=dict)  # subject -> (digest, key) | None
    any_signed: bool = False


def decision_action(event: AuditEvent) -> str | None:
    """The signed action an event records, or None when it is not a person's decision."""
    if event.kind in SIGNED_ACTIONS:
        return SIGNED_ACTIONS[event.kind]
    if event.kind == RELEASED and event.actor != "system":
        payload = event.payload if isinstance(event.payload, dict) else {}
        return "approve" if payload.get("approved_by") else "release"
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
        return "approves a release request that was not signed"
    request_digest, request_key = request
    if body.get("request") != request_digest:
        return "approves a different release request than the one recorded"
    if request_key == key:
        return f"four-eyes: request and approval are signed by one key ({key})"
    return None


def _check_signed(
    event: AuditEvent, action: str, payload: dict[str, Any], allowed: Path, seen: _Seen
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
    first = seen.signatures.setdefault(signature, event.seq)
    if first != event.seq:
        return f"replays the signature of event {first}", sig.fingerprint
    problem = _statement_matches(event, action, body, payload)
    if problem is None:
        said = ssh.verify(text, signature, event.actor, allowed, at=event.at)
        problem = None if said is None else f"ssh-keygen does not accept it for {event.actor}: {said}"
    if problem is None and action == "approve":
        problem = _check_pair(event, body, sig.fingerprint, seen)
    return problem, sig.fingerprint


def _check_event(event: AuditEvent, action: str, allowed: Path, seen: _Seen, summary: SignatureSummary) -> None:
    payload = event.payload if isinstance(event.payload, dict) else {}
    label = f"event {event.seq} ({event.kind} by {event.actor})"
    if "signature" not in payload and "statement" not in payload:
        if seen.any_signed:
            summary.problems.append(f"{label}: a decision without a signature (review.signing = ssh)")
        else:
            summary.unsigned_before_signing += 1
        if action == "request":
            seen.requests[event.subject] = None
        return
    seen.any_signed = True
    problem, key = _check_signed(event, action, payload, allowed, seen)
    if problem is not None:
        summary.problems.append(f"{label}: {problem}")
    else:
        summary.signed += 1
    if action == "request":
        ok = problem is None and key is not None
        seen.requests[event.subject] = (digest(str(payload.get("statement"))), key or "") if ok else None


def verify_signatures(session: Session, allowed_signers: Path, max_problems: int = 50) -> SignatureSummary:
    """Check every decision's signature, in seq order (a page of events at a time)."""
    summary, seen = SignatureSummary(), _Seen()
    for event in audit.iter_events(session):
        action = decision_action(event)
        if action is not None:
            _check_event(event, action, allowed_signers, seen, summary)
    del summary.problems[max_problems:]
    return summary
