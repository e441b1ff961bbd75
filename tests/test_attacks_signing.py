# ruff: noqa: F811  (the fixture world is imported, and named as a parameter)
"""Attacks on signed decisions (review.signing = "ssh", docs/security.md "Signed decisions").

Each test asserts what the document promises; a failing test is a hole. The attacker has write access to the
database (or is a reviewer with psql) and writes behind the CLI's back, using the service's own internals.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest
from sqlmodel import select

from screener.db import session_scope
from screener.decide.credit import fresh_screen
from screener.ledger import audit
from screener.models.ledger import AuditEvent, AuditHead, ReviewFlag
from screener.review import service as review
from screener.review.statements import NAMESPACE, statement
from tests.support.ledger_model import NOW
from tests.support.tamper import drop_append_only
from tests.test_signing import World, _keygen, _sign_with, world  # noqa: F401


def _verify(world: World) -> dict[str, object]:
    res = world.cli("alice", "audit", "verify", "--json")
    return json.loads(res.stdout) | {"rc": res.returncode}


def _signed_small_release(world: World) -> None:
    res = world.cli("alice", "--operator", "alice", "holds", "release", f"H-{world.small}", "--reason", "ok")
    assert res.returncode == 0, res.stderr


def _assert_caught(world: World, *words: str) -> None:
    report = _verify(world)
    assert report["rc"] == 1 and not report["ok"], f"audit verify passed: {report}"
    for word in words:
        assert any(word in str(p) for p in report["problems"]), (word, report["problems"])


def _rechain(world: World) -> None:
    """The attacker recomputes the (unkeyed) hash chain after altering events."""
    with session_scope(world.engine) as s:
        drop_append_only(s.connection())  # the attacker holds the SQLite file
        prev = None
        for event in s.exec(select(AuditEvent).order_by(AuditEvent.seq)).all():
            if prev is not None:
                event.prev_hash = prev
            event.hash = audit.event_hash(
                event.prev_hash, event.seq, event.kind, event.subject, event.actor, event.at, event.payload
            )
            prev = event.hash
            s.add(event)
        head = s.get(AuditHead, audit.HEAD_ID)
        assert head is not None
        head.hash = prev or head.hash
        s.add(head)


def test_release_recorded_as_system_is_not_checked(world: World) -> None:
    """After signed decisions, credit the four-eyes (Tornado Cash) hold and record it as a `hold.released` event
    whose actor is "system": the code never writes such an event, and verify skips it as "not a person's"."""
    _signed_small_release(world)
    now = datetime.now(UTC)
    with session_scope(world.engine) as s:
        hold, deposit = review._lock_hold(s, world.big)
        review._post(s, hold, deposit, review.SYSTEM_ACTOR, "ok", now)
        payload = review._hold_payload(
            hold, deposit, reason="ok", transfer=review.ledger.deposit_ref(deposit).tid("post")
        )
        audit.append(s, "hold.released", f"hold:{world.big}", payload, review.SYSTEM_ACTOR, now)
    _assert_caught(world)


def test_system_clear_of_a_hold_with_findings_is_not_checked(world: World) -> None:
    """Credit the Tornado Cash hold as a `hold.cleared` by "system" (clear_hold would refuse: its findings hold):
    an unsigned person's decision disguised as the system's moves 50,000 USDT and verify says ok."""
    _signed_small_release(world)
    now = datetime.now(UTC)
    with session_scope(world.engine) as s:
        hold, deposit = review._lock_hold(s, world.big)
        review._post(s, hold, deposit, review.SYSTEM_ACTOR, "screens clean now", now)
        payload = review._hold_payload(
            hold,
            deposit,
            reason="screens clean now",
            cleared_by={},
            findings=[],
            previous_findings=deposit.findings,
            voided_request=None,
            transfer=review.ledger.deposit_ref(deposit).tid("post"),
        )
        audit.append(s, "hold.cleared", f"hold:{world.big}", payload, review.SYSTEM_ACTOR, now)
    _assert_caught(world)


def test_flag_resolved_under_another_event_kind_is_not_checked(world: World) -> None:
    """Resolve the flag in its row and record the new state in a `flag.note` event: the ledger check accepts
    the state from any event kind, the signature check only looks at `flag.resolved`."""
    _signed_small_release(world)
    now = datetime.now(UTC)
    with session_scope(world.engine) as s:
        flag = s.get(ReviewFlag, world.flag)
        assert flag is not None
        flag.state, flag.resolved_by, flag.resolved_at, flag.resolution_reason = "resolved", "alice", now, "x"
        s.add(flag)
        payload = {"flag": f"F-{world.flag}", "deposit_id": flag.deposit_id, "state": "resolved", "reason": "x"}
        audit.append(s, "flag.note", f"flag:{world.flag}", payload, "alice", now)
    _assert_caught(world)


def test_stripping_every_signature_turns_signed_decisions_into_before_signing(world: World) -> None:
    """Remove statement and signature from every signed decision (and rewrite its reason), then recompute the
    unkeyed chain: every decision now counts as `unsigned_before_signing` and verify says ok."""
    _signed_small_release(world)
    with session_scope(world.engine) as s:
        drop_append_only(s.connection())
        for event in s.exec(select(AuditEvent).where(AuditEvent.kind == "hold.released")).all():
            payload = {k: v for k, v in event.payload.items() if k not in ("statement", "signature", "signed_key")}
            event.payload = {**payload, "reason": "rewritten by the attacker"}
            s.add(event)
    _rechain(world)
    _assert_caught(world, "without a signature")


def test_fresh_signing_database_accepts_unsigned_inserted_decisions(world: World) -> None:
    """Signing is on but nobody has signed yet: an unsigned release of the Tornado Cash hold inserted now is
    counted as `unsigned_before_signing` although it was made with signing on."""
    now = datetime.now(UTC)
    with session_scope(world.engine) as s:
        hold, deposit = review._lock_hold(s, world.big)
        review._post(s, hold, deposit, "alice", "ok", now)
        payload = review._hold_payload(
            hold, deposit, reason="ok", transfer=review.ledger.deposit_ref(deposit).tid("post")
        )
        audit.append(s, "hold.released", f"hold:{world.big}", payload, "alice", now)
    _assert_caught(world, "without a signature")


def test_signature_reused_with_different_armour_whitespace(world: World) -> None:
    """Copy a signed release event with one more newline after its armour: ssh-keygen still accepts it, but the
    replay check compares the armoured text, so the same signature is used twice unnoticed."""
    _signed_small_release(world)
    with session_scope(world.engine) as s:
        event = s.exec(select(AuditEvent).where(AuditEvent.kind == "hold.released")).one()
        payload = dict(event.payload)
        payload["signature"] = payload["signature"] + "\n"
        audit.append(s, event.kind, event.subject, payload, event.actor, event.at)
    _assert_caught(world, "replays")


def test_one_person_with_two_listed_keys_approves_her_own_request(world: World) -> None:
    """alice has two keys in allowed_signers (a second device, or a rotation overlap): she requests the four-eyes
    release, then writes her own approval signed with the other key; verify only compares keys, not names."""
    second = _keygen(world.dir, "alice2")
    pub = " ".join(second.with_suffix(".pub").read_text().split()[:2])
    world.allowed.write_text(world.allowed.read_text() + f'alice namespaces="{NAMESPACE}" {pub}\n')
    res = world.cli("alice", "--operator", "alice", "holds", "release", f"H-{world.big}", "--reason", "ok")
    assert res.returncode == 0, res.stderr
    settings = world.settings()
    now = datetime.now(UTC)
    with pytest.MonkeyPatch.context() as mp, session_scope(world.engine) as s:
        mp.setattr(review, "check_can_approve", lambda *a, **k: None)  # the attacker's own code path
        review.approve_hold(
            s,
            world.big,
            "alice",
            now,
            screen_now=fresh_screen(s, settings, now),
            signing=world.signing(_sign_with(second)),
        )
    _assert_caught(world, "four-eyes")


def test_four_eyes_hold_released_by_a_single_signed_release(world: World) -> None:
    """alice signs a plain `release` (not request + approval) of the 50,000 USDT hold with her own key and
    writes it: verify checks the signature but not that this hold needed a second person."""
    settings = world.settings()
    settings.review.four_eyes_above_units = 10**12  # the attacker's code path skips four-eyes
    now = datetime.now(UTC)
    with session_scope(world.engine) as s:
        review.release_hold(
            s,
            world.big,
            "ok",
            "alice",
            settings,
            now,
            screen_now=fresh_screen(s, settings, now),
            signing=world.signing(_sign_with(world.keys["alice"])),
        )
    _assert_caught(world, "four-eyes")


def test_backdated_decision_signed_with_a_retired_key(world: World) -> None:
    """bob's old key was retired (valid-before) because it leaked; the thief signs a rejection dated before the
    retirement and appends it after newer events: verify judges the key at the attacker-chosen time."""
    old = _keygen(world.dir, "bob-old")
    pub = " ".join(old.with_suffix(".pub").read_text().split()[:2])
    retired = (NOW + timedelta(days=1)).strftime("%Y%m%d%H%M%SZ")
    world.allowed.write_text(
        world.allowed.read_text() + f'bob namespaces="{NAMESPACE}",valid-before="{retired}" {pub}\n'
    )
    _signed_small_release(world)  # a decision of today, after the retirement
    at = NOW + timedelta(hours=1)
    facts = {"hold": "H-77", "amount": "1", "asset": "USDT@ethereum", "account": "acct-1", "verdict": "HOLD"}
    text = statement(
        "reject", "hold:77", {**facts, "deposit": "x", "findings": "y"}, "r", "bob", audit.format_at(at), to="blocked"
    )
    payload = {**facts, "reason": "r", "to": "blocked", "statement": text, "signature": _sign_with(old)(text)}
    with session_scope(world.engine) as s:
        audit.append(s, "hold.rejected", "hold:77", payload, "bob", at)
    _assert_caught(world)


def test_defended_duplicate_key_statement_signed_by_the_actor(world: World) -> None:
    """Defended: alice really signs a statement with two "amount" keys (a JSON parser keeps the last, a reader
    may see the first); verify refuses it as not canonical."""
    _signed_small_release(world)
    facts = {"hold": "H-77", "amount": "1", "asset": "USDT@ethereum", "account": "acct-1", "verdict": "HOLD"}
    at = NOW + timedelta(hours=1)
    text = statement(
        "reject", "hold:77", {**facts, "deposit": "x", "findings": "y"}, "r", "alice", audit.format_at(at), to="blocked"
    )
    text = text.replace('{"account"', '{"amount":"999999","account"', 1)
    payload = {
        **facts,
        "reason": "r",
        "to": "blocked",
        "statement": text,
        "signature": _sign_with(world.keys["alice"])(text),
    }
    with session_scope(world.engine) as s:
        audit.append(s, "hold.rejected", "hold:77", payload, "alice", at)
    _assert_caught(world, "canonical")


def test_defended_signature_as_a_list_and_non_dict_payload(world: World) -> None:
    """Defended: after a signed decision, a release whose signature is a list, and a rejection whose payload is
    a JSON list, are both reported."""
    _signed_small_release(world)
    with session_scope(world.engine) as s:
        drop_append_only(s.connection())
        good = audit.latest_payload(s, f"hold:{world.small}", "hold.released")
        assert good is not None
        bad = {**good, "signature": good["signature"].splitlines()}
        audit.append(s, "hold.released", "hold:77", {k: v for k, v in bad.items() if k != "state"}, "alice", NOW)
        event = audit.append(s, "hold.rejected", "hold:78", {"x": 1}, "alice", NOW)
        event.payload = ["not", "a", "dict"]
        s.add(event)
    _rechain(world)
    _assert_caught(world, "missing", "without a signature")


def test_statement_deposit_is_not_compared_with_the_events_deposit(world: World) -> None:
    """Rewrite a signed release event to name another deposit (deposit_id), then recompute the chain: the
    signed statement's `deposit` (chain:tx:log) and `findings` are never compared with anything."""
    _signed_small_release(world)
    with session_scope(world.engine) as s:
        drop_append_only(s.connection())
        event = s.exec(select(AuditEvent).where(AuditEvent.kind == "hold.released")).one()
        big_hold, _ = review._lock_hold(s, world.big)
        event.payload = {**event.payload, "deposit_id": big_hold.deposit_id}
        s.add(event)
    _rechain(world)
    _assert_caught(world, "deposit")
