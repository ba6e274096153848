"""The results of ``check``: one finding per probe, with the problem and its fix."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any, Literal

Status = Literal["pass", "fail", "skip"]


@dataclass(frozen=True, slots=True)
class Finding:
    """One probe's outcome.

    Attributes:
        target: What was probed: ``tenant <label>`` or ``sink <name>``.
        probe: Which probe: ``token graph``, ``permissions graph``, ``stream message_trace``,
            ``sink``.
        status: ``pass``; ``fail`` (the exit status is then 1); ``skip`` (not probed: an
            earlier probe failed, or nothing can be checked for this target).
        problem: A stable name for the failure (``invalid_credentials``, ``consent_missing``,
            ``service_principal_missing`` …); empty unless the status is ``fail``.
        detail: What was seen, redacted and with identifiers shortened.
        fix: What to do about it; empty when there is nothing to do.
    """

    target: str
    probe: str
    status: Status
    problem: str = ""
    detail: str = ""
    fix: str = ""


@dataclass(slots=True)
class Report:
    """Every finding of one ``check`` run, in probe order."""

    findings: list[Finding] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """True when no probe failed (skipped probes do not fail the check)."""
        return all(f.status != "fail" for f in self.findings)

    @property
    def exit_code(self) -> int:
        """0 when every probe passed or was skipped, else 1."""
        return 0 if self.ok else 1

    def add(self, finding: Finding) -> Finding:
        """Record ``finding`` and return it."""
        self.findings.append(finding)
        return finding

    def as_dict(self) -> dict[str, Any]:
        """The report as JSON-ready data: ``{"ok": …, "findings": […]}``."""
        return {"ok": self.ok, "findings": [asdict(f) for f in self.findings]}
