"""Who is acting, from authentication (``review.identity``), never from a flag or the environment.

- ``database`` (default on PostgreSQL): the server's ``session_user``, i.e. the role the person logged in as.
- ``os`` (default on SQLite): the account of the effective uid.
- ``declared``: the name given (``--operator``, ``SCREENER_OPERATOR``, else the OS account). Only when configured
  explicitly (the demo, tests); decisions made so carry ``identity: declared`` in their audit events.

In ``database`` and ``os`` modes a name given with ``--operator`` or ``SCREENER_OPERATOR`` is refused unless it is
the authenticated one (after the same normalisation four-eyes uses), so nobody can act as someone else by
typing their name.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from screener.review.rules import require_operator, same_operator
from screener.settings import Settings
from screener_base.errors import ConfigError, ReviewError
from screener_base.identity import os_account


class IdentityMode(StrEnum):
    DATABASE = "database"
    OS = "os"
    DECLARED = "declared"


@dataclass(frozen=True)
class Actor:
    name: str
    mode: IdentityMode

    @property
    def authenticated(self) -> bool:
        return self.mode is not IdentityMode.DECLARED


def identity_mode(settings: Settings) -> IdentityMode:
    """The configured mode, else ``database`` on PostgreSQL and ``os`` on SQLite."""
    postgres = settings.database.url.startswith("postgresql")
    configured = settings.review.identity
    if configured is None:
        return IdentityMode.DATABASE if postgres else IdentityMode.OS
    mode = IdentityMode(configured)
    if mode is IdentityMode.DATABASE and not postgres:
        raise ConfigError(
            "review.identity = database needs PostgreSQL (SQLite has no logins)",
            'use review.identity = "os" on SQLite, or a postgresql:// database.url',
        )
    return mode


def database_user(engine: Engine) -> str:
    """The role this connection authenticated as (``session_user``: SET ROLE cannot change it)."""
    with engine.connect() as conn:
        name = conn.execute(sa.text("SELECT session_user")).scalar_one()
    return str(name)


def resolve_actor(engine: Engine, settings: Settings, *claims: str | None) -> Actor:
    """The acting person. ``claims``: names given by the caller, in order of precedence (flag, environment)."""
    mode = identity_mode(settings)
    claimed = next((c.strip() for c in claims if c and c.strip()), None)
    if mode is IdentityMode.DECLARED:
        return Actor(require_operator(claimed or os_account()), mode)
    name = database_user(engine) if mode is IdentityMode.DATABASE else os_account()
    if claimed is not None and not same_operator(claimed, name):
        source = "your database login" if mode is IdentityMode.DATABASE else "your OS account"
        raise ReviewError(
            f"operator {claimed!r} is not {source} {name!r} (review.identity = {mode.value})",
            "act as yourself: leave out --operator and SCREENER_OPERATOR (or log in as that person); "
            "nothing was changed",
        )
    return Actor(require_operator(name), mode)
