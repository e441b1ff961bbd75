"""`screener backfill CHAIN --from-block N [--to-block M]`: record a past range's deposits, with progress."""

from __future__ import annotations

import typer

from screener.cli.common import echo_json, handle_errors, state


@handle_errors
def backfill_cmd(
    chain: str = typer.Argument(..., help="chain name, e.g. ethereum"),
    from_block: int = typer.Option(..., "--from-block", help="first block to scan"),
    to_block: int | None = typer.Option(
        None, "--to-block", help="last block (default: the block before the live cursor, or the safe head)"
    ),
    as_json: bool = typer.Option(False, "--json", help="print the result as JSON"),
) -> None:
    """Scan a past block range for deposits to registered addresses; record and screen each new one once."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    from screener.decide.decide import make_decider
    from screener.indexes.sources import runtime_lookup
    from screener.pipeline.backfill import backfill
    from screener.pipeline.runtime import build_chain_runtime

    settings = state().settings
    engine = state().engine()
    runtime = build_chain_runtime(settings, chain)
    # The same lookups the daemon gives its decider, so index gaps are caught up instead of held wholesale.
    decide = make_decider(settings, runtime_lookup(settings, {chain: runtime}))
    columns = (
        TextColumn(f"{chain} blocks"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeRemainingColumn(),
    )
    try:
        with Progress(*columns, transient=as_json) as bar:
            task = bar.add_task("backfill", total=None)

            def progress(done: int, total: int) -> None:
                bar.update(task, completed=done, total=total)

            result = backfill(engine, runtime, from_block, to_block, decide=decide, progress=progress)
    finally:
        runtime.close()
    summary = {
        "chain": result.chain,
        "from_block": result.from_block,
        "to_block": result.to_block,
        "ranges": result.ranges,
        "logs": result.logs,
        "transfers": result.transfers,
        "recorded": result.recorded,
        "unassigned": result.unassigned,
        "duplicates": result.duplicates,
        "initiator_missing": result.initiator_missing,
        "rejected": dict(result.rejected),
    }
    if as_json:
        echo_json(summary)
        return
    typer.echo(
        f"{chain} blocks {result.from_block}..{result.to_block}: {result.recorded} deposit(s) recorded, "
        f"{result.duplicates} already known, {result.initiator_missing} without initiator (held)"
        + (
            f"; {result.unassigned} unassigned (sent on the wrong network: alerted, never credited)"
            if result.unassigned
            else ""
        )
    )


def register(app: typer.Typer) -> None:
    """Add this module's commands to the root app."""
    app.command("backfill")(backfill_cmd)
