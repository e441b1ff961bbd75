"""What every CLI command shares: settings, operator identity, engine, and one-line errors."""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from functools import wraps
from typing import TYPE_CHECKING, Any, ParamSpec, TypeVar

import typer
from sqlalchemy import exc as sa_exc
from sqlalchemy.engine import Engine

from screener.db import check_schema, make_engine
from screener.settings import Settings, load_settings
from screener_base.errors import ScreenerError
from screener_base.text import printable

if TYPE_CHECKING:
    from screener.review.identity import Actor

P = ParamSpec("P")
R = TypeVar("R")


@dataclass
class CliState:
    config_path: str | None = None
    operator: str | None = None
    _settings: Settings | None = None
    _engine: Engine | None = None

    @property
    def settings(self) -> Settings:
        """Loaded once; every command sees the same checks, including each ``[chains.<name>]`` table."""
        if self._settings is None:
            settings = load_settings(self.config_path)
            if settings.chains:
                from screener.pipeline.runtime import check_chains  # imports chains/: only when chains are set

                check_chains(settings)
            self._settings = settings
        return self._settings

    def engine(self, *, check: bool = True) -> Engine:
        if self._engine is None:
            db = self.settings.database
            self._engine = make_engine(
                db.url, pool_timeout_s=db.pool_timeout_s, statement_timeout_s=db.statement_timeout_s
            )
            if check:
                check_schema(self._engine)
        return self._engine

    def actor(self, command_operator: str | None = None) -> Actor:
        """Who is acting, by review.identity: the database login, the OS account, or (declared) the name given.

        A name given (the command's --operator, the root's, SCREENER_OPERATOR) must be the authenticated one
        unless review.identity = "declared".
        """
        from screener.review.identity import resolve_actor

        claims = (command_operator, self.operator, os.environ.get("SCREENER_OPERATOR"))
        return resolve_actor(self.engine(), self.settings, *claims)

    def operator_id(self, command_operator: str | None = None) -> str:
        return self.actor(command_operator).name


STATE = CliState()


def state() -> CliState:
    return STATE


def fail(message: str, code: int = 2) -> None:
    typer.echo(f"error: {printable(message)}", err=True)
    raise typer.Exit(code)


def handle_errors(func: Callable[P, R]) -> Callable[P, R]:
    """Turn the project's errors into one line on stderr and a non-zero exit; nothing else is swallowed."""

    @wraps(func)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return func(*args, **kwargs)
        except ScreenerError as exc:
            typer.echo(f"error: {printable(str(exc))}", err=True)  # one line, whatever stored text it quotes
            raise typer.Exit(exc.exit_code) from None
        except sa_exc.OperationalError as exc:
            # Locked SQLite file, server gone, statement timeout: the transaction was rolled back.
            first_line = str(exc.orig or exc).strip().splitlines()[0]
            typer.echo(
                f"error: database error: {first_line}; nothing was changed, check database.url and retry", err=True
            )
            raise typer.Exit(3) from None
        except (ValueError, TypeError, ArithmeticError, AttributeError) as exc:
            # A stored value the ORM cannot convert (an amount "1e9", findings "{{"): one line, never a traceback.
            said = printable(str(exc).strip().splitlines()[0][:200] if str(exc).strip() else "")
            typer.echo(
                f"error: a value in the database cannot be read ({type(exc).__name__}: {said}); nothing was changed: "
                "run `screener audit verify` to find the row",
                err=True,
            )
            raise typer.Exit(2) from None
        except sa_exc.DBAPIError as exc:
            if getattr(exc.orig, "sqlstate", None) != "42501":  # insufficient_privilege: a guard or a GRANT
                first_line = printable(str(exc.orig or exc).strip().splitlines()[0])
                typer.echo(
                    f"error: database error: {first_line}; nothing was changed, check database.url and retry", err=True
                )
                raise typer.Exit(3) from None
            first_line = str(exc.orig).strip().splitlines()[0]
            typer.echo(
                f"error: the database refused this for your login: {first_line}; nothing was changed "
                "(see docs/security.md: who may do what)",
                err=True,
            )
            raise typer.Exit(2) from None

    return wrapper


@contextmanager
def quiet_broken_pipe() -> Iterator[None]:
    try:
        yield
    except BrokenPipeError:
        sys.stderr.close()


def echo_json(data: Any) -> None:
    import json

    typer.echo(json.dumps(data, indent=2, sort_keys=True, default=str))
