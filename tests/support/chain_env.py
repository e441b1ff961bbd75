"""Chain test helpers: deploy the stablecoin look-alikes on anvil, configure a chain, register addresses,
send transfers, tick until caught up, and compute the ground truth from the node's canonical receipts."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy.engine import Engine
from sqlmodel import Session, select

from chains.rpc import RetryPolicy
from chains.transfers import TRANSFER_TOPIC0
from screener.db import session_scope
from screener.demo.devnet import deploy as dv
from screener.demo.devnet.anvil import Anvil
from screener.models.deposits import Deposit
from screener.pipeline.addresses import add_address
from screener.pipeline.runtime import ChainRuntime, build_chain_runtime
from screener.pipeline.tick import TickResult, tick
from screener.review.rules import DepositStatus
from screener.settings import Settings
from screener_base.clock import utc_now
from screener_base.errors import ChainError

CHAIN = "polygon"  # a registry name on a devnet chain id, as the demo does
FAST_RETRY = RetryPolicy(
    max_attempts=4, max_total_s=5, backoff_initial_s=0.005, backoff_max_s=0.02, retry_after_cap_s=0.05, cooldown_s=0.5
)
START_BALANCE = 10**40


def deposit_address(i: int) -> str:
    return "0x" + f"{0xDE9051700000 + i:040x}"


@dataclass
class ChainEnv:
    node: Anvil
    usdt: str
    usdc: str
    forwarder: str
    other_token: str  # emits the same Transfer event, but is not a watched contract
    owner: str
    senders: list[str]
    sent: list[dv.TxResult] = field(default_factory=list)

    def chain_config(self, rpc_urls: list[str] | None = None, **overrides: Any) -> dict[str, Any]:
        cfg: dict[str, Any] = {
            "rpc_urls": rpc_urls or [self.node.url],
            "chain_id": self.node.chain_id,
            "confirmations": 2,
            "finality_tag": "latest",
            "start_block": 0,
            "request_timeout_s": 2.0,
            "max_block_range": 50,
            "tokens": {"USDT": self.usdt, "USDC": self.usdc},
        }
        cfg.update(overrides)
        return cfg

    def settings(self, db_url: str, chain: str = CHAIN, **overrides: Any) -> Settings:
        return Settings(database={"url": db_url}, chains={chain: self.chain_config(**overrides)})

    def pay(self, token: str, sender: int, to: str, amount: int) -> dv.TxResult:
        result = dv.transfer(self.node, token, self.senders[sender], to, amount)
        self.sent.append(result)
        return result

    def pay_via_forwarder(self, token: str, initiator: int, to: str, amount: int) -> dv.TxResult:
        result = dv.forward(self.node, self.forwarder, self.senders[initiator], token, to, amount)
        self.sent.append(result)
        return result


def make_env(node: Anvil, decimals: int = 6) -> ChainEnv:
    tokens = dv.deploy_stable_tokens(node, decimals)
    other = dv.deploy_tether_like(node, "FAKE", decimals)
    accounts = dv.accounts(node)
    env = ChainEnv(node, tokens.usdt, tokens.usdc, tokens.forwarder, other, accounts[0], accounts[1:6])
    for token in (env.usdt, env.usdc, env.other_token):
        for sender in env.senders:
            dv.mint(node, token, sender, START_BALANCE)
        dv.mint(node, token, env.forwarder, START_BALANCE)
    return env


def runtime(settings: Settings, chain: str = CHAIN, retry: RetryPolicy = FAST_RETRY) -> ChainRuntime:
    return build_chain_runtime(settings, chain, retry=retry)


def register(engine: Engine, settings: Settings, chain: str, mapping: dict[str, str]) -> None:
    from screener.pipeline.runtime import spec_from_settings

    family = spec_from_settings(settings, chain).family
    with session_scope(engine) as session:
        for address, account in mapping.items():
            add_address(session, lambda _c: family, chain, address, account, utc_now())


def mark_credited(session: Session, deposits: list[Deposit], now: datetime) -> None:
    """A stand-in decide(): every new deposit is decided (as the real screening always does)."""
    for deposit in deposits:
        deposit.status = DepositStatus.CREDITED
        deposit.verdict = "CREDIT"
        deposit.decided_at = now
        session.add(deposit)


def recorded(engine: Engine, chain: str = CHAIN) -> list[Deposit]:
    with session_scope(engine) as session:
        return list(session.exec(select(Deposit).where(Deposit.chain == chain).order_by(Deposit.id)))


def keys(deposits: Iterable[Deposit]) -> set[tuple[str, int, str, int]]:
    return {(d.tx_hash, d.log_index, d.to_address, d.amount_raw) for d in deposits}


def ground_truth(node: Anvil, tokens: set[str], recipients: set[str]) -> set[tuple[str, int, str, int]]:
    """(tx, log index, to, amount) of every Transfer to ``recipients`` by ``tokens`` in the canonical chain
    now, read block by block from receipts: a path independent of eth_getLogs, which the screener uses."""
    truth = set()
    for number in range(node.block_number() + 1):
        block = node.rpc("eth_getBlockByNumber", [hex(number), False])
        for tx_hash in block["transactions"]:
            for lg in node.rpc("eth_getTransactionReceipt", [tx_hash])["logs"]:
                topics = lg["topics"]
                if len(topics) != 3 or topics[0] != TRANSFER_TOPIC0 or lg["address"].lower() not in tokens:
                    continue
                to = "0x" + topics[2][26:]
                if to in recipients:
                    truth.add((tx_hash.lower(), int(lg["logIndex"], 16), to, int(lg["data"], 16)))
    return truth


def tick_until_idle(
    engine: Engine,
    rt: ChainRuntime,
    settings: Settings,
    decide: Callable[[Session, list[Deposit], datetime], None] | None = mark_credited,
    max_ticks: int = 500,
    tolerate: tuple[type[Exception], ...] = (),
) -> list[TickResult]:
    """Tick until the chain is caught up (an idle tick); ``tolerate``d errors count as ticks."""
    results = []
    for _ in range(max_ticks):
        try:
            result = tick(engine, rt, utc_now, decide)
        except tolerate:
            continue
        results.append(result)
        if result.status == "idle":
            return results
    raise ChainError(f"not caught up after {max_ticks} ticks", "the test's chain never became idle")
