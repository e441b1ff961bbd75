"""`screener lists ...` through the real entry point (a subprocess per command), on SQLite."""

from __future__ import annotations

import json
import os
import pwd
import sqlite3
import subprocess
import sys
from datetime import date
from pathlib import Path

import pytest

from sanctions_lists.ofac import NS_SLS
from tests.support import cli_fork
from tests.support.advanced_writer import load_per_asset_lists, render
from tests.support.http_server import Reply, serve

SCREENER = Path(sys.executable).with_name("screener")


@pytest.fixture
def cli(tmp_path: Path):  # type: ignore[no-untyped-def]
    env = {k: v for k, v in os.environ.items() if not k.startswith("SCREENER_")}
    env["SCREENER_DATABASE__URL"] = f"sqlite:///{tmp_path / 'cli.db'}"
    env["SCREENER_LISTS__RETRY_WAIT_S"] = "0.01"

    def run(*args: str, **extra_env: str) -> subprocess.CompletedProcess[str]:
        return cli_fork.run(
            [str(SCREENER), *args], cwd=tmp_path, env={**env, **extra_env}, capture_output=True, text=True, timeout=120
        )

    assert run("db", "upgrade").returncode == 0
    return run


def _one_line(text: str) -> str:
    lines = text.splitlines()
    assert len(lines) == 1, text
    return lines[0]


def test_refresh_prints_one_line_and_exit_codes(cli, shared_data: Path, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    good = tmp_path / "sdn.xml"
    good.write_bytes(render(load_per_asset_lists(shared_data / "ofac" / "2025-05-30"), published=date(2025, 5, 30)))
    page = tmp_path / "page.html"
    page.write_text("<!DOCTYPE html><html><body>Maintenance</body></html>")

    updated = cli("lists", "refresh", "--source", str(good))
    assert updated.returncode == 0 and updated.stderr == ""
    assert _one_line(updated.stdout).startswith("updated: list version 2 active (634 entries")

    unchanged = cli("lists", "refresh", "--source", str(good))
    assert unchanged.returncode == 0 and unchanged.stderr == ""
    assert _one_line(unchanged.stdout).startswith("unchanged: list version 2 verified")

    rejected = cli("lists", "refresh", "--source", str(page))
    assert rejected.returncode == 1 and rejected.stdout == ""
    line = _one_line(rejected.stderr)
    assert line.startswith("rejected:") and "HTML page" in line and line.endswith("list version 2 stays active")

    missing = cli("lists", "refresh", "--source", str(tmp_path / "nope.xml"))
    assert missing.returncode == 1 and "cannot read list file" in _one_line(missing.stderr)

    status = cli("lists", "status", "--json")
    assert status.returncode == 0
    data = json.loads(status.stdout)
    assert data["version_id"] == 2 and data["stale"] is False and data["previous_version_id"] == 1


def test_status_diff_check(cli, shared_data: Path, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    before = tmp_path / "before.xml"
    # Both published after the bundle (2025-05-30): a refresh refuses a list published before the active one.
    before.write_bytes(render(load_per_asset_lists(shared_data / "ofac" / "2025-03-05"), published=date(2025, 6, 1)))
    after = render(
        load_per_asset_lists(shared_data / "ofac" / "2025-03-22"), published=date(2025, 6, 2), namespace=NS_SLS
    )
    # The drop guard counts per screened family: these steps remove 9 of 33 Tron, then 90 of 157 EVM addresses.
    relaxed = {"SCREENER_LISTS__MAX_DROP_FRACTION": "0.6"}
    assert cli("lists", "refresh", "--source", str(before), **relaxed).returncode == 0
    with serve() as server:
        url = server.route("/SDN_ADVANCED.XML", Reply(status=503), Reply(body=after))
        result = cli("lists", "refresh", "--source", url, **relaxed)
    assert result.returncode == 0 and "-90 entries" in _one_line(result.stdout)

    status = cli("lists", "status")
    assert status.returncode == 0, status.stderr
    assert "active list version 3 (advanced_xml) from " + url in status.stdout
    assert "published 2025-06-02" in status.stdout and "entries 624" in status.stdout and "ETH=63" in status.stdout
    assert "stale" not in status.stderr.lower()

    diff = cli("lists", "diff")
    lines = diff.stdout.splitlines()
    assert diff.returncode == 0
    assert sum(1 for line in lines if line.startswith("- ETH")) == 90 and not any(x.startswith("+") for x in lines)
    assert lines[-1] == "version 2 -> 3: +0 -90 entries (+0 -90 addresses)"
    explicit = cli("lists", "diff", "1", "2")
    assert explicit.returncode == 0 and explicit.stdout.splitlines()[-1].startswith("version 1 -> 2: ")

    mixed = "0x" + "983a81ca6FB1e441266D2FbcB7D8E530AC2E05A2".swapcase()  # listed under ETH, USDC and USDT
    found = cli("lists", "check", mixed)
    assert found.returncode == 1 and found.stdout.startswith(f"MATCH: {mixed} (evm)")  # exit 1: listed
    assert "USDT  0x983a81ca6FB1e441266D2FbcB7D8E530AC2E05A2" in found.stdout
    on_polygon = cli("lists", "check", mixed.lower(), "--chain", "polygon", "--json")
    assert on_polygon.returncode == 1 and json.loads(on_polygon.stdout)["listed"] is True
    assert [m["tag"] for m in json.loads(on_polygon.stdout)["matches"]] == ["ETH", "USDC", "USDT"]

    tron = next(a for t, a in load_per_asset_lists(shared_data / "ofac" / "2025-03-22") if t == "TRX")
    on_tron = cli("lists", "check", tron, "--chain", "tron")
    assert on_tron.returncode == 1 and "MATCH" in on_tron.stdout and "TRX" in on_tron.stdout
    wrong_family = cli("lists", "check", tron, "--chain", "ethereum")
    assert wrong_family.returncode == 2 and "not an EVM address" in _one_line(wrong_family.stderr)

    delisted = "0x8589427373D6D84E98730D7795D8f6f8731FDA16"  # Tornado Cash, removed 2025-03-21
    gone = cli("lists", "check", delisted)
    assert gone.returncode == 0 and gone.stdout.startswith("no match:")  # exit 0: not listed
    gone_json = cli("lists", "check", delisted, "--json")
    assert gone_json.returncode == 0 and json.loads(gone_json.stdout)["listed"] is False


def test_refresh_accept_undated_is_explicit_and_audited(cli, shared_data: Path, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """An undated sdn.csv replaces the dated bundle only with --accept-undated; the audit names the OS account."""
    csv = str(shared_data / "ofac_raw" / "sdn_csv" / "sdn_2024-05-03.csv")
    relaxed = {"SCREENER_LISTS__MAX_DROP_FRACTION": "1.0"}  # sdn.csv shows far fewer addresses than the bundle
    refused = cli("lists", "refresh", "--source", csv, **relaxed)
    assert refused.returncode == 1 and "no publication date" in _one_line(refused.stderr)
    assert "--accept-undated" in refused.stderr
    accepted = cli("lists", "refresh", "--source", csv, "--accept-undated", **relaxed)
    assert accepted.returncode == 0, accepted.stderr
    assert _one_line(accepted.stdout).startswith("updated: list version 2 active")
    with sqlite3.connect(tmp_path / "cli.db") as db:
        rows = db.execute("select kind, subject, actor from audit_events where kind like 'list.accept%'").fetchall()
    assert rows == [("list.accepted_undated", "list_version:2", pwd.getpwuid(os.geteuid()).pw_name)]
    verify = cli("audit", "verify")
    # the seal baseline of `db upgrade`, the two activations and the acceptance of the undated list
    assert verify.returncode == 0 and _one_line(verify.stdout).startswith("ok: 4 events"), verify.stderr


def test_check_and_diff_refuse_bad_input_in_one_line_and_change_nothing(cli, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    evm = "0x983a81ca6FB1e441266D2FbcB7D8E530AC2E05A2"
    cases = [
        (("lists", "check", "notanaddress"), "not an address of any known format"),
        (("lists", "check", "0x1234"), "not an EVM address"),
        (("lists", "check", "TQtTBBMiv22XKo9aCygNim3h2yVJTkRXD8"), "checksum"),  # a Tron address with a typo
        (("lists", "check", evm, "--chain", "foo"), "unknown chain 'foo'"),
        (("lists", "check", "notanaddress", "--chain", "tron"), "not a hex Tron address"),
        (("lists", "check", "TQtTBBMiv23XKo9aCygNim3h2yVJTkRXD8", "--chain", "bsc"), "not an EVM address"),
        (("lists", "diff", "x"), "list version 'x' is not a version id"),
        (("lists", "diff", "1", "1.5"), "list version '1.5' is not a version id"),
    ]
    for args, needle in cases:
        res = cli(*args)
        assert res.returncode == 2 and res.stdout == "", (args, res)
        assert needle in _one_line(res.stderr) and _one_line(res.stderr).startswith("error: "), (args, res.stderr)
    # None of them touched the database: the bundled list is imported by the first good read only.
    with sqlite3.connect(tmp_path / "cli.db") as db:
        assert db.execute("SELECT count(*) FROM list_versions").fetchone() == (0,)


def test_check_on_tron_takes_the_hex_form_as_addresses_add_does(cli) -> None:  # type: ignore[no-untyped-def]
    # A 0x + 40 hex address on a Tron chain is Tron's hex form (as `addresses add tron 0x...` accepts it):
    # it is looked up as the T-address it encodes, which the output names.
    res = cli("lists", "check", "0x" + "a3" * 20, "--chain", "tron")
    assert res.returncode == 0, res.stderr
    assert res.stdout.startswith("no match: 0x" + "a3" * 20 + " (tron, TQtTBBMiv23XKo9aCygNim3h2yVJTkRXD8)")
    help_text = cli("lists", "check", "--help").stdout
    assert "0 = not listed, 1 = listed" in help_text and "2 = bad" in help_text
