"""`screener lists refresh|status|diff|check`.

Read commands import the bundled snapshot first when the database has no list yet (ensure_active), so a
fresh install can check addresses offline. Heavy imports stay inside the commands to keep start-up fast.
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import TYPE_CHECKING, Any

import typer

from screener.cli.common import echo_json, handle_errors, state
from screener_base.errors import ReviewError

if TYPE_CHECKING:
    from sanctions_lists.entries import Entry
    from screener.models.lists import ListVersion
    from screener_base.addresses import Family

lists_app = typer.Typer(help="Sanctions list versions: refresh, status, diff, check.", no_args_is_help=True)


def _ts(value: datetime | None) -> str:
    from screener_base.clock import ensure_utc

    return ensure_utc(value).isoformat(timespec="seconds") if value else "-"


def _entry_line(sign: str, entry: Entry) -> str:
    programs = f" [{', '.join(entry.programs)}]" if entry.programs else ""
    entity = entry.entity or "(entity not named)"
    return f"{sign}{entry.tag:<5} {entry.address} ({entry.family}) {entity}{programs}"


@lists_app.command("refresh")
@handle_errors
def refresh_cmd(
    source: str | None = typer.Option(None, "--source", help="URL or file to read (default: lists.source_url)"),
    accept_undated: bool = typer.Option(
        False,
        "--accept-undated",
        help="let a list without a publication date (e.g. sdn.csv) replace a dated one; audited under your OS account",
    ),
) -> None:
    """Fetch the list and activate it if it passes the guards; exit 0 updated/unchanged, 1 rejected.

    Then every open hold is screened again against the list in force (a new version, or the same one fresh
    again): one more line says what changed.
    """
    from screener.decide.holds import rescreen_open_holds
    from screener.decide.rescreen import make_list_hook
    from screener.lists import refresh as lists_refresh
    from screener_base.clock import utc_now

    cli = state()
    hook = make_list_hook(cli.settings)
    result = lists_refresh.refresh(
        cli.engine(), cli.settings, source, utc_now(), on_activated=hook, accept_undated=accept_undated
    )
    if not result.ok:
        typer.echo(result.summary_line(), err=True)
        raise typer.Exit(1)
    typer.echo(result.summary_line())
    counts = rescreen_open_holds(cli.engine(), cli.settings, utc_now())
    if counts.failed:
        raise ReviewError(
            f"the list is in force, but {counts.summary()} (first: {counts.problems[0]})",
            "those holds stay held; `screener holds rescreen` lists each one",
        )
    if counts.screened:
        typer.echo(f"holds: {counts.summary()}")


def _status_data(version: ListVersion, previous: ListVersion | None, now: datetime) -> dict[str, Any]:
    from screener.lists import store as lists_store

    cli = state()
    age_h = lists_store.list_age(version, now).total_seconds() / 3600
    return {
        "version_id": version.id,
        "previous_version_id": previous.id if previous else None,
        "source": version.source,
        "source_format": version.source_format,
        "sha256": version.sha256,
        "size_bytes": version.size_bytes,
        "fetched_at": _ts(version.fetched_at),
        "published_at": _ts(version.published_at),
        "activated_at": _ts(version.activated_at),
        "last_verified_at": _ts(version.last_verified_at),
        "age_h": round(age_h, 2),
        "max_age_h": cli.settings.lists.max_list_age_h,
        "stale": lists_store.is_stale(version, cli.settings, now),
        "entry_count": version.entry_count,
        "counts": version.counts,
    }


def _print_status(data: dict[str, Any], last: Any) -> None:
    typer.echo(f"active list version {data['version_id']} ({data['source_format']}) from {data['source']}")
    typer.echo(f"  sha256 {data['sha256']}  size {data['size_bytes']} bytes")
    typer.echo(f"  published {data['published_at']}  fetched {data['fetched_at']}  activated {data['activated_at']}")
    typer.echo(f"  last verified {data['last_verified_at']}  age {data['age_h']:.1f} h (limit {data['max_age_h']:g} h)")
    by_family = ", ".join(f"{k}={v}" for k, v in data["counts"].get("family", {}).items())
    by_tag = ", ".join(f"{k}={v}" for k, v in data["counts"].get("tag", {}).items())
    typer.echo(f"  entries {data['entry_count']}: {by_family}")
    typer.echo(f"  by tag: {by_tag}")
    typer.echo(f"  previous version: {data['previous_version_id'] or '-'}")
    if last is not None:
        reason = f": {last.reason}" if last.reason else ""
        typer.echo(f"  last refresh {_ts(last.attempted_at)} {last.status}{reason}")
    if data["stale"]:
        typer.echo(
            f"WARNING: the list is stale (last verified {data['age_h']:.1f} h ago, limit {data['max_age_h']:g} h): "
            "screening is unavailable and deposits are held; run `screener lists refresh`",
            err=True,
        )


@lists_app.command("status")
@handle_errors
def status_cmd(as_json: bool = typer.Option(False, "--json", help="print JSON")) -> None:
    """Active version, provenance, age and counts; exit 1 when the list is stale."""
    from screener.db import session_scope
    from screener.lists import store as lists_store
    from screener_base.clock import utc_now

    now = utc_now()
    with session_scope(state().engine()) as session:
        version = lists_store.ensure_active(session, now)
        data = _status_data(version, lists_store.previous_version(session, version), now)
        recent = lists_store.recent_refreshes(session, 1)
    if as_json:
        echo_json(data)
    else:
        _print_status(data, recent[0] if recent else None)
    if data["stale"]:
        raise typer.Exit(1)


def _version_id(text: str | None) -> int | None:
    """A list version id from the command line; ListError (one line, exit 2) unless a positive integer."""
    from screener_base.errors import ListError

    if text is None:
        return None
    value = text.strip()
    if not (value.isascii() and value.isdigit()) or int(value) < 1:
        raise ListError(
            f"list version {text!r} is not a version id (a positive whole number)",
            "see `screener lists status` for the active and previous ids, e.g. `screener lists diff 2 3`",
        )
    return int(value)


@lists_app.command("diff")
@handle_errors
def diff_cmd(
    older: str | None = typer.Argument(
        None, metavar="V1", help="older version id (default: the one before the active)"
    ),
    newer: str | None = typer.Argument(None, metavar="V2", help="newer version id (default: the active one)"),
) -> None:
    """Entries added (+) and removed (-) between two versions."""
    from screener.db import session_scope
    from screener.lists import store as lists_store
    from screener_base.clock import utc_now
    from screener_base.errors import ListError

    v1, v2 = _version_id(older), _version_id(newer)
    with session_scope(state().engine()) as session:
        if v1 is None or v2 is None:
            if v1 is not None:
                raise ListError("give both versions or neither", "e.g. `screener lists diff 2 3`")
            active = lists_store.ensure_active(session, utc_now())
            previous = lists_store.previous_version(session, active)
            if previous is None or previous.id is None or active.id is None:
                typer.echo(f"only one list version ({active.id}); nothing to compare")
                return
            v1, v2 = previous.id, active.id
        change = lists_store.diff_versions(session, v1, v2)
    for entry in change.added:
        typer.echo(_entry_line("+ ", entry))
    for entry in change.removed:
        typer.echo(_entry_line("- ", entry))
    typer.echo(f"version {v1} -> {v2}: {change.summary()}")


# Addresses of coins without a codec here (Monero, Zcash, XRP, ...) as OFAC lists them: long and alphanumeric.
_OTHER_ADDRESS = re.compile(r"[A-Za-z0-9]{25,128}")
EXIT_LISTED = 1


def _lookup_target(address: str, chain: str | None) -> tuple[Family, str]:
    """(family, canonical form) to look ``address`` up under; AddressError/ConfigError (exit 2) if it is none."""
    from screener.pipeline.runtime import spec_from_settings
    from screener_base.addresses import Family, canonical, evm_canonical, infer_family, tron_to_hex20
    from screener_base.errors import AddressError

    text = address.strip()
    if chain is not None:
        family = spec_from_settings(state().settings, chain).family  # ConfigError for an unknown chain
        try:
            return family, canonical(family, text)
        except AddressError as exc:
            raise AddressError(f"{exc.cause} (chain {chain} is {family.value})", exc.remedy) from None
    family = infer_family(text)
    if family is Family.OTHER:
        if text[:2].lower() == "0x":
            evm_canonical(text)  # says why it is not an EVM address
        if text.startswith("T") and len(text) == 34:
            tron_to_hex20(text)  # says why it is not a Tron address (e.g. a checksum typo)
        if not _OTHER_ADDRESS.fullmatch(text):
            raise AddressError(
                f"{address!r} is not an address of any known format",
                "give an EVM (0x + 40 hex), Tron (T...), Bitcoin-like or other coin address, or pass --chain",
            )
    return family, canonical(family, text)


_CHECK_HELP = (
    "Every entry of the active version listing ADDRESS, with entity and programs.\n\n"
    "Exit status: 0 = not listed, 1 = listed (the matches are printed), 2 = bad input (not a valid address, "
    "an unknown chain, or an address of another family than the chain's)."
)


@lists_app.command("check", help=_CHECK_HELP)
@handle_errors
def check_cmd(
    address: str = typer.Argument(..., help="address to look up (any case)"),
    chain: str | None = typer.Option(
        None, "--chain", help="a configured or registry chain; checks ADDRESS in its family (Tron: T... or 41/0x hex)"
    ),
    as_json: bool = typer.Option(False, "--json", help="print JSON"),
) -> None:
    """Look ADDRESS up in the active list version; exit 0 not listed, 1 listed, 2 bad input (see _CHECK_HELP)."""
    from screener.db import session_scope
    from screener.lists import store as lists_store
    from screener_base.clock import utc_now

    family, canon = _lookup_target(address, chain)
    now = utc_now()
    with session_scope(state().engine()) as session:
        version = lists_store.ensure_active(session, now)
        matches = lists_store.load_snapshot(session, version).match(family, canon)
        stale = lists_store.is_stale(version, state().settings, now)
    if as_json:
        echo_json(
            {
                "address": address,
                "canonical": canon,
                "family": family.value,
                "listed": bool(matches),
                "version_id": version.id,
                "stale": stale,
                "matches": [m.to_json() for m in matches],
            }
        )
    else:
        _print_check(address.strip(), canon, family, version.id, matches, stale)
    if matches:
        raise typer.Exit(EXIT_LISTED)


def _print_check(
    address: str, canon: str, family: Family, version_id: int | None, matches: list[Entry], stale: bool
) -> None:
    from screener_base.addresses import Family

    if stale:
        typer.echo(f"warning: list version {version_id} is stale; run `screener lists refresh`", err=True)
    shown = f"{address} ({family.value}{', ' + canon if family is Family.TRON and canon != address else ''})"
    if not matches:
        typer.echo(f"no match: {shown} is not listed in list version {version_id}")
        return
    typer.echo(f"MATCH: {shown} is listed in list version {version_id}:")
    for entry in matches:
        profile = f" profile {entry.profile_id}" if entry.profile_id else ""
        typer.echo(_entry_line("  ", entry) + profile)
        if entry.note:
            typer.echo(f"      note: {entry.note}")


def register(app: typer.Typer) -> None:
    """Add this module's commands to the root app."""
    app.add_typer(lists_app, name="lists")
