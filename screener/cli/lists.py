"""`screener lists refresh|status|diff|check` (issue 3).

Read commands import the bundled snapshot first when the database has no list yet (ensure_active), so a
fresh install can check addresses offline. Heavy imports stay inside the commands to keep start-up fast.
"""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Any

import typer

from screener.cli.common import echo_json, handle_errors, state

if TYPE_CHECKING:
    from sanctions_lists.entries import Entry
    from screener.models.lists import ListVersion

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
) -> None:
    """Fetch the list and activate it if it passes the guards; one summary line; exit 0 updated/unchanged."""
    from screener import lists_store
    from screener_base.clock import utc_now

    cli = state()
    hook = lists_store.find_rescreen_hook(cli.settings)
    result = lists_store.refresh(cli.engine(), cli.settings, source, utc_now(), on_activated=hook)
    if not result.ok:
        typer.echo(result.summary_line(), err=True)
        raise typer.Exit(1)
    typer.echo(result.summary_line())


def _status_data(version: ListVersion, previous: ListVersion | None, now: datetime) -> dict[str, Any]:
    from screener import lists_store

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
    from screener import lists_store
    from screener.db import session_scope
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


@lists_app.command("diff")
@handle_errors
def diff_cmd(
    v1: int | None = typer.Argument(None, help="older version id (default: the one before the active)"),
    v2: int | None = typer.Argument(None, help="newer version id (default: the active one)"),
) -> None:
    """Entries added (+) and removed (-) between two versions."""
    from screener import lists_store
    from screener.db import session_scope
    from screener_base.clock import utc_now
    from screener_base.errors import ListError

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


@lists_app.command("check")
@handle_errors
def check_cmd(
    address: str = typer.Argument(..., help="address to look up (any case)"),
    chain: str | None = typer.Option(None, "--chain", help="chain name: tron means Tron, any other EVM"),
    as_json: bool = typer.Option(False, "--json", help="print JSON"),
) -> None:
    """Every entry of the active version listing ADDRESS, with entity and programs."""
    from screener import lists_store
    from screener.db import session_scope
    from screener_base.addresses import Family, infer_family
    from screener_base.clock import utc_now

    family = infer_family(address) if chain is None else (Family.TRON if chain.lower() == "tron" else Family.EVM)
    now = utc_now()
    with session_scope(state().engine()) as session:
        version = lists_store.ensure_active(session, now)
        matches = lists_store.load_snapshot(session, version).match(family, address)
        stale = lists_store.is_stale(version, state().settings, now)
    if as_json:
        echo_json(
            {
                "address": address,
                "family": family.value,
                "version_id": version.id,
                "stale": stale,
                "matches": [m.to_json() for m in matches],
            }
        )
        return
    if stale:
        typer.echo(f"warning: list version {version.id} is stale; run `screener lists refresh`", err=True)
    if not matches:
        typer.echo(f"no match: {address} ({family.value}) is not listed in list version {version.id}")
        return
    typer.echo(f"MATCH: {address} ({family.value}) is listed in list version {version.id}:")
    for entry in matches:
        profile = f" profile {entry.profile_id}" if entry.profile_id else ""
        typer.echo(_entry_line("  ", entry) + profile)
        if entry.note:
            typer.echo(f"      note: {entry.note}")


def register(app: typer.Typer) -> None:
    """Add this module's commands to the root app."""
    app.add_typer(lists_app, name="lists")
