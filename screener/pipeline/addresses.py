"""Our deposit addresses per chain: validated and canonicalised per chain family, one account each.

Registration is strict (a mixed-case EVM address must match its EIP-55 checksum); removal is audited.

Services take a Session and never commit. CSV imports are all-or-nothing: every row is checked first and
any bad row means nothing is imported (the report names each bad row and why).

The scanner's watch maps come from here too: a chain's own addresses (``watch_map``) and, on an EVM chain, our
EVM addresses registered on other chains only (``foreign_map``), whose transfers are recorded as unassigned.
"""

from __future__ import annotations

import csv
import io
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from eth_utils.address import to_checksum_address
from sqlmodel import Session, col, select

from chains.codec import to_hex20
from screener.ledger import audit
from screener.models.chain import AddressGeneration, DepositAddress
from screener.pipeline.runtime import ChainRuntime
from screener_base.addresses import Family, canonical, display, infer_family
from screener_base.clock import ensure_utc
from screener_base.errors import AddressError, ScreenerError

MAX_ACCOUNT_CHARS = 128
MAX_IMPORT_ROWS = 1_000_000
_ZERO_HEX20 = "0x" + "0" * 40

GENERATION: sa.Table = AddressGeneration.__table__  # type: ignore[attr-defined]
FamilyOf = Callable[[str], Family]  # chain name -> family; raises ScreenerError for an unknown chain
log = logging.getLogger(__name__)


class AddressImportError(ScreenerError):
    """A CSV import was refused; nothing was imported."""


@dataclass(frozen=True)
class AddressRow:
    chain: str
    address: str  # canonical
    account: str


@dataclass
class ImportReport:
    added: int = 0
    already_present: int = 0
    errors: list[str] = field(default_factory=list)


def validate(family_of: FamilyOf, chain: str, address: str, account: str) -> AddressRow:
    """One (chain, address, account) checked and canonicalised; AddressError/ConfigError say why not."""
    family = family_of(chain)
    canon = canonical(family, address)
    if family is Family.EVM:
        require_eip55(address.strip())
    if to_hex20(family, canon) == _ZERO_HEX20:
        raise AddressError(f"{address!r} is the zero address", "give a real deposit address")
    account = account.strip()
    if not account or len(account) > MAX_ACCOUNT_CHARS or not account.isprintable():
        raise AddressError(f"account {account!r} is not valid", f"use 1-{MAX_ACCOUNT_CHARS} printable characters")
    return AddressRow(chain=chain, address=canon, account=account)


def require_eip55(address: str) -> None:
    """A mixed-case EVM address must carry a correct EIP-55 checksum; one case only (no checksum) passes.

    Only for registering our own deposit addresses: a wrong checksum there most likely means a mistyped
    character, and deposits to the typo would be credited to nobody. The OFAC parser keeps any case.
    """
    body = address[2:]
    if body in (body.lower(), body.upper()):
        return
    if to_checksum_address(address) != address:
        raise AddressError(
            f"{address!r} has a wrong EIP-55 checksum (its mix of upper and lower case does not match), "
            "so it is likely a typo",
            "copy the address again from its source; give it in one case only if you have checked every character",
        )


def _existing(session: Session, chain: str, address: str) -> DepositAddress | None:
    return session.exec(
        select(DepositAddress).where(DepositAddress.chain == chain, DepositAddress.address == address)
    ).first()


def add_address(
    session: Session,
    family_of: FamilyOf,
    chain: str,
    address: str,
    account: str,
    now: datetime,
    actor: str = "system",
) -> bool:
    """Register one address; True if added, False if it was already registered to the same account.

    Audited (``deposit_address.added``, the row sealed): which account an address credits decides money.
    """
    row = validate(family_of, chain, address, account)
    audit.lock_head(session)  # first lock (lock order)
    found = _existing(session, row.chain, row.address)
    if found is not None:
        if found.account != row.account:
            raise AddressError(
                f"{display(family_of(chain), row.address)} on {chain} already belongs to account {found.account!r}",
                "an address has exactly one owner; if that registration is wrong, run "
                f"`screener addresses remove {chain} {display(family_of(chain), row.address)}` first",
            )
        return False
    added = DepositAddress(chain=row.chain, address=row.address, account=row.account, created_at=ensure_utc(now))
    session.add(added)
    session.flush()
    bump_generation(session)
    payload = {"chain": row.chain, "address": row.address, "account": row.account}
    subject = f"deposit_address:{row.chain}:{row.address}"
    audit.append(session, "deposit_address.added", subject, payload, actor, now, rows=[("deposit_addresses", added.id)])
    return True


def _removal_family(session: Session, family_of: FamilyOf, chain: str, address: str) -> Family:
    """The chain's family; for a chain no longer configured, the address's own (its rows can still go)."""
    try:
        return family_of(chain)
    except ScreenerError:
        has_rows = session.exec(select(DepositAddress.id).where(DepositAddress.chain == chain).limit(1)).first()
        if has_rows is None:
            raise
        return infer_family(address.strip())


def remove_address(
    session: Session, family_of: FamilyOf, chain: str, address: str, operator: str, now: datetime
) -> AddressRow:
    """Unregister one address (AddressError if it is not registered); audited with who and when.

    Deposits already recorded to it stay as they are; later transfers to it are no longer watched on this chain
    (on an EVM chain they are recorded as unassigned while the address is registered on another EVM chain).
    """
    family = _removal_family(session, family_of, chain, address)
    canon = canonical(family, address)
    audit.lock_head(session)  # first lock (lock order); a concurrent removal of the same row waits here
    found = _existing(session, chain, canon)
    if found is None:
        raise AddressError(
            f"{display(family, canon)} is not registered on {chain}", f"see `screener addresses list --chain {chain}`"
        )
    payload = {"chain": chain, "address": canon, "account": found.account, "registered_at": found.created_at}
    session.delete(found)
    session.flush()
    bump_generation(session)
    subject = f"deposit_address:{chain}:{canon}"
    audit.append(
        session, "deposit_address.removed", subject, payload, operator, now, rows=[("deposit_addresses", found.id)]
    )
    log.info("deposit address %s on %s (account %s) removed by %s", canon, chain, found.account, operator)
    return AddressRow(chain=chain, address=canon, account=found.account)


def _parse_rows(family_of: FamilyOf, text: str, report: ImportReport) -> list[tuple[int, AddressRow]]:
    rows: list[tuple[int, AddressRow]] = []
    reader = csv.reader(io.StringIO(text))
    try:
        _read_rows(family_of, reader, rows, report)
    except csv.Error as exc:  # e.g. a field over csv.field_size_limit(): the rest of the file cannot be trusted
        report.errors.append(f"line {reader.line_num}: not valid CSV ({exc})")
    return rows


def _read_rows(family_of: FamilyOf, reader: Any, rows: list[tuple[int, AddressRow]], report: ImportReport) -> None:
    for line_no, fields in enumerate(reader, start=1):
        if line_no > MAX_IMPORT_ROWS:
            report.errors.append(f"line {line_no}: more than {MAX_IMPORT_ROWS} rows; split the file")
            break
        if not fields or all(not f.strip() for f in fields):
            continue
        if line_no == 1 and [f.strip().lower() for f in fields] == ["chain", "address", "account"]:
            continue
        if len(fields) != 3:
            report.errors.append(f"line {line_no}: expected 3 columns chain,address,account, got {len(fields)}")
            continue
        try:
            rows.append((line_no, validate(family_of, fields[0].strip(), fields[1], fields[2])))
        except ScreenerError as exc:
            report.errors.append(f"line {line_no}: {exc}")


def _check_conflicts(session: Session, rows: list[tuple[int, AddressRow]], report: ImportReport) -> list[AddressRow]:
    seen: dict[tuple[str, str], tuple[int, str]] = {}
    new: list[AddressRow] = []
    for line_no, row in rows:
        key = (row.chain, row.address)
        if key in seen:
            first_line, first_account = seen[key]
            if first_account != row.account:
                report.errors.append(
                    f"line {line_no}: {row.address} on {row.chain} also on line {first_line} with another account"
                )
            continue
        seen[key] = (line_no, row.account)
        found = _existing(session, row.chain, row.address)
        if found is None:
            new.append(row)
        elif found.account != row.account:
            report.errors.append(
                f"line {line_no}: {row.address} on {row.chain} already belongs to account {found.account!r}"
            )
        else:
            report.already_present += 1
    return new


def import_csv(session: Session, family_of: FamilyOf, text: str, now: datetime, actor: str = "system") -> ImportReport:
    """Import ``chain,address,account`` rows (optional header); all or nothing. Raises AddressImportError.

    One ``deposit_address.imported`` event seals every row added.
    """
    report = ImportReport()
    audit.lock_head(session)  # first lock (lock order)
    rows = _parse_rows(family_of, text, report)
    new = _check_conflicts(session, rows, report)
    if report.errors:
        shown = "; ".join(report.errors[:20]) + (
            f"; ... {len(report.errors) - 20} more" if len(report.errors) > 20 else ""
        )
        raise AddressImportError(
            f"{len(report.errors)} bad row(s), nothing imported: {shown}", "fix the rows named and import again"
        )
    stamp = ensure_utc(now)
    added = [DepositAddress(chain=r.chain, address=r.address, account=r.account, created_at=stamp) for r in new]
    session.add_all(added)
    session.flush()
    bump_generation(session)
    report.added = len(new)
    if added:
        payload = {"added": len(added), "already_present": report.already_present}
        sealed: list[tuple[str, int | None]] = [("deposit_addresses", a.id) for a in added]
        audit.append(session, "deposit_address.imported", "deposit_addresses", payload, actor, now, rows=sealed)
    return report


def list_addresses(session: Session, chain: str | None = None) -> list[DepositAddress]:
    stmt = select(DepositAddress).order_by(col(DepositAddress.chain), col(DepositAddress.id))
    if chain is not None:
        stmt = stmt.where(DepositAddress.chain == chain)
    return list(session.exec(stmt))


def bump_generation(session: Session) -> None:
    """In the transaction of an address change: every worker's next tick reloads its watch maps."""
    session.execute(sa.update(GENERATION).where(GENERATION.c.id == 1).values(generation=GENERATION.c.generation + 1))


def watch_version(session: Session, chain: str | None) -> tuple[int, int, int]:
    """(count, max id, generation) of a chain's addresses (None: of every chain's): changes with every add or remove
    (the generation also when SQLite gives a removed highest id to the next address)."""
    stmt = sa.select(sa.func.count(), sa.func.max(col(DepositAddress.id)))
    if chain is not None:
        stmt = stmt.where(col(DepositAddress.chain) == chain)
    count, max_id = session.execute(stmt).one()
    generation = session.execute(sa.select(GENERATION.c.generation).where(GENERATION.c.id == 1)).scalar()
    return int(count), int(max_id or 0), int(generation or 0)


def watch_map(session: Session, chain: str, family: Family) -> dict[str, tuple[str, str]]:
    """hex20 (as in logs) -> (canonical address, account) for one chain."""
    rows = session.execute(
        sa.select(col(DepositAddress.address), col(DepositAddress.account)).where(col(DepositAddress.chain) == chain)
    )
    return {to_hex20(family, address): (address, account) for address, account in rows}


Registrations = tuple[tuple[str, str], ...]  # ((chain, account), ...) where an address is registered


def foreign_map(session: Session, chain: str, family: Family) -> dict[str, tuple[str, Registrations]]:
    """hex20 -> (canonical address, its registrations): for an EVM chain, our EVM addresses registered on other
    chains but not on ``chain``. One key controls an EVM address on every EVM chain, so a transfer to one of
    these is the customer's, sent on the wrong network: the pipeline records it as an unassigned deposit.

    EVM only (Tron and other families: empty). An address counts as EVM by its stored form (0x + 40 hex), so a
    registration on a chain no longer configured still counts.
    """
    if family is not Family.EVM:
        return {}
    own = sa.select(col(DepositAddress.address)).where(col(DepositAddress.chain) == chain)
    rows = session.execute(
        sa.select(col(DepositAddress.address), col(DepositAddress.chain), col(DepositAddress.account))
        .where(col(DepositAddress.chain) != chain, col(DepositAddress.address).not_in(own))
        .order_by(col(DepositAddress.address), col(DepositAddress.chain))
    )
    found: dict[str, tuple[str, Registrations]] = {}
    for address, other, account in rows:
        if infer_family(address) is not Family.EVM:
            continue
        key = to_hex20(Family.EVM, address)
        known = found.get(key, (address, ()))[1]
        found[key] = (address, (*known, (other, account)))
    return found


def refresh_watch(session: Session, rt: ChainRuntime) -> None:
    """Reload the runtime's watch maps when the deposit addresses changed since they were loaded (an EVM chain's
    on any chain: its foreign map depends on them all)."""
    version = watch_version(session, None if rt.spec.family is Family.EVM else rt.name)
    if version != rt.watch_version:
        rt.watch = watch_map(session, rt.name, rt.spec.family)
        rt.foreign = foreign_map(session, rt.name, rt.spec.family)
        rt.watch_version = version
