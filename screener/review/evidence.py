"""Pure evidence rules: has what screening knows about a hold changed, and what follows from it. No I/O.

A hold carries the findings a person reviews (``deposit.findings``). A fresh screen, at the moment of crediting
or when the list or an index learns something, is compared with them by key, not by text: a finding that only
restates a known fact (an index a few blocks further on, a later list version) is not new evidence.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum

from screener.review.rules import rank
from screener.screening.facts import Check
from screener.screening.policy import RULE_UNAVAILABLE, decision_for
from screener.screening.verdicts import Decision, Finding, Severity, Verdict

# (rule, party, matched address or the unavailable check, evidence tx)
FindingKey = tuple[str, str, str, str]
# What a hold re-screen checks again. Two-hop funding is not among them: it spends an RPC budget only the first
# decision has, so its findings (and its "unavailable") stay as recorded and a person decides.
RESCREENED_CHECKS = frozenset(
    {Check.LISTS.value, Check.INITIATOR.value, Check.MIXER_INDEX.value, Check.BLACKLIST_INDEX.value}
)


class Action(StrEnum):
    CREDIT = "credit"  # a person's release may proceed: nothing new since the hold was reviewed
    REFUSE = "refuse"  # the list could not be checked: no credit, nothing changes
    LISTED = "listed"  # a party is on the list now: never credited; the hold is BLOCK, a pending request voided
    REVISE = "revise"  # new evidence: the hold takes it, any pending release request is voided, no credit
    CLEAR = "clear"  # an unavailable-only hold now screens clean: credit it (review.credit_after_rescreen)
    NOTE_CLEAN = "note_clean"  # as CLEAR, but the operator chose to leave it for a person
    NONE = "none"  # nothing new


@dataclass(frozen=True)
class Judgement:
    action: Action
    decision: Decision  # the hold's verdict afterwards
    findings: tuple[Finding, ...]  # the hold's findings afterwards
    new: tuple[Finding, ...] = ()  # findings the fresh screen added
    why: str = ""


def unavailable_check(finding: Finding) -> str | None:
    """The check an ``unavailable`` finding is about (its detail starts with it), else None."""
    if finding.rule_id != RULE_UNAVAILABLE:
        return None
    head = finding.detail.split(":", 1)[0].strip()
    return head if head in {c.value for c in Check} else None


def finding_key(finding: Finding) -> FindingKey:
    detail = unavailable_check(finding) or (finding.detail if finding.rule_id == RULE_UNAVAILABLE else "")
    return (finding.rule_id, finding.party, finding.matched_address or detail, finding.evidence_tx or "")


def counts(finding: Finding) -> bool:
    """A finding that holds or blocks (INFO findings, e.g. an allowlisted counterparty, do not)."""
    return Severity(finding.severity) is not Severity.INFO


def stricter(a: str, b: str) -> Decision:
    return max(Decision(a), Decision(b), key=rank)


def _settled(finding: Finding, fresh: Verdict) -> bool:
    """A recorded "could not check X" the fresh screen checked again and no longer reports."""
    check = unavailable_check(finding)
    if check is None or check not in RESCREENED_CHECKS:
        return False
    return all(unavailable_check(f) != check for f in fresh.findings)


def _dedupe(findings: Sequence[Finding]) -> tuple[Finding, ...]:
    out: dict[FindingKey, Finding] = {}
    for f in findings:
        out.setdefault(finding_key(f), f)
    return tuple(out.values())


def _revision(recorded: Sequence[Finding], hold_verdict: str, fresh: Verdict) -> Judgement | None:
    known = {finding_key(f) for f in recorded}
    new = _dedupe([f for f in fresh.findings if counts(f) and finding_key(f) not in known])
    if not new:
        return None
    findings = _dedupe([f for f in recorded if not _settled(f, fresh)] + list(new))
    decision = stricter(hold_verdict, decision_for(findings).value)
    if decision is Decision.CREDIT:
        decision = Decision.HOLD  # a hold with new evidence stays a hold
    why = "new evidence since the hold was reviewed: " + Verdict(decision, new).summary
    return Judgement(Action.REVISE, decision, findings, new, why)


def judge_credit(recorded: Sequence[Finding], hold_verdict: str, fresh: Verdict) -> Judgement:
    """May a person's release (or approval) of a hold credit it now, given a screen taken in its transaction?

    Never while a party is listed (however many people agree), nor when the list cannot be checked, nor when
    the screen shows evidence the hold does not: the people deciding must see it first.
    """
    current = (Decision(hold_verdict), tuple(recorded))
    gaps = [f for f in fresh.findings if unavailable_check(f) == Check.LISTS.value]
    if gaps:
        return Judgement(Action.REFUSE, *current, why="the sanctions list could not be checked: " + gaps[0].detail)
    revised = _revision(recorded, hold_verdict, fresh)
    listed = [f for f in fresh.findings if Severity(f.severity) is Severity.BLOCKING]
    if listed:
        findings = revised.findings if revised else tuple(recorded)
        first = listed[0]
        why = (
            f"its {first.party} {first.matched_address} is on list version {fresh.list_version_id} "
            f"({first.entity or 'unnamed SDN entry'}); a listed party is never credited"
        )
        return Judgement(Action.LISTED, Decision.BLOCK, findings, revised.new if revised else (), why)
    if revised is not None:
        return revised
    return Judgement(Action.CREDIT, *current, why="no new evidence since the hold was reviewed")


def judge_return(recorded: Sequence[Finding], hold_verdict: str, fresh: Verdict) -> Judgement | None:
    """Why a hold's funds may not be owed back to the sender now (None: they may): a listed party, or a list
    that cannot be checked. Sanctioned property is blocked, never returned."""
    judged = judge_credit(recorded, hold_verdict, fresh)
    if judged.action in (Action.LISTED, Action.REFUSE):
        return judged
    return None


def judge_rescreen(
    recorded: Sequence[Finding], hold_verdict: str, fresh: Verdict, *, credit_when_clean: bool
) -> Judgement:
    """What a system re-screen does to an open hold: take new evidence, clear an unavailable-only one, or nothing."""
    current = (Decision(hold_verdict), tuple(recorded))
    holding = [f for f in recorded if counts(f)]
    unavailable_only = bool(holding) and all(f.rule_id == RULE_UNAVAILABLE for f in holding)
    remaining = [f for f in holding if not _settled(f, fresh)] + [f for f in fresh.findings if counts(f)]
    if unavailable_only and not remaining:
        action = Action.CLEAR if credit_when_clean else Action.NOTE_CLEAN
        return Judgement(action, *current, why="every check that was unavailable now screens clean")
    revised = _revision(recorded, hold_verdict, fresh)
    return revised if revised is not None else Judgement(Action.NONE, *current)


__all__ = [
    "RESCREENED_CHECKS",
    "Action",
    "FindingKey",
    "Judgement",
    "counts",
    "finding_key",
    "judge_credit",
    "judge_rescreen",
    "judge_return",
    "stricter",
    "unavailable_check",
]
