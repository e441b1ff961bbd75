"""The pure evidence rules (screener.review.evidence): what a fresh screen means for a hold. No database."""

from __future__ import annotations

from screener.review.evidence import Action, finding_key, judge_credit, judge_rescreen, unavailable_check
from screener.screening.verdicts import Decision, Finding, Severity, Verdict

SENDER = "0x" + "ab" * 20
OFAC = Finding("ofac.sdn", Severity.BLOCKING, "from", SENDER, 3, "LAZARUS GROUP", ("DPRK3",), detail="listed")
MIXER = Finding("mixer.withdrawal_recipient", Severity.REVIEW, "from", SENDER, evidence_tx="0x01", detail="pool")
LIST_GAP = Finding("unavailable", Severity.REVIEW, "-", detail="lists: sanctions list version 1 is stale")
INDEX_GAP = Finding("unavailable", Severity.REVIEW, "-", detail="mixer_index: devnet mixer index scanned to block 3")
TWO_HOP_GAP = Finding("unavailable", Severity.REVIEW, "-", detail="two_hop: RPC budget of 20 calls ran out")
ALLOWED = Finding("allowlist.suppressed", Severity.INFO, "from", SENDER, detail="suppressed")


def fresh(*findings: Finding, version: int = 4) -> Verdict:
    decision = Decision.BLOCK if OFAC in findings else Decision.HOLD if findings else Decision.CREDIT
    return Verdict(decision, findings, version)


def test_keys_ignore_wording_and_list_version_but_not_the_fact() -> None:
    later = Finding(INDEX_GAP.rule_id, INDEX_GAP.severity, "-", detail="mixer_index: scanned to block 90")
    assert finding_key(later) == finding_key(INDEX_GAP)
    assert unavailable_check(INDEX_GAP) == "mixer_index" and unavailable_check(OFAC) is None
    relisted = Finding("ofac.sdn", Severity.BLOCKING, "from", SENDER, 9, "OTHER NAME", detail="listed again")
    assert finding_key(relisted) == finding_key(OFAC)
    other_tx = Finding(MIXER.rule_id, MIXER.severity, "from", SENDER, evidence_tx="0x02", detail="pool")
    assert finding_key(other_tx) != finding_key(MIXER)


def test_a_release_with_nothing_new_may_credit() -> None:
    assert judge_credit([MIXER], "HOLD", fresh(MIXER)).action is Action.CREDIT
    assert judge_credit([MIXER, INDEX_GAP], "HOLD", fresh(MIXER)).action is Action.CREDIT  # weaker: fine
    assert judge_credit([MIXER], "HOLD", fresh(MIXER, ALLOWED)).action is Action.CREDIT  # info does not count


def test_a_stale_list_refuses_and_changes_nothing() -> None:
    judged = judge_credit([MIXER], "HOLD", fresh(MIXER, LIST_GAP))
    assert judged.action is Action.REFUSE
    assert (judged.decision, judged.findings) == (Decision.HOLD, (MIXER,))
    assert "could not be checked" in judged.why


def test_a_listed_party_is_never_credited_even_when_the_hold_shows_it() -> None:
    for recorded in ([], [OFAC], [MIXER]):
        judged = judge_credit(recorded, "BLOCK" if OFAC in recorded else "HOLD", fresh(OFAC))
        assert judged.action is Action.LISTED and judged.decision is Decision.BLOCK
        assert OFAC in judged.findings and "never credited" in judged.why


def test_new_evidence_refuses_and_settles_gaps_the_screen_checked() -> None:
    judged = judge_credit([INDEX_GAP, TWO_HOP_GAP], "HOLD", fresh(MIXER))
    assert judged.action is Action.REVISE and judged.new == (MIXER,)
    # the mixer index answered (gap settled); two-hop is not re-checked, so its gap stays as recorded
    assert judged.findings == (TWO_HOP_GAP, MIXER)


def test_rescreen_clears_only_a_hold_that_was_unavailable_alone() -> None:
    assert judge_rescreen([LIST_GAP], "HOLD", fresh(), credit_when_clean=True).action is Action.CLEAR
    assert judge_rescreen([LIST_GAP], "HOLD", fresh(), credit_when_clean=False).action is Action.NOTE_CLEAN
    assert judge_rescreen([LIST_GAP, MIXER], "HOLD", fresh(MIXER), credit_when_clean=True).action is Action.NONE
    assert judge_rescreen([TWO_HOP_GAP], "HOLD", fresh(), credit_when_clean=True).action is Action.NONE
    assert judge_rescreen([LIST_GAP], "HOLD", fresh(INDEX_GAP), credit_when_clean=True).action is Action.REVISE


def test_rescreen_takes_a_listing_and_never_weakens_a_block() -> None:
    listed = judge_rescreen([LIST_GAP], "HOLD", fresh(OFAC), credit_when_clean=True)
    assert (listed.action, listed.decision, listed.findings) == (Action.REVISE, Decision.BLOCK, (OFAC,))
    delisted = judge_rescreen([OFAC], "BLOCK", fresh(), credit_when_clean=True)
    assert delisted.action is Action.NONE  # a person decides; the activation annotates it
