"""Bad input through the real `screener` entry point: broken config files, hostile or broken sanctions files,
CSV imports with bad rows, CLI arguments out of range. Each one gives a clear one-line error, a non-zero exit,
and leaves the stored state exactly as it was (every row of every table compared before and after).

The database is seeded like production: the bundled list active, deposit addresses, holds in several states,
a credited deposit with a review flag; a refresh attempt is the only thing allowed to leave a trace (its
`list_refreshes` row saying why it was rejected).
"""

from __future__ import annotations

import gzip
import shutil
import subprocess
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import date
from pathlib import Path

import pytest

from sanctions_lists.ofac import NS_SLS
from screener.db import make_engine, session_scope, upgrade
from screener.models.deposits import Deposit
from screener.review import service as review
from screener.screening.verdicts import Decision, Finding, Severity, Verdict
from screener.settings import Settings, load_settings
from screener_base.errors import ConfigError
from tests.support.advanced_writer import load_per_asset_lists, render
from tests.support.http_server import Reply, serve
from tests.support.ledger_model import NOW, make_deposit, make_screenable
from tests.support.pg import fresh_pg_database
from tests.support.reliability import Cli, assert_one_line_error, clean_env, db_state, record_figures, state_diff

SETTINGS = Settings(review={"four_eyes_above_units": 10_000})
OFAC = Finding("ofac.sdn", Severity.BLOCKING, "from", "0x" + "11" * 20, 7, "Garantex Europe OU", ("CYBER2",))
MIXER = Finding("mixer.direct", Severity.REVIEW, "initiator", "0x" + "44" * 20, detail="Tornado Cash pool")
REGISTERED = "0x" + "5a" * 20  # registered to acct-reg on polygon by the seed
TRON_OK = "TQtTBBMiv23XKo9aCygNim3h2yVJTkRXD8"  # hex_to_tron(0xa3a3...)
TRON_TYPO = "TQtTBBMiv22XKo9aCygNim3h2yVJTkRXD8"  # one character changed: the checksum fails
FIGURES: dict[str, int] = {}


def _count(kind: str) -> None:
    FIGURES[kind] = FIGURES.get(kind, 0) + 1


@pytest.fixture(scope="module", autouse=True)
def _report_figures() -> Iterator[None]:
    yield
    record_figures("bad_input", {**FIGURES, "total": sum(FIGURES.values())})


def _base_config(url: str, extra: str = "") -> str:
    return (
        f'[database]\nurl = "{url}"\n\n'
        '[review]\nfour_eyes_above_units = 10000\nidentity = "declared"\n\n'
        "[lists]\nmax_list_age_h = 87600\nmax_download_bytes = 200000\n"
        "max_attempts = 1\nretry_wait_s = 0\ndownload_timeout_s = 5\n\n"
        '[chains.polygon]\nrpc_urls = ["http://127.0.0.1:9"]\nchain_id = 31337\n'
        f'tokens = {{ USDT = "0x{"c1" * 20}", USDC = "0x{"c2" * 20}" }}\n' + extra
    )


def _seed(url: str, cli: Cli) -> None:
    """H-1 small HOLD, H-2 BLOCK, H-3 four-eyes HOLD awaiting approval, deposit 4 credited with a flag."""
    engine = make_engine(url)
    upgrade(engine)
    with session_scope(engine) as s:
        make_screenable(s, NOW)  # the release below passes the credit gate
        review.apply_verdict(s, make_deposit(1, 2_500_000), Verdict(Decision.HOLD, (MIXER,)), SETTINGS, NOW)
        review.apply_verdict(s, make_deposit(2, 10**27, decimals=18), Verdict(Decision.BLOCK, (OFAC,)), SETTINGS, NOW)
        review.apply_verdict(s, make_deposit(3, 20_000 * 10**6), Verdict(Decision.HOLD, (MIXER,)), SETTINGS, NOW)
        review.apply_verdict(s, make_deposit(4, 9), Verdict(Decision.CREDIT), SETTINGS, NOW)
    with session_scope(engine) as s:
        review.raise_review_flag(s, s.get(Deposit, 4), [OFAC], "list v7 added the sender after credit", NOW)
    engine.dispose()
    cli.ok("holds", "release", "H-3", "--reason", "known customer", operator="bob")
    cli.ok("addresses", "add", "polygon", REGISTERED, "acct-reg")
    cli.ok("addresses", "add", "tron", TRON_OK, "acct-tron")
    cli.ok("lists", "status")  # imports the bundled snapshot as version 1


@dataclass
class World:
    dir: Path
    url: str
    cli: Cli

    def state(self, exclude: tuple[str, ...] = ()) -> dict[str, list[tuple[str, ...]]]:
        return db_state(self.url, exclude)

    def config(self, text: str, name: str = "bad.toml") -> Cli:
        path = self.dir / name
        path.write_text(text)
        return Cli(path, self.dir)

    def expect_refused(self, cli: Cli, args: tuple[str, ...], *needles: str, exclude: tuple[str, ...] = ()) -> str:
        return self.expect_all_refused([(cli, args, needles)], exclude=exclude)[0]

    def expect_all_refused(
        self,
        cases: list[tuple[Cli, tuple[str, ...], tuple[str, ...]]],
        *,
        exclude: tuple[str, ...] = (),
        prefix: str = "error: ",
    ) -> list[str]:
        """Run the commands (a few at a time: each is a process start-up), then check each was refused with
        one line naming its needles, and that the database is exactly as before all of them."""
        before = self.state(exclude)
        with ThreadPoolExecutor(max_workers=3) as pool:
            results: list[subprocess.CompletedProcess[str]] = list(pool.map(lambda case: case[0].run(*case[1]), cases))
        lines, failures = [], []
        for (_cli, args, needles), res in zip(cases, results, strict=True):
            try:
                lines.append(assert_one_line_error(res, *needles, prefix=prefix))
            except AssertionError as exc:
                failures.append(f"screener {' '.join(args)[:200]}: {exc}")
        assert not failures, "\n\n".join(failures)
        after = self.state(exclude)
        assert after == before, f"the database changed: {state_diff(before, after)}"
        return lines


@pytest.fixture(scope="module")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    d = tmp_path_factory.mktemp("template")
    url = f"sqlite:///{d / 's.db'}"
    cfg = d / "c.toml"
    cfg.write_text(_base_config(url))
    _seed(url, Cli(cfg, d))
    return d / "s.db"


@pytest.fixture
def sqlite_world(tmp_path: Path, sqlite_template: Path) -> World:
    shutil.copy(sqlite_template, tmp_path / "s.db")
    url = f"sqlite:///{tmp_path / 's.db'}"
    cfg = tmp_path / "c.toml"
    cfg.write_text(_base_config(url))
    return World(tmp_path, url, Cli(cfg, tmp_path))


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def world(request: pytest.FixtureRequest, tmp_path: Path, sqlite_template: Path) -> Iterator[World]:
    if request.param == "sqlite":
        yield request.getfixturevalue("sqlite_world")
        return
    with fresh_pg_database() as url:
        cfg = tmp_path / "c.toml"
        cfg.write_text(_base_config(url))
        cli = Cli(cfg, tmp_path)
        _seed(url, cli)
        yield World(tmp_path, url, cli)


# --------------------------------------------------------------------------------------------------- config

# (id, extra TOML appended to a valid config or a full replacement, words the one-line error must contain)
CONFIG_CASES = [
    ("bad-toml", "[review\nsla_h = 3\n", ("not valid TOML",)),
    ("duplicate-key", "[daemon]\njitter_s = 1\njitter_s = 2\n", ("not valid TOML",)),
    ("unknown-section", "[databse]\nurl = 'x'\n", ("databse",)),
    ("unknown-key", "[daemon]\nworker = 'w1'\n", ("daemon.worker",)),
    ("unknown-chain-key", "rpc_url = 'http://x'\n", ("chains.polygon.rpc_url",)),
    ("string-for-number", "[alerts]\ntimeout_s = 'soon'\n", ("alerts.timeout_s",)),
    ("string-for-bool", "[screening]\ntwo_hop_enabled = 'maybe'\n", ("screening.two_hop_enabled",)),
    ("string-for-list", "[screening]\nallowlist = '0xabc'\n", ("screening.allowlist",)),
    ("float-for-int", "confirmations = 1.5\n", ("chains.polygon.confirmations",)),
    ("table-for-string", "[logging]\nlevel = { a = 1 }\n", ("logging.level",)),
    ("negative-confirmations", "confirmations = -1\n", ("chains.polygon.confirmations",)),
    ("zero-range", "max_block_range = 0\n", ("chains.polygon.max_block_range",)),
    ("zero-chain-id", "SET:chain_id = 31337=>chain_id = 0", ("chains.polygon.chain_id",)),
    ("port-out-of-range", "[daemon]\nmetrics_port = 70000\n", ("daemon.metrics_port",)),
    ("negative-ttl", "[daemon]\nlease_ttl_s = -3\n", ("daemon.lease_ttl_s",)),
    ("nan", "[alerts]\ndeliver_interval_s = nan\n", ("alerts.deliver_interval_s",)),
    ("inf", "[daemon]\njitter_s = inf\n", ("daemon.jitter_s",)),
    ("lookback-too-long", "[screening]\nmixer_lookback_days = 99999\n", ("screening.mixer_lookback_days",)),
    ("zero-attempts", "[alerts]\nmax_attempts = 0\n", ("alerts.max_attempts",)),
    ("bad-finality-tag", "finality_tag = 'final'\n", ("chains.polygon.finality_tag",)),
    ("bad-family", "family = 'solana'\n", ("chains.polygon.family",)),
    ("bad-log-level", "[logging]\nlevel = 'TRACE'\n", ("logging.level",)),
    ("chains-not-a-table", None, ("chains",)),
    ("db-url-unknown-backend", "URL:mysql://root@localhost/db", ("database.url",)),
    ("db-url-not-a-string", "URL:5", ("database.url",)),
    ("db-url-malformed", "URL:postgresql+psycopg://postgres@[::1:5432/x", ("database.url",)),
    ("db-url-bad-port", "URL:postgresql+psycopg://postgres@127.0.0.1:99999/x", ("database",)),
    ("db-url-refused", "URL:postgresql://nobody@127.0.0.1:1/db", ("cannot connect",)),
    ("db-url-missing-dir", "URL:sqlite:////nonexistent/dir/s.db", ("does not exist",)),
    ("db-url-mistyped-file", "URL:sqlite:///{dir}/mistyped.db", ("does not exist",)),
    ("db-url-empty-database", "URL:sqlite:///{dir}/empty.db", ("schema",)),
]


def _config_text(world: World, extra: str | None) -> str:
    if extra is None:
        return f'chains = 5\n[database]\nurl = "{world.url}"\n'
    if extra.startswith("SET:"):
        old, new = extra[4:].split("=>")
        return _base_config(world.url).replace(old, new)
    if extra.startswith("URL:"):
        url = extra[4:].format(dir=world.dir)
        if url.endswith("/empty.db"):
            (world.dir / "empty.db").touch()  # an existing file with no schema (a mistyped one does not exist)
        value = url if url.isdigit() else f'"{url}"'
        return _base_config(world.url).replace(f'url = "{world.url}"', f"url = {value}")
    if extra.startswith("["):
        return _base_config(world.url) + "\n" + extra
    return _base_config(world.url, extra)


# Only connecting finds these (checked through the CLI below, not by loading the settings).
CONNECT_ONLY = {
    "db-url-bad-port",
    "db-url-refused",
    "db-url-missing-dir",
    "db-url-mistyped-file",
    "db-url-empty-database",
}
LOAD_CASES = [c for c in CONFIG_CASES if c[0] not in CONNECT_ONLY]


# One of each kind also goes through the real CLI (the others share its error path, checked in-process).
THROUGH_CLI = {
    "bad-toml",
    "unknown-key",
    "string-for-number",
    "port-out-of-range",
    "bad-finality-tag",
    "db-url-malformed",
    *CONNECT_ONLY,
}


@pytest.mark.parametrize(("case", "extra", "needles"), LOAD_CASES, ids=[c[0] for c in LOAD_CASES])
def test_bad_config_value_is_a_config_error_naming_the_key(
    tmp_path: Path, case: str, extra: str | None, needles: tuple[str, ...]
) -> None:
    w = World(tmp_path, f"sqlite:///{tmp_path / 's.db'}", Cli(tmp_path / "c.toml", tmp_path))
    path = w.config(_config_text(w, extra)).config
    with pytest.raises(ConfigError) as err:
        load_settings(path)
    message = str(err.value)
    assert "\n" not in message and all(n.lower() in message.lower() for n in needles), message


def test_bad_config_through_the_cli_is_one_line_and_changes_nothing(sqlite_world: World) -> None:
    w = sqlite_world
    # a command that would change state (release H-1) if the configuration were accepted
    release = ("holds", "release", "H-1", "--reason", "ok")
    cases = [
        (w.config(_config_text(w, extra), f"{case}.toml"), release, needles)
        for case, extra, needles in CONFIG_CASES
        if case in THROUGH_CLI
    ]
    w.expect_all_refused(cases)
    FIGURES["config"] = FIGURES.get("config", 0) + len(CONFIG_CASES)


def test_config_file_problems(sqlite_world: World) -> None:
    w = sqlite_world
    release = ("holds", "release", "H-1", "--reason", "ok")
    (w.dir / "adir.toml").mkdir()
    latin = w.dir / "latin1.toml"
    latin.write_bytes(_base_config(w.url).encode() + "[daemon]\nworker_id = 'caf\xe9'\n".encode("latin-1"))
    w.expect_all_refused(
        [
            (Cli(w.dir / "missing.toml", w.dir), release, ("does not exist",)),
            (Cli(w.dir / "adir.toml", w.dir), release, ("cannot be read",)),
            (Cli(latin, w.dir), release, ("latin1.toml", "UTF-8")),
        ]
    )
    # a wrong value from the environment is named just as one from the file
    before = w.state()
    res = w.cli.run(*release, env=clean_env(SCREENER_DAEMON__METRICS_PORT="port"))
    assert_one_line_error(res, "daemon.metrics_port")
    assert w.state() == before
    for _ in range(4):
        _count("config")


# --------------------------------------------------------------------------------------------------- lists


def _real_xml(shared_data: Path) -> bytes:
    return render(load_per_asset_lists(shared_data / "ofac" / "2025-05-30"), published=date(2025, 5, 30))


BILLION_LAUGHS = (
    b'<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;">'
    b'<!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;">]><Sanctions xmlns="' + NS_SLS.encode() + b'">&lol3;</Sanctions>'
)
XXE = (
    b'<?xml version="1.0"?><!DOCTYPE s [<!ENTITY x SYSTEM "file:///etc/passwd">]>'
    b'<Sanctions xmlns="' + NS_SLS.encode() + b'">&x;</Sanctions>'
)


def _list_cases(shared_data: Path) -> list[tuple[str, bytes, tuple[str, ...]]]:
    xml = _real_xml(shared_data)
    # Dated as the bundle: an earlier date would be refused for that before the drop guard is reached.
    small_ok = render(load_per_asset_lists(shared_data / "ofac" / "2022-09-03")[:20], published=date(2025, 5, 30))
    csv_latin = b'36,"SOCI\xc9T\xc9 X","-0-","CYBER2","-0-","-0-","-0-","-0-","-0-","-0-","-0-","Digital Currency '
    csv_latin += b'Address - XBT 1BoatSLRHtKNngkdXEeobR76b53LETtpyT; alt."\r\n'
    deep = b'<Sanctions xmlns="' + NS_SLS.encode() + b'">' + b"<a>" * 5000 + b"</a>" * 5000 + b"</Sanctions>"
    return [
        ("truncated-xml", xml[: len(xml) // 2], ("not well-formed",)),
        ("truncated-at-1-byte", xml[:1], ("not well-formed",)),
        ("oversized", xml, ("max_download_bytes",)),
        ("billion-laughs", BILLION_LAUGHS, ("DOCTYPE",)),
        ("external-entity", XXE, ("DOCTYPE",)),
        ("deep-nesting", deep, ("deeper",)),
        ("huge-text", small_ok[:2000].replace(b"<Year>", b"<Year>" + b"9" * 5000), ("longer than",)),
        ("latin1-declared-utf8", small_ok.replace(b"DOE0", b"D\xd6E0"), ("not well-formed",)),
        ("utf16-no-bom", small_ok.decode().encode("utf-16-le"), ("encoding",)),
        ("sdn-csv-latin1", csv_latin, ("not UTF-8",)),
        ("html-error-page", b"<!DOCTYPE html><html><body>Service unavailable</body></html>", ("HTML",)),
        ("empty", b"", ("empty",)),
        ("gzip-garbage", b"\x1f\x8b" + b"\x00" * 64, ("gzip",)),
        ("gzip-bomb", gzip.compress(b" " * (65 * 1024 * 1024), 9), ("expands beyond",)),
        ("no-crypto", (shared_data / "ofac_raw" / "advanced_xml" / "cons_advanced_2020-03-17.xml").read_bytes(), ()),
        ("drop-guard", small_ok, ("drop",)),
    ]


def test_bad_sanctions_files_are_rejected_with_one_line(sqlite_world: World, shared_data: Path) -> None:
    w = sqlite_world
    cases = _list_cases(shared_data)
    big = w.config(_base_config(w.url).replace("200000", "30000000"), "big.toml")  # 30 MB
    runs = []
    for case, body, needles in cases:
        path = w.dir / f"{case}.bin"
        path.write_bytes(body)
        runs.append((w.cli if case == "oversized" else big, ("lists", "refresh", "--source", str(path)), needles))
    # only the attempt is recorded (list_refreshes, with its reason); nothing else changes
    lines = w.expect_all_refused(runs, exclude=("list_refreshes",), prefix="rejected: ")
    assert all(line.endswith("list version 1 stays active") for line in lines), lines
    rows = w.state()["list_refreshes"]
    assert len(rows) == len(cases) and all("rejected" in row for row in rows)
    FIGURES["sanctions_file"] = FIGURES.get("sanctions_file", 0) + len(cases)


def test_oversized_download_over_http(sqlite_world: World, shared_data: Path) -> None:
    w = sqlite_world
    xml = _real_xml(shared_data)
    with serve() as server:
        server.route("/announced.xml", Reply(body=xml))  # Content-Length says it at once
        server.route("/chunked.xml", Reply(body=xml, sized=False))  # no length: stopped while streaming
        server.route("/teapot.xml", Reply(status=418, body=b"no"))
        runs = [
            (w.cli, ("lists", "refresh", "--source", server.url(path)), needles)
            for path, needles in (
                ("/announced.xml", ("announces",)),
                ("/chunked.xml", ("max_download_bytes",)),
                ("/teapot.xml", ("HTTP 418",)),
            )
        ]
        w.expect_all_refused(runs, exclude=("list_refreshes",), prefix="rejected: ")
    FIGURES["sanctions_file"] = FIGURES.get("sanctions_file", 0) + len(runs)


# --------------------------------------------------------------------------------------------------- CSV import


def test_csv_import_reports_every_bad_row_and_imports_nothing(world: World) -> None:
    good1, good2 = "0x" + "a1" * 20, "0x" + "a2" * 20
    rows = [
        "chain,address,account",  # 1 header
        f"polygon,{good1},acct-1",  # 2 ok
        "polygon,0xnothex,acct-2",  # 3 bad address
        f"polygon,{good2},",  # 4 empty account
        f"tron,{TRON_TYPO},acct-3",  # 5 Tron checksum
        f"nochain,{good2},acct-4",  # 6 unknown chain
        "polygon,0x" + "0" * 40 + ",acct-5",  # 7 zero address
        f"polygon,{good2},acct-6,extra",  # 8 four columns
        f"polygon,{good1.upper().replace('0X', '0x')},acct-other",  # 9 same address as line 2, other account
        f"polygon,{REGISTERED},acct-7",  # 10 registered to acct-reg already
        f"polygon,{good2},{'x' * 200}",  # 11 account too long
        f"polygon,{good2},acct\x07bell",  # 12 unprintable account
        f"polygon,{good2},acct-8",  # 13 ok
    ]
    csv_file = world.dir / "addresses.csv"
    csv_file.write_text("\n".join(rows) + "\n")
    line = world.expect_refused(world.cli, ("addresses", "import", str(csv_file)), "nothing imported", "10 bad row")
    for bad in (3, 4, 5, 6, 7, 8, 9, 10, 11, 12):
        assert f"line {bad}:" in line, (bad, line)
    for good in (1, 2, 13):
        assert f"line {good}:" not in line
    _count("csv_import")


CSV_FILES = [
    ("latin1", "polygon,0x" + "a1" * 20 + ",soci\xe9t\xe9\n", ("UTF-8",)),
    ("binary", "\x00\x01\x02\xff\xfe", ("UTF-8",)),
    ("huge-field", "polygon,0x" + "a1" * 20 + ",acct-" + "x" * 200_000 + "\n", ("line 1", "field")),
    ("unbalanced-quote", 'polygon,"0x' + "a1" * 20 + ",acct\n", ("line 1",)),
    ("missing", None, ("cannot read",)),
]


def test_unreadable_csv_files(sqlite_world: World) -> None:
    runs = []
    for case, body, needles in CSV_FILES:
        path = sqlite_world.dir / f"{case}.csv"
        if body is not None:
            path.write_bytes(body.encode("latin-1"))
        runs.append((sqlite_world.cli, ("addresses", "import", str(path)), needles))
    sqlite_world.expect_all_refused(runs)
    FIGURES["csv_import"] = FIGURES.get("csv_import", 0) + len(runs)


# --------------------------------------------------------------------------------------------------- CLI args

TOO_BIG_ID = str(2**31)  # ids are INTEGER columns: one past the largest
CLI_CASES: list[tuple[tuple[str, ...], tuple[str, ...]]] = [  # (args, words of the error), run as alice
    (("holds", "show", "H-0"), ("hold id",)),
    (("holds", "show", "H--1"), ("hold id",)),
    (("holds", "show", "abc"), ("hold id",)),
    (("holds", "show", " "), ("hold id",)),
    (("holds", "show", f"H-{TOO_BIG_ID}"), ("H-" + TOO_BIG_ID,)),
    (("holds", "release", TOO_BIG_ID, "--reason", "x"), (TOO_BIG_ID,)),
    (("holds", "release", "H-99", "--reason", "x"), ("H-99",)),
    (("holds", "release", "H-1"), ("--reason",)),
    (("holds", "release", "H-1", "--reason", "  "), ("--reason",)),
    (("holds", "release", "H-1", "--reason", "x" * 5000), ("5000 characters",)),
    (("holds", "reject", "H-1", "--reason", "x", "--to", "nowhere"), ("--to",)),
    (("holds", "reject", "H-2", "--reason", "x", "--to", "return"), ("blocked",)),
    (("holds", "reject", f"H-{TOO_BIG_ID}", "--reason", "x", "--to", "blocked"), (TOO_BIG_ID,)),
    (("holds", "approve", "H-1"), ("H-1",)),  # open, not awaiting approval
    (("holds", "note", "H-1", ""), ("note",)),
    (("holds", "list", "--state", "bogus"), ("bogus",)),
    (("holds", "export", "--format", "xml"), ("xml",)),
    (("flags", "resolve", "F-0", "--reason", "x"), ("flag id",)),
    (("flags", "resolve", f"F-{TOO_BIG_ID}", "--reason", "x"), (TOO_BIG_ID,)),
    (("flags", "resolve", "F-1"), ("--reason",)),
    (("flags", "list", "--state", "closed"), ("closed",)),
    (("lists", "diff", TOO_BIG_ID, "1"), (TOO_BIG_ID,)),
    (("lists", "diff", "1"), ("both",)),
    (("lists", "diff", "7", "8"), ("7",)),
    (("balances", "nobody"), ("nobody",)),
    (("addresses", "add", "polygon", "0xbad", "acct"), ("0xbad",)),
    (("addresses", "add", "nochain", "0x" + "a1" * 20, "acct"), ("nochain",)),
    (("addresses", "add", "polygon", "0x" + "a1" * 20, " "), ("account",)),
    (("addresses", "add", "polygon", REGISTERED, "acct-thief"), ("acct-reg",)),
    (("addresses", "add", "tron", "0x" + "a1" * 19, "acct"), ("tron",)),
    (("lists", "check", " "), ("address",)),
]


# the cases that reach the database with an id or a name: these also run on PostgreSQL (int4 ids, locks)
DB_CASES = {"show", "release", "reject", "approve", "resolve", "diff", "balances"}


def test_cli_arguments_out_of_range(world: World) -> None:
    on_pg = world.url.startswith("postgresql")
    cases = [(world.cli, args, needles) for args, needles in CLI_CASES if not on_pg or args[1] in DB_CASES]
    world.expect_all_refused(cases)
    # bob asked for H-3's release: he may not approve it himself (in any spelling of his name)
    for operator in ("bob", " BOB "):
        before = world.state()
        assert_one_line_error(world.cli.run("holds", "approve", "H-3", operator=operator), "bob")
        assert world.state() == before
    FIGURES["cli_args"] = FIGURES.get("cli_args", 0) + len(cases) + 2
