"""The foundation: schema upgrades on both stores, exact amounts, settings errors."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from sqlalchemy.engine import Engine

from screener.db import check_schema, head_revision, make_engine, schema_revision, session_scope
from screener.models.deposits import Deposit
from screener.settings import load_settings
from screener_base.errors import ConfigError, StorageError
from tests.support.anvil import Anvil


def _deposit(amount: int, log_index: int = 0) -> Deposit:
    return Deposit(
        chain="bsc",
        tx_hash="0x" + "ab" * 32,
        log_index=log_index,
        block_number=1,
        block_hash="0x" + "cd" * 32,
        token_symbol="USDT",
        token_contract="0x55d398326f99059ff775485246999027b3197955",
        decimals=18,
        amount_raw=amount,
        from_address="0x" + "11" * 20,
        to_address="0x" + "22" * 20,
        account="acct-1",
        observed_at=datetime.now(UTC),
    )


def test_schema_at_head(engine: Engine) -> None:
    assert schema_revision(engine) == head_revision()
    from alembic.config import Config
    from alembic.script import ScriptDirectory

    from screener.db import MIGRATIONS_DIR

    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    assert head_revision() == ScriptDirectory.from_config(cfg).get_current_head(), "update screener.db.HEAD_REVISION"
    check_schema(engine)


@pytest.mark.parametrize("amount", [1, 2**63 + 1, 10**27, 2**256 - 1])
def test_amounts_round_trip_exactly(engine: Engine, amount: int) -> None:
    with session_scope(engine) as s:
        s.add(_deposit(amount))
    with session_scope(engine) as s:
        got = s.get(Deposit, 1)
        assert got is not None
        assert got.amount_raw == amount and isinstance(got.amount_raw, int)


def test_float_amount_rejected(engine: Engine) -> None:
    with pytest.raises(Exception, match="int base units"), session_scope(engine) as s:
        s.add(_deposit(1.5))  # type: ignore[arg-type]


def test_unupgraded_database_is_refused(tmp_path) -> None:  # type: ignore[no-untyped-def]
    eng = make_engine(f"sqlite:///{tmp_path / 'empty.db'}")
    with pytest.raises(StorageError, match="screener db upgrade"):
        check_schema(eng)


def test_bad_config_names_the_key(tmp_path) -> None:  # type: ignore[no-untyped-def]
    cfg = tmp_path / "c.toml"
    cfg.write_text('[review]\nsla_h = "soon"\n')
    with pytest.raises(ConfigError, match=r"review\.sla_h"):
        load_settings(cfg)


def test_anvil_runs(anvil: Anvil) -> None:
    anvil.mine(3)
    assert anvil.block_number() == 3


def test_migrations_match_models(engine: Engine) -> None:
    """The hand-written Alembic revisions create exactly the tables, columns, types and indexes the models declare."""
    from alembic.autogenerate import compare_metadata
    from alembic.runtime.migration import MigrationContext
    from sqlmodel import SQLModel

    import screener.models  # noqa: F401  (registers every table on the metadata)

    with engine.connect() as conn:
        ctx = MigrationContext.configure(conn, opts={"compare_type": True})
        diffs = compare_metadata(ctx, SQLModel.metadata)
    assert diffs == []
