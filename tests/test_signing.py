"""Signed decisions (review.signing = "ssh", docs/security.md): real keys made with ssh-keygen, real
`ssh-keygen -Y sign/verify`, a real SQLite database and the real CLI.

Identities are declared here (one OS account plays every reviewer; tests/test_identity.py covers real accounts):
the subject is the signature, which must come from the key the allowed-signers file lists for that name.
"""

from __future__ import annotations

import json
import subprocess
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy.engine import Engine

from screener.db import make_engine, session_scope, upgrade
from screener.decide.credit import fresh_screen
from screener.ledger import audit
from screener.review import service as review
from screener.review.signing import Signing
from screener.review.statements import NAMESPACE, digest, statement
from screener.screening.verdicts import Decision, Verdict
from screener.settings import Settings
from screener_base.errors import ReviewError
from tests.support import cli_fork
from tests.support.ledger_model import NOW, make_deposit, make_screenable, snapshot
from tests.support.reliability import SCREENER, clean_env
from tests.test_db_roles import BIG, MIXER

SIGNERS = ("alice", "bob", "shared")  # "shared": one key listed for carol and dave
KEYS = (*SIGNERS, "mallory")  # mallory's key is listed for nobody


def _keygen(d: Path, name: str) -> Path:
    path = d / name
    cli_fork.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", name, "-f", str(path)], check=True)
    return path


def _sign_with(key: Path, namespace: str = NAMESPACE) -> Callable[[str], str]:
    def sign(text: str) -> str:
        cmd = ["ssh-keygen", "-q", "-Y", "sign", "-n", namespace, "-f", str(key)]
        return cli_fork.run(cmd, input=text.encode(), capture_output=True, check=True).stdout.decode()

    return sign


@dataclass
class World:
    dir: Path
    config: Path
    allowed: Path
    keys: dict[str, Path]
    engine: Engine
    big: int  # a four-eyes hold (50,000 USDT, Tornado Cash finding)
    small: int  # a hold one reviewer may release
    flag: int

    def cli(self, key: str | Path, *args: str) -> subprocess.CompletedProcess[str]:
        path = self.keys.get(str(key), Path(key))
        env = clean_env(SCREENER_REVIEW__SIGNING_KEY_PATH=str(path))
        cmd = [str(SCREENER), "--config", str(self.config), *args]
        return cli_fork.run(cmd, capture_output=True, text=True, env=env, timeout=120)

    def settings(self) -> Settings:
        return Settings(
            database={"url": f"sqlite:///{self.dir / 's.db'}"},
            review={"signing": "ssh", "allowed_signers_path": str(self.allowed), "identity": "declared"},
            lists={"max_list_age_h": 87600},
        )

    def signing(self, sign: Callable[[str], str]) -> Signing:
        return Signing(True, sign, self.allowed)


@pytest.fixture
def world(tmp_path: Path) -> Iterator[World]:
    keys = {name: _keygen(tmp_path, name) for name in KEYS}
    pub = {name: " ".join(keys[name].with_suffix(".pub").read_text().split()[:2]) for name in KEYS}
    ns = f'namespaces="{NAMESPACE}"'
    lines = [f"{n} {ns} {pub[n]}" for n in ("alice", "bob")] + [f"carol,dave {ns} {pub['shared']}"]
    allowed = tmp_path / "allowed_signers"
    allowed.write_text("\n".join(lines) + "\n")
    config = tmp_path / "c.toml"
    config.write_text(
        f'[database]\nurl = "sqlite:///{tmp_path / "s.db"}"\n\n[review]\nidentity = "declared"\nsigning = "ssh"\n'
        f'allowed_signers_path = "{allowed}"\nfour_eyes_above_units = 10000\n\n[lists]\nmax_list_age_h = 87600\n'
    )
    engine = make_engine(f"sqlite:///{tmp_path / 's.db'}")
    upgrade(engine)
    fresh = Settings(lists={"max_list_age_h": 87600})
    with session_scope(engine) as s:
        make_screenable(s, NOW)
        big = review.apply_verdict(s, make_deposit(1, BIG), Verdict(Decision.HOLD, (MIXER,)), fresh, NOW)
        small = review.apply_verdict(s, make_deposit(2, 5_000_000), Verdict(Decision.HOLD, (MIXER,)), fresh, NOW)
        credited = make_deposit(3, 7_000_000)
        review.apply_verdict(s, credited, Verdict(Decision.CREDIT), fresh, NOW)
        flag = review.raise_review_flag(s, credited, [MIXER], "new evidence after the credit", NOW)
        assert big and small and big.id and small.id and flag.id
        ids = (big.id, small.id, flag.id)
    try:
        yield World(tmp_path, config, allowed, keys, engine, *ids)
    finally:
        engine.dispose()


def _refused(res: subprocess.CompletedProcess[str], *words: str) -> None:
    assert res.returncode == 2 and res.stdout == "", (res.returncode, res.stdout, res.stderr)
    assert res.stderr.startswith("error: ") and len(res.stderr.strip().splitlines()) == 1, res.stderr
    for word in words:
        assert word in res.stderr, res.stderr


def test_signed_four_eyes_then_verified_by_the_tool_and_by_ssh_keygen_alone(world: World) -> None:
    big, small = f"H-{world.big}", f"H-{world.small}"
    asked = world.cli("alice", "--operator", "alice", "holds", "release", big, "--reason", "known customer")
    assert asked.returncode == 0 and "awaits approval" in asked.stdout, asked.stderr
    approved = world.cli("bob", "--operator", "bob", "holds", "approve", big)
    assert approved.returncode == 0 and "credited" in approved.stdout, approved.stderr
    assert world.cli("bob", "--operator", "bob", "holds", "release", small, "--reason", "small").returncode == 0
    resolved = world.cli("alice", "--operator", "alice", "flags", "resolve", f"F-{world.flag}", "--reason", "seen")
    assert resolved.returncode == 0, resolved.stderr

    verified = world.cli("alice", "audit", "verify")
    assert verified.returncode == 0, verified.stderr
    assert "signatures: 4 signed decision(s) verified" in verified.stdout, verified.stdout

    exported = world.cli("alice", "holds", "export", "--format", "json")
    assert exported.returncode == 0, exported.stderr
    signed = [sig for hold in json.loads(exported.stdout) for sig in hold["signatures"]]
    assert sorted(s["principal"] for s in signed) == ["alice", "bob", "bob"]
    flags = world.cli("alice", "flags", "list", "--state", "all", "--json")
    signed += [sig for flag in json.loads(flags.stdout) for sig in flag["signatures"]]
    assert [s["principal"] for s in signed][-1] == "alice" and len(signed) == 4
    # The auditor's check: the exported statement and signature, ssh-keygen, the allowed-signers file. No screener.
    for n, sig in enumerate(signed):
        (world.dir / f"{n}.sig").write_text(sig["signature"])
        cmd = ["ssh-keygen", "-Y", "verify", "-f", str(world.allowed), "-I", sig["principal"], "-n", sig["namespace"]]
        res = cli_fork.run(
            [*cmd, "-s", str(world.dir / f"{n}.sig")], input=sig["statement"].encode(), capture_output=True
        )
        assert res.returncode == 0 and b"Good" in res.stdout, res.stderr
        assert json.loads(sig["statement"])["actor"] == sig["principal"]


def test_unsigned_forged_and_one_key_pairs_are_refused_and_change_nothing(world: World) -> None:
    big = f"H-{world.big}"
    before = snapshot(world.engine)
    release = ("holds", "release", big, "--reason", "ok")
    _refused(world.cli(world.dir / "no-such-key", "--operator", "alice", *release), "no signing key")
    _refused(world.cli("mallory", "--operator", "alice", *release), "does not verify for alice")
    _refused(world.cli("bob", "--operator", "alice", *release), "does not verify for alice")
    assert snapshot(world.engine) == before
    # carol and dave are two names on one key: a pair signed by it is one person.
    assert world.cli("shared", "--operator", "carol", *release).returncode == 0
    before = snapshot(world.engine)
    _refused(world.cli("shared", "--operator", "dave", "holds", "approve", big), "same key as its request")
    assert snapshot(world.engine) == before
    assert world.cli("bob", "--operator", "bob", "holds", "approve", big).returncode == 0


def _release_with(world: World, hold_id: int, sign: Callable[[str], str], actor: str = "alice") -> None:
    settings = world.settings()
    with session_scope(world.engine) as s:
        review.release_hold(
            s,
            hold_id,
            "ok",
            actor,
            settings,
            NOW,
            screen_now=fresh_screen(s, settings, NOW),
            signing=world.signing(sign),
        )


def test_wrong_namespace_replayed_and_empty_signatures_are_refused_at_decision_time(world: World) -> None:
    """Through the service (the CLI bypassed), with a signer that misbehaves."""
    captured: list[str] = []

    def record(text: str) -> str:
        captured.append(_sign_with(world.keys["alice"])(text))
        return captured[-1]

    _release_with(world, world.small, record)  # a real, signed release: its signature is then replayed
    before = snapshot(world.engine)
    attempts = {
        "namespace": _sign_with(world.keys["alice"], "file"),
        "replayed": lambda _text: captured[0],
        "empty": lambda _text: "",
        "garbage": lambda _text: "-----BEGIN SSH SIGNATURE-----\nAAAA\n-----END SSH SIGNATURE-----",
    }
    for name, sign in attempts.items():
        with pytest.raises(ReviewError) as refused:
            _release_with(world, world.big, sign)
        assert "nothing was changed" in refused.value.remedy, name
    assert snapshot(world.engine) == before


def _insert(world: World, kind: str, subject: str, actor: str, payload: dict[str, object], minutes: int) -> None:
    with session_scope(world.engine) as s:
        audit.append(s, kind, subject, payload, actor, NOW + timedelta(minutes=minutes))


def _signed_payload(
    world: World, action: str, key: str, actor: str, minutes: int, namespace: str = NAMESPACE, **extra: object
) -> dict[str, object]:
    """A decision on the big hold with a statement signed by ``key``, as the service would write it."""
    with session_scope(world.engine) as s:
        hold, deposit = review.lock_hold(s, world.big)
        facts = review.hold_facts(hold, deposit)
    at = audit.format_at(NOW + timedelta(minutes=minutes))
    text = statement(action, f"hold:{world.big}", facts, "r", actor, at, **extra)
    shown = {k: v for k, v in facts.items() if k not in ("deposit", "findings")}
    signature = _sign_with(world.keys[key], namespace)(text)
    return {**shown, "deposit_id": hold.deposit_id, "reason": "r", "statement": text, "signature": signature}


def test_audit_verify_finds_each_bad_signature_written_behind_the_clis_back(world: World) -> None:
    assert (
        world.cli("alice", "--operator", "alice", "holds", "release", f"H-{world.small}", "--reason", "ok").returncode
        == 0
    )
    with session_scope(world.engine) as s:
        good = audit.latest_payload(s, f"hold:{world.small}", "hold.released")
    assert good is not None
    request = _signed_payload(world, "request", "shared", "carol", 6)
    inserted = {
        "without a signature": ("hold.rejected", "alice", {"hold": f"H-{world.big}", "reason": "r"}),
        "does not accept it for alice": (
            "hold.rejected",
            "alice",
            _signed_payload(world, "reject", "mallory", "alice", 2),
        ),
        "namespace 'file'": ("hold.rejected", "alice", _signed_payload(world, "reject", "alice", "alice", 3, "file")),
        "replays the signature": ("hold.released", "alice", dict(good)),
        "says amount": ("hold.rejected", "bob", {**_signed_payload(world, "reject", "bob", "bob", 5), "amount": "999"}),
        "release request": ("hold.release_requested", "carol", request),
        "signed by one key": (
            "hold.released",
            "dave",
            {
                **_signed_payload(world, "approve", "shared", "dave", 7, request=digest(str(request["statement"]))),
                "approved_by": "dave",
            },
        ),
    }
    for n, (kind, actor, payload) in enumerate(inserted.values()):
        _insert(world, kind, f"hold:{world.big}", actor, payload, n + 1)
    res = world.cli("alice", "audit", "verify", "--json")
    assert res.returncode == 1, res.stdout  # 1: tampering found
    problems = json.loads(res.stdout)["problems"]
    for words in inserted:
        if words == "release request":  # carol's own request is well signed: only the pair is wrong
            assert not any("carol" in p and "hold.release_requested" in p for p in problems), problems
            continue
        assert any(words in p for p in problems), (words, problems)


def test_a_request_made_before_signing_is_withdrawn_then_signed(world: World) -> None:
    """Signing switched on with a release request pending: the request has no signature, so no approval can be
    paired with it; only its requester may withdraw it, and the signed request that follows is approved."""
    big = f"H-{world.big}"
    unsigned = world.dir / "unsigned.toml"
    unsigned.write_text(world.config.read_text().replace('signing = "ssh"', 'signing = "off"'))
    cmd = [str(SCREENER), "--config", str(unsigned), "--operator", "alice", "holds", "release", big, "--reason", "ok"]
    assert cli_fork.run(cmd, capture_output=True, text=True, env=clean_env(), timeout=120).returncode == 0
    _refused(world.cli("bob", "--operator", "bob", "holds", "approve", big), "is not signed", "holds withdraw")
    _refused(world.cli("bob", "--operator", "bob", "holds", "withdraw", big), "only alice")
    withdrawn = world.cli("alice", "--operator", "alice", "holds", "withdraw", big)
    assert withdrawn.returncode == 0 and "withdrawn" in withdrawn.stdout, withdrawn.stderr
    with session_scope(world.engine) as s:
        signing_began = audit.lock_head(s).seq + 1
    assert world.cli("alice", "--operator", "alice", "holds", "release", big, "--reason", "ok").returncode == 0
    assert world.cli("bob", "--operator", "bob", "holds", "approve", big).returncode == 0
    # The auditor says where signing began; without it the unsigned request is a problem.
    assert world.cli("alice", "audit", "verify").returncode == 1
    verified = world.cli("alice", "audit", "verify", "--signed-from", str(signing_began))
    assert verified.returncode == 0 and "1 made before signing was on" in verified.stdout, verified.stdout


def test_signing_needs_an_allowed_signers_file(world: World) -> None:
    world.config.write_text(world.config.read_text().replace(f'allowed_signers_path = "{world.allowed}"\n', ""))
    _refused(
        world.cli("alice", "--operator", "alice", "holds", "release", f"H-{world.big}", "--reason", "ok"),
        "allowed_signers_path",
    )


def test_a_wildcard_principal_in_allowed_signers_is_refused(world: World) -> None:
    """OpenSSH matches principals as patterns: `*` would let mallory's key sign for alice, bob or anyone."""
    mallory = " ".join(world.keys["mallory"].with_suffix(".pub").read_text().split()[:2])
    world.allowed.write_text(world.allowed.read_text() + f'* namespaces="{NAMESPACE}" {mallory}\n')
    before = snapshot(world.engine)
    release = ("--operator", "alice", "holds", "release", f"H-{world.big}", "--reason", "ok")
    _refused(world.cli("mallory", *release), "are a pattern")
    _refused(world.cli("alice", "audit", "verify"), "are a pattern")
    assert snapshot(world.engine) == before


def test_a_malformed_allowed_signers_file_is_a_configuration_error(world: World) -> None:
    """A line with no key on it is the auditor's configuration, not a forged signature: exit 2, named."""
    world.allowed.write_text(world.allowed.read_text() + "garbage line\n")
    _refused(world.cli("alice", "audit", "verify"), "line 4 is not an allowed-signers entry")
    _refused(
        world.cli("alice", "--operator", "alice", "holds", "release", f"H-{world.big}", "--reason", "ok"),
        "not an allowed-signers entry",
    )
