"""CPU per event of a batch of JSON lines, by payload: what ``sinks.encode.lines`` costs.

``PYTHONPATH=src:. .venv/bin/python -m bench.ecs_lines [rows] [rounds]`` prints, for message
trace rows made by :mod:`bench.normalize` (Graph, and RWS JSON light) and the emulator's
(Graph, and RWS verbose: the shapes the collector reads), the least CPU microseconds per
event of ``lines`` with ``payload`` envelope, ecs and ocsf (local domains of tenant
``contoso``), in this process, called on pages of 5,000 events as the sinks get them (one
call on 100,000 would time the growth of a 130 MB buffer too). Only ``lines`` is called, so
the same command times any revision of the collector.
"""

from __future__ import annotations

import sys
import time

from bench.normalize import DOMAINS, emulator_events, events
from o365collector.event import Event
from o365collector.normalize.normalizer import Normalizer
from o365collector.sinks.encode import Payload, lines

STAMP = "2026-12-06T00:00:00.000000Z"
PAGE = 5_000


def cpu_us(batch: list[Event], payload: Payload, rounds: int) -> float:
    """The least CPU microseconds per event of ``rounds`` passes of ``lines`` over ``batch``,
    a page at a time."""
    best = float("inf")
    for _ in range(rounds):
        began = time.process_time()
        for start in range(0, len(batch), PAGE):
            lines(batch[start : start + PAGE], payload, STAMP)
        best = min(best, time.process_time() - began)
    return best / len(batch) * 1e6


def main() -> None:
    """Print one row per set of rows: envelope, ECS and OCSF µs per event."""
    count = int(sys.argv[1]) if len(sys.argv) > 1 else 100_000
    rounds = int(sys.argv[2]) if len(sys.argv) > 2 else 5
    graph, rws = events(count)
    served = emulator_events(2_000)
    sets = {
        "bench Graph": graph,
        "bench RWS": rws,
        "emulator Graph": served["message_trace"],
        "emulator RWS": served["rws.MessageTrace"],
    }
    payloads = {
        "envelope": Payload("envelope"),
        "ecs": Payload("ecs", Normalizer("ecs", local_domains=DOMAINS)),
        "ocsf": Payload("ocsf", Normalizer("ocsf", local_domains=DOMAINS)),
    }
    print(f"µs/event, best of {rounds} ({count:,} bench rows; emulator rows repeated to it)")
    for label, rows in sets.items():
        batch = (rows * -(-count // len(rows)))[:count]
        figures = {name: cpu_us(batch, payload, rounds) for name, payload in payloads.items()}
        extra = figures["ecs"] - figures["envelope"]
        cells = "  ".join(f"{name} {value:5.2f}" for name, value in figures.items())
        print(f"{label:15} {cells}  ecs-envelope {extra:5.2f}")


if __name__ == "__main__":
    main()
