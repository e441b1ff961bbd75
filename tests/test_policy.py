"""The screening policy as tables: (facts, config) -> decision and the rules that fired."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from screener.screening.policy import (
    BlacklistFact,
    Check,
    DepositFacts,
    FundingFact,
    ListHit,
    MixerContractHit,
    Party,
    ScreeningInput,
    Unavailable,
    WithdrawalFact,
    decision_for,
    screen,
    two_hop_applies,
)
from screener.screening.verdicts import Decision, Finding, Severity
from screener.settings import ScreeningSettings
from screener_base.addresses import Family

T0 = datetime(2025, 6, 1, 12, 0, tzinfo=UTC)
SENDER = "0x" + "11" * 20
SIGNER = "0x" + "22" * 20
FUNDER = "0x" + "33" * 20
POOL = "0x12d66f87a04a9e220743712ce6d9bb1b5616b8fc"
# A real SDN entry: Lazarus Group (ETH tag), still listed after the Tornado Cash delisting.
LAZARUS = "0x098b716b8aaf21512996dc57eb0615e2383e2f96"
LAZARUS_DISPLAY = "0x098B716B8Aaf21512996dC57EB0615e2383E2f96"

DEP = DepositFacts(
    chain="polygon",
    family=Family.EVM,
    tx_hash="0x" + "aa" * 32,
    block_number=1000,
    block_time=T0,
    from_address=SENDER,
    initiator=SIGNER,
    amount_raw=50_000 * 10**6,
    decimals=6,
)


def ofac(party: Party, address: str) -> ListHit:
    return ListHit(party, address, address, "ETH", "LAZARUS GROUP", ("DPRK3",), "12345")


def withdrawal(address: str, *, days_before: float = 1, chain: str = "polygon", block: int = 900) -> WithdrawalFact:
    return WithdrawalFact(address, chain, POOL, None, "0x" + "bb" * 32, block, T0 - timedelta(days=days_before))


def blacklisted(address: str, *, days: float = -1, action: str = "added", block: int = 900) -> BlacklistFact:
    return BlacklistFact(
        address, "polygon", "USDT", "0x" + "cc" * 20, action, "0x" + "dd" * 32, block, T0 + timedelta(days=days)
    )


def funded(*, funding_days_before: float = 1, withdrawal_days_before: float = 2) -> FundingFact:
    return FundingFact(
        funder=FUNDER,
        funding_tx="0x" + "ee" * 32,
        funding_block=950,
        funding_time=T0 - timedelta(days=funding_days_before),
        withdrawal=withdrawal(FUNDER, days_before=withdrawal_days_before, block=940),
    )


CFG = ScreeningSettings()
TWO_HOP = ScreeningSettings(two_hop_enabled=True, two_hop_min_units=10_000)


def inp(**kw: Any) -> ScreeningInput:
    kw.setdefault("list_version_id", 7)
    deposit = kw.pop("deposit", DEP)
    return ScreeningInput(deposit=deposit, **kw)


CASES: list[tuple[str, ScreeningInput, ScreeningSettings, Decision, list[tuple[str, str]]]] = [
    ("clean", inp(), CFG, Decision.CREDIT, []),
    ("ofac sender", inp(list_hits=(ofac(Party.FROM, SENDER),)), CFG, Decision.BLOCK, [("ofac.sdn", "from")]),
    (
        "ofac initiator only",
        inp(list_hits=(ofac(Party.INITIATOR, SIGNER),)),
        CFG,
        Decision.BLOCK,
        [("ofac.sdn", "initiator")],
    ),
    (
        "ofac beats allowlist (checksummed entry)",
        inp(deposit=replace(DEP, from_address=LAZARUS), list_hits=(ofac(Party.FROM, LAZARUS),)),
        ScreeningSettings(allowlist=[LAZARUS_DISPLAY]),
        Decision.BLOCK,
        [("ofac.sdn", "from")],
    ),
    (
        "list unavailable",
        inp(list_version_id=None, unavailable=(Unavailable(Check.LISTS, "list is 80h old"),)),
        CFG,
        Decision.HOLD,
        [("unavailable", "-")],
    ),
    ("no list version given", inp(list_version_id=None), CFG, Decision.HOLD, [("unavailable", "-")]),
    (
        "initiator unknown",
        inp(deposit=replace(DEP, initiator=None)),
        CFG,
        Decision.HOLD,
        [("unavailable", "initiator")],
    ),
    (
        "mixer index behind, even if allowlisted",
        inp(unavailable=(Unavailable(Check.MIXER_INDEX, "indexed to 990 < 1000"),)),
        ScreeningSettings(allowlist=[SENDER, SIGNER]),
        Decision.HOLD,
        [("unavailable", "-")],
    ),
    (
        "direct from pool",
        inp(mixer_contracts=(MixerContractHit(Party.FROM, POOL, "pool", "Tornado Cash 0.1 ETH pool"),)),
        CFG,
        Decision.HOLD,
        [("mixer.direct", "from")],
    ),
    (
        "initiator is a relayer",
        inp(mixer_contracts=(MixerContractHit(Party.INITIATOR, SIGNER, "relayer", "relayer seen in withdrawals"),)),
        CFG,
        Decision.HOLD,
        [("mixer.direct", "initiator")],
    ),
    (
        "railgun only noted",
        inp(mixer_contracts=(MixerContractHit(Party.FROM, SENDER, "privacy_protocol", "Railgun"),)),
        CFG,
        Decision.CREDIT,
        [("mixer.privacy_protocol", "from")],
    ),
    (
        "railgun held when configured",
        inp(mixer_contracts=(MixerContractHit(Party.FROM, SENDER, "privacy_protocol", "Railgun"),)),
        ScreeningSettings(privacy_protocols_hold=True),
        Decision.HOLD,
        [("mixer.privacy_protocol", "from")],
    ),
    (
        "withdrawal recipient",
        inp(withdrawals=(withdrawal(SENDER),)),
        CFG,
        Decision.HOLD,
        [("mixer.withdrawal_recipient", "from")],
    ),
    (
        "initiator withdrawal recipient",
        inp(withdrawals=(withdrawal(SIGNER),)),
        CFG,
        Decision.HOLD,
        [("mixer.withdrawal_recipient", "initiator")],
    ),
    (
        "withdrawal outside lookback",
        inp(withdrawals=(withdrawal(SENDER, days_before=181),)),
        CFG,
        Decision.CREDIT,
        [],
    ),
    (
        "withdrawal outside a configured 30-day lookback",
        inp(withdrawals=(withdrawal(SENDER, days_before=31),)),
        ScreeningSettings(mixer_lookback_days=30),
        Decision.CREDIT,
        [],
    ),
    (
        "withdrawal after the deposit (same chain, later block)",
        inp(withdrawals=(withdrawal(SENDER, days_before=0, block=1001),)),
        CFG,
        Decision.CREDIT,
        [],
    ),
    (
        "withdrawal in the same block counts",
        inp(withdrawals=(withdrawal(SENDER, days_before=0, block=1000),)),
        CFG,
        Decision.HOLD,
        [("mixer.withdrawal_recipient", "from")],
    ),
    (
        "withdrawal on another chain before the deposit",
        inp(withdrawals=(withdrawal(SENDER, chain="ethereum", block=20_000_000),)),
        CFG,
        Decision.HOLD,
        [("mixer.withdrawal_recipient", "from")],
    ),
    (
        "withdrawal on another chain after the deposit",
        inp(withdrawals=(withdrawal(SENDER, chain="ethereum", days_before=-1),)),
        CFG,
        Decision.CREDIT,
        [],
    ),
    (
        "withdrawal to someone else is ignored",
        inp(withdrawals=(withdrawal(FUNDER),)),
        CFG,
        Decision.CREDIT,
        [],
    ),
    (
        "allowlisted sender: mixer noted, not held",
        inp(withdrawals=(withdrawal(SENDER),)),
        ScreeningSettings(allowlist=[SENDER]),
        Decision.CREDIT,
        [("allowlist.suppressed", "from")],
    ),
    (
        "allowlisting the sender does not cover the initiator",
        inp(withdrawals=(withdrawal(SIGNER),)),
        ScreeningSettings(allowlist=[SENDER]),
        Decision.HOLD,
        [("mixer.withdrawal_recipient", "initiator")],
    ),
    ("two hop", inp(funding=(funded(),)), TWO_HOP, Decision.HOLD, [("mixer.two_hop", "from")]),
    ("two hop disabled", inp(funding=(funded(),)), CFG, Decision.CREDIT, []),
    (
        "two hop below threshold",
        inp(deposit=replace(DEP, amount_raw=9_999 * 10**6), funding=(funded(),)),
        TWO_HOP,
        Decision.CREDIT,
        [],
    ),
    (
        "two hop: funder's withdrawal came after the funding",
        inp(funding=(funded(funding_days_before=2, withdrawal_days_before=1),)),
        TWO_HOP,
        Decision.CREDIT,
        [],
    ),
    (
        "two hop: funding older than the two-hop window",
        inp(funding=(funded(funding_days_before=4, withdrawal_days_before=5),)),
        TWO_HOP,
        Decision.CREDIT,
        [],
    ),
    (
        "two hop lookup failed",
        inp(unavailable=(Unavailable(Check.TWO_HOP, "rpc budget of 20 calls exhausted"),)),
        TWO_HOP,
        Decision.HOLD,
        [("unavailable", "-")],
    ),
    (
        "blacklisted before",
        inp(blacklist=(blacklisted(SENDER, days=-10),)),
        CFG,
        Decision.HOLD,
        [("issuer.blacklist", "from")],
    ),
    (
        "blacklisted after",
        inp(blacklist=(blacklisted(SENDER, days=10, block=1500),)),
        CFG,
        Decision.HOLD,
        [("issuer.blacklist", "from")],
    ),
    ("blacklisted long before", inp(blacklist=(blacklisted(SENDER, days=-200),)), CFG, Decision.CREDIT, []),
    ("blacklisted long after", inp(blacklist=(blacklisted(SENDER, days=200),)), CFG, Decision.CREDIT, []),
    ("only a removal", inp(blacklist=(blacklisted(SENDER, action="removed"),)), CFG, Decision.CREDIT, []),
    (
        "initiator blacklisted",
        inp(blacklist=(blacklisted(SIGNER),)),
        CFG,
        Decision.HOLD,
        [("issuer.blacklist", "initiator")],
    ),
    (
        "allowlisted and blacklisted: noted",
        inp(blacklist=(blacklisted(SENDER),)),
        ScreeningSettings(allowlist=[SENDER]),
        Decision.CREDIT,
        [("allowlist.suppressed", "from")],
    ),
    (
        "block outranks hold",
        inp(list_hits=(ofac(Party.INITIATOR, SIGNER),), withdrawals=(withdrawal(SENDER),)),
        CFG,
        Decision.BLOCK,
        [("ofac.sdn", "initiator"), ("mixer.withdrawal_recipient", "from")],
    ),
]


@pytest.mark.parametrize(("name", "facts", "config", "decision", "rules"), CASES, ids=[c[0] for c in CASES])
def test_policy_table(
    name: str, facts: ScreeningInput, config: ScreeningSettings, decision: Decision, rules: list[tuple[str, str]]
) -> None:
    verdict = screen(facts, config, T0)
    assert verdict.decision is decision, verdict.summary
    assert [(f.rule_id, f.party) for f in verdict.findings] == rules
    assert verdict.decided_at == T0
    assert all(f.list_version_id == facts.list_version_id for f in verdict.findings)


def test_ofac_evidence_is_complete() -> None:
    verdict = screen(inp(list_hits=(ofac(Party.FROM, LAZARUS),)), CFG, T0)
    (f,) = verdict.findings
    assert f.severity is Severity.BLOCKING
    assert (f.matched_address, f.entity, f.programs, f.list_version_id) == (LAZARUS, "LAZARUS GROUP", ("DPRK3",), 7)
    assert "12345" in f.detail and "ETH" in f.detail


def test_mixer_evidence_names_the_withdrawal() -> None:
    verdict = screen(inp(withdrawals=(withdrawal(SENDER),)), CFG, T0)
    (f,) = verdict.findings
    assert f.evidence_tx == "0x" + "bb" * 32
    assert f.hop_path == (f"polygon:{POOL}", SENDER, "polygon:deposit")


def test_two_hop_path_runs_from_pool_to_deposit() -> None:
    (f,) = screen(inp(funding=(funded(),)), TWO_HOP, T0).findings
    assert f.hop_path == (f"polygon:{POOL}", FUNDER, SENDER, "polygon:deposit")
    assert f.matched_address == FUNDER and "0x" + "ee" * 32 in f.detail


def test_blacklist_removal_is_mentioned() -> None:
    facts = inp(blacklist=(blacklisted(SENDER, days=-5, block=800), blacklisted(SENDER, days=-2, action="removed")))
    (f,) = screen(facts, CFG, T0).findings
    assert f.rule_id == "issuer.blacklist" and "later removed" in f.detail


def test_allowlist_entry_of_another_family_is_ignored() -> None:
    cfg = ScreeningSettings(allowlist=["TBHTJqAy4DhHhmT3dNceJYNRz4SdLofLre", "not an address"])
    assert screen(inp(withdrawals=(withdrawal(SENDER),)), cfg, T0).decision is Decision.HOLD


def test_tron_allowlist_matches_the_canonical_form() -> None:
    tron = "TBHTJqAy4DhHhmT3dNceJYNRz4SdLofLre"
    dep = replace(DEP, chain="tron", family=Family.TRON, from_address=tron, initiator=tron)
    facts = inp(deposit=dep, blacklist=(replace(blacklisted(tron), chain="tron"),))
    assert screen(facts, ScreeningSettings(), T0).decision is Decision.HOLD
    assert screen(facts, ScreeningSettings(allowlist=[tron]), T0).decision is Decision.CREDIT


def test_same_sender_and_initiator_is_one_party() -> None:
    dep = replace(DEP, initiator=SENDER)
    verdict = screen(inp(deposit=dep, withdrawals=(withdrawal(SENDER),)), CFG, T0)
    assert [f.party for f in verdict.findings] == ["from"]


def test_two_hop_threshold_is_in_whole_tokens() -> None:
    assert two_hop_applies(replace(DEP, amount_raw=10_000 * 10**18, decimals=18), TWO_HOP)
    assert not two_hop_applies(replace(DEP, amount_raw=10_000 * 10**6, decimals=18), TWO_HOP)


@pytest.mark.parametrize(
    ("severities", "decision"),
    [
        ((), Decision.CREDIT),
        ((Severity.INFO,), Decision.CREDIT),
        ((Severity.INFO, Severity.REVIEW), Decision.HOLD),
        ((Severity.REVIEW, Severity.BLOCKING), Decision.BLOCK),
    ],
)
def test_decision_for(severities: tuple[Severity, ...], decision: Decision) -> None:
    assert decision_for(Finding("r", s, "-") for s in severities) is decision
