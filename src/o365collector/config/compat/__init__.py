"""Foreign configurations (Devo, Sekoia, seed 000's flat keys) mapped onto the native model.

:func:`translate_foreign` recognises a foreign layout and returns the native data to
validate, or ``None`` for a native file (which then loads exactly as before).
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from o365collector.config.compat.devo import DEVO_KEYS, INPUT, translate_cloud, translate_devo
from o365collector.config.compat.draft import Context, collector_root
from o365collector.config.compat.finish import NATIVE_BLOCK, Translation, finish
from o365collector.config.compat.flat import FLAT_KEYS, translate_flat
from o365collector.config.compat.settings import CompatSettings, ResetMarker, ServiceReset
from o365collector.config.compat.values import Problems

__all__ = [
    "CompatSettings",
    "ResetMarker",
    "ServiceReset",
    "Translation",
    "collector_root",
    "detect_layout",
    "translate_foreign",
]


def detect_layout(data: dict[str, Any]) -> str | None:
    """``devo``, ``devo_cloud``, ``flat`` or ``mixed`` for a foreign layout; ``None`` if native.

    A file with ``tenants`` is always native. Otherwise Devo's ``globals``/``outputs``/
    ``inputs``, the cloud collector's ``office365_reporting_message``, or a flat key
    (``account_name``, ``intake_key``, ``tenant_id``, ``client_secret``, …) mark it foreign.
    """
    keys = {str(k) for k in data}
    if "tenants" in keys:
        return None
    kinds = set()
    if keys & set(DEVO_KEYS):
        kinds.add("devo")
    if INPUT in keys:
        kinds.add("devo_cloud")
    if keys & set(FLAT_KEYS):
        kinds.add("flat")
    if not kinds:
        return "devo_cloud" if NATIVE_BLOCK in keys else None
    return kinds.pop() if len(kinds) == 1 else "mixed"


def translate_foreign(
    data: dict[str, Any],
    *,
    base_dir: Path,
    problems: list[str],
    now: datetime | None = None,
) -> Translation | None:
    """Map a foreign layout onto native data; ``None`` when ``data`` is a native file.

    Args:
        data: The parsed file, ``${ENV}`` and ``*_file`` already expanded.
        base_dir: The configuration file's folder (``certs/`` and ``state/`` are found
            beside it, or beside its parent folder named ``config``).
        problems: Receives one ``seed.key.path: what is wrong`` line per broken rule;
            values of secrets are never quoted.
        now: The time ``start_time`` limits are checked against (default: now).

    Returns:
        The native data and the key-path renames for native validation errors, or
        ``None`` (native file, or problems were found).
    """
    layout = detect_layout(data)
    if layout is None:
        return None
    ctx = Context(base_dir, now or datetime.now(UTC), Problems())
    if layout == "mixed":
        ctx.problems.add(
            "(top level)",
            "mixes Devo keys (globals, outputs, inputs, office365_reporting_message) with "
            "flat Sekoia/app keys; keep one layout (see docs/migrating.md)",
        )
        draft = None
    elif layout == "devo":
        draft = translate_devo(data, ctx)
    elif layout == "devo_cloud":
        draft = translate_cloud(data, ctx)
    else:
        draft = translate_flat(data, ctx)
    translation = finish(draft, data.get(NATIVE_BLOCK), ctx) if draft is not None else None
    if ctx.problems.items:
        problems.extend(ctx.problems.items)
        return None
    if translation is not None and translation.notes:
        _log_notes(translation)
    return translation


def _log_notes(translation: Translation) -> None:
    """Log the translation's notes as warnings.

    structlog (and the rich renderer it loads) is imported here, not at module level:
    a native file, the common case of ``validate``, needs neither (~40 ms of start-up).
    """
    import structlog  # noqa: PLC0415

    log = structlog.get_logger(__name__)
    for note in translation.notes:
        log.warning(note, layout=translation.data["compat_layout"])
