"""`screener audit verify` on a large chain: 100,000 events with 20,000 holds (issue 13: under 60 s here).

Builds a SQLite database with the real review service (credited deposits: a transfer and a deposit.credited
event each; held deposits: a hold transfer and a hold.opened event, with row seals), then times:

- ours:     the real `screener audit verify` command (a subprocess: start-up, chain, malformed-row scan,
            ledger, row seals, everything it checks)
- baseline: in this process, the least any verifier must do: read every event and recompute its sha256

and prints both and the ratio. Run:

    .venv/bin/python bench/bench_audit_verify.py [--events 100000] [--holds 20000] [--repeats 2]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # tests/support builds the deposits (test-only code, not installed)
BATCH = 1000


def build(db: Path, events: int, holds: int) -> int:
    """A chain of about ``events`` events with ``holds`` open holds; returns the number of events written."""
    from screener.db import make_engine, session_scope, upgrade
    from screener.ledger.audit import HEAD_ID
    from screener.models.ledger import AuditHead
    from screener.review import service as review
    from screener.screening.verdicts import Decision, Finding, Severity, Verdict
    from screener.settings import Settings
    from tests.support.ledger_model import NOW, make_deposit, make_screenable

    engine = make_engine(f"sqlite:///{db}")
    upgrade(engine)
    settings = Settings(lists={"max_list_age_h": 87600})
    mixer = Finding("mixer.direct", Severity.REVIEW, "from", "0x" + "44" * 20, detail="Tornado Cash pool")
    deposits = max(holds, events // 2)  # two events per deposit
    with session_scope(engine) as s:
        make_screenable(s, NOW)
    for start in range(0, deposits, BATCH):
        with session_scope(engine) as s:
            for n in range(start + 1, min(deposits, start + BATCH) + 1):
                held = n <= holds
                verdict = Verdict(Decision.HOLD, (mixer,)) if held else Verdict(Decision.CREDIT)
                review.apply_verdict(
                    s, make_deposit(n, 1_000_000 + n, account=f"acct-{n % 500}"), verdict, settings, NOW
                )
    with session_scope(engine) as s:
        head = s.get(AuditHead, HEAD_ID)
        written = head.seq if head else 0
    engine.dispose()
    return written


def baseline(db: Path) -> float:
    """Read every event and recompute its hash: the floor of any chain check."""
    import sqlite3

    started = time.perf_counter()
    with sqlite3.connect(db) as conn:
        prev = "0" * 64
        for seq, kind, subject, actor, at, payload, stored in conn.execute(
            "SELECT seq, kind, subject, actor, at, payload, hash FROM audit_events ORDER BY seq"
        ):
            body = {
                "seq": seq,
                "kind": kind,
                "subject": subject,
                "actor": actor,
                "at": at,
                "payload": json.loads(payload),
            }
            digest = hashlib.sha256((prev + json.dumps(body, sort_keys=True, separators=(",", ":"))).encode())
            prev = stored or digest.hexdigest()
    return time.perf_counter() - started


def ours(config: Path) -> float:
    started = time.perf_counter()
    res = subprocess.run(
        [str(ROOT / ".venv" / "bin" / "screener"), "--config", str(config), "audit", "verify"],
        capture_output=True,
        text=True,
        timeout=1800,
        check=False,
    )
    elapsed = time.perf_counter() - started
    if res.returncode != 0:
        raise SystemExit(f"audit verify failed: {res.stderr.strip()}")
    return elapsed


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=100_000)
    parser.add_argument("--holds", type=int, default=20_000)
    parser.add_argument("--repeats", type=int, default=2)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-verify-") as tmp:
        db, config = Path(tmp) / "s.db", Path(tmp) / "c.toml"
        config.write_text(f'[database]\nurl = "sqlite:///{db}"\n\n[lists]\nmax_list_age_h = 87600\n')
        started = time.perf_counter()
        written = build(db, args.events, args.holds)
        print(f"built {written} events ({args.holds} holds) in {time.perf_counter() - started:.1f} s", flush=True)
        runs = [(ours(config), baseline(db)) for _ in range(max(1, args.repeats))]
    best_ours, best_base = min(r[0] for r in runs), min(r[1] for r in runs)
    print(f"ours (screener audit verify): {', '.join(f'{r[0]:.2f} s' for r in runs)}")
    print(f"baseline (read + sha256 only): {', '.join(f'{r[1]:.2f} s' for r in runs)}")
    print(f"ratio ours / baseline: {best_ours / best_base:.1f}x; {written / best_ours:,.0f} events/s verified")
    return 0


if __name__ == "__main__":
    sys.exit(main())
