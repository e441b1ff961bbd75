"""Run every benchmark in bench/ one after the other (`make bench`); each prints its own ratios."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

BENCHES = ("bench_ofac_parse.py", "bench_scan.py", "bench_audit_verify.py")
# Each bench finishes in a few minutes on 2 cores; the cap keeps a stuck node from hanging `make bench`.
TIMEOUT_S = 1800


def main() -> int:
    here = Path(__file__).parent
    failed = 0
    for name in BENCHES:
        print(f"== {name}", flush=True)
        try:
            rc = subprocess.run([sys.executable, str(here / name)], timeout=TIMEOUT_S, check=False).returncode
        except subprocess.TimeoutExpired:
            print(f"{name}: timed out after {TIMEOUT_S} s", flush=True)
            rc = 1
        failed += rc != 0
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
