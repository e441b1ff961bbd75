"""Tables of the ledger area: accounts, transfers, holds, review flags, and the audit chain.

Kept in step by hand with screener/migrations/versions/0002_ledger.py.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlmodel import Field, SQLModel

from screener.db import Amount
from screener.review.rules import FlagState, HoldState

# The genesis "previous hash" of the audit chain.
GENESIS_HASH = "0" * 64


class LedgerAccount(SQLModel, table=True):
    """One account per (name, asset); balances are kept in the same transaction as the transfers."""

    __tablename__ = "ledger_accounts"
    __table_args__ = (sa.UniqueConstraint("name", "asset", name="uq_ledger_account"),)

    id: int | None = Field(default=None, primary_key=True)
    name: str = Field(max_length=160)
    asset: str = Field(max_length=64)  # f"{token_symbol}@{chain}"
    normal: str = Field(max_length=8)  # "debit" | "credit"
    debits_posted: int = Field(default=0, sa_column=sa.Column(Amount(), nullable=False))
    debits_pending: int = Field(default=0, sa_column=sa.Column(Amount(), nullable=False))
    credits_posted: int = Field(default=0, sa_column=sa.Column(Amount(), nullable=False))
    credits_pending: int = Field(default=0, sa_column=sa.Column(Amount(), nullable=False))
    created_at: datetime = Field(sa_column=sa.Column(sa.DateTime(timezone=True), nullable=False))


class LedgerTransfer(SQLModel, table=True):
    """Immutable; ``id`` is the deterministic idempotency key ``{chain}:{tx_hash}:{log_index}:{step}``."""

    __tablename__ = "ledger_transfers"

    id: str = Field(primary_key=True, max_length=200)
    step: str = Field(max_length=16)  # credit | hold | post | void | reject-move
    flags: str = Field(max_length=16)  # posted | pending | post_pending | void_pending
    debit_account_id: int = Field(foreign_key="ledger_accounts.id", index=True)
    credit_account_id: int = Field(foreign_key="ledger_accounts.id", index=True)
    asset: str = Field(max_length=64)
    amount: int = Field(sa_column=sa.Column(Amount(), nullable=False))
    # Unique: a pending transfer is posted or voided at most once, even if a lock were ever missed.
    pending_id: str | None = Field(
        default=None, sa_column=sa.Column(sa.String(200), sa.ForeignKey("ledger_transfers.id"), unique=True)
    )
    created_at: datetime = Field(sa_column=sa.Column(sa.DateTime(timezone=True), nullable=False))


class Hold(SQLModel, table=True):
    """A deposit kept out of the customer's available balance until a person decides (shown as H-<id>)."""

    __tablename__ = "holds"

    id: int | None = Field(default=None, primary_key=True)
    deposit_id: int = Field(foreign_key="deposits.id", unique=True)
    # None only for zero-amount deposits, which have no ledger entry.
    pending_transfer_id: str | None = Field(default=None, max_length=200)
    verdict: str = Field(max_length=16)  # HOLD | BLOCK (escalation may raise HOLD to BLOCK)
    reason: str = Field(sa_column=sa.Column(sa.Text, nullable=False))
    state: str = Field(default=HoldState.OPEN, max_length=24, index=True)
    opened_at: datetime = Field(sa_column=sa.Column(sa.DateTime(timezone=True), nullable=False))
    due_at: datetime = Field(sa_column=sa.Column(sa.DateTime(timezone=True), nullable=False))
    sla_breached_at: datetime | None = Field(default=None, sa_column=sa.Column(sa.DateTime(timezone=True)))
    release_requested_by: str | None = Field(default=None, max_length=128)
    release_requested_at: datetime | None = Field(default=None, sa_column=sa.Column(sa.DateTime(timezone=True)))
    release_reason: str | None = Field(default=None, sa_column=sa.Column(sa.Text))
    resolved_by: str | None = Field(default=None, max_length=128)
    resolved_at: datetime | None = Field(default=None, sa_column=sa.Column(sa.DateTime(timezone=True)))
    resolution_reason: str | None = Field(default=None, sa_column=sa.Column(sa.Text))
    rejected_to: str | None = Field(default=None, max_length=32)  # blocked | return_payable


class ReviewFlag(SQLModel, table=True):
    """A finding about a deposit that was already credited (shown as F-<id>); money is not moved by it."""

    __tablename__ = "review_flags"
    __table_args__ = (sa.UniqueConstraint("deposit_id", "rule_id", "matched_address", name="uq_review_flag"),)

    id: int | None = Field(default=None, primary_key=True)
    deposit_id: int = Field(foreign_key="deposits.id", index=True)
    rule_id: str = Field(max_length=64)
    matched_address: str = Field(default="", max_length=128)  # "" when the finding names no address
    reason: str = Field(sa_column=sa.Column(sa.Text, nullable=False))
    findings: list[dict[str, Any]] = Field(default_factory=list, sa_column=sa.Column(sa.JSON, nullable=False))
    state: str = Field(default=FlagState.OPEN, max_length=16, index=True)
    raised_at: datetime = Field(sa_column=sa.Column(sa.DateTime(timezone=True), nullable=False))
    resolved_by: str | None = Field(default=None, max_length=128)
    resolved_at: datetime | None = Field(default=None, sa_column=sa.Column(sa.DateTime(timezone=True)))
    resolution_reason: str | None = Field(default=None, sa_column=sa.Column(sa.Text))


class AuditEvent(SQLModel, table=True):
    """Append-only; ``hash = sha256(prev_hash + canonical JSON of seq, kind, subject, actor, at, payload)``."""

    __tablename__ = "audit_events"

    seq: int = Field(primary_key=True, sa_column_kwargs={"autoincrement": False})
    kind: str = Field(max_length=48, index=True)
    subject: str = Field(max_length=240, index=True)
    actor: str = Field(max_length=128)
    at: datetime = Field(sa_column=sa.Column(sa.DateTime(timezone=True), nullable=False))
    payload: dict[str, Any] = Field(default_factory=dict, sa_column=sa.Column(sa.JSON, nullable=False))
    prev_hash: str = Field(max_length=64)
    hash: str = Field(max_length=64)


class AuditHead(SQLModel, table=True):
    """The single row (id 1) naming the last event; appends lock it, which serialises them on PostgreSQL."""

    __tablename__ = "audit_head"

    id: int = Field(primary_key=True, sa_column_kwargs={"autoincrement": False})
    seq: int = Field(default=0)
    hash: str = Field(default=GENESIS_HASH, max_length=64)
