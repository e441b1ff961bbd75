"""The `screener` command. Thin: load settings, open a session, call one service, print.

Each command group lives in its own module and registers itself on ``app`` via ``register(app)``.
"""

from __future__ import annotations

import typer

from screener.cli import addresses, audit, chain_cmds, db, holds, lists, runtime
from screener.cli.common import STATE

app = typer.Typer(
    name="screener",
    help="Screen USDT/USDC deposits against OFAC and mixer heuristics; credit or hold them in a ledger.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)


@app.callback()
def _root(
    config: str | None = typer.Option(None, "--config", "-c", help="TOML config file (default: ./screener.toml)"),
    operator: str | None = typer.Option(
        None,
        "--operator",
        help="who is acting, only with review.identity = declared (else it must match your login/OS account)",
    ),
) -> None:
    STATE.config_path = config
    STATE.operator = operator


for _module in (db, holds, audit, lists, addresses, chain_cmds, runtime):
    _module.register(app)


def main() -> None:
    app()


__all__ = ["app", "main"]
