"""Tables of the lists area: sanctions list versions, their entries, and every refresh attempt.

Kept in step by hand with screener/migrations/versions/0003_lists.py. Versions form one chain: ``seq`` is
unique and each new version takes the active one's ``seq + 1``, so two workers activating at once cannot
both win (one insert fails and that worker re-reads). The active version is the one with the highest seq.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlmodel import Field, SQLModel


class ListVersion(SQLModel, table=True):
    """One immutable list version with its provenance; verdicts reference its id."""

    __tablename__ = "list_versions"
    __table_args__ = (sa.UniqueConstraint("seq", name="uq_list_version_seq"),)

    id: int | None = Field(default=None, primary_key=True)
    seq: int
    source: str = Field(max_length=1024)  # URL, file path, or bundled:<file>
    source_format: str = Field(max_length=16)  # advanced_xml | sdn_csv | bundle
    sha256: str = Field(max_length=64)
    size_bytes: int = Field(sa_column=sa.Column(sa.BigInteger, nullable=False))
    fetched_at: datetime = Field(sa_column=sa.Column(sa.DateTime(timezone=True), nullable=False))
    published_at: datetime | None = Field(default=None, sa_column=sa.Column(sa.DateTime(timezone=True)))
    activated_at: datetime = Field(sa_column=sa.Column(sa.DateTime(timezone=True), nullable=False))
    # Age for staleness counts from here: a successful fetch, a refresh that found the same sha256, or
    # (for the bundled snapshot) its publication date.
    last_verified_at: datetime = Field(sa_column=sa.Column(sa.DateTime(timezone=True), nullable=False))
    entry_count: int
    counts: dict[str, Any] = Field(default_factory=dict, sa_column=sa.Column(sa.JSON, nullable=False))
    meta: dict[str, Any] = Field(default_factory=dict, sa_column=sa.Column(sa.JSON, nullable=False))


class ListEntry(SQLModel, table=True):
    """One address under one asset tag in one version."""

    __tablename__ = "list_entries"
    __table_args__ = (sa.Index("ix_list_entries_lookup", "version_id", "family", "canonical"),)

    id: int | None = Field(default=None, primary_key=True)
    version_id: int = Field(foreign_key="list_versions.id")
    address: str = Field(max_length=256)  # as published
    canonical: str = Field(max_length=256)
    family: str = Field(max_length=16)
    tag: str = Field(max_length=32)
    # TEXT: a real entity name with its aliases has no upper bound (migration 0008)
    entity: str | None = Field(default=None, sa_column=sa.Column(sa.Text))
    programs: list[str] = Field(default_factory=list, sa_column=sa.Column(sa.JSON, nullable=False))
    profile_id: str | None = Field(default=None, max_length=32)
    note: str | None = Field(default=None, sa_column=sa.Column(sa.Text))


class ListRefresh(SQLModel, table=True):
    """Every refresh attempt and its outcome, so a kept or refused list can be explained later."""

    __tablename__ = "list_refreshes"

    id: int | None = Field(default=None, primary_key=True)
    attempted_at: datetime = Field(sa_column=sa.Column(sa.DateTime(timezone=True), nullable=False, index=True))
    source: str = Field(max_length=1024)
    status: str = Field(max_length=16)
    reason: str = Field(default="", sa_column=sa.Column(sa.Text, nullable=False))
    sha256: str | None = Field(default=None, max_length=64)
    size_bytes: int | None = Field(default=None, sa_column=sa.Column(sa.BigInteger))
    entry_count: int | None = None
    # The version in force after this attempt (the new one when updated).
    version_id: int | None = Field(default=None, foreign_key="list_versions.id")
