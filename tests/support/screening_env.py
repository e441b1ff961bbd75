"""Test helpers for screening: an IndexSource reading a real anvil node, and deposits to decide."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from screener.demo.devnet.anvil import Anvil
from screener.indexes.store import BlacklistToken, IndexSource, MultisigWatch
from screener.models.deposits import Deposit
from screener_base.addresses import Family


class CountingFetcher:
    """eth_getLogs against anvil, counting calls (to check RPC budgets)."""

    def __init__(self, node: Anvil, fail: bool = False) -> None:
        self.node = node
        self.calls = 0
        self.fail = fail

    def __call__(self, params: dict[str, Any]) -> list[dict[str, Any]]:
        self.calls += 1
        if self.fail:
            from screener_base.errors import RpcError

            raise RpcError("eth_getLogs failed (test)", "none")
        return list(self.node.rpc("eth_getLogs", [params]))


def block_times(node: Anvil, numbers: Sequence[int]) -> Mapping[int, datetime]:
    out = {}
    for n in numbers:
        block = node.rpc("eth_getBlockByNumber", [hex(n), False])
        out[n] = datetime.fromtimestamp(int(block["timestamp"], 16), UTC)
    return out


def anvil_source(
    node: Anvil,
    chain: str,
    *,
    pools: Sequence[str] = (),
    blacklist_tokens: Sequence[BlacklistToken] = (),
    tokens: Sequence[str] = (),
    family: Family = Family.EVM,
    max_block_range: int = 1000,
    fetcher: CountingFetcher | None = None,
    block_time_s: float = 1.0,
    start_block: int | None = 0,
    multisigs: Sequence[MultisigWatch] = (),
) -> IndexSource:
    return IndexSource(
        chain=chain,
        family=family,
        fetch_logs=fetcher or CountingFetcher(node),
        safe_head=node.block_number,
        block_times=lambda numbers: block_times(node, numbers),
        max_block_range=max_block_range,
        block_time_s=block_time_s,
        start_block=start_block,
        mixer_pools=tuple(p.lower() for p in pools),
        tokens=tuple(t.lower() for t in tokens),
        blacklist_tokens=tuple(blacklist_tokens),
        multisigs=tuple(multisigs),
        call=lambda to, data: str(node.rpc("eth_call", [{"to": to, "data": data}, "latest"])),
    )


def make_deposit(
    chain: str,
    sender: str,
    *,
    initiator: str | None = "",
    block: int = 1,
    when: datetime | None = None,
    amount: int = 100 * 10**6,
    tx: str | None = None,
    log_index: int = 0,
) -> Deposit:
    """A recorded (undecided) deposit; ``initiator=""`` means the sender signed it."""
    when = when or datetime.now(UTC)
    return Deposit(
        chain=chain,
        tx_hash=tx or "0x" + f"{abs(hash((chain, sender, block, log_index))):064x}"[-64:],
        log_index=log_index,
        block_number=block,
        block_hash="0x" + "00" * 32,
        block_time=when,
        token_symbol="USDT",
        token_contract="0x" + "de" * 20,
        decimals=6,
        amount_raw=amount,
        from_address=sender,
        initiator=sender if initiator == "" else initiator,
        to_address="0x" + "ad" * 20,
        account="acct-1",
        observed_at=when,
    )


def cover_indexes(session: Any, now: datetime, *chains: str) -> None:
    """Mixer and blacklist indexes that cover every block of ``chains``: for tests where only the list decides."""
    from screener.models.screening import IndexCursor

    for chain in chains:
        for kind in ("mixer", "blacklist"):
            session.add(
                IndexCursor(chain=chain, kind=kind, next_block=10**9, first_block=0, sources="-", updated_at=now)
            )
