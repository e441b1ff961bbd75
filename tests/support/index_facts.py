"""Index facts stored the way the worker stores them (sealed), from a recorded real Tornado Withdrawal log.

The log is ethereum's 10 ETH pool withdrawal recorded by forta-tornado-cash (../shared/data/peers); the
blacklist log has Tether's AddedBlackList shape (address in the data word) for Lazarus Group's OFAC-listed
address. Served by a replay fetcher: no node is involved, the facts only have to exist and be sealed.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

from sqlmodel import Session

from chains.blacklists import ADDED_BLACKLIST_TOPIC0, Interface
from screener.indexes.rules import IndexKind
from screener.indexes.store import BlacklistToken, IndexSource, catch_up
from screener.settings import Settings
from screener_base.addresses import Family

LAZARUS = "0x098b716b8aaf21512996dc57eb0615e2383e2f96"
USDT_ETHEREUM = "0xdac17f958d2ee523a2206206994597c13d831ec7"


def recorded_withdrawal(shared_data: Path) -> dict[str, Any]:
    """The recorded log in eth_getLogs' JSON-RPC form (hex quantities)."""
    raw = json.loads((shared_data / "peers" / "tornado_withdrawal_logs.json").read_text())["ethereum_10eth_pool"]["log"]
    return {
        "address": raw["address"],
        "topics": raw["topics"],
        "data": raw["data"],
        "logIndex": hex(raw["logIndex"]),
        "blockNumber": hex(raw["blockNumber"]),
        "blockHash": raw["blockHash"],
        "transactionIndex": hex(raw["transactionIndex"]),
        "transactionHash": raw["transactionHash"],
        "removed": False,
    }


def blacklist_log(block: int) -> dict[str, Any]:
    return {
        "address": USDT_ETHEREUM,
        "topics": [ADDED_BLACKLIST_TOPIC0],
        "data": "0x" + "0" * 24 + LAZARUS[2:],
        "logIndex": "0x7",
        "blockNumber": hex(block),
        "blockHash": "0x" + "ab" * 32,
        "transactionIndex": "0x1",
        "transactionHash": "0x" + "cd" * 32,
        "removed": False,
    }


class Replay:
    """eth_getLogs answered from a fixed set of logs, filtered by the request's range and addresses."""

    def __init__(self, logs: Sequence[dict[str, Any]]) -> None:
        self.logs = list(logs)
        self.calls = 0

    def __call__(self, params: dict[str, Any]) -> list[dict[str, Any]]:
        self.calls += 1
        lo, hi = int(params["fromBlock"], 16), int(params["toBlock"], 16)
        wanted = {a.lower() for a in params.get("address", [])}
        return [
            log
            for log in self.logs
            if lo <= int(log["blockNumber"], 16) <= hi and (not wanted or log["address"].lower() in wanted)
        ]


def replay_source(logs: Sequence[dict[str, Any]], head: int, when: datetime, chain: str = "ethereum") -> IndexSource:
    pool = next((log["address"] for log in logs if log["address"] != USDT_ETHEREUM), "0x" + "00" * 20)
    return IndexSource(
        chain=chain,
        family=Family.EVM,
        fetch_logs=Replay(logs),
        safe_head=lambda: head,
        block_times=lambda numbers: dict.fromkeys(numbers, when),
        max_block_range=10**9,
        block_time_s=12.0,
        start_block=head,
        mixer_pools=(pool.lower(),),
        blacklist_tokens=(BlacklistToken("USDT", USDT_ETHEREUM, USDT_ETHEREUM, Interface.TETHER),),
    )


def seed_index_facts(session: Session, shared_data: Path, settings: Settings, now: datetime) -> IndexSource:
    """Index one real withdrawal and one blacklisting (sealed by index.facts_found events); returns the source."""
    withdrawal = recorded_withdrawal(shared_data)
    head = int(withdrawal["blockNumber"], 16)
    source = replay_source([withdrawal, blacklist_log(head)], head, now, chain="replay")
    for kind in (IndexKind.MIXER, IndexKind.BLACKLIST):
        catch_up(session, source, kind, settings, now, head, on_new_facts=lambda *_: 0)
    return source
