"""Seeded generation of a tenant's dataset: receive times, recipients, delays, status histories."""

from __future__ import annotations

import random
from array import array
from collections.abc import Callable
from dataclasses import dataclass
from itertools import accumulate, chain, repeat
from operator import add

from .dataset import (
    DELIVERED,
    EXPANDED,
    FAILED,
    FILTERED_AS_SPAM,
    KIND_GETTING,
    KIND_GETTING_PENDING,
    KIND_PENDING,
    QUARANTINED,
    TenantData,
)
from .pools import build_pools
from .settings import EmulatorSettings, TenantSpec
from .ticks import TICKS_PER_MICRO, TICKS_PER_SEC
from .traces import NO_EXTRA_STATUSES, ExtraStatuses

_FINALS = (DELIVERED, FAILED, EXPANDED, QUARANTINED, FILTERED_AS_SPAM)
_FINAL_CUMULATIVE = (82.0, 87.0, 90.0, 94.0, 100.0)  # percent
_GUID_CLEAR = ~((0xF000 << 64) | (0xC000 << 48))  # version 4, RFC 4122 variant
_GUID_SET = (0x4000 << 64) | (0x8000 << 48)
_MASK128 = (1 << 128) - 1
_FRACTION_SHARE = 0.1  # share of messages whose receivedDateTime has fractional seconds


@dataclass(frozen=True)
class _Model:
    """Delay model: (low, span) pairs in microseconds and the fractions."""

    multi: float
    visible: tuple[int, int]
    late_fraction: float
    late: tuple[int, int]
    change_fraction: float
    change: tuple[int, int]


def _model(settings: EmulatorSettings) -> _Model:
    def span(pair: tuple[float, float]) -> tuple[int, int]:
        low = int(pair[0] * 1_000_000)
        return low, int(pair[1] * 1_000_000) - low

    return _Model(
        multi=settings.multi_recipient_fraction,
        visible=span(settings.visible_delay_secs),
        late_fraction=settings.late_fraction,
        late=span(settings.late_delay_secs),
        change_fraction=settings.status_change_fraction,
        change=span(settings.status_change_delay_secs),
    )


def _recipient_counts(rng: random.Random, rows: int, multi: float) -> list[int]:
    """Recipients per message (1, or 2-5 for a ``multi`` share) summing to exactly ``rows``."""
    random_ = rng.random
    counts: list[int] = []
    total = 0
    while total < rows:
        batch = max(16, int((rows - total) / (1 + 2.5 * multi) * 1.05))
        more = [2 + int(random_() * 4) if random_() < multi else 1 for _ in range(batch)]
        for i, acc in enumerate(accumulate(more, initial=total)):
            if acc >= rows:
                counts += more[:i]
                counts[-1] -= acc - rows
                return counts
        counts += more
        total += sum(more)
    return counts


def _message_keys(rng: random.Random, count: int, start: int, end: int) -> list[int]:
    """Sorted ``ticks << 128 | trace guid`` keys for ``count`` messages received in [start, end].

    Most receive times are whole seconds; a share carries 1-7 fractional digits.
    """
    lo_sec = -(-start // TICKS_PER_SEC)
    span = end // TICKS_PER_SEC - lo_sec + 1
    random_, getrandbits = rng.random, rng.getrandbits
    if span <= 0:
        ticks = [end] * count
    else:
        ticks = [(lo_sec + int(random_() * span)) * TICKS_PER_SEC for _ in range(count)]
        last = (lo_sec + span - 1) * TICKS_PER_SEC  # a fraction there could pass ``end``
        for i in [i for i in range(count) if random_() < _FRACTION_SHARE]:
            if ticks[i] < last:
                digits = 1 + int(random_() * 7)
                ticks[i] += (1 + int(random_() * (10**digits - 1))) * 10 ** (7 - digits)
    keys = [(t << 128) | (getrandbits(128) & _GUID_CLEAR) | _GUID_SET for t in ticks]
    keys.sort()
    return keys


def _distinct(random_: Callable[[], float], group: list[int], size: int, k: int) -> list[int]:
    """``k`` distinct members of an ascending ``group``, ascending: a random strided slice."""
    stride = 1 + int(random_() * min(50, (size - 1) // (k - 1)))
    start = int(random_() * (size - (k - 1) * stride))
    return group[start : start + (k - 1) * stride + 1 : stride]


def _append_messages(
    data: TenantData, rng: random.Random, keys: list[int], counts: list[int]
) -> list[int]:
    """Append message columns; return each row's recipient address index (rows in order)."""
    pools = data.pools
    internal, external = pools.internal, pools.external
    inbound_ips, client_ips = pools.inbound_ips, pools.client_ips
    n_int, n_ext, n_in_ip, n_cl_ip = len(internal), len(external), len(inbound_ips), len(client_ips)
    n_subjects = len(pools.subjects)
    random_ = rng.random
    data.guids += b"".join([(key & _MASK128).to_bytes(16, "big") for key in keys])
    # direction: < 0.7 inbound from the internet, < 0.9 outbound, else intra-organisation
    rolls = [random_() for _ in keys]
    data.msg_sender.extend(
        [
            external[int(random_() * n_ext)] if r < 0.7 else internal[int(random_() * n_int)]
            for r in rolls
        ]
    )
    data.msg_from_ip.extend(
        [
            inbound_ips[int(random_() * n_in_ip)]
            if r < 0.7
            else client_ips[int(random_() * n_cl_ip)]
            for r in rolls
        ]
    )
    data.msg_subject.extend([int(random_() * n_subjects) for _ in keys])
    data.msg_size.extend([1500 + int(random_() ** 3 * 25_000_000) for _ in keys])
    first = len(data.ticks)
    data.msg_first_row.extend(accumulate(counts[:-1], initial=first) if counts else [])
    picks = [
        [group[int(random_() * size)]] if k == 1 else _distinct(random_, group, size, k)
        for group, size, k in zip(
            [external if 0.7 <= r < 0.9 else internal for r in rolls],
            [n_ext if 0.7 <= r < 0.9 else n_int for r in rolls],
            counts,
            strict=True,
        )
    ]
    return list(chain.from_iterable(picks))


def _append_segment(
    data: TenantData, rng: random.Random, model: _Model, rows: int, start: int, end: int
) -> None:
    """Generate ``rows`` rows received in [start, end] and append them (all later than before).

    Column at a time (comprehensions, not a per-row loop) to generate 1M rows in seconds.
    """
    counts = _recipient_counts(rng, rows, model.multi)
    keys = _message_keys(rng, len(counts), start, end)
    first_msg, first_row = len(data.msg_sender), len(data.ticks)
    data.row_rcpt.extend(_append_messages(data, rng, keys, counts))
    message_ticks = [key >> 128 for key in keys]
    data.ticks.extend(chain.from_iterable(map(repeat, message_ticks, counts)))
    data.row_msg.extend(
        chain.from_iterable(map(repeat, range(first_msg, first_msg + len(counts)), counts))
    )
    random_, micro = rng.random, TICKS_PER_MICRO
    vis_lo, vis_span = model.visible
    late_lo, late_span = model.late
    late = model.late_fraction
    delays = [  # whole microseconds, as ticks
        (
            late_lo + int(random_() * late_span)
            if random_() < late
            else vis_lo + int(random_() * vis_span)
        )
        * micro
        for _ in range(rows)
    ]
    # first visibility, rounded up to a whole microsecond (clocks have microsecond precision)
    received_up = [-(-t // micro) * micro for t in message_ticks]
    vis = list(map(add, chain.from_iterable(map(repeat, received_up, counts)), delays))
    data.vis.extend(vis)
    hist = bytearray(rng.choices(_FINALS, cum_weights=_FINAL_CUMULATIVE, k=rows))
    chg = array("q", bytes(8 * rows))
    chg_lo, chg_span = model.change
    changing = model.change_fraction
    for i in [i for i in range(rows) if random_() < changing]:
        t1 = vis[i] + (1 + chg_lo + int(random_() * chg_span)) * micro
        chg[i] = t1
        roll = random_()
        if roll < 0.4:
            hist[i] |= KIND_PENDING << 3
        elif roll < 0.58:  # gettingStatus, then pending, then the final status
            hist[i] |= KIND_GETTING_PENDING << 3
            data.chg2[first_row + i] = t1 + (1 + chg_lo + int(random_() * chg_span)) * micro
        else:
            hist[i] |= KIND_GETTING << 3
    data.hist += hist
    data.chg.extend(chg)


def generate_tenant(spec: TenantSpec, settings: EmulatorSettings, anchor: int) -> TenantData:
    """Generate a tenant's dataset; a pure function of (spec, settings, anchor ticks).

    History rows (exactly ``spec.rows``) are received in [anchor - history_secs, anchor];
    live rows (``round(live_rows_per_sec * live_secs)``) in (anchor, anchor + live_secs].
    """
    seed = f"o365collector-emulator:{settings.seed}:{spec.tenant_id.lower()}"
    rng = random.Random(seed)  # noqa: S311 - reproducible test data, not cryptography
    live_rows = round(settings.live_rows_per_sec * settings.live_secs)
    data = TenantData(spec, build_pools(rng, spec.domain.lower(), spec.rows + live_rows))
    data.message_id_xor = rng.getrandbits(128) & _GUID_CLEAR & ~_GUID_SET
    model = _model(settings)
    history_start = anchor - int(settings.history_secs * TICKS_PER_SEC)
    _append_segment(data, rng, model, spec.rows, history_start, anchor)
    live_end = anchor + int(settings.live_secs * TICKS_PER_SEC)
    _append_segment(data, rng, model, live_rows, anchor + 1, live_end)
    return data


def mix_extra_statuses(data: TenantData, settings: EmulatorSettings) -> ExtraStatuses:
    """Which rows show one of ``settings.extra_statuses`` first, which one, and until when.

    A pure function of (data, settings) drawing from its own generator, so the rows, their
    times and histories are those of the same settings without extra statuses.
    """
    names = tuple(settings.extra_statuses)
    if not names or settings.extra_status_fraction == 0.0:
        return NO_EXTRA_STATUSES
    seed = f"o365collector-emulator:{settings.seed}:{data.spec.tenant_id.lower()}:extra-statuses"
    rng = random.Random(seed)  # noqa: S311 - reproducible test data, not cryptography
    random_, fraction = rng.random, settings.extra_status_fraction
    low = int(settings.extra_status_secs[0] * TICKS_PER_SEC)
    span = int(settings.extra_status_secs[1] * TICKS_PER_SEC) - low
    vis = data.vis
    shown = {
        row: (int(random_() * len(names)), vis[row] + low + int(random_() * span))
        for row in range(len(data))
        if random_() < fraction
    }
    return ExtraStatuses(names, shown)
