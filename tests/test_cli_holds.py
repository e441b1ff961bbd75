"""The review commands through the real `screener` entry point (subprocesses), on a temp SQLite file.

Holds are seeded through the review service (the pipeline's job in production); everything else is the CLI.
"""

from __future__ import annotations

import csv
import io
import json
import os
import re
import shutil
import sqlite3
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from screener.db import make_engine, session_scope
from screener.lists import store as lists_store
from screener.models.deposits import Deposit
from screener.models.screening import IndexCursor
from screener.review import service as review
from screener.screening.verdicts import Decision, Finding, Severity, Verdict
from screener.settings import Settings
from tests.support import cli_fork
from tests.support.ledger_model import NOW, make_deposit, snapshot
from tests.support.tamper import SQLITE_APPEND_ONLY_TRIGGERS

SCREENER = Path(sys.executable).with_name("screener")
SETTINGS = Settings(review={"four_eyes_above_units": 10_000})
OFAC = Finding("ofac.sdn", Severity.BLOCKING, "from", "0x" + "11" * 20, 7, "Garantex Europe OU", ("CYBER2",))
MIXER = Finding("mixer.direct", Severity.REVIEW, "initiator", "0x" + "44" * 20, detail="Tornado Cash 100 ETH pool")


@dataclass
class Cli:
    dir: Path
    config: Path
    db_url: str

    def run(self, *args: str, operator: str | None = "alice") -> subprocess.CompletedProcess[str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("SCREENER_")}
        pre = ["--operator", operator] if operator else []
        return cli_fork.run(
            [str(SCREENER), "--config", str(self.config), *pre, *args],
            capture_output=True,
            text=True,
            env=env,
            cwd=self.dir,
            timeout=60,
        )

    def ok(self, *args: str, operator: str | None = "alice") -> str:
        res = self.run(*args, operator=operator)
        assert res.returncode == 0, res.stderr
        return res.stdout

    def snapshot(self) -> dict[str, list[tuple[object, ...]]]:
        engine = make_engine(self.db_url)
        try:
            return snapshot(engine)
        finally:
            engine.dispose()


@pytest.fixture(scope="module")
def template_db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One `screener db upgrade` per module; tests copy the file."""
    d = tmp_path_factory.mktemp("template")
    cfg = d / "c.toml"
    cfg.write_text(f'[database]\nurl = "sqlite:///{d / "s.db"}"\n')
    res = cli_fork.run([str(SCREENER), "--config", str(cfg), "db", "upgrade"], capture_output=True, text=True)
    assert res.returncode == 0, res.stderr
    return d / "s.db"


def _make_cli(d: Path, template: Path) -> Cli:
    shutil.copy(template, d / "s.db")
    url = f"sqlite:///{d / 's.db'}"
    cfg = d / "c.toml"
    # The credit gate screens every release against the active list: a fresh one (the bundle, accepted as fresh).
    cfg.write_text(
        f'[database]\nurl = "{url}"\n\n[review]\nfour_eyes_above_units = 10000\nidentity = "declared"\n'
        "\n[lists]\nmax_list_age_h = 87600\n"
    )
    return Cli(d, cfg, url)


def _seed(cli: Cli) -> None:
    """H-1 small HOLD, H-2 BLOCK, H-3 big HOLD (four-eyes), H-4 small HOLD; deposit 5 credited."""
    engine = make_engine(cli.db_url)
    with session_scope(engine) as s:
        lists_store.ensure_active(s, NOW)
        for chain in ("ethereum", "bsc"):  # indexes complete: the gate finds nothing the holds do not show
            for kind in ("mixer", "blacklist"):
                s.add(IndexCursor(chain=chain, kind=kind, next_block=10**9, first_block=0, sources="-", updated_at=NOW))
        review.apply_verdict(s, make_deposit(1, 2_500_000), Verdict(Decision.HOLD, (MIXER,)), SETTINGS, NOW)
        review.apply_verdict(
            s, make_deposit(2, 10**27, chain="bsc", decimals=18), Verdict(Decision.BLOCK, (OFAC,)), SETTINGS, NOW
        )
        review.apply_verdict(s, make_deposit(3, 20_000 * 10**6), Verdict(Decision.HOLD, (MIXER,)), SETTINGS, NOW)
        review.apply_verdict(s, make_deposit(4, 7), Verdict(Decision.HOLD, (MIXER,)), SETTINGS, NOW)
        review.apply_verdict(s, make_deposit(5, 9), Verdict(Decision.CREDIT), SETTINGS, NOW)
    with session_scope(engine) as s:
        review.raise_review_flag(s, s.get(Deposit, 5), [OFAC], "list v7 added the sender after credit", NOW)
    engine.dispose()


@pytest.fixture
def cli(tmp_path: Path, template_db: Path) -> Cli:
    c = _make_cli(tmp_path, template_db)
    _seed(c)
    return c


def test_review_workflow_end_to_end(cli: Cli) -> None:
    listed = json.loads(cli.ok("holds", "list", "--json"))
    assert [h["id"] for h in listed] == ["H-1", "H-2", "H-3", "H-4"]
    assert listed[1]["amount_raw"] == str(10**27) and listed[1]["amount"] == "1000000000.000000000000000000"

    shown = cli.ok("holds", "show", "H-2")
    assert "ofac.sdn" in shown and "Garantex Europe OU" in shown and "hold.opened" in shown
    assert "pending" in shown and "custody -> customer:acct-1" in shown

    assert "H-1 released by alice" in cli.ok("holds", "release", "1", "--reason", "exchange hot wallet")
    assert "awaits approval" in cli.ok("holds", "release", "h-2", "--reason", "OFAC delisted", operator="alice")
    unresolved = json.loads(cli.ok("holds", "list", "--json"))  # default: open and awaiting approval
    assert [(h["id"], h["state"]) for h in unresolved] == [
        ("H-2", "awaiting_approval"),
        ("H-3", "open"),
        ("H-4", "open"),
    ]
    assert [h["id"] for h in json.loads(cli.ok("holds", "list", "--state", "open", "--json"))] == ["H-3", "H-4"]
    assert "awaiting_approval (alice)" in cli.ok("holds", "list")
    assert "approved by bob" in cli.ok("holds", "approve", "H-2", "--reason", "checked the delisting", operator="bob")
    assert "by bob [declared identity]: checked the delisting (approving: OFAC delisted)" in cli.ok(
        "holds", "show", "H-2"
    )
    assert "funds moved to return_payable" in cli.ok(
        "holds", "reject", "H-3", "--reason", "customer unknown", "--to", "return", operator="carol"
    )
    assert "note added to H-4 by dave" in cli.ok("holds", "note", "H-4", "asked customer for source", operator="dave")

    released = json.loads(cli.ok("holds", "list", "--state", "released", "--json"))
    assert [(h["id"], h["resolved_by"]) for h in released] == [("H-1", "alice"), ("H-2", "bob")]
    assert released[1]["release_requested_by"] == "alice"

    balances = json.loads(cli.ok("balances", "acct-1", "--json"))
    bsc = next(b for b in balances if b["asset"] == "USDT@bsc")
    assert (bsc["posted"], bsc["pending_credits"]) == (str(10**27), "0")
    assert "return_payable" in cli.ok("balances")

    rows = list(csv.DictReader(io.StringIO(cli.ok("holds", "export", "--format", "csv"))))
    assert [(r["id"], r["state"]) for r in rows] == [
        ("H-1", "released"),
        ("H-2", "released"),
        ("H-3", "rejected"),
        ("H-4", "open"),
    ]
    assert json.loads(cli.ok("holds", "export", "--format", "json"))[2]["rejected_to"] == "return_payable"

    history = json.loads(cli.ok("holds", "show", "H-2", "--json"))["history"]
    assert [(e["kind"], e["actor"]) for e in history][-3:] == [
        ("hold.release_requested", "alice"),
        ("ledger.transfer", "bob"),
        ("hold.released", "bob"),
    ]
    flags = json.loads(cli.ok("flags", "list", "--json"))
    assert [f["id"] for f in flags] == ["F-1"]
    assert "F-1 resolved by erin" in cli.ok("flags", "resolve", "F-1", "--reason", "reported", operator="erin")
    assert cli.ok("audit", "verify").startswith("ok: ")


def test_operator_comes_from_env_when_no_flag(cli: Cli) -> None:
    env_cli = Cli(cli.dir, cli.config, cli.db_url)
    os.environ["SCREENER_OPERATOR"] = "frank"
    try:
        res = cli_fork.run(
            [str(SCREENER), "--config", str(cli.config), "holds", "release", "H-1", "--reason", "ok"],
            capture_output=True,
            text=True,
            env=dict(os.environ),
            timeout=60,
        )
    finally:
        del os.environ["SCREENER_OPERATOR"]
    assert res.returncode == 0, res.stderr
    assert json.loads(env_cli.ok("holds", "list", "--state", "released", "--json"))[0]["resolved_by"] == "frank"


def test_overdue_filter(cli: Cli) -> None:
    # Seeded at NOW (2025) with a 24 h SLA: all are overdue by the real clock.
    assert [h["id"] for h in json.loads(cli.ok("holds", "list", "--overdue", "--json"))] == ["H-1", "H-2", "H-3", "H-4"]


def test_operator_after_the_subcommand(cli: Cli) -> None:
    # Every acting command takes --operator after the subcommand; it wins over the root's.
    out = cli.ok("holds", "release", "H-2", "--reason", "delisted", "--operator", "alice", operator="zed")
    assert "awaits approval" in out
    refused = cli.run("holds", "approve", "H-2", "--operator", "Alice", operator="bob")
    assert refused.returncode != 0 and "cannot also approve" in refused.stderr
    approved = cli.ok("holds", "approve", "H-2", "--operator", "bob", operator=None)
    assert "approved by bob (requested by alice)" in approved
    assert "H-1 rejected by carol" in cli.ok(
        "holds", "reject", "H-1", "--reason", "x", "--to", "return", "--operator", "carol", operator=None
    )
    assert "by dave" in cli.ok("holds", "note", "H-3", "asked", "--operator", "dave", operator="zed")
    assert "F-1 resolved by erin" in cli.ok("flags", "resolve", "F-1", "--reason", "ok", "--operator", "erin")
    history = json.loads(cli.ok("holds", "show", "H-2", "--json"))["history"]
    assert [(e["kind"], e["actor"]) for e in history][-3:] == [
        ("hold.release_requested", "alice"),
        ("ledger.transfer", "bob"),
        ("hold.released", "bob"),
    ]
    assert json.loads(cli.ok("holds", "show", "H-1", "--json"))["resolved_by"] == "carol"


def test_help_shows_the_hold_id_as_required(cli: Cli) -> None:
    env = {**os.environ, "COLUMNS": "120", "NO_COLOR": "1"}
    for args in (["holds", "release"], ["holds", "show"], ["flags", "resolve"]):
        res = cli_fork.run([str(SCREENER), *args, "--help"], capture_output=True, text=True, env=env, timeout=60)
        assert res.returncode == 0, res.stderr
        usage = next(line for line in res.stdout.splitlines() if "Usage:" in line)
        name = "flag" if args[0] == "flags" else "hold"
        assert f"{{{name}}}" in usage and f"[{name}]" not in usage.lower(), usage
        assert "[required]" in res.stdout
        assert "--operator" in res.stdout or args[1] == "show"


def test_csv_export_writes_booleans_like_json(cli: Cli) -> None:
    cli.ok("holds", "release", "H-1", "--reason", "fine")
    rows = list(csv.DictReader(io.StringIO(cli.ok("holds", "export", "--format", "csv"))))
    exported = json.loads(cli.ok("holds", "export", "--format", "json"))
    assert [r["overdue"] for r in rows] == ["false", "true", "true", "true"]
    assert [str(r["overdue"]).lower() for r in exported] == [r["overdue"] for r in rows]
    assert rows[1]["amount"] == "1000000000.000000000000000000" and rows[1]["amount_raw"] == str(10**27)


def _table(text: str) -> dict[tuple[str, str], list[str]]:
    """(account, asset) -> the row's cells, from the balances table (cells are separated by 2+ spaces)."""
    rows = [re.split(r"\s{2,}", line.strip()) for line in text.splitlines()[1:] if "  " in line]
    return {(r[0], r[1]): r[2:] for r in rows if len(r) == 6}


def test_balances_show_pending_debits_and_credits_so_each_asset_balances(cli: Cli) -> None:
    # Open holds: 2.5 + 20000 + 0.000007 USDT on ethereum, 10**9 USDT (18 decimals) on bsc; 9 raw credited.
    out = cli.ok("balances")
    header = ["ACCOUNT", "ASSET", "NORMAL", "POSTED", "PENDING DEBITS", "PENDING CREDITS"]
    assert re.split(r"\s{2,}", out.splitlines()[0].strip()) == header
    rows = _table(out)
    assert rows[("custody", "USDT@ethereum")] == ["debit", "0.000009", "20002.500007", "0.000000"]
    assert rows[("customer:acct-1", "USDT@ethereum")] == ["credit", "0.000009", "0.000000", "20002.500007"]
    big = "1000000000.000000000000000000"
    assert rows[("custody", "USDT@bsc")] == ["debit", "0.000000000000000000", big, "0.000000000000000000"]
    assert rows[("customer:acct-1", "USDT@bsc")] == ["credit", "0.000000000000000000", "0.000000000000000000", big]
    assert (
        "USDT@ethereum: posted 0.000009 on debit-normal accounts = 0.000009 on credit-normal; "
        "pending debits 20002.500007 = pending credits 20002.500007; balanced"
    ) in out.splitlines()
    assert f"pending debits {big} = pending credits {big}; balanced" in out

    custody = next(b for b in json.loads(cli.ok("balances", "custody", "--json")) if b["asset"] == "USDT@ethereum")
    assert (custody["pending_debits"], custody["pending_debits_units"]) == ("20002500007", "20002.500007")
    assert (custody["pending_credits"], custody["posted"], custody["decimals"]) == ("0", "9", 6)
    # One account's balances alone need not balance: no per-asset check line then.
    assert "balanced" not in cli.ok("balances", "custody")


def test_holds_list_and_show_use_token_units(cli: Cli) -> None:
    listed = cli.ok("holds", "list")
    assert "2.500000" in listed and "20000.000000" in listed and "0.000007" in listed
    shown = cli.ok("holds", "show", "H-3")
    assert "20000.000000 USDT on ethereum" in shown and "(raw 20000000000)" in shown
    assert "custody -> customer:acct-1  20000.000000" in shown


# ---------------------------------------------------------------- bad input changes nothing


@pytest.fixture(scope="module")
def bad_cli(tmp_path_factory: pytest.TempPathFactory, template_db: Path) -> Iterator[Cli]:
    """H-1 released, H-2 (BLOCK) awaiting approval requested by alice, H-3 open, H-4 rejected."""
    c = _make_cli(tmp_path_factory.mktemp("bad"), template_db)
    _seed(c)
    c.ok("holds", "release", "H-1", "--reason", "fine")
    c.ok("holds", "release", "H-2", "--reason", "delisted", operator="alice")
    c.ok("holds", "reject", "H-4", "--reason", "spam", "--to", "return")
    yield c


BAD_INPUTS = {
    "unknown-id": (["holds", "show", "H-999"], "hold H-999 does not exist"),
    "unknown-id-release": (["holds", "release", "999", "--reason", "x"], "hold H-999 does not exist"),
    "malformed-id": (["holds", "release", "abc", "--reason", "x"], "hold id 'abc' is not valid"),
    "missing-id": (["holds", "release", "--reason", "x"], "the hold id is required"),
    "missing-id-lists": (["holds", "approve"], "`screener holds list` shows the ids"),
    "missing-id-show": (["holds", "show"], "the hold id is required"),
    "blank-id": (["holds", "note", " ", "hello"], "the hold id is required"),
    "missing-flag-id": (["flags", "resolve", "--reason", "x"], "`screener flags list` shows the ids"),
    "second-release": (["holds", "release", "H-1", "--reason", "again"], "already released"),
    "release-awaiting": (["holds", "release", "H-2", "--reason", "again"], "already awaits approval"),
    "self-approval": (["holds", "approve", "H-2"], "cannot also approve"),
    "self-approval-case": (["holds", "approve", "H-2", "--operator-case"], "cannot also approve"),
    # --operator after the subcommand is accepted, and it wins over the root's (bob here).
    "self-approval-after": (["holds", "approve", "H-2", "--operator", "alice", "--root-bob"], "cannot also approve"),
    "approve-open": (["holds", "approve", "H-3"], "nothing to approve"),
    "approve-released": (["holds", "approve", "H-1"], "already released"),
    "reject-released": (["holds", "reject", "H-1", "--reason", "x", "--to", "return"], "already released"),
    "reject-rejected": (["holds", "reject", "H-4", "--reason", "x", "--to", "return"], "already rejected"),
    "reject-block-return": (["holds", "reject", "H-2", "--reason", "x", "--to", "return"], "cannot be returned"),
    "missing-reason": (["holds", "release", "H-3"], "--reason is missing or empty"),
    "empty-reason": (["holds", "release", "H-3", "--reason", "   "], "--reason is missing or empty"),
    "reject-no-reason": (["holds", "reject", "H-3", "--to", "return"], "--reason is missing or empty"),
    "bad-to": (["holds", "reject", "H-3", "--reason", "x", "--to", "elsewhere"], "--to must be blocked or return"),
    "missing-to": (["holds", "reject", "H-3", "--reason", "x"], "--to is required: blocked"),
    "blank-to": (["holds", "reject", "H-3", "--reason", "x", "--to", " "], "or return (owed back to the sender)"),
    "bad-state": (["holds", "list", "--state", "closed"], "--state must be one of"),
    "bad-format": (["holds", "export", "--format", "xml"], "--format must be csv or json"),
    "empty-note": (["holds", "note", "H-3", ""], "note text is missing or empty"),
    "note-unknown": (["holds", "note", "77", "hello"], "hold H-77 does not exist"),
    "flag-unknown": (["flags", "resolve", "F-9", "--reason", "x"], "flag F-9 does not exist"),
    "flag-no-reason": (["flags", "resolve", "F-1"], "--reason is missing or empty"),
    "bad-flag-state": (["flags", "list", "--state", "closed"], "--state must be open, resolved or all"),
    "unknown-account": (["balances", "nobody"], "no ledger account named 'nobody'"),
}


@pytest.mark.parametrize("case", list(BAD_INPUTS))
def test_bad_input_is_one_line_and_changes_nothing(bad_cli: Cli, case: str) -> None:
    args, message = BAD_INPUTS[case]
    operator = "alice"
    if "--operator-case" in args:
        args, operator = [a for a in args if a != "--operator-case"], " ALICE "
    if "--root-bob" in args:
        args, operator = [a for a in args if a != "--root-bob"], "bob"
    before = bad_cli.snapshot()
    res = bad_cli.run(*args, operator=operator)
    assert res.returncode != 0
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), res.stderr
    assert message in lines[0]
    assert bad_cli.snapshot() == before


# ---------------------------------------------------------------- audit verify through the CLI


@pytest.mark.parametrize(
    ("sql", "message"),
    [
        ('UPDATE audit_events SET payload = \'{"state": "open"}\' WHERE seq = 6', "event 6 (hold.opened) was altered"),
        ("DELETE FROM audit_events WHERE seq = 4", "event 4 is missing"),
        (
            "UPDATE ledger_transfers SET amount = '2500001' WHERE step = 'hold' AND amount = '2500000'",
            "no longer matches event 3",
        ),
        (
            "UPDATE ledger_accounts SET credits_pending = '1' WHERE name = 'customer:acct-1' AND asset = 'USDT@bsc'",
            "credits_pending is 1",
        ),
    ],
    ids=["event-payload", "deleted-event", "transfer-amount", "account-balance"],
)
def test_audit_verify_names_tampering(cli: Cli, sql: str, message: str) -> None:
    with sqlite3.connect(cli.dir / "s.db") as conn:
        for trigger in SQLITE_APPEND_ONLY_TRIGGERS:  # an attacker with the file drops them first
            conn.execute(f"DROP TRIGGER IF EXISTS {trigger}")
        assert conn.execute(sql).rowcount == 1
    res = cli.run("audit", "verify")
    assert res.returncode != 0
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: audit verify failed: ") and message in lines[0], res.stderr


@pytest.mark.parametrize("label", ["H-\uff12", "H-\u09ea", "\uff12", "F-\uff11"])  # fullwidth 2, Bengali 4, ...
def test_ids_take_ascii_digits_only(cli: Cli, label: str) -> None:
    """int() reads any Unicode digit: a fullwidth `H-2` would be hold 2. Only 0-9 name a hold or a flag."""
    before = cli.snapshot()
    command = ("flags", "resolve", label, "--reason", "x") if label.startswith("F") else ("holds", "release", label)
    res = cli.run(*command, "--reason", "x") if command[0] == "holds" else cli.run(*command)
    assert res.returncode == 2 and "is not valid" in res.stderr and len(res.stderr.splitlines()) == 1, res.stderr
    assert cli.snapshot() == before


def test_stored_text_cannot_forge_a_line_or_a_terminal_sequence(cli: Cli) -> None:
    """A note is kept as typed, but shown escaped: its newline does not print a fake history line."""
    forged = "ok\n  #99 2026-12-01T00:00:00 hold.released         by bob: approved\x1b[2J\u202e"
    cli.ok("holds", "note", "H-1", forged)
    shown = cli.ok("holds", "show", "H-1")
    assert "\n  #99" not in shown and "\x1b" not in shown and "\u202e" not in shown
    assert "ok\\n  #99" in shown and "\\x1b[2J\\u202e" in shown
    listed = json.loads(cli.ok("holds", "show", "H-1", "--json"))
    assert any(e["payload"].get("text") == forged for e in listed["history"])  # stored exactly as typed
