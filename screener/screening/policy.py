"""The screening policy: facts about one deposit in, a Verdict with evidence out. Pure: no I/O, no clock.

The gatherer (screener.decide.gather) may hand over more facts than count (e.g. every indexed withdrawal to
the sender, whatever its date); this module decides which count, so the rules live in one testable place:

- ``ofac.sdn``: the transfer ``from`` or the transaction initiator is on the active list -> BLOCK.
  The allowlist never overrides it.
- ``mixer.direct``: a party is a known mixer pool, proxy, relayer registry or a relayer seen in a
  Withdrawal -> HOLD. ``mixer.privacy_protocol`` (e.g. Railgun, not sanctioned) is informational unless
  ``privacy_protocols_hold``.
- ``mixer.withdrawal_recipient``: a party received a mixer withdrawal in the lookback window before the
  deposit -> HOLD. ``mixer.two_hop``: the sender's own funding came from such a recipient -> HOLD.
  These do not depend on the mixer being on the SDN list (Tornado Cash was delisted in March 2025).
- ``issuer.blacklist``: the issuer blacklisted a party (or destroyed its frozen balance) within the window before
  or after the deposit -> HOLD. ``issuer.blacklist_proposed``: the issuer's multisig was asked to blacklist a
  party (Tether's Submission of ``addBlackList``, hours before the freeze lands) -> HOLD.
- ``unavailable``: a check could not be done -> HOLD, never CREDIT (fail closed).
- ``allowlist.suppressed``: a heuristic finding on an allowlisted counterparty, kept as information.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import replace
from datetime import datetime, timedelta

from screener.screening.facts import (
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
)
from screener.screening.verdicts import Decision, Finding, Severity, Verdict
from screener.settings import ScreeningSettings
from screener_base.addresses import Family, canonical
from screener_base.errors import AddressError

RULE_OFAC = "ofac.sdn"
RULE_MIXER_DIRECT = "mixer.direct"
RULE_PRIVACY_PROTOCOL = "mixer.privacy_protocol"
RULE_MIXER_RECIPIENT = "mixer.withdrawal_recipient"
RULE_MIXER_TWO_HOP = "mixer.two_hop"
RULE_ISSUER_BLACKLIST = "issuer.blacklist"
RULE_ISSUER_PROPOSED = "issuer.blacklist_proposed"
RULE_UNAVAILABLE = "unavailable"
RULE_ALLOWLISTED = "allowlist.suppressed"

# Heuristics the allowlist may silence for a known counterparty; an OFAC match and "unavailable" never.
_ALLOWLISTABLE = frozenset(
    {RULE_MIXER_DIRECT, RULE_MIXER_RECIPIENT, RULE_MIXER_TWO_HOP, RULE_ISSUER_BLACKLIST, RULE_ISSUER_PROPOSED}
)
# The facts are re-exported: callers import the policy and its input types from one place.
__all__ = [
    "BlacklistFact",
    "Check",
    "DepositFacts",
    "FundingFact",
    "ListHit",
    "MixerContractHit",
    "Party",
    "ScreeningInput",
    "Unavailable",
    "WithdrawalFact",
    "decision_for",
    "screen",
    "two_hop_applies",
]


def two_hop_applies(deposit: DepositFacts, config: ScreeningSettings) -> bool:
    """Two-hop lookups cost RPC calls, so only large deposits get them."""
    return config.two_hop_enabled and deposit.amount_raw >= config.two_hop_min_units * 10**deposit.decimals


def screen(inp: ScreeningInput, config: ScreeningSettings, now: datetime) -> Verdict:
    dep = inp.deposit
    findings: list[Finding] = []
    findings += _ofac_findings(inp)
    findings += _unavailable_findings(inp)
    findings += _mixer_direct_findings(inp, config)
    findings += _withdrawal_findings(inp, config)
    if two_hop_applies(dep, config):
        findings += _two_hop_findings(inp, config)
    findings += _blacklist_findings(inp, config)
    findings = _apply_allowlist(findings, dep, config)
    findings = [replace(f, list_version_id=inp.list_version_id) for f in _dedupe(findings)]
    return Verdict(
        decision=decision_for(findings),
        findings=tuple(findings),
        list_version_id=inp.list_version_id,
        decided_at=now,
    )


def decision_for(findings: Iterable[Finding]) -> Decision:
    severities = {f.severity for f in findings}
    if Severity.BLOCKING in severities:
        return Decision.BLOCK
    if Severity.REVIEW in severities:
        return Decision.HOLD
    return Decision.CREDIT


def _ofac_findings(inp: ScreeningInput) -> list[Finding]:
    return [
        Finding(
            rule_id=RULE_OFAC,
            severity=Severity.BLOCKING,
            party=hit.party.value,
            matched_address=hit.address,
            entity=hit.entity,
            programs=hit.programs,
            detail=f"{hit.entity or 'unnamed SDN entry'}"
            + (f" [{', '.join(hit.programs)}]" if hit.programs else "")
            + f": listed as {hit.listed_as} under {hit.asset}"
            + (f", OFAC profile {hit.profile_id}" if hit.profile_id else ""),
        )
        for hit in inp.list_hits
    ]


def _unavailable_findings(inp: ScreeningInput) -> list[Finding]:
    out = [_unavailable(u.check, u.detail) for u in inp.unavailable]
    if inp.list_version_id is None and not any(u.check is Check.LISTS for u in inp.unavailable):
        out.append(_unavailable(Check.LISTS, "no list version was given"))
    if inp.deposit.initiator is None:
        out.append(
            Finding(
                rule_id=RULE_UNAVAILABLE,
                severity=Severity.REVIEW,
                party=Party.INITIATOR.value,
                detail=f"{Check.INITIATOR}: the transaction initiator is unknown, so it was not screened",
            )
        )
    return out


def _unavailable(check: Check, detail: str) -> Finding:
    return Finding(
        rule_id=RULE_UNAVAILABLE, severity=Severity.REVIEW, party=Party.NONE.value, detail=f"{check}: {detail}"
    )


def _mixer_direct_findings(inp: ScreeningInput, config: ScreeningSettings) -> list[Finding]:
    out = []
    for hit in inp.mixer_contracts:
        privacy = hit.kind == "privacy_protocol"
        severity = Severity.REVIEW if (not privacy or config.privacy_protocols_hold) else Severity.INFO
        out.append(
            Finding(
                rule_id=RULE_PRIVACY_PROTOCOL if privacy else RULE_MIXER_DIRECT,
                severity=severity,
                party=hit.party.value,
                matched_address=hit.address,
                entity=hit.label,
                hop_path=(hit.address, inp.deposit.chain + ":deposit"),
                evidence_tx=inp.deposit.tx_hash,
                detail=f"sent directly by a mixer {hit.kind} ({hit.label})",
            )
        )
    return out


def _party_of(dep: DepositFacts, address: str) -> Party | None:
    for party, addr in dep.parties():
        if addr == address:
            return party
    return None


def _before_deposit(dep: DepositFacts, chain: str, block: int, when: datetime, lookback: timedelta) -> bool:
    """Could this event have funded the deposit, and is it recent enough to count?"""
    if when < dep.block_time - lookback:
        return False
    if chain == dep.chain:
        # Same chain: block order is exact; a same-block withdrawal is kept (we cannot prove it came later).
        return block <= dep.block_number
    return when <= dep.block_time


def _withdrawal_findings(inp: ScreeningInput, config: ScreeningSettings) -> list[Finding]:
    dep = inp.deposit
    lookback = timedelta(days=config.mixer_lookback_days)
    out = []
    for w in inp.withdrawals:
        party = _party_of(dep, w.address)
        if party is None or not _before_deposit(dep, w.chain, w.block_number, w.block_time, lookback):
            continue
        out.append(
            Finding(
                rule_id=RULE_MIXER_RECIPIENT,
                severity=Severity.REVIEW,
                party=party.value,
                matched_address=w.address,
                entity=f"mixer pool {w.pool}",
                hop_path=(f"{w.chain}:{w.pool}", w.address, dep.chain + ":deposit"),
                evidence_tx=w.tx_hash,
                detail=f"received a mixer withdrawal on {w.chain} at {w.block_time.isoformat()} "
                f"(block {w.block_number})" + (f" via relayer {w.relayer}" if w.relayer else ""),
            )
        )
    return out


def _two_hop_findings(inp: ScreeningInput, config: ScreeningSettings) -> list[Finding]:
    dep = inp.deposit
    lookback = timedelta(days=config.mixer_lookback_days)
    funding_lookback = timedelta(days=config.two_hop_lookback_days)
    out = []
    for f in inp.funding:
        w = f.withdrawal
        if not _before_deposit(dep, dep.chain, f.funding_block, f.funding_time, funding_lookback):
            continue
        # The funder's withdrawal must precede the funding it paid for and fall in the mixer window.
        if w.block_time > f.funding_time or w.block_time < dep.block_time - lookback:
            continue
        if w.chain == dep.chain and w.block_number > f.funding_block:
            continue
        out.append(
            Finding(
                rule_id=RULE_MIXER_TWO_HOP,
                severity=Severity.REVIEW,
                party=Party.FROM.value,
                matched_address=f.funder,
                entity=f"mixer pool {w.pool}",
                hop_path=(f"{w.chain}:{w.pool}", f.funder, dep.from_address, dep.chain + ":deposit"),
                evidence_tx=w.tx_hash,
                detail=f"sender funded by {f.funder} in {f.funding_tx} (block {f.funding_block}); "
                f"that address received a mixer withdrawal at {w.block_time.isoformat()}",
            )
        )
    return out


# What each kind of issuer fact says, for the finding's detail.
_BLACKLIST_WORDING = {
    "added": "blacklisted by",
    "destroyed": "frozen balance destroyed by",
    "proposed": "blacklisting proposed to the multisig of",
}


def _blacklist_findings(inp: ScreeningInput, config: ScreeningSettings) -> list[Finding]:
    dep = inp.deposit
    window = timedelta(days=config.blacklist_lookback_days)
    out = []
    for b in inp.blacklist:
        party = _party_of(dep, b.address)
        if party is None or b.action not in _BLACKLIST_WORDING or abs(b.block_time - dep.block_time) > window:
            continue
        removed = [
            r
            for r in inp.blacklist
            if r.action == "removed"
            and r.address == b.address
            and r.token_contract == b.token_contract
            and r.chain == b.chain
            and r.block_number > b.block_number
        ]
        when = "before" if b.block_time <= dep.block_time else "after"
        out.append(
            Finding(
                rule_id=RULE_ISSUER_PROPOSED if b.action == "proposed" else RULE_ISSUER_BLACKLIST,
                severity=Severity.REVIEW,
                party=party.value,
                matched_address=b.address,
                entity=f"{b.token_symbol} issuer ({b.chain}:{b.token_contract})",
                evidence_tx=b.tx_hash,
                detail=f"{_BLACKLIST_WORDING[b.action]} the {b.token_symbol} issuer on {b.chain} at "
                f"{b.block_time.isoformat()}, {when} the deposit"
                + (f"; later removed in {removed[0].tx_hash}" if removed else ""),
            )
        )
    return out


def _allowlisted(config: ScreeningSettings, family: Family) -> frozenset[str]:
    out = set()
    for entry in config.allowlist:
        try:
            out.add(canonical(family, entry))
        except AddressError:
            continue  # an entry of another family (e.g. a Tron address on an EVM chain)
    return frozenset(out)


def _apply_allowlist(findings: list[Finding], dep: DepositFacts, config: ScreeningSettings) -> list[Finding]:
    allowed = _allowlisted(config, dep.family)
    if not allowed:
        return findings
    allowed_parties = {party.value for party, addr in dep.parties() if addr in allowed}
    out = []
    for f in findings:
        if f.rule_id in _ALLOWLISTABLE and f.party in allowed_parties:
            f = replace(
                f,
                rule_id=RULE_ALLOWLISTED,
                severity=Severity.INFO,
                detail=f"{f.rule_id} suppressed for an allowlisted counterparty: {f.detail}",
            )
        out.append(f)
    return out


def _dedupe(findings: list[Finding]) -> list[Finding]:
    seen: set[Finding] = set()
    out = []
    for f in findings:
        if f not in seen:
            seen.add(f)
            out.append(f)
    return out
