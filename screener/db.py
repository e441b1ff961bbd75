"""Engine, sessions, exact integer amounts, and schema upgrades (Alembic).

SQLite is the embedded default (WAL, foreign keys, busy timeout); PostgreSQL is the production store.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy import event, orm
from sqlalchemy.engine import Dialect, Engine
from sqlmodel import Session

from screener_base.errors import StorageError

MIGRATIONS_DIR = Path(__file__).parent / "migrations"
# Wide enough for any uint256 (78 decimal digits).
AMOUNT_DIGITS = 78


class Amount(sa.types.TypeDecorator[int]):
    """A non-negative or negative Python int stored exactly.

    PostgreSQL: NUMERIC(78,0). SQLite: its NUMERIC affinity turns big values into lossy REALs, so the
    value is kept as a decimal string; nothing in SQL may compare or sum these on SQLite (do it in Python).
    """

    impl = sa.types.String(AMOUNT_DIGITS + 1)
    cache_ok = True

    def load_dialect_impl(self, dialect: Dialect) -> sa.types.TypeEngine[Any]:
        if dialect.name == "postgresql":
            return dialect.type_descriptor(sa.Numeric(AMOUNT_DIGITS, 0))
        return dialect.type_descriptor(sa.String(AMOUNT_DIGITS + 1))

    def process_bind_param(self, value: int | None, dialect: Dialect) -> Any:
        if value is None:
            return None
        if isinstance(value, bool) or not isinstance(value, int):
            raise TypeError(f"amounts must be int base units, got {type(value).__name__}")
        return value if dialect.name == "postgresql" else str(value)

    def process_result_value(self, value: Any, dialect: Dialect) -> int | None:
        if value is None:
            return None
        return int(value)


def normalise_url(url: str) -> str:
    # psycopg 3 is the only PostgreSQL driver we ship.
    if url.startswith("postgresql://"):
        return "postgresql+psycopg://" + url[len("postgresql://") :]
    return url


def make_engine(url: str, *, pool_timeout_s: float = 10.0, statement_timeout_s: float = 30.0) -> Engine:
    url = normalise_url(url)
    if url.startswith("sqlite"):
        engine = sa.create_engine(url, connect_args={"timeout": pool_timeout_s, "check_same_thread": False})
        _configure_sqlite(engine, busy_timeout_ms=int(pool_timeout_s * 1000))
        return engine
    return sa.create_engine(
        url,
        pool_pre_ping=True,
        pool_timeout=pool_timeout_s,
        connect_args={
            "connect_timeout": max(1, int(pool_timeout_s)),
            "options": f"-c statement_timeout={int(statement_timeout_s * 1000)}",
        },
    )


def _configure_sqlite(engine: Engine, busy_timeout_ms: int) -> None:
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn: Any, _record: Any) -> None:
        # Let SQLAlchemy own transactions: pysqlite's implicit BEGIN would defer locking.
        dbapi_conn.isolation_level = None
        cur = dbapi_conn.cursor()
        cur.execute("PRAGMA journal_mode=WAL")
        cur.execute("PRAGMA foreign_keys=ON")
        cur.execute(f"PRAGMA busy_timeout={busy_timeout_ms}")
        cur.execute("PRAGMA synchronous=FULL")
        cur.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Any) -> None:
        # IMMEDIATE takes the write lock up front, so two writers serialise instead of deadlocking.
        conn.exec_driver_sql("BEGIN IMMEDIATE")


@contextmanager
def session_scope(engine: Engine) -> Iterator[Session]:
    """One transaction: commit on success, roll back on any exception."""
    session = Session(engine, expire_on_commit=False)
    try:
        with session.begin():
            yield session
    finally:
        session.close()


def is_postgres(engine: Engine) -> bool:
    return engine.dialect.name == "postgresql"


def _alembic_config(engine: Engine) -> Any:
    # lazy: Alembic costs every CLI command start-up time; only schema work needs it
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    cfg.attributes["engine"] = engine
    return cfg


def upgrade(engine: Engine, revision: str = "head") -> None:
    """Create or upgrade the schema to ``revision``."""
    # lazy: Alembic costs every CLI command start-up time; only schema work needs it
    from alembic import command

    command.upgrade(_alembic_config(engine), revision)


# The newest revision under migrations/versions. Every CLI command compares the database with it; asking Alembic
# instead would load every revision file on each start-up. tests/test_foundation.py checks it is Alembic's head.
HEAD_REVISION = "0012_address_generation"


def schema_revision(engine: Engine) -> str | None:
    """The revision the database is at (Alembic's ``alembic_version`` row), None for an empty database."""
    with engine.connect() as conn:
        if not sa.inspect(conn).has_table("alembic_version"):
            return None
        versions = sorted(str(v) for v in conn.execute(sa.text("SELECT version_num FROM alembic_version")).scalars())
    return ",".join(versions) or None


def head_revision() -> str:
    return HEAD_REVISION


def check_schema(engine: Engine) -> None:
    """Raise StorageError unless the database is reachable and at the newest schema revision."""
    path = engine.url.database if engine.dialect.name == "sqlite" else None
    if path and path != ":memory:" and not Path(path).exists():
        # Connecting would create an empty file at a mistyped path (and then advise `db upgrade` on it).
        raise StorageError(
            f"the SQLite database {path} does not exist",
            "check database.url; `screener db upgrade` creates a new database there if that is what you want",
        )
    try:
        current = schema_revision(engine)
    except sa.exc.OperationalError as exc:
        raise StorageError(
            f"cannot connect to the database: {' '.join(str(exc.orig).split())}",  # libpq's text spans lines
            "check database.url and that the server runs",
        ) from exc
    head = head_revision()
    if current != head:
        raise StorageError(
            f"database schema is at revision {current or 'none'}, this version needs {head}",
            "run `screener db upgrade`",
        )


def insert_ignore(session: orm.Session, table: sa.Table, values: dict[str, Any], keys: list[str]) -> None:
    """INSERT ... ON CONFLICT DO NOTHING on both stores."""
    from sqlalchemy.dialects import postgresql, sqlite  # lazy: every CLI command imports db; only writers need these

    insert = postgresql.insert if session.get_bind().dialect.name == "postgresql" else sqlite.insert
    session.execute(insert(table).values(**values).on_conflict_do_nothing(index_elements=keys))
