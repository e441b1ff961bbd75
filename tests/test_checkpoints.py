"""Audit checkpoints kept outside the database (docs/security.md): the only way to see that the newest events
were deleted (or deleted and re-written) together with the head row. SQLite and PostgreSQL; the CLI on SQLite;
signatures by real ssh-keygen keys."""

from __future__ import annotations

import json
import subprocess
from datetime import timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine
from sqlmodel import select

from screener.daemon.checkpoint import write_checkpoint
from screener.db import session_scope
from screener.ledger import audit
from screener.ledger import checkpoints as cps
from screener.ledger.audit import verify_chain
from screener.ledger.checkpoint_rules import CHECKPOINT_NAMESPACE, checkpoint_json
from screener.models.daemon import AlertOutbox
from screener.settings import Settings
from tests.support import cli_fork
from tests.support.ledger_model import NOW
from tests.support.reliability import SCREENER, clean_env
from tests.support.tamper import drop_append_only

EVENTS = 20


def _events(engine: Engine, n: int, start: int = 0) -> None:
    with session_scope(engine) as s:
        for i in range(start, start + n):
            audit.append(s, "test.event", f"t:{i}", {"i": i}, "tester", NOW + timedelta(seconds=i))


def _cut_tail(engine: Engine, n: int) -> None:
    """Delete the newest ``n`` events and point the head at the one before, as the owner (or the file's holder)."""
    with engine.begin() as conn:
        drop_append_only(conn)
        head = conn.execute(sa.text("SELECT seq FROM audit_head")).scalar_one()
        keep = head - n
        conn.execute(sa.text("DELETE FROM audit_events WHERE seq > :k"), {"k": keep})
        new_hash = conn.execute(sa.text("SELECT hash FROM audit_events WHERE seq = :k"), {"k": keep}).scalar_one()
        conn.execute(sa.text("UPDATE audit_head SET seq = :k, hash = :h"), {"k": keep, "h": new_hash})


def _judge(engine: Engine, text: str) -> list[str]:
    with session_scope(engine) as s:
        head = verify_chain(s).head_seq
        return cps.judge_text(s, text, head).problems


@pytest.mark.parametrize("n", [1, 2, 10])
def test_a_cut_or_rewritten_tail_is_found_only_with_a_checkpoint(engine: Engine, n: int) -> None:
    _events(engine, EVENTS)
    with session_scope(engine) as s:
        line = checkpoint_json(cps.take(s, NOW))
    _cut_tail(engine, n)
    with session_scope(engine) as s:
        assert verify_chain(s).ok  # the documented gap: the shorter chain verifies on its own
    [problem] = _judge(engine, line)
    assert "truncated" in problem and f"ends at seq {EVENTS - n}" in problem
    _events(engine, n, start=1000)  # ... and re-written to the same length
    with session_scope(engine) as s:
        assert verify_chain(s).ok
    [problem] = _judge(engine, line)
    assert f"event {EVENTS} no longer has the hash" in problem


def test_older_checkpoints_still_match_and_the_newest_matching_is_named(engine: Engine) -> None:
    lines = []
    for start in (0, 5, 10):
        _events(engine, 5, start)
        with session_scope(engine) as s:
            lines.append(checkpoint_json(cps.take(s, NOW)))
    _cut_tail(engine, 3)
    with session_scope(engine) as s:
        judged = cps.judge_text(s, "\n".join([*lines, "{not json", ""]), verify_chain(s).head_seq)
    assert [c.seq for c in judged.matched] == [5, 10] and judged.last_good and judged.last_good.seq == 10
    assert len(judged.problems) == 2 and "line 4 is not a checkpoint" in judged.problems[0]


def _cli(cfg: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    cmd = [str(SCREENER), "--config", str(cfg), *args]
    return cli_fork.run(cmd, capture_output=True, text=True, env=clean_env(**env), timeout=120)


def test_cli_checkpoint_then_verify_with_the_file_and_the_head(sqlite_engine: Engine, tmp_path: Path) -> None:
    _events(sqlite_engine, EVENTS)
    cfg = tmp_path / "c.toml"
    cfg.write_text(f'[database]\nurl = "{sqlite_engine.url}"\n')
    file = tmp_path / "cps" / "checkpoints.jsonl"
    taken = _cli(cfg, "audit", "checkpoint", "--append", str(file))
    assert taken.returncode == 0, taken.stderr
    printed = json.loads(taken.stdout)
    assert printed["seq"] == EVENTS and file.read_text().strip() == taken.stdout.strip()
    ok = _cli(cfg, "audit", "verify", "--checkpoints", str(file), "--expect-head", printed["head_hash"])
    assert ok.returncode == 0 and "checkpoints: 1 match the chain" in ok.stdout, ok.stderr
    _cut_tail(sqlite_engine, 2)
    assert _cli(cfg, "audit", "verify").returncode == 0  # undetectable without a checkpoint
    for extra in (["--checkpoints", str(file)], ["--expect-head", printed["head_hash"]]):
        res = _cli(cfg, "audit", "verify", *extra)
        assert res.returncode == 1 and res.stdout == "", (res.returncode, res.stdout, res.stderr)
        assert res.stderr.startswith("error: audit verify failed: ") and len(res.stderr.splitlines()) == 1
    missing = _cli(cfg, "audit", "verify", "--checkpoints", str(tmp_path / "nope.jsonl"))
    assert missing.returncode == 2 and "cannot read checkpoint file" in missing.stderr


def test_signed_checkpoints_verify_and_a_forged_one_does_not(sqlite_engine: Engine, tmp_path: Path) -> None:
    from tests.test_signing import _keygen, _sign_with

    keys = {name: _keygen(tmp_path, name) for name in ("alice", "mallory")}
    pub = " ".join(keys["alice"].with_suffix(".pub").read_text().split()[:2])
    allowed = tmp_path / "allowed_signers"
    allowed.write_text(f'alice namespaces="screener-checkpoint" {pub}\n')
    cfg = tmp_path / "c.toml"
    cfg.write_text(
        f'[database]\nurl = "{sqlite_engine.url}"\n\n[review]\nidentity = "declared"\nsigning = "ssh"\n'
        f'allowed_signers_path = "{allowed}"\n'
    )
    _events(sqlite_engine, 3)
    file = tmp_path / "checkpoints.jsonl"

    def checkpoint_as_alice(key: str) -> subprocess.CompletedProcess[str]:
        """`audit checkpoint` by alice, signing with ``key``'s private key."""
        args = ("--operator", "alice", "audit", "checkpoint", "--append", str(file))
        return _cli(cfg, *args, SCREENER_REVIEW__SIGNING_KEY_PATH=str(keys[key]))

    good = checkpoint_as_alice("alice")
    assert good.returncode == 0 and json.loads(good.stdout)["signer"] == "alice", good.stderr
    assert _cli(cfg, "audit", "verify", "--checkpoints", str(file)).returncode == 0
    forged = checkpoint_as_alice("mallory")
    assert forged.returncode == 2 and "nothing was appended" in forged.stderr  # checked at once
    # ... so mallory writes the line herself, signed with her key and naming alice
    with session_scope(sqlite_engine) as s:
        cp = cps.take(s, NOW, _sign_with(keys["mallory"], CHECKPOINT_NAMESPACE), "alice")
    with file.open("a") as fh:
        fh.write(checkpoint_json(cp) + "\n")
    res = _cli(cfg, "audit", "verify", "--checkpoints", str(file), "--json")
    assert res.returncode == 1
    problems = json.loads(res.stdout)["problems"]
    assert len(problems) == 1 and "line 2" in problems[0] and "does not verify for alice" in problems[0], problems


def test_the_daemon_job_keeps_and_sends_a_checkpoint_once_per_head(sqlite_engine: Engine, tmp_path: Path) -> None:
    file = tmp_path / "daemon.jsonl"
    settings = Settings(database={"url": str(sqlite_engine.url)}, audit={"checkpoint_path": str(file)})
    _events(sqlite_engine, 4)
    first = write_checkpoint(sqlite_engine, settings, NOW, None)
    assert first is not None and first.seq == 4
    assert write_checkpoint(sqlite_engine, settings, NOW, first.seq) is None  # nothing new: nothing kept
    _events(sqlite_engine, 1, start=10)
    second = write_checkpoint(sqlite_engine, settings, NOW, first.seq)
    assert second is not None and [json.loads(x)["seq"] for x in file.read_text().splitlines()] == [4, 5]
    with session_scope(sqlite_engine) as s:
        sent = s.exec(select(AlertOutbox).where(AlertOutbox.kind == "audit_checkpoint")).all()
    assert [json.loads(a.payload["checkpoint"])["seq"] for a in sent] == [4, 5]


def test_bad_arguments_to_verify_are_errors_not_tampering(sqlite_engine: Engine, tmp_path: Path) -> None:
    """A typo in what the auditor passes is exit 2 (the check could not run), never exit 1 (tampering)."""
    _events(sqlite_engine, 3)
    cfg = tmp_path / "c.toml"
    cfg.write_text(f'[database]\nurl = "{sqlite_engine.url}"\n')
    empty = tmp_path / "empty.jsonl"
    empty.write_text("\n")
    for args, said in (
        (["--expect-head", "abc"], "is not a head hash"),
        (["--checkpoints", str(empty)], "holds no checkpoints"),
        (["--signed-from", "1000"], "past the chain's end"),
    ):
        res = _cli(cfg, "audit", "verify", *args)
        assert res.returncode == 2 and said in res.stderr and len(res.stderr.splitlines()) == 1, (args, res.stderr)


def test_a_database_from_before_row_seals_is_told_to_upgrade(sqlite_engine: Engine, tmp_path: Path) -> None:
    """Rows with no seal and no baseline anywhere in the chain: written by an older version, exit 2 with the
    remedy; after `db upgrade` records the baseline, verify passes."""
    with sqlite_engine.begin() as conn:
        conn.execute(
            sa.text(
                "INSERT INTO deposit_addresses (chain, address, account, created_at) "
                "VALUES ('ethereum', '0x' || hex(randomblob(20)), 'old', '2025-01-01 00:00:00.000000')"
            )
        )
    cfg = tmp_path / "c.toml"
    cfg.write_text(f'[database]\nurl = "{sqlite_engine.url}"\n')
    res = _cli(cfg, "audit", "verify")
    assert res.returncode == 2 and "predates row seals" in res.stderr and "db upgrade" in res.stderr, res.stderr
    assert _cli(cfg, "db", "upgrade").returncode == 0
    assert _cli(cfg, "audit", "verify").returncode == 0
