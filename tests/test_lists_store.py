"""List versions in the database and the refresh guards, against a real HTTP server on loopback.

Every test runs on SQLite and PostgreSQL (the ``engine`` fixture).
"""

from __future__ import annotations

import os
import sys
import threading
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine
from sqlmodel import Session, func, select

from sanctions_lists.bundle import bundled_path
from sanctions_lists.ofac import NS_SLS
from sanctions_lists.snapshot import Diff
from screener.db import session_scope
from screener.lists import refresh as lists_refresh
from screener.lists import store as lists_store
from screener.models.lists import ListRefresh, ListVersion
from screener.settings import ListSettings, Settings
from screener_base.clock import ensure_utc
from screener_base.errors import ListError, ScreeningUnavailable
from tests.support import cli_fork
from tests.support.advanced_writer import load_per_asset_lists, render
from tests.support.http_server import Reply, serve

NOW = datetime(2026, 1, 5, 12, 0, tzinfo=UTC)


@pytest.fixture(scope="module")
def lists_xml(shared_data: Path) -> dict[str, bytes]:
    out = {}
    for day in ("2025-03-05", "2025-03-22", "2025-05-30"):
        out[day] = render(load_per_asset_lists(shared_data / "ofac" / day), published=date.fromisoformat(day))
    pairs = load_per_asset_lists(shared_data / "ofac" / "2025-05-30")
    out["small"] = render(pairs[: len(pairs) // 10], published=date(2025, 5, 30), namespace=NS_SLS)
    # The same contents as if published after the bundle (2025-05-30), in this order: a refresh never goes
    # back in publication date, so tests that step through contents use these.
    for n, day in enumerate(("2025-03-05", "2025-03-22", "2025-05-30"), start=1):
        out[f"{day} republished"] = render(load_per_asset_lists(shared_data / "ofac" / day), published=date(2025, 6, n))
    return out


def _settings(**lists: object) -> Settings:
    base = {"download_timeout_s": 0.4, "retry_wait_s": 0.01, "max_attempts": 3, "max_list_age_h": 72.0}
    return Settings(lists=ListSettings(**{**base, **lists}))


def _versions(engine: Engine) -> list[ListVersion]:
    with session_scope(engine) as session:
        return list(session.exec(select(ListVersion).order_by(ListVersion.seq)).all())


def _active(engine: Engine) -> ListVersion:
    with session_scope(engine) as session:
        version = lists_store.active_version(session)
        assert version is not None
        return version


def test_bundled_snapshot_is_first_version_and_stale_by_its_publication_date(engine: Engine) -> None:
    with session_scope(engine) as session:
        version = lists_store.ensure_active(session, NOW)
        again = lists_store.ensure_active(session, NOW)
    assert version.id == again.id and version.seq == 1 and version.source_format == "bundle"
    assert ensure_utc(version.last_verified_at) == datetime(2025, 5, 30, tzinfo=UTC)
    assert version.entry_count == 634 and version.counts["family"]["tron"] == 33
    with session_scope(engine) as session, pytest.raises(ScreeningUnavailable, match="last verified"):
        lists_store.screening_snapshot(session, _settings(), NOW)
    relaxed = _settings(max_list_age_h=24 * 3650)
    with session_scope(engine) as session:
        vid, snap = lists_store.screening_snapshot(session, relaxed, NOW)
        _, snap_again = lists_store.screening_snapshot(session, relaxed, NOW)
    assert vid == version.id and len(snap) == 634
    assert snap_again is snap  # parsed once per process and version
    # Re-reading the bundle proves nothing about OFAC today: still stale.
    result = lists_refresh.refresh(engine, _settings(), str(bundled_path()), NOW)
    assert result.status == "unchanged"
    assert ensure_utc(_active(engine).last_verified_at) == datetime(2025, 5, 30, tzinfo=UTC)


def test_no_version_means_unavailable(engine: Engine) -> None:
    with session_scope(engine) as session, pytest.raises(ScreeningUnavailable, match="no sanctions list"):
        lists_store.screening_snapshot(session, _settings(), NOW)


def test_good_download_activates_then_unchanged_verifies(engine: Engine, lists_xml: dict[str, bytes]) -> None:
    settings = _settings()
    with serve() as server:
        url = server.route("/sdn.xml", Reply(body=lists_xml["2025-05-30"]))
        first = lists_refresh.refresh(engine, settings, url, NOW)
        later = NOW + timedelta(hours=70)
        second = lists_refresh.refresh(engine, settings, url, later)
    assert first.status == "updated" and first.entry_count == 634
    assert (first.added, first.removed) == (0, 0)  # same addresses as the bundle
    assert second.status == "unchanged" and second.version_id == first.version_id
    active = _active(engine)
    assert active.id == first.version_id and active.source == url and active.seq == 2
    assert active.published_at is not None and ensure_utc(active.published_at) == datetime(2025, 5, 30, tzinfo=UTC)
    assert ensure_utc(active.last_verified_at) == later
    with session_scope(engine) as session:
        vid, snap = lists_store.screening_snapshot(session, settings, later + timedelta(hours=71))
        assert vid == first.version_id and snap.provenance is not None and snap.provenance.source == url
        with pytest.raises(ScreeningUnavailable):
            lists_store.screening_snapshot(session, settings, later + timedelta(hours=73))
        statuses = [r.status for r in lists_store.recent_refreshes(session, 10)]
    assert statuses == ["unchanged", "updated"]


def test_bad_downloads_never_change_the_active_version(engine: Engine, lists_xml: dict[str, bytes]) -> None:
    good = lists_xml["2025-05-30"]
    settings = _settings(max_download_bytes=len(good) + 1000)
    bad = {
        "truncated": ([Reply(body=good[: len(good) // 2])], "not well-formed"),
        "html": ([Reply(body=b"<!DOCTYPE html><html><body>502 Bad Gateway</body></html>")], "HTML page"),
        "empty": ([Reply(body=b"")], "is empty"),
        "smaller": ([Reply(body=lists_xml["small"])], "drop of 90%"),
        "garbage": ([Reply(body=bytes(range(256)) * 10)], "neither"),
        "missing": ([Reply(status=404, body=b"not found")], "HTTP 404"),
        "always-503": ([Reply(status=503)], "after 3 attempts"),
        "cut-connection": ([Reply(body=good, cut_at=1000)], "after 3 attempts"),
        "oversize": ([Reply(body=good + b" " * 2000)], "larger than"),
        "oversize-unsized": ([Reply(body=good + b" " * 2000, sized=False)], "larger than"),
    }
    with serve() as server:
        active_id = lists_refresh.refresh(engine, settings, server.route("/good", Reply(body=good)), NOW).version_id
        before = _versions(engine)
        for n, (name, (replies, reason)) in enumerate(bad.items(), start=1):
            url = server.route("/" + name, *replies)
            result = lists_refresh.refresh(engine, settings, url, NOW + timedelta(hours=n))
            assert (name, result.status) == (name, "rejected")
            assert reason in result.reason, (name, result.reason)
            assert result.version_id == active_id
            assert "\n" not in result.summary_line()
        assert server.hits("/missing") == 1  # a 404 is not retried
        assert server.hits("/always-503") == 3
    after = _versions(engine)
    assert [(v.id, v.sha256, v.last_verified_at) for v in after] == [
        (v.id, v.sha256, v.last_verified_at) for v in before
    ]
    with session_scope(engine) as session:
        rejected = session.exec(
            select(func.count()).select_from(ListRefresh).where(ListRefresh.status == "rejected")
        ).one()
    assert rejected == len(bad)


@pytest.mark.parametrize(
    "replies",
    [
        [Reply(delay_s=2.0), Reply()],  # read timeout, then the file
        [Reply(status=503), Reply(status=500), Reply()],
        [Reply(status=429), Reply()],
    ],
    ids=["timeout", "5xx", "429"],
)
def test_transient_failures_are_retried(engine: Engine, lists_xml: dict[str, bytes], replies: list[Reply]) -> None:
    good = lists_xml["2025-05-30"]
    script = [Reply(status=r.status, delay_s=r.delay_s, body=good if r.status == 200 else b"") for r in replies]
    with serve() as server:
        url = server.route("/sdn.xml", *script)
        result = lists_refresh.refresh(engine, _settings(), url, NOW)
        assert server.hits("/sdn.xml") == len(script)
    assert result.status == "updated"
    assert _active(engine).meta["attempts"] == len(script)


def test_activation_hook_runs_in_the_activating_transaction(
    engine: Engine, lists_xml: dict[str, bytes], tmp_path: Path
) -> None:
    # The drop guard counts per screened family: these steps remove 9 of 33 Tron, then 90 of 157 EVM addresses.
    settings = _settings(max_drop_fraction=0.6)
    calls: list[tuple[int | None, int, Diff]] = []

    def hook(session: Session, old_id: int | None, new_id: int, change: Diff) -> None:
        assert session.get(ListVersion, new_id) is not None  # visible inside the transaction
        calls.append((old_id, new_id, change))

    before_file = tmp_path / "sdn_2025-03-05.xml"
    before_file.write_bytes(lists_xml["2025-03-05 republished"])
    first = lists_refresh.refresh(engine, settings, str(before_file), NOW, on_activated=hook)
    with serve() as server:
        url = server.route("/sdn.xml", Reply(body=lists_xml["2025-03-22 republished"]))
        second = lists_refresh.refresh(engine, settings, url, NOW, on_activated=hook)
    assert first.status == second.status == "updated"
    assert (second.added, second.removed) == (0, 90)
    old_id, new_id, change = calls[-1]
    assert (old_id, new_id) == (first.version_id, second.version_id)
    assert len(change.removed_addresses) == 90 and {f for f, _ in change.removed_addresses} == {"evm"}
    with session_scope(engine) as session:
        assert lists_store.diff_versions(session, old_id or 0, new_id).removed == change.removed
        with pytest.raises(ListError, match="does not exist"):
            lists_store.diff_versions(session, 999_999, new_id)

    def failing_hook(session: Session, old_id: int | None, new_id: int, change: Diff) -> None:
        raise ListError("re-screen could not run", "try later")

    count = len(_versions(engine))
    with serve() as server:
        url = server.route("/sdn.xml", Reply(body=lists_xml["2025-05-30 republished"]))
        third = lists_refresh.refresh(engine, settings, url, NOW, on_activated=failing_hook)
    assert third.status == "rejected" and "hook failed" in third.reason
    assert third.version_id == second.version_id == _active(engine).id
    assert len(_versions(engine)) == count
    with session_scope(engine) as session:
        orphans = session.execute(
            sa.text("select count(*) from list_entries where version_id not in (select id from list_versions)")
        ).scalar_one()
    assert orphans == 0


def test_sdn_csv_source_carries_the_truncation_note(engine: Engine, shared_data: Path) -> None:
    settings = _settings(max_drop_fraction=1.0)  # sdn.csv shows far fewer addresses than the bundle
    csv_path = shared_data / "ofac_raw" / "sdn_csv" / "sdn_2022-11-09.csv"
    # sdn.csv has no publication date: only the operator's explicit override lets it replace the dated bundle.
    result = lists_refresh.refresh(engine, settings, str(csv_path), NOW, accept_undated=True)
    assert result.status == "updated"
    with session_scope(engine) as session:
        version = lists_store.get_version(session, result.version_id or 0)
        snap = lists_store.load_snapshot(session, version)
    assert version.source_format == "sdn_csv"
    [hit] = snap.match("evm", "0x12D66F87A04A9E220743712CE6D9BB1B5616B8FC")
    assert hit.entity == "TORNADO CASH" and hit.note and "1000 characters" in hit.note


def test_concurrent_refreshes_activate_once(engine: Engine, lists_xml: dict[str, bytes], tmp_path: Path) -> None:
    source = tmp_path / "sdn.xml"
    source.write_bytes(lists_xml["2025-05-30"])
    results: list[lists_refresh.RefreshResult] = []
    errors: list[BaseException] = []

    def worker() -> None:
        try:
            results.append(lists_refresh.refresh(engine, _settings(), str(source), NOW))
        except BaseException as exc:  # reported below; a thread must not swallow it
            errors.append(exc)

    threads = [threading.Thread(target=worker) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert errors == []
    assert sorted(r.status for r in results) == ["unchanged", "unchanged", "updated"]
    versions = _versions(engine)
    assert [v.seq for v in versions] == [1, 2]  # one bundle import, one activation
    assert {r.version_id for r in results} == {versions[-1].id}


def test_slow_drip_download_is_cut_at_the_attempt_deadline(engine: Engine, lists_xml: dict[str, bytes]) -> None:
    # Every piece arrives well within the read timeout; only the whole-attempt deadline (10 x 0.2 s) stops it.
    settings = _settings(download_timeout_s=0.2, max_attempts=1)
    with serve() as server:
        url = server.route("/slow", Reply(body=lists_xml["2025-05-30"], drip_s=0.02))
        result = lists_refresh.refresh(engine, settings, url, NOW)
    assert result.status == "rejected" and "attempt deadline" in result.reason
    active = _active(engine)
    assert result.version_id == active.id and active.source_format == "bundle"  # only the bundled import


def _list_less_one_address(shared_data: Path, path: Path, published: date = date(2019, 1, 1)) -> str:
    """Write the 2025-05-30 lists less one ETH address to ``path`` (by default as an old mirror's copy
    published 2019-01-01); return the address left out."""
    pairs = load_per_asset_lists(shared_data / "ofac" / "2025-05-30")
    left_out = next(p for p in pairs if p[0] == "ETH")
    path.write_bytes(render([p for p in pairs if p != left_out], published=published))
    return left_out[1]


def test_an_older_publication_never_replaces_the_active_list(
    engine: Engine, lists_xml: dict[str, bytes], shared_data: Path, tmp_path: Path
) -> None:
    settings = _settings(max_list_age_h=24 * 3650)
    current = tmp_path / "current.xml"
    current.write_bytes(lists_xml["2025-05-30"])
    active_id = lists_refresh.refresh(engine, settings, str(current), NOW).version_id  # same date as the bundle: ok
    old = tmp_path / "old.xml"
    victim = _list_less_one_address(shared_data, old)
    earlier = tmp_path / "sdn_2025-03-22.xml"
    earlier.write_bytes(lists_xml["2025-03-22"])  # OFAC's real earlier list: fewer entries, well within the guard
    before = [(v.id, v.sha256, v.last_verified_at) for v in _versions(engine)]
    for n, (path, published) in enumerate([(old, "2019-01-01"), (earlier, "2025-03-22")], start=1):
        result = lists_refresh.refresh(engine, settings, str(path), NOW + timedelta(hours=n))
        assert (result.status, result.version_id) == ("rejected", active_id)
        assert result.reason.startswith(
            f"{path} was published {published}, before active list version {active_id} (published 2025-05-30); "
            "an older list must not replace a newer one; "
        )
        assert "\n" not in result.summary_line()
    assert [(v.id, v.sha256, v.last_verified_at) for v in _versions(engine)] == before  # not even "verified"
    with session_scope(engine) as session:
        vid, snap = lists_store.screening_snapshot(session, settings, NOW + timedelta(hours=3))
        assert vid == active_id and snap.match("evm", victim)
        recorded = [(r.status, r.reason) for r in lists_store.recent_refreshes(session, 2)]
    assert [status for status, _ in recorded] == ["rejected", "rejected"]
    assert "published 2019-01-01" in recorded[1][1]
    # Only the order counts: a list published the same day may change the entries (a same-day correction).
    same_day = tmp_path / "same_day.xml"
    _list_less_one_address(shared_data, same_day, published=date(2025, 5, 30))
    corrected = lists_refresh.refresh(engine, settings, str(same_day), NOW + timedelta(hours=4))
    assert (corrected.status, corrected.removed) == ("updated", 1)


def test_cli_refresh_from_an_older_list_is_one_line_exit_1(engine: Engine, shared_data: Path, tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SCREENER_")}
    env["SCREENER_DATABASE__URL"] = engine.url.render_as_string(hide_password=False)
    old = tmp_path / "old.xml"
    _list_less_one_address(shared_data, old)
    screener = Path(sys.executable).with_name("screener")
    run = cli_fork.run(
        [str(screener), "lists", "refresh", "--source", str(old)],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert (run.returncode, run.stdout) == (1, "")
    [line] = run.stderr.splitlines()
    assert line.startswith(f"rejected: {old} was published 2019-01-01, before active list version 1 ")
    assert line.endswith("; list version 1 stays active")
    assert _active(engine).seq == 1  # the bundle imported by the refresh stays
