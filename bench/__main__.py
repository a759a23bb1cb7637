"""Run every benchmark, one after another: ``python -m bench`` (``make bench``).

Each prints Markdown tables that compare against a baseline measured in the same run.
"""

from __future__ import annotations

import subprocess
import sys
import time
from datetime import UTC, datetime

from bench.measure import machine
from testkit import ROOT

SCRIPTS = [
    ("1. Status discovery: push vs poll", "bench.push_vs_poll"),
    ("2. Fan-out", "bench.fanout"),
    ("2b. Fan-out, many users", "bench.fanout_users"),
    ("3. API throughput", "bench.api_throughput"),
    ("4. Signing cost", "bench.signing"),
    ("5. Pipeline throughput", "bench.pipeline"),
    ("6. Cold start", "bench.cold_start"),
    ("7. Submit cost", "bench.submit_cost"),
]


def main() -> int:
    print(f"# walletql benchmarks\n\n{datetime.now(UTC):%Y-%m-%d %H:%M} UTC, {machine()}")
    failed = []
    for title, module in SCRIPTS:
        print(f"\n## {title}\n", flush=True)
        started = time.monotonic()
        done = subprocess.run(  # noqa: S603 - our own modules
            [sys.executable, "-m", module, *sys.argv[1:]], cwd=ROOT, check=False
        )
        print(f"\n({module}: {time.monotonic() - started:.0f} s)", flush=True)
        if done.returncode != 0:
            failed.append(module)
    if failed:
        print(f"\nfailed: {', '.join(failed)}")
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
