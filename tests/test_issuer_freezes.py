"""Issuer freezes beyond USDT/USDC's first layouts (issue 14): USD₮0's BlockPlaced, Tether's DestroyedBlackFunds,
Tron's indexed Tether layout, and Tether's multisig proposing addBlackList hours before the freeze lands.

On anvil: Usdt0Like (WithBlockedList), TetherLike owned by MultiSigLike (Stefan George's MultiSigWallet, which
owns USDT on Ethereum: proposals stored and logged as Submission(id), executed when confirmed). Each fact is found
by the blacklist index and holds a new deposit, or flags a credited one, with its own transaction as evidence.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from eth_abi import encode
from eth_utils import keccak
from sqlalchemy.engine import Engine
from sqlmodel import select

from chains.blacklists import (
    ADDED_BLACKLIST_TOPIC0,
    BLOCK_PLACED_TOPIC0,
    BLOCK_RELEASED_TOPIC0,
    DESTROYED_BLACK_FUNDS_TOPIC0,
    DESTROYED_BLOCKED_FUNDS_TOPIC0,
    Action,
    Interface,
    decode_blacklist_log,
    is_blacklisted_call,
)
from chains.multisig import (
    ADD_BLACKLIST_SELECTOR,
    SUBMISSION_TOPIC0,
    TRANSACTIONS_SELECTOR,
    decode_transactions_result,
    proposed_blacklisting,
)
from screener.db import session_scope
from screener.decide.decide import decide_deposits
from screener.decide.rescreen import make_index_hook
from screener.demo.devnet import deploy
from screener.indexes.store import BlacklistToken, MultisigWatch, blacklist_facts, scan_blacklist_index
from screener.lists import store as lists_store
from screener.models.ledger import ReviewFlag
from screener.screening.verdicts import Decision
from screener.settings import Settings
from screener_base.errors import DecodeError
from tests.support.anvil import Anvil
from tests.support.screening_env import anvil_source, make_deposit

FROZEN = "0x" + "a1" * 20  # USD₮0 blocks it
PROPOSED = "0x" + "a2" * 20  # the multisig is asked to blacklist it; not yet confirmed
DESTROYED = "0x" + "a3" * 20  # blacklisted and its balance destroyed
ELSEWHERE = "0x" + "a4" * 20  # a proposal to blacklist on ANOTHER token: not this issuer's freeze
FRESH_LISTS = {"max_list_age_h": 24 * 3650}


def _word(address: str) -> str:
    return "0" * 24 + address[2:]


def test_topics_and_selectors_are_the_signatures_hashes() -> None:
    def topic(sig: str) -> str:
        return "0x" + keccak(text=sig).hex()

    assert BLOCK_PLACED_TOPIC0 == topic("BlockPlaced(address)")
    assert BLOCK_RELEASED_TOPIC0 == topic("BlockReleased(address)")
    assert DESTROYED_BLOCKED_FUNDS_TOPIC0 == topic("DestroyedBlockedFunds(address,uint256)")
    assert DESTROYED_BLACK_FUNDS_TOPIC0 == topic("DestroyedBlackFunds(address,uint256)")
    assert SUBMISSION_TOPIC0 == topic("Submission(uint256)")
    assert TRANSACTIONS_SELECTOR == topic("transactions(uint256)")[:10]
    assert ADD_BLACKLIST_SELECTOR == topic("addBlackList(address)")[:10]
    assert is_blacklisted_call(Interface.USDT0, FROZEN) == topic("isBlocked(address)")[:10] + _word(FROZEN)


def _log(topics: list[str], data: str) -> dict[str, str]:
    position = {
        "blockNumber": "0x7",
        "transactionHash": "0x" + "07" * 32,
        "logIndex": "0x0",
        "blockHash": "0x" + "ee" * 32,
    }
    return {"address": "0x" + "de" * 20, "topics": topics, "data": data, **position}


def test_both_tether_layouts_are_read() -> None:
    """Ethereum's TetherToken logs the address as a data word; published ABIs of Tron's TRC-20 USDT index it."""
    ethereum = decode_blacklist_log(_log([ADDED_BLACKLIST_TOPIC0], "0x" + _word(FROZEN)))
    tron = decode_blacklist_log(_log([ADDED_BLACKLIST_TOPIC0, "0x" + _word(FROZEN)], "0x"))
    assert ethereum.address == tron.address == FROZEN and ethereum.action is tron.action is Action.ADDED
    burned = decode_blacklist_log(_log([DESTROYED_BLACK_FUNDS_TOPIC0], "0x" + _word(FROZEN) + f"{2**70:064x}"))
    burned_tron = decode_blacklist_log(_log([DESTROYED_BLACK_FUNDS_TOPIC0, "0x" + _word(FROZEN)], f"0x{2**70:064x}"))
    assert (burned.action, burned.amount) == (burned_tron.action, burned_tron.amount) == (Action.DESTROYED, 2**70)
    with pytest.raises(DecodeError, match="2 topics and 0 data bytes"):
        decode_blacklist_log(_log([DESTROYED_BLOCKED_FUNDS_TOPIC0, "0x" + _word(FROZEN)], "0x"))
    with pytest.raises(DecodeError):  # USD₮0's layout is indexed only
        decode_blacklist_log(_log([BLOCK_PLACED_TOPIC0], "0x" + _word(FROZEN)))


def test_a_proposal_is_read_from_the_stored_call_not_trusted_from_anywhere() -> None:
    token = "0x" + "70" * 20
    call = ADD_BLACKLIST_SELECTOR + _word(PROPOSED)
    stored = "0x" + encode(["address", "uint256", "bytes", "bool"], [token, 0, bytes.fromhex(call[2:]), False]).hex()
    proposal = decode_transactions_result(stored)
    assert proposal.destination == token and not proposal.executed
    assert proposed_blacklisting(proposal, token) == PROPOSED
    assert proposed_blacklisting(proposal, "0x" + "71" * 20) is None, "another token's call is not this freeze"
    issue = bytes.fromhex("cc872b66") + (10**6).to_bytes(32, "big")  # issue(uint256): not a freeze
    other = "0x" + encode(["address", "uint256", "bytes", "bool"], [token, 0, issue, False]).hex()
    assert proposed_blacklisting(decode_transactions_result(other), token) is None
    huge = "0x" + encode(["address", "uint256", "bytes", "bool"], [token, 0, b"\1" * 5000, False]).hex()
    assert proposed_blacklisting(decode_transactions_result(huge), token) is None, "some other proposal: no stop"
    upper = "0x" + stored[2:].upper()
    assert proposed_blacklisting(decode_transactions_result(upper), token) == PROPOSED
    with pytest.raises(DecodeError):
        decode_transactions_result(stored[:-64])
    with pytest.raises(DecodeError):  # not a MultiSigWallet at all: the index stops and says so
        decode_transactions_result("0x")


def _propose(node: Anvil, multisig: str, signer: str, token: str, data: str) -> deploy.TxResult:
    call = deploy.calldata(
        "submitTransaction(address,uint256,bytes)", ["address", "uint256", "bytes"], [token, 0, bytes.fromhex(data[2:])]
    )
    return deploy.send(node, signer, multisig, call, gas=500_000)


def _confirm(node: Anvil, multisig: str, signer: str, transaction_id: int) -> deploy.TxResult:
    return deploy.send(
        node, signer, multisig, deploy.calldata("confirmTransaction(uint256)", ["uint256"], [transaction_id])
    )


def test_each_issuer_fact_holds_or_flags_with_its_event_as_evidence(engine: Engine, anvil_module: Anvil) -> None:
    node = anvil_module
    owner, signer_a, signer_b = deploy.accounts(node)[:3]
    usdt0 = deploy.deploy_usdt0_like(node)
    tether = deploy.deploy_tether_like(node)
    other = deploy.deploy_tether_like(node, "OTHER")
    multisig = deploy.deploy_multisig(node, [signer_a, signer_b], 2)
    deploy.mint(node, tether, DESTROYED, 5 * 10**6)
    for token in (tether, other):
        deploy.send(node, owner, token, deploy.calldata("transferOwnership(address)", ["address"], [multisig]))
    settings = Settings(lists=FRESH_LISTS)
    with session_scope(engine) as s:
        lists_store.ensure_active(s, datetime.now(UTC))
    credited = make_deposit("polygon", FROZEN, block=node.block_number(), when=datetime.now(UTC) - timedelta(hours=1))
    with session_scope(engine) as s:  # decided before anything was frozen: credited
        s.add(credited)
        s.flush()
        lookup = lambda chain: anvil_source(node, chain)  # noqa: E731
        assert decide_deposits(s, [credited], settings, datetime.now(UTC), lookup)[0].decision is Decision.CREDIT

    block_placed = deploy.send(node, owner, usdt0, deploy.calldata("addToBlockedList(address)", ["address"], [FROZEN]))
    add = deploy.calldata("addBlackList(address)", ["address"], [PROPOSED])
    submission = _propose(node, multisig, signer_a, tether, add)  # transaction 0: awaits a second signer
    _propose(node, multisig, signer_a, tether, deploy.calldata("addBlackList(address)", ["address"], [DESTROYED]))
    _confirm(node, multisig, signer_b, 1)
    _propose(node, multisig, signer_a, tether, deploy.calldata("destroyBlackFunds(address)", ["address"], [DESTROYED]))
    destroyed = _confirm(node, multisig, signer_b, 2)
    _propose(node, multisig, signer_a, other, deploy.calldata("addBlackList(address)", ["address"], [ELSEWHERE]))

    source = anvil_source(
        node,
        "ethereum",
        blacklist_tokens=[
            BlacklistToken("USDT0", usdt0, usdt0, Interface.USDT0),
            BlacklistToken("USDT", tether, tether, Interface.TETHER),
        ],
        multisigs=[MultisigWatch(multisig, BlacklistToken("USDT", tether, tether, Interface.TETHER))],
    )
    hook = make_index_hook(settings)
    assert scan_blacklist_index(engine, source, settings, datetime.now(UTC), on_new_facts=hook) == 5
    with session_scope(engine) as s:
        facts = {a: [(f.token_symbol, f.action) for f in blacklist_facts(s, [a])] for a in (FROZEN, PROPOSED)}
        facts[DESTROYED] = [(f.token_symbol, f.action) for f in blacklist_facts(s, [DESTROYED])]
        assert not blacklist_facts(s, [ELSEWHERE]), "a proposal on another token is not a USDT freeze"
        flags = s.exec(select(ReviewFlag).where(ReviewFlag.deposit_id == credited.id)).all()
        assert [(f.rule_id, f.matched_address) for f in flags] == [("issuer.blacklist", FROZEN)]
    assert facts == {
        FROZEN: [("USDT0", "added")],
        PROPOSED: [("USDT", "proposed")],  # proposed only: the freeze has not landed
        DESTROYED: [("USDT", "proposed"), ("USDT", "added"), ("USDT", "destroyed")],  # the burn proposal is no fact
    }

    with session_scope(engine) as s:  # new deposits from each address: held, the event as evidence
        deposits = [make_deposit("polygon", a, block=node.block_number(), log_index=i) for i, a in
                    enumerate((FROZEN, PROPOSED, DESTROYED))]  # fmt: skip
        s.add_all(deposits)
        s.flush()
        verdicts = decide_deposits(s, deposits, settings, datetime.now(UTC), lookup)
    evidence = {(f.rule_id, f.matched_address, f.evidence_tx) for v in verdicts for f in v.findings}
    assert all(v.decision is Decision.HOLD for v in verdicts)
    assert ("issuer.blacklist", FROZEN, block_placed.tx_hash) in evidence
    assert ("issuer.blacklist_proposed", PROPOSED, submission.tx_hash) in evidence
    assert ("issuer.blacklist", DESTROYED, destroyed.tx_hash) in evidence
