"""Tables of the screening area: the mixer withdrawal index, issuer blacklist events, and their scan cursors.

Kept in step by hand with screener/migrations/versions/0005_screening.py. Addresses are in the chain family's
canonical form (EVM lowercase 0x, Tron T-form), so one address lookup finds facts from every chain of a family.
"""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa
from sqlmodel import Field, SQLModel

from screener.db import Amount


class MixerWithdrawalRow(SQLModel, table=True):
    """One Tornado-layout ``Withdrawal`` log of a known pool: evidence that ``recipient`` was mixer-funded."""

    __tablename__ = "mixer_withdrawals"
    __table_args__ = (sa.UniqueConstraint("chain", "tx_hash", "log_index", name="uq_mixer_withdrawal_event"),)

    id: int | None = Field(default=None, primary_key=True)
    chain: str = Field(max_length=32)
    pool: str = Field(max_length=64)
    recipient: str = Field(max_length=64, index=True)
    relayer: str | None = Field(default=None, max_length=64, index=True)
    fee: int = Field(sa_column=sa.Column(Amount(), nullable=False))
    nullifier_hash: str = Field(max_length=66)
    tx_hash: str = Field(max_length=66)
    log_index: int
    block_number: int = Field(sa_column=sa.Column(sa.BigInteger, nullable=False))
    block_hash: str = Field(max_length=66)
    block_time: datetime = Field(sa_column=sa.Column(sa.DateTime(timezone=True), nullable=False))
    indexed_at: datetime = Field(sa_column=sa.Column(sa.DateTime(timezone=True), nullable=False))


class BlacklistEventRow(SQLModel, table=True):
    """One issuer fact: a freeze or its lifting (USDT, USD₮0, USDC), a destroyed frozen balance, or a proposal to
    freeze made to the issuer's multisig (chains/blacklists.py, chains/multisig.py)."""

    __tablename__ = "issuer_blacklist_events"
    __table_args__ = (sa.UniqueConstraint("chain", "tx_hash", "log_index", name="uq_issuer_blacklist_event"),)

    id: int | None = Field(default=None, primary_key=True)
    chain: str = Field(max_length=32)
    token_symbol: str = Field(max_length=16)
    token_contract: str = Field(max_length=64)
    interface: str = Field(max_length=16)  # tether | fiattoken | usdt0 | multisig (a proposal, chains/multisig.py)
    action: str = Field(max_length=16)  # added | removed | destroyed | proposed
    address: str = Field(max_length=64, index=True)
    tx_hash: str = Field(max_length=66)
    log_index: int
    block_number: int = Field(sa_column=sa.Column(sa.BigInteger, nullable=False))
    block_hash: str = Field(max_length=66)
    block_time: datetime = Field(sa_column=sa.Column(sa.DateTime(timezone=True), nullable=False))
    indexed_at: datetime = Field(sa_column=sa.Column(sa.DateTime(timezone=True), nullable=False))


class IndexCursor(SQLModel, table=True):
    """How far one chain's index of one kind is complete: every block below ``next_block`` is scanned.

    ``sources`` fingerprints the scanned contracts; when the configured set changes the index restarts
    from the window start, because the old ranges never looked at the new contracts.
    """

    __tablename__ = "index_cursors"

    chain: str = Field(primary_key=True, max_length=32)
    kind: str = Field(primary_key=True, max_length=16)
    next_block: int = Field(sa_column=sa.Column(sa.BigInteger, nullable=False))
    # Where the current coverage starts; deposits below it cannot be vouched for by this index.
    first_block: int = Field(sa_column=sa.Column(sa.BigInteger, nullable=False))
    sources: str = Field(max_length=64)
    updated_at: datetime = Field(sa_column=sa.Column(sa.DateTime(timezone=True), nullable=False))
