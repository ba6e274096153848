"""One place that turns an event into its normalized document: ECS or OCSF, by stream.

A sink with ``payload: ecs`` or ``payload: ocsf`` holds a :class:`Normalizer`; it picks the
mapper of the event's stream once per stream and calls it per event:

- ``message_trace`` (Graph) and ``rws.MessageTrace``: :mod:`.ecs` / :mod:`.ocsf`;
- every other ``rws.<Report>`` and ``message_trace_detail``: the report mappers
  (:mod:`.ecs_reports` / :mod:`.ocsf_reports`);
- a stream no mapper knows (a report added to the catalog before its mapper): the generic
  mapper of the format, which keeps the whole record under the product namespace (ECS
  ``o365.<stream>``, OCSF ``unmapped``) so nothing is dropped.

``local_domains`` is per tenant (the tenant's label, as in ``event.tenant``); a tenant
without any gets no ``email.direction`` / ``direction_id`` 0 Unknown.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Literal

from o365collector.event import Event
from o365collector.normalize import ecs, ecs_reports, ocsf, ocsf_reports
from o365collector.normalize.mapper import Mapper
from o365collector.streams.catalog import GRAPH_MESSAGE_TRACE, RWS_PREFIX

NormalForm = Literal["ecs", "ocsf"]

MESSAGE_TRACE_STREAMS = frozenset({GRAPH_MESSAGE_TRACE, f"{RWS_PREFIX}MessageTrace"})


def mapper_for(form: NormalForm, stream: str) -> Mapper:
    """The mapper of ``stream`` in ``form``; the generic one when no mapper knows it."""
    if stream in MESSAGE_TRACE_STREAMS:
        return ecs.map_message_trace if form == "ecs" else ocsf.map_message_trace
    mappers, generic = (
        (ecs_reports.MAPPERS, ecs_reports.generic)
        if form == "ecs"
        else (ocsf_reports.MAPPERS, ocsf_reports.generic)
    )
    report = stream.removeprefix(RWS_PREFIX)
    return mappers.get(report) or mappers.get(stream) or generic


class Normalizer:
    """Maps events to ``form`` documents, with each tenant's local domains."""

    __slots__ = ("_domains", "_mappers", "form", "include_original")

    def __init__(
        self,
        form: NormalForm,
        *,
        local_domains: Mapping[str, Sequence[str]] | None = None,
        include_original: bool = False,
    ) -> None:
        """``local_domains`` maps a tenant label to its mail domains."""
        self.form: NormalForm = form
        self.include_original = include_original
        self._domains = {tenant: tuple(d) for tenant, d in (local_domains or {}).items()}
        self._mappers: dict[str, Mapper] = {}

    def document(self, event: Event) -> dict[str, Any]:
        """The normalized document of ``event``."""
        try:  # once per event: the lookup that cannot miss after a stream's first event
            mapper = self._mappers[event.stream]
        except KeyError:
            mapper = self._mappers[event.stream] = mapper_for(self.form, event.stream)
        return mapper(event, self._domains.get(event.tenant, ()), self.include_original)
