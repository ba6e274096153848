"""CPU of the SQLite dedup store in one process: remembering a page's facts, and expiring.

``PYTHONPATH=src:. .venv/bin/python -m bench.state_costs [scope]`` prints:

- ``commit_page``: µs per fact over 200,000 facts in pages of 5,000, keys shaped as the
  pipeline makes them (receive hour, then a 16-byte hash) over two days, the least of 4
  rounds, each into a new ``state.db``;
- ``expire_seen``: CPU seconds to expire one receive hour of 100 tenants × 4,000 facts:
  two rounds of calls, every tenant's stream with its own cutoff, ten minutes apart (as a
  running collector makes them), the second an hour past the facts' expiry.

Put another tree's ``src`` first on ``PYTHONPATH`` to time it (schema 2: ``0a13f3c``).
"""

from __future__ import annotations

import sys
import tempfile
import time
from hashlib import blake2b
from pathlib import Path

from o365collector.state.sqlite import SqliteStateStore

FACTS, PAGE, ROUNDS = 200_000, 5_000, 4
TENANTS, PER_HOUR = 100, 4_000
LAG = 3_600  # schema 3 reads an hour once a stream is this far past its cutoff


def _key(hour: str, index: int | str) -> bytes:
    return hour.encode() + blake2b(str(index).encode(), digest_size=16).digest()


def _pages() -> list[list[tuple[bytes, str, int]]]:
    """Two days of facts in receive-hour order, one expiry per page."""
    pages = []
    for page in range(FACTS // PAGE):
        facts = []
        for index in range(page * PAGE, (page + 1) * PAGE):
            hours = index * 48 // FACTS
            hour = f"2026-11-{20 + hours // 24:02d}T{hours % 24:02d}"
            facts.append((_key(hour, index), "Delivered", 1_700_000_000 + page))
        pages.append(facts)
    return pages


def commit_us(scope: str) -> float:
    """Least CPU µs per fact of ``commit_page`` over :data:`FACTS` facts."""
    pages = _pages()
    best = float("inf")
    for _ in range(ROUNDS):
        store = SqliteStateStore(Path(tempfile.mkdtemp()) / "state.db")
        began = time.process_time()
        for facts in pages:
            store.commit_page(scope, facts, None)
        best = min(best, time.process_time() - began)
        store.close()
    return best / FACTS * 1e6


def expire_secs() -> tuple[float, int]:
    """CPU seconds and facts forgotten when every tenant's stream expires one hour."""
    store = SqliteStateStore(Path(tempfile.mkdtemp()) / "state.db")
    scopes = [f"t{tenant:03d}\x1fmessage_trace" for tenant in range(TENANTS)]
    for tenant, scope in enumerate(scopes):
        facts = [
            (_key("2026-11-20T05", f"{tenant}-{i}"), "Delivered", 1000) for i in range(PER_HOUR)
        ]
        store.commit_page(scope, facts, None)
    began = time.process_time()
    # Two rounds ten minutes apart, the hour an hour past due in the second: schema 3
    # reads it then, once; schema 2 deleted each stream's facts in the first round.
    forgotten = sum(store.expire_seen(1000 + LAG - 600, scope) for scope in scopes)
    forgotten += sum(store.expire_seen(1000 + LAG + 1, scope) for scope in scopes)
    secs = time.process_time() - began
    store.close()
    return secs, forgotten


def main() -> None:
    """Print both figures."""
    scope = sys.argv[1] if len(sys.argv) > 1 else "t000\x1fmessage_trace"
    print(f"commit_page: {commit_us(scope):.2f} µs per fact (least of {ROUNDS} rounds)")
    secs, forgotten = expire_secs()
    print(
        f"expire_seen: {secs:.2f} s CPU for one hour of {TENANTS} tenants × {PER_HOUR:,} "
        f"facts ({forgotten:,} forgotten)"
    )


if __name__ == "__main__":
    main()
