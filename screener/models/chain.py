"""Tables of the chain area: deposit addresses, scan cursors, recent block headers (migration 0004_chain)."""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa
from sqlmodel import Field, SQLModel


class DepositAddress(SQLModel, table=True):
    """An address of ours on one chain, owned by one customer account."""

    __tablename__ = "deposit_addresses"
    __table_args__ = (sa.UniqueConstraint("chain", "address", name="uq_deposit_address"),)

    id: int | None = Field(default=None, primary_key=True)
    chain: str = Field(max_length=32, index=True)
    address: str = Field(max_length=64)  # canonical for the chain family (EVM lowercase, Tron T-form)
    account: str = Field(max_length=128, index=True)
    created_at: datetime = Field(sa_column=sa.Column(sa.DateTime(timezone=True), nullable=False))


class ScanCursor(SQLModel, table=True):
    """Next block to scan per chain; moves only in the transaction that records that range's deposits."""

    __tablename__ = "scan_cursors"

    chain: str = Field(max_length=32, primary_key=True)
    next_block: int = Field(sa_column=sa.Column(sa.BigInteger, nullable=False))
    # What the last tick saw, for lag metrics and `screener status`.
    head_block: int | None = Field(default=None, sa_column=sa.Column(sa.BigInteger))
    safe_block: int | None = Field(default=None, sa_column=sa.Column(sa.BigInteger))
    reorgs: int = Field(default=0)
    updated_at: datetime = Field(sa_column=sa.Column(sa.DateTime(timezone=True), nullable=False))


class ChainHeader(SQLModel, table=True):
    """Recently read block headers (range ends and deposit blocks) to notice a reorg below the cursor."""

    __tablename__ = "chain_headers"

    chain: str = Field(max_length=32, primary_key=True)
    number: int = Field(sa_column=sa.Column(sa.BigInteger, primary_key=True, autoincrement=False))
    hash: str = Field(max_length=66)
    parent_hash: str = Field(max_length=66)
    block_time: datetime | None = Field(default=None, sa_column=sa.Column(sa.DateTime(timezone=True)))
    seen_at: datetime = Field(sa_column=sa.Column(sa.DateTime(timezone=True), nullable=False))


class AddressGeneration(SQLModel, table=True):
    """One row counting changes to deposit_addresses (migration 0012): a worker reloads its watch maps when it moves.

    The count and the highest id of the addresses alone miss a removal followed by an addition: SQLite hands the
    freed highest id to the new row.
    """

    __tablename__ = "address_generation"

    id: int = Field(default=1, primary_key=True)
    generation: int = Field(default=0, sa_column=sa.Column(sa.BigInteger, nullable=False))
