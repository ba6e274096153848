"""The seed's config.yaml, placeholders filled, collects from the emulator into a Devo receiver."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from o365collector.app import Collector, RunOptions
from o365collector.config.loader import load_settings
from o365collector.windows import parse_iso
from support.compat import (
    APP_TENANT,
    DEVO_HOST,
    DevoReceiver,
    Layout,
    emulator_for,
    native_block,
    seed_yaml,
)

MESSAGE_TRACE_TABLE = "cloud.office365.reporting.messagetrace"


@pytest.mark.timeout(60)
async def test_seed_config_collects_from_the_emulator(tmp_path) -> None:
    layout = Layout(tmp_path / "office365")
    emulator = emulator_for(rows=300)
    receiver = DevoReceiver(layout)
    try:
        block = native_block(
            emulator.base_url,
            outputs={"devo_1": {"host": "127.0.0.1", "port": receiver.port,
                                "tls_server_name": DEVO_HOST}},
        )  # fmt: skip
        settings = load_settings(layout.write(seed_yaml(), block))
        started = datetime.now(UTC)
        result = await Collector(
            settings, RunOptions(once=True, install_signal_handlers=False)
        ).run()
        lines = receiver.lines()
    finally:
        receiver.close()
        emulator.stop()
    # Only Reporting Web Service streams may fail: this emulator serves Graph message trace.
    assert all("stream rws." in failure for failure in result.failures), result.failures
    traces = [record for table, record in lines if table == MESSAGE_TRACE_TABLE]
    delivered = [(r["id"], r["recipientAddress"]) for r in traces]
    assert len(delivered) == len(set(delivered)), "a row was delivered twice"
    lookback = settings.collection.initial_lookback_secs  # 1 day: the whole emulated history
    expected = {
        (row["id"], row["recipientAddress"])
        for row in emulator.ground_truth(APP_TENANT)
        if parse_iso(row["receivedDateTime"]) >= started - timedelta(seconds=lookback - 60)
    }
    assert len(expected) >= 300
    assert set(delivered) == expected
    assert (layout.root / "state" / "state.db").is_file()  # globals.persistence → state/
