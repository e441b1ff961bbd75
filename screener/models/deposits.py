"""The deposit: one ERC-20/TRC-20 Transfer to a registered deposit address, recorded exactly once."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlmodel import Field, SQLModel

from screener.db import Amount
from screener.review.rules import DepositStatus


class Deposit(SQLModel, table=True):
    __tablename__ = "deposits"
    __table_args__ = (sa.UniqueConstraint("chain", "tx_hash", "log_index", name="uq_deposit_event"),)

    id: int | None = Field(default=None, primary_key=True)
    chain: str = Field(max_length=32, index=True)
    tx_hash: str = Field(max_length=66)  # 0x + 64 lowercase hex
    log_index: int
    block_number: int = Field(sa_column=sa.Column(sa.BigInteger, nullable=False, index=True))
    block_hash: str = Field(max_length=66)
    block_time: datetime | None = Field(default=None, sa_column=sa.Column(sa.DateTime(timezone=True)))
    token_symbol: str = Field(max_length=16)
    token_contract: str = Field(max_length=64)  # canonical form for the chain family
    decimals: int
    amount_raw: int = Field(sa_column=sa.Column(Amount(), nullable=False))
    from_address: str = Field(max_length=64, index=True)  # canonical
    # None when the transaction lookup failed; screening then reports "unavailable" (fail closed).
    initiator: str | None = Field(default=None, max_length=64, index=True)
    to_address: str = Field(max_length=64)
    account: str = Field(max_length=128, index=True)  # customer account owning the deposit address
    observed_at: datetime = Field(sa_column=sa.Column(sa.DateTime(timezone=True), nullable=False))
    status: str = Field(default=DepositStatus.RECORDED, max_length=16, index=True)
    verdict: str | None = Field(default=None, max_length=16)  # CREDIT | HOLD | BLOCK
    list_version_id: int | None = Field(default=None)
    findings: list[dict[str, Any]] = Field(default_factory=list, sa_column=sa.Column(sa.JSON, nullable=False))
    decided_at: datetime | None = Field(default=None, sa_column=sa.Column(sa.DateTime(timezone=True)))

    @property
    def event_key(self) -> tuple[str, str, int]:
        return (self.chain, self.tx_hash, self.log_index)

    @property
    def event_label(self) -> str:
        """``chain:tx_hash:log_index``: the deposit as audit events and signed statements name it."""
        return f"{self.chain}:{self.tx_hash}:{self.log_index}"
