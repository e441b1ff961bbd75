"""Deposit addresses: validated and canonicalised per chain family (EVM lowercase stored / EIP-55 shown,
Tron T-form <-> 0x41 hex), one owner per address, CSV imports all-or-nothing with errors per row; through the
service on SQLite and PostgreSQL and through the real `screener` CLI."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from sqlalchemy.engine import Engine
from sqlmodel import select

from sanctions_lists.entries import make_entry
from screener.db import session_scope
from screener.ledger.audit import verify_chain
from screener.models.deposits import Deposit
from screener.models.ledger import AuditEvent
from screener.pipeline.addresses import (
    AddressImportError,
    add_address,
    import_csv,
    list_addresses,
    remove_address,
    validate,
    watch_map,
)
from screener.pipeline.runtime import spec_from_settings
from screener.settings import Settings
from screener_base.addresses import Family, hex_to_tron, tron_to_hex20
from screener_base.clock import utc_now
from screener_base.errors import AddressError, ConfigError
from tests.support import cli_fork
from tests.support.ledger_model import DECLARED_TOML

SCREENER = Path(sys.executable).with_name("screener")
EVM = "0x52908400098527886E0F7030069857D2E4169EE7"  # EIP-55 test vector
EVM_BAD_CASE = EVM[:-2] + "e7"  # one letter's case changed: the checksum no longer matches
TRON = "TR7NHqjeKQxGTCi8q8ZY4pL8otSzgjLj6t"
TRON_HEX41 = "41" + tron_to_hex20(TRON)[2:]
SETTINGS = Settings()


def family_of(chain: str) -> Family:
    return spec_from_settings(SETTINGS, chain).family


def _rows(engine: Engine) -> list[tuple[str, str, str]]:
    with session_scope(engine) as s:
        return [(r.chain, r.address, r.account) for r in list_addresses(s)]


def test_add_canonicalises_per_family(engine: Engine) -> None:
    now = utc_now()
    with session_scope(engine) as s:
        assert add_address(s, family_of, "ethereum", EVM, "acct-1", now) is True
        assert add_address(s, family_of, "bsc", EVM.lower(), "acct-1", now) is True  # same address, other chain
        assert add_address(s, family_of, "tron", TRON_HEX41, "acct-2", now) is True
        assert add_address(s, family_of, "ethereum", EVM.upper().replace("0X", "0x"), "acct-1", now) is False
    assert _rows(engine) == [
        ("bsc", EVM.lower(), "acct-1"),
        ("ethereum", EVM.lower(), "acct-1"),
        ("tron", TRON, "acct-2"),
    ]
    with session_scope(engine) as s:
        assert watch_map(s, "tron", Family.TRON) == {tron_to_hex20(TRON): (TRON, "acct-2")}


@pytest.mark.parametrize(
    ("chain", "address", "account", "error", "match"),
    [
        ("ethereum", "0x1234", "a", AddressError, "not an EVM address"),
        ("ethereum", "0x" + "00" * 20, "a", AddressError, "zero address"),
        ("tron", TRON[:-1] + ("u" if TRON[-1] != "u" else "v"), "a", AddressError, "checksum"),
        ("tron", EVM + "00", "a", AddressError, "not a hex Tron address"),
        ("ethereum", EVM_BAD_CASE, "a", AddressError, "wrong EIP-55 checksum.*likely a typo"),
        ("bsc", " " + EVM_BAD_CASE, "a", AddressError, "wrong EIP-55 checksum"),
        ("ethereum", EVM, "  ", AddressError, "account"),
        ("solana", EVM, "a", ConfigError, "unknown chain"),
    ],
)
def test_bad_input_is_refused_and_changes_nothing(
    sqlite_engine: Engine, chain: str, address: str, account: str, error: type[Exception], match: str
) -> None:
    with pytest.raises(error, match=match), session_scope(sqlite_engine) as s:
        add_address(s, family_of, chain, address, account, utc_now())
    assert _rows(sqlite_engine) == []


def test_an_address_has_one_owner(engine: Engine) -> None:
    with session_scope(engine) as s:
        add_address(s, family_of, "ethereum", EVM, "acct-1", utc_now())
    with pytest.raises(AddressError, match="already belongs to account 'acct-1'"), session_scope(engine) as s:
        add_address(s, family_of, "ethereum", EVM, "acct-2", utc_now())
    assert _rows(engine) == [("ethereum", EVM.lower(), "acct-1")]


def test_csv_import_is_all_or_nothing(engine: Engine) -> None:
    with session_scope(engine) as s:
        add_address(s, family_of, "ethereum", EVM, "acct-1", utc_now())
    bad = "\n".join(
        [
            "chain,address,account",
            f"polygon,{'0x' + 'ab' * 20},acct-3",  # fine
            "ethereum,0xnothex,acct-4",  # line 3
            f"tron,{TRON},acct-5,extra",  # line 4
            f"ethereum,{EVM},acct-9",  # line 5: belongs to acct-1
            f"base,{'0x' + 'cd' * 20},acct-6",
            f"base,{'0x' + 'CD' * 20},acct-7",  # line 7: same address as line 6, other account
            "mars,0x" + "ef" * 20 + ",acct-8",  # line 8
            f"polygon,{EVM_BAD_CASE},acct-1",  # line 9: wrong checksum
        ]
    )
    with pytest.raises(AddressImportError) as info, session_scope(engine) as s:
        import_csv(s, family_of, bad, utc_now())
    message = str(info.value)
    for line in (3, 4, 5, 7, 8, 9):
        assert f"line {line}:" in message
    assert "line 9: '0x52908400098527886E0F7030069857D2E4169Ee7' has a wrong EIP-55 checksum" in message
    assert "line 2:" not in message and "line 6:" not in message and "nothing imported" in message
    assert _rows(engine) == [("ethereum", EVM.lower(), "acct-1")]
    good = f"polygon,{'0x' + 'ab' * 20},acct-3\ntron,{TRON},acct-5\nethereum,{EVM},acct-1\n\n"
    with session_scope(engine) as s:
        report = import_csv(s, family_of, good, utc_now())
    assert (report.added, report.already_present) == (2, 1)
    assert len(_rows(engine)) == 3


def test_checksum_strictness_is_for_registration_only() -> None:
    # OFAC publishes addresses in whatever case; the shared codec and the list parser keep accepting them.
    entry = make_entry(EVM_BAD_CASE, "ETH")
    assert (entry.family, entry.canonical) == ("evm", EVM.lower())
    for one_case in (EVM.lower(), "0x" + EVM[2:].upper()):  # no checksum to check: accepted
        assert validate(family_of, "ethereum", one_case, "acct").address == EVM.lower()


def test_remove_unregisters_audits_and_keeps_recorded_deposits(engine: Engine) -> None:
    from tests.support.ledger_model import make_deposit

    now = utc_now()
    with session_scope(engine) as s:
        add_address(s, family_of, "ethereum", EVM, "acct-wrong", now)
        add_address(s, family_of, "ethereum", "0x" + "ab" * 20, "acct-2", now)
        s.add(make_deposit(1, account="acct-wrong"))
    with pytest.raises(AddressError, match=r"already belongs to account 'acct-wrong'.*screener addresses remove"):
        with session_scope(engine) as s:
            add_address(s, family_of, "ethereum", EVM, "acct-right", now)
    with session_scope(engine) as s:
        row = remove_address(s, family_of, "ethereum", EVM_BAD_CASE, "alice", now)  # any case finds it
    assert (row.address, row.account) == (EVM.lower(), "acct-wrong")
    with session_scope(engine) as s:
        assert add_address(s, family_of, "ethereum", EVM, "acct-right", now) is True
        events = [(e.kind, e.subject, e.actor, e.payload["account"]) for e in s.exec(select(AuditEvent))]
        removed = [e for e in events if e[0] == "deposit_address.removed"]
        assert removed == [
            ("deposit_address.removed", f"deposit_address:ethereum:{EVM.lower()}", "alice", "acct-wrong")
        ]
        assert [e[0] for e in events].count("deposit_address.added") == 3  # every registration is audited too
        assert verify_chain(s).ok
        assert [d.account for d in s.exec(select(Deposit))] == ["acct-wrong"]  # recorded deposits stay
    assert _rows(engine) == [("ethereum", "0x" + "ab" * 20, "acct-2"), ("ethereum", EVM.lower(), "acct-right")]
    for chain, address, match, error in [
        ("ethereum", "0x" + "cd" * 20, "is not registered on ethereum", AddressError),
        ("bsc", EVM, "is not registered on bsc", AddressError),
        ("solana", EVM, "unknown chain", ConfigError),
        ("ethereum", "0x12", "not an EVM address", AddressError),
    ]:
        with pytest.raises(error, match=match), session_scope(engine) as s:
            remove_address(s, family_of, chain, address, "alice", now)
    assert len(_rows(engine)) == 2


# --- the real CLI ------------------------------------------------------------------------------------


def _cli(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SCREENER_")}
    return cli_fork.run(
        [str(SCREENER), "--config", str(tmp_path / "c.toml"), *args],
        capture_output=True,
        text=True,
        env=env,
        cwd=tmp_path,
        timeout=120,
    )


def test_cli_add_import_list(tmp_path: Path) -> None:
    (tmp_path / "c.toml").write_text(f'[database]\nurl = "sqlite:///{tmp_path / "s.db"}"\n' + DECLARED_TOML)
    assert _cli(tmp_path, "db", "upgrade").returncode == 0
    added = _cli(tmp_path, "addresses", "add", "ethereum", EVM.lower(), "acct-1")
    assert added.returncode == 0 and EVM in added.stdout  # shown EIP-55
    tron = _cli(tmp_path, "addresses", "add", "tron", "0x" + TRON_HEX41, "acct-2")
    assert tron.returncode == 0 and TRON in tron.stdout  # shown in T-form
    bad = _cli(tmp_path, "addresses", "add", "ethereum", "0xdeadbeef", "acct-3")
    assert bad.returncode == 2 and bad.stderr.count("\n") == 1 and bad.stderr.startswith("error: ")
    (tmp_path / "a.csv").write_text(
        f"chain,address,account\nbsc,{EVM},acct-1\ntron,{hex_to_tron('0x' + '12' * 20)},x\ntron,Tnope,y\n"
    )
    refused = _cli(tmp_path, "addresses", "import", str(tmp_path / "a.csv"))
    assert refused.returncode == 2 and "line 4:" in refused.stderr and "nothing imported" in refused.stderr
    (tmp_path / "a.csv").write_text(f"bsc,{EVM},acct-1\n")
    assert "imported 1 address" in _cli(tmp_path, "addresses", "import", str(tmp_path / "a.csv")).stdout
    listed = json.loads(_cli(tmp_path, "addresses", "list", "--json").stdout)
    assert [(r["chain"], r["address"], r["account"]) for r in listed] == [
        ("bsc", EVM, "acct-1"),
        ("ethereum", EVM, "acct-1"),
        ("tron", TRON, "acct-2"),
    ]
    only = json.loads(_cli(tmp_path, "addresses", "list", "--chain", "tron", "--json").stdout)
    assert [r["address"] for r in only] == [TRON]


def test_cli_remove(tmp_path: Path) -> None:
    (tmp_path / "c.toml").write_text(f'[database]\nurl = "sqlite:///{tmp_path / "s.db"}"\n' + DECLARED_TOML)
    assert _cli(tmp_path, "db", "upgrade").returncode == 0
    typo = _cli(tmp_path, "addresses", "add", "ethereum", EVM_BAD_CASE, "acct-1")
    assert typo.returncode == 2 and typo.stderr.count("\n") == 1 and "wrong EIP-55 checksum" in typo.stderr
    assert _cli(tmp_path, "addresses", "add", "ethereum", EVM, "acct-1").returncode == 0
    removed = _cli(tmp_path, "--operator", "bob", "addresses", "remove", "ethereum", EVM.lower())
    assert removed.returncode == 0, removed.stderr
    assert removed.stdout == f"removed: ethereum {EVM} (was acct-1) by bob; recorded in the audit trail\n"
    assert json.loads(_cli(tmp_path, "addresses", "list", "--json").stdout) == []
    again = _cli(tmp_path, "addresses", "remove", "ethereum", EVM)
    assert again.returncode == 2 and again.stderr == f"error: {EVM} is not registered on ethereum; " + (
        "see `screener addresses list --chain ethereum`\n"
    )
    verified = _cli(tmp_path, "audit", "verify")
    assert verified.returncode == 0 and verified.stdout.startswith("ok: 3 events")  # seals began, added, removed


def test_a_removal_then_an_addition_reloads_the_watch_map(engine: Engine) -> None:
    """The attack: remove the newest address and add another (or the same address for another account). SQLite
    gives the new row the freed id, so (count, highest id) is unchanged; a worker keeping its loaded map would
    credit the old account, or never watch the new address. The generation moves with each change."""
    from screener.pipeline.addresses import refresh_watch
    from screener.pipeline.runtime import build_chain_runtime

    other = "0x" + "5a" * 20
    settings = Settings(chains={"ethereum": {"rpc_urls": ["http://127.0.0.1:9"]}})
    rt = build_chain_runtime(settings, "ethereum")
    try:
        with session_scope(engine) as s:
            add_address(s, family_of, "ethereum", EVM, "customer-43", utc_now())
        with session_scope(engine) as s:
            refresh_watch(s, rt)
        assert [v[1] for v in rt.watch.values()] == ["customer-43"]
        with session_scope(engine) as s:
            remove_address(s, family_of, "ethereum", EVM, "alice", utc_now())
        with session_scope(engine) as s:
            add_address(s, family_of, "ethereum", EVM, "customer-42", utc_now())
            add_address(s, family_of, "ethereum", other, "customer-44", utc_now())
            remove_address(s, family_of, "ethereum", other, "alice", utc_now())
        with session_scope(engine) as s:
            refresh_watch(s, rt)
        assert [v[1] for v in rt.watch.values()] == ["customer-42"]
    finally:
        rt.close()
