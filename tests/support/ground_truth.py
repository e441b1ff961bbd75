"""Ground truth for the reliability suites: payments sent on anvil (clean senders, an OFAC-listed sender
impersonated from the bundled list, mixer-funded senders), what the chain says about them now (receipts:
a reorg may have dropped or moved them), and one check that the database agrees with the chain.

The check is independent of the code under test: it reads the node's receipts and the raw tables, and asks
for every canonical payment exactly one deposit with the right amount, account, block and verdict, exactly
the ledger transfers its state calls for, balances that add up per account, nothing else, and then runs
`screener audit verify`'s own checks too.
"""

from __future__ import annotations

import random
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy.engine import Engine
from sqlmodel import select

from chains.transfers import TRANSFER_TOPIC0
from screener.db import session_scope
from screener.demo import world as dw
from screener.demo.devnet import deploy
from screener.ledger.audit import verify_chain
from screener.ledger.verify import verify_ledger
from screener.models.deposits import Deposit
from screener.models.ledger import AuditEvent, Hold, LedgerAccount, LedgerTransfer

OFAC_SENDER = dw.OFAC_SENDER.lower()  # LAZARUS GROUP on the bundled 2025-05-30 snapshot (ETH tag)
CLEAN, OFAC, MIXER = "clean", "ofac", "mixer"
# what each kind of sender may end as: a clean deposit is credited, or held only because something could not be
# checked (fail closed under RPC faults); an OFAC-listed one is blocked; a mixer-funded one is never credited.
ALLOWED_VERDICTS = {CLEAN: {"CREDIT", "HOLD"}, OFAC: {"BLOCK"}, MIXER: {"HOLD", "BLOCK"}}
HOLD_STATES = {
    "credited": set(),
    "held": {"open", "awaiting_approval"},
    "released": {"released"},
    "rejected": {"rejected"},
}
STEPS_BY_STATUS = {
    "credited": {"credit"},
    "held": {"hold"},
    "released": {"hold", "post"},
    "rejected": {"hold", "void", "reject-move"},
}


@dataclass(frozen=True)
class Payment:
    tx_hash: str
    kind: str  # clean | ofac | mixer
    sender: str  # the Transfer's `from` (lowercase hex)
    to: str
    account: str
    token: str  # contract, lowercase
    symbol: str  # USDT | USDC
    amount_raw: int


@dataclass
class Payer:
    """Sends a seeded stream of deposits to the demo world's deposit addresses."""

    world: dw.DemoWorld
    rng: random.Random
    sent: list[Payment] = field(default_factory=list)
    mixer_senders: list[str] = field(default_factory=list)
    n: int = 0

    def prepare(self, mixer_senders: int = 2) -> None:
        """Create the mixer-funded senders now (a later reorg must not remove their withdrawals)."""
        while len(self.mixer_senders) < mixer_senders:
            self.mixer_senders.append(dw.mixer_funded_sender(self.world, f"reliability-{len(self.mixer_senders)}"))

    def pay(self, kind: str | None = None) -> Payment:
        """One deposit: ``kind`` or a random one (mostly clean, some OFAC, some mixer-funded)."""
        rng, world = self.rng, self.world
        kind = kind or rng.choices([CLEAN, OFAC, MIXER], weights=[6, 2, 2])[0]
        self.n += 1
        account = rng.choice(sorted(set(dw.DEPOSIT_ADDRESSES.values())))
        to = world.address_of(account)
        symbol = rng.choice(["USDT", "USDC"])
        token = world.tokens.usdt if symbol == "USDT" else world.tokens.usdc
        amount = rng.randrange(1, 5_000) * dw.UNIT + self.n  # distinct, under the four-eyes threshold
        if kind == OFAC:
            sender = OFAC_SENDER
            tx = dw.send_from_listed(world, token, dw.OFAC_SENDER, to, amount)
        elif kind == MIXER:
            self.prepare()
            sender = rng.choice(self.mixer_senders)
            tx = dw.send_from_listed(world, token, sender, to, amount)
        else:
            sender = rng.choice(world.senders)
            tx = deploy.transfer(world.node, token, sender, to, amount).tx_hash
        payment = Payment(str(tx).lower(), kind, sender.lower(), to, account, token, symbol, amount)
        self.sent.append(payment)
        return payment


@dataclass(frozen=True)
class OnChain:
    payment: Payment
    log_index: int
    block_number: int
    block_hash: str


def canonical(node: Any, payments: list[Payment]) -> dict[tuple[str, int], OnChain]:
    """(tx hash, log index) -> where the payment is now, for those still on the canonical chain."""
    out: dict[tuple[str, int], OnChain] = {}
    for p in payments:
        receipt = node.rpc("eth_getTransactionReceipt", [p.tx_hash])
        if not receipt:
            continue  # dropped by a reorg
        for lg in receipt["logs"]:
            topics = lg["topics"]
            if (
                len(topics) == 3
                and topics[0] == TRANSFER_TOPIC0
                and lg["address"].lower() == p.token
                and "0x" + topics[2][26:].lower() == p.to
            ):
                key = (p.tx_hash, int(lg["logIndex"], 16))
                out[key] = OnChain(p, key[1], int(receipt["blockNumber"], 16), str(receipt["blockHash"]).lower())
    return out


@dataclass
class Checked:
    deposits: int = 0
    by_kind: Counter[str] = field(default_factory=Counter)
    by_status: Counter[str] = field(default_factory=Counter)
    transfers: int = 0
    audit_events: int = 0

    def summary(self) -> dict[str, Any]:
        return {
            "deposits": self.deposits,
            "by_kind": dict(self.by_kind),
            "by_status": dict(self.by_status),
            "transfers": self.transfers,
            "audit_events": self.audit_events,
        }


def check(
    engine: Engine, node: Any, payments: list[Payment], chain: str = dw.DEMO_CHAIN, below_block: int | None = None
) -> Checked:
    """AssertionError listing every way the database disagrees with the chain; else the figures checked.

    ``below_block``: a worker stopped part way (the chain cursor's next block): payments below it must be
    recorded and decided, payments at or above it must not be recorded at all (never half a range).
    """
    truth = canonical(node, payments)
    if below_block is not None:
        truth = {k: v for k, v in truth.items() if v.block_number < below_block}
    with session_scope(engine) as s:
        deposits = list(s.exec(select(Deposit).where(Deposit.chain == chain)))
        holds = {h.deposit_id: h for h in s.exec(select(Hold))}
        cleared = {e.subject: e.payload for e in s.exec(select(AuditEvent).where(AuditEvent.kind == "hold.cleared"))}
        transfers = list(s.exec(select(LedgerTransfer)))
        accounts = list(s.exec(select(LedgerAccount)))
        report = verify_ledger(s, verify_chain(s))
    problems: list[str] = []
    by_key = Counter((d.tx_hash, d.log_index) for d in deposits)
    problems += [f"deposit {k} recorded {n} times" for k, n in by_key.items() if n > 1]
    problems += [f"payment {k} ({truth[k].payment.kind}) was never recorded" for k in truth if k not in by_key]
    problems += [
        f"deposit {k} is not a canonical payment (replaced block or foreign)" for k in by_key if k not in truth
    ]
    steps: dict[str, dict[str, LedgerTransfer]] = defaultdict(dict)
    for t in transfers:
        c, tx, log_index, step = t.id.rsplit(":", 3)
        steps[f"{c}:{tx}:{log_index}"][step] = t
    expected_balance: Counter[tuple[str, str, str]] = Counter()
    out = Checked(audit_events=report.events, transfers=len(transfers))
    for d in deposits:
        where = truth.get((d.tx_hash, d.log_index))
        if where is None:
            continue
        p, label = where.payment, f"deposit {d.id} ({where.payment.kind}, tx {d.tx_hash[:12]})"
        out.deposits += 1
        out.by_kind[p.kind] += 1
        out.by_status[d.status] += 1
        if (d.amount_raw, d.account, d.token_symbol, d.from_address) != (p.amount_raw, p.account, p.symbol, p.sender):
            problems.append(f"{label}: fields {d.amount_raw, d.account, d.token_symbol, d.from_address} != {p}")
        if (d.block_number, d.block_hash) != (where.block_number, where.block_hash):
            problems.append(f"{label}: recorded at block {d.block_number} {d.block_hash}, now {where.block_hash}")
        problems += _verdict_problems(label, d, p)
        hold = holds.get(d.id or -1)
        want_steps = STEPS_BY_STATUS.get(d.status)
        got = steps.pop(f"{chain}:{d.tx_hash}:{d.log_index}", {})
        if want_steps is None:
            problems.append(f"{label}: status {d.status!r} (undecided or unknown)")
            continue
        if set(got) != want_steps or any(t.amount != d.amount_raw for t in got.values()):
            problems.append(f"{label}: status {d.status} with transfers {sorted(got)} (want {sorted(want_steps)})")
        if (hold is None) != (d.status == "credited"):
            problems.append(f"{label}: status {d.status} but hold {hold}")
        if hold is not None and hold.state not in HOLD_STATES[d.status]:
            problems.append(f"{label}: status {d.status} but hold H-{hold.id} is {hold.state}")
        if hold is not None and d.status == "released":
            problems += _release_problems(label, d, p, hold, cleared.get(f"hold:{hold.id}"))
        asset = f"{d.token_symbol}@{chain}"
        customer = f"customer:{d.account}"
        if d.status in ("credited", "released"):
            expected_balance[(customer, asset, "credits_posted")] += d.amount_raw
        elif d.status == "held":
            expected_balance[(customer, asset, "credits_pending")] += d.amount_raw
        elif d.status == "rejected":
            moved = got.get("reject-move")
            expected_balance[(moved.credit_account_id if moved else "?", asset, "credits_posted")] += d.amount_raw
        expected_balance[("custody", asset, "debits")] += d.amount_raw
    problems += [
        f"transfers of no canonical deposit: {sorted(v)} for {k}" for k, v in steps.items() if k.split(":")[0] == chain
    ]
    problems += _balance_problems(accounts, expected_balance, chain)
    if not report.ok:
        problems += [f"audit verify: {p}" for p in report.problems]
    assert not problems, f"{len(problems)} problem(s):\n" + "\n".join(problems[:40])
    return out


def _verdict_problems(label: str, d: Deposit, p: Payment) -> list[str]:
    problems = []
    if d.verdict not in ALLOWED_VERDICTS[p.kind]:
        problems.append(f"{label}: verdict {d.verdict}, allowed {sorted(ALLOWED_VERDICTS[p.kind])}")
    if (d.status == "credited") != (d.verdict == "CREDIT"):
        problems.append(f"{label}: verdict {d.verdict} but status {d.status} (only a CREDIT verdict credits at once)")
    rules = {f.get("rule_id") for f in d.findings or []}
    if p.kind == OFAC and "ofac.sdn" not in rules:
        problems.append(f"{label}: no ofac.sdn finding ({sorted(rules)})")
    if p.kind == CLEAN and d.verdict != "CREDIT" and rules - {"unavailable"}:
        problems.append(f"{label}: a clean sender held for {sorted(rules)} (only 'unavailable' may hold it)")
    return problems


def _release_problems(label: str, d: Deposit, p: Payment, hold: Hold, cleared: dict[str, Any] | None) -> list[str]:
    """A released deposit: never a listed sender's; one the system credited (no person released it) only after
    a fresh screen that found it clean: a hold.cleared event naming the list version and index heights that
    cover the deposit's block."""
    if p.kind == OFAC:
        return [f"{label}: an OFAC-listed sender's deposit was released (H-{hold.id} by {hold.resolved_by})"]
    if hold.resolved_by != "system":
        return []
    if p.kind != CLEAN:
        return [f"{label}: a {p.kind} deposit was credited by the system"]
    by = (cleared or {}).get("cleared_by") or {}
    heights = [by.get("mixer_index_to_block"), by.get("blacklist_index_to_block")]
    if (
        not by.get("list_version")
        or any(h is None or h < d.block_number for h in heights)
        or by.get("unavailable_left")
    ):
        return [f"{label}: credited by the system without a complete fresh screen (cleared_by {by})"]
    return []


def _balance_problems(accounts: list[LedgerAccount], expected: Counter[tuple[Any, str, str]], chain: str) -> list[str]:
    problems = []
    by_id = {a.id: a for a in accounts}
    seen: Counter[tuple[Any, str, str]] = Counter()
    for a in accounts:
        if not a.asset.endswith(f"@{chain}"):
            continue
        if a.normal == "credit" and a.debits_posted + a.debits_pending > a.credits_posted:
            problems.append(
                f"negative balance: {a.name} {a.asset} {a.debits_posted}+{a.debits_pending} > {a.credits_posted}"
            )
        if a.name.startswith("customer:"):
            seen[(a.name, a.asset, "credits_posted")] += a.credits_posted
            seen[(a.name, a.asset, "credits_pending")] += a.credits_pending
        elif a.name == "custody":
            seen[("custody", a.asset, "debits")] += a.debits_posted + a.debits_pending
        else:
            seen[(a.id, a.asset, "credits_posted")] += a.credits_posted
    for key in set(expected) | set(seen):
        if expected[key] != seen[key]:
            name = by_id[key[0]].name if isinstance(key[0], int) and key[0] in by_id else key[0]
            problems.append(f"balance {name} {key[1]} {key[2]}: {seen[key]}, the chain says {expected[key]}")
    return problems
