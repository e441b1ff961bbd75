"""`screener addresses add|import|list|remove`: our deposit addresses per chain.

Addresses are validated and stored in the chain family's canonical form (EVM lowercase, Tron T-form) and
shown in the display form (EIP-55, T-form). A mixed-case EVM address must carry a correct EIP-55 checksum.
A bad address or CSV row is a one-line error and changes nothing. Removals are recorded in the audit trail.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer

from screener.cli.common import echo_json, handle_errors, quiet_broken_pipe, state
from screener_base.errors import AddressError, ScreenerError

addresses_app = typer.Typer(help="Deposit addresses: add, import from CSV, list, remove.", no_args_is_help=True)
MAX_CSV_BYTES = 200 * 1024 * 1024


def _family_of() -> Any:
    from screener.pipeline.runtime import spec_from_settings

    settings = state().settings

    def family_of(chain: str) -> Any:
        return spec_from_settings(settings, chain).family

    return family_of


@addresses_app.command("add")
@handle_errors
def add_cmd(
    chain: str = typer.Argument(..., help="chain name, e.g. ethereum, tron, bsc"),
    address: str = typer.Argument(
        ...,
        help="0x... for EVM chains (mixed case must be a correct EIP-55 checksum), T... (or 41/0x hex) for Tron",
    ),
    account: str = typer.Argument(..., help="the customer account that owns the address"),
) -> None:
    """Register one deposit address."""
    from screener.db import session_scope
    from screener.pipeline.addresses import add_address, validate
    from screener_base.addresses import display
    from screener_base.clock import utc_now

    family_of = _family_of()
    with session_scope(state().engine()) as session:
        added = add_address(session, family_of, chain, address, account, utc_now(), state().operator_id())
    row = validate(family_of, chain, address, account)
    shown = display(family_of(chain), row.address)
    typer.echo(f"{'added' if added else 'already registered'}: {chain} {shown} -> {row.account}")


@addresses_app.command("remove")
@handle_errors
def remove_cmd(
    chain: str = typer.Argument(..., help="chain name the address was registered on"),
    address: str = typer.Argument(..., help="the registered address (any case)"),
) -> None:
    """Unregister one deposit address (e.g. a wrong registration); deposits already recorded stay as they are."""
    from screener.db import session_scope
    from screener.pipeline.addresses import remove_address
    from screener_base.addresses import display
    from screener_base.clock import utc_now

    cli = state()
    family_of, operator = _family_of(), cli.operator_id()
    with session_scope(cli.engine()) as session:
        row = remove_address(session, family_of, chain, address, operator, utc_now())
    try:
        shown = display(family_of(chain), row.address)
    except ScreenerError:  # chain no longer configured: the stored form
        shown = row.address
    typer.echo(f"removed: {chain} {shown} (was {row.account}) by {operator}; recorded in the audit trail")


@addresses_app.command("import")
@handle_errors
def import_cmd(
    file_name: str = typer.Argument(
        ..., metavar="FILE", help="CSV with columns chain,address,account (header optional)"
    ),
) -> None:
    """Import addresses from CSV: every row is checked first; one bad row means nothing is imported."""
    file = Path(file_name)
    from screener.db import session_scope
    from screener.pipeline.addresses import import_csv
    from screener_base.clock import utc_now

    try:
        if file.stat().st_size > MAX_CSV_BYTES:
            raise AddressError(f"{file} is larger than {MAX_CSV_BYTES} bytes", "split it into several files")
        text = file.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as exc:
        raise AddressError(f"cannot read {file}: {exc}", "check the path and that it is UTF-8 text") from exc
    family_of, operator = _family_of(), state().operator_id()
    with session_scope(state().engine()) as session:
        report = import_csv(session, family_of, text, utc_now(), operator)
    typer.echo(f"imported {report.added} address(es); {report.already_present} already registered")


@addresses_app.command("list")
@handle_errors
def list_cmd(
    chain: str | None = typer.Option(None, "--chain", help="only this chain"),
    as_json: bool = typer.Option(False, "--json", help="machine-readable output"),
) -> None:
    """Registered deposit addresses, by chain."""
    from screener.db import session_scope
    from screener.pipeline.addresses import list_addresses
    from screener.pipeline.runtime import spec_from_settings
    from screener_base.addresses import display, infer_family

    settings = state().settings
    with session_scope(state().engine()) as session:
        rows = list_addresses(session, chain)
    families: dict[str, Any] = {}
    records = []
    for row in rows:
        if row.chain not in families:
            try:
                families[row.chain] = spec_from_settings(settings, row.chain).family
            except ScreenerError:  # chain since removed from the configuration: show the stored form
                families[row.chain] = infer_family(row.address)
        records.append(
            {
                "chain": row.chain,
                "address": display(families[row.chain], row.address),
                "account": row.account,
                "created_at": row.created_at.isoformat(),
            }
        )
    with quiet_broken_pipe():
        if as_json:
            echo_json(records)
            return
        if not records:
            typer.echo("no deposit addresses" + (f" on {chain}" if chain else ""))
            return
        width = max(len(r["address"]) for r in records)
        for r in records:
            typer.echo(f"{r['chain']:<10} {r['address']:<{width}}  {r['account']}")


def register(app: typer.Typer) -> None:
    """Add this module's commands to the root app."""
    app.add_typer(addresses_app, name="addresses")
