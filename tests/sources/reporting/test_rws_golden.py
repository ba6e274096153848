"""Golden tests: every reference sample and peer fixture read into the same records.

Inputs live in ../shared (not shipped with the repository); each test skips with the reason
when they are absent (and fails where ``O365COLLECTOR_REQUIRE_SHARED`` is set, as in CI).
Expected values come from the peers' own expected outputs wherever one covers the message
(Sekoia intake-format tests, Elastic pipeline tests and sample event): the row the peer read,
and every other capture of the same message. Only rows no peer output covers are checked
against golden/rws_message_trace.json, whose values were checked by hand against the raw
input text (see golden/README.md).
"""

from __future__ import annotations

import json
from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
import yaml
from pydantic import SecretStr
from rws_golden_inputs import normalize, rws_inputs

from o365collector.errors import SourceError
from o365collector.http.auth import TokenProvider
from o365collector.http.classify import Action, classify_graph, classify_reporting
from o365collector.sources.graph.message_trace import GraphMessageTraceSource
from o365collector.sources.reporting.detail import detail_key
from o365collector.sources.reporting.envelope import parse_envelope
from o365collector.sources.reporting.paging import (
    passes_ceiling,
    resolve_link,
    skiptoken_of,
)
from o365collector.sources.reporting.source import ReportSource
from o365collector.streams.catalog import CATALOG
from o365collector.windows import TimeWindow, parse_iso
from support.rws import token_response
from support.shared import FIXTURES, SAMPLES, shared_or_skip

GOLDEN = Path(__file__).parent / "golden" / "rws_message_trace.json"
RWS = "https://reports.office365.com/ecp/reportingwebservice/reporting.svc"
ELASTIC = FIXTURES / "elastic-integrations"
PIPELINE = ELASTIC / "data_stream/log/_dev/test/pipeline"
# The inputs holding a message some peer's expected output covers (15 rows in all).
COVERED = {
    "reference/samples/elastic_rws_messagetrace_jsonlight.json": 1,
    "reference/samples/sekoia_rws_messagetrace_verbose.json": 1,
    "fixtures/sekoia-intake-formats/message-trace/messagetrace.json": 1,
    "fixtures/sekoia-intake-formats/message-trace/messagetrace2.json": 1,
    "fixtures/elastic-integrations/data_stream/log/_dev/test/pipeline/test-log.log": 4,
    "fixtures/elastic-integrations/_dev/deploy/docker/sample_logs/defender_atp-test.json.log": 1,
    "fixtures/elastic-integrations/_dev/deploy/docker/sample_logs/"
    "microsoft_exchange_online_message_trace_test.ndjson.log": 2,
    "fixtures/elastic-integrations/data_stream/log/sample_event.json": 1,
    "fixtures/elastic-integrations/_dev/deploy/docker/files/config.yml": 3,
}


@pytest.fixture(autouse=True)
def _shared() -> None:
    shared_or_skip(SAMPLES)
    shared_or_skip(FIXTURES)


def _instant(text: str) -> datetime:
    return parse_iso(text)


def _ms(text: str) -> str:
    """An instant truncated to milliseconds (Elastic's @timestamp precision)."""
    return _instant(text).isoformat(timespec="milliseconds")


@dataclass(frozen=True)
class PeerRow:
    """What a peer's expected output says of the row it read (its times parsed by stdlib)."""

    original: dict[str, Any]
    trace_id: str
    recipient: str
    status: str
    received: datetime
    timespec: str  # the peer's precision: Elastic's @timestamp has milliseconds
    start: datetime | None = None
    end: datetime | None = None

    def cut(self, moment: datetime) -> str:
        """``moment`` at the peer's precision, truncated as the peer truncates."""
        return moment.isoformat(timespec=self.timespec)


def _peer_rows() -> list[PeerRow]:
    rows = []
    for path in sorted((FIXTURES / "sekoia-intake-formats/message-trace").glob("*.json")):
        case = orjson.loads(path.read_bytes())
        want = case["expected"]
        (recipient,) = want["email"]["to"]["address"]
        rows.append(
            PeerRow(
                orjson.loads(case["input"]["message"]),
                want["office365"]["message_trace"]["MessageTraceId"],
                recipient,
                want["event"]["action"],
                datetime.fromisoformat(want["@timestamp"]),
                "microseconds",
            )
        )
    pipeline = orjson.loads((PIPELINE / "test-log.log-expected.json").read_bytes())["expected"]
    sample = orjson.loads((ELASTIC / "data_stream/log/sample_event.json").read_bytes())
    for want in [*(w for w in pipeline if w is not None), sample]:
        (recipient,) = want["email"]["to"]["address"]
        original = orjson.loads(want["event"]["original"])
        rows.append(
            PeerRow(
                original,
                want["email"]["local_id"],
                recipient,
                original["Status"],  # Elastic keeps it, untouched, only in event.original
                datetime.fromisoformat(want["@timestamp"]),
                "milliseconds",
                datetime.fromisoformat(want["event"]["start"]),
                datetime.fromisoformat(want["event"]["end"]),
            )
        )
    return rows


def _oracle() -> dict[str, PeerRow]:
    """Per MessageTraceId, what the peers expect of the message (they never disagree)."""
    by_id: dict[str, PeerRow] = {}
    for row in _peer_rows():
        seen = by_id.setdefault(row.trace_id, row)
        assert (seen.received, seen.status) == (row.received, row.status), row.trace_id
    return by_id


def test_each_peer_input_reads_as_the_peers_expected_output() -> None:
    """The row a peer read gives the trace id, recipient, status, receive time and (Elastic)
    query window that the peer's expected output holds, at the peer's precision."""
    rows = _peer_rows()
    assert len(rows) == 7  # 2 Sekoia cases, 4 Elastic pipeline rows, Elastic's sample event
    for row in rows:
        view = normalize(row.original)
        got = (view["MessageTraceId"], view["RecipientAddress"], view["Status"])
        assert got == (row.trace_id, row.recipient, row.status)
        assert row.cut(datetime.fromisoformat(view["Received"])) == row.cut(row.received)
        if row.start is not None and row.end is not None:
            assert _ms(view["StartDate"]) == row.cut(row.start)
            assert _ms(view["EndDate"]) == row.cut(row.end)


def test_elastics_expected_output_is_of_its_input_lines_and_drops_the_empty_page() -> None:
    """Elastic's expected documents are, line for line, of test-log.log (event.original is
    the line); the one line it drops (``null``) is an empty page, which reads as no rows."""
    lines = [x for x in (PIPELINE / "test-log.log").read_text().splitlines() if x]
    expected = orjson.loads((PIPELINE / "test-log.log-expected.json").read_bytes())["expected"]
    assert len(lines) == len(expected) == 5
    for line, want in zip(lines, expected, strict=True):
        if want is None:
            assert parse_envelope(line.encode()).records == []
        else:
            assert orjson.loads(want["event"]["original"]) == orjson.loads(line)
    assert [want is None for want in expected] == [False] * 4 + [True]


def test_every_capture_of_a_peer_covered_message_reads_as_the_peer_expects() -> None:
    """Every input holding a message a peer's output covers (another envelope, another
    recipient, another query window) reads to the receive time and status the peer expects."""
    oracle = _oracle()
    covered: dict[str, int] = defaultdict(int)
    for name, records in rws_inputs():
        for record in records:
            view = normalize(record)
            peer = oracle.get(view["MessageTraceId"])
            if peer is None:
                continue
            covered[name] += 1
            received = datetime.fromisoformat(view["Received"])
            assert peer.cut(received) == peer.cut(peer.received), (name, view)
            assert view["Status"] == peer.status, (name, view)
    assert covered == COVERED


def test_rows_no_peer_covers_read_into_the_golden_records() -> None:
    """The rest (Demisto's pages, Logz.io's hybrid, Sekoia's documentation sample, the rows
    of Elastic's mock and Sekoia's fixture that no expected output shows) match the golden
    file, which holds none of the rows a peer's output covers."""
    oracle = _oracle()
    got = {}
    for name, records in rws_inputs():
        views = [normalize(r) for r in records]
        rest = [v for v in views if v["MessageTraceId"] not in oracle]
        if rest:
            got[name] = rest
    golden = json.loads(GOLDEN.read_text(encoding="utf-8"))
    assert got == golden
    assert not {v["MessageTraceId"] for rows in golden.values() for v in rows} & set(oracle)


def test_no_rws_input_is_left_out() -> None:
    """A new fixture file must be read by a golden test, not skipped silently."""
    read = {name for name, _ in rws_inputs()}
    graph_or_outputs = {
        "fixtures/sekoia-intake-formats/message-trace-graph-api/test_messagetrace_1.json",
        "fixtures/elastic-integrations/data_stream/log/_dev/test/pipeline/test-log.log-expected.json",
        "fixtures/elastic-integrations/data_stream/log/_dev/test/pipeline/test-common-config.yml",
    }
    schemas = ("ecs-", "ocsf-schema-")  # field lists and schemas, not Microsoft records
    present = {
        str(p.relative_to(FIXTURES.parent))
        for p in FIXTURES.rglob("*")
        if p.is_file()
        and p.suffix in (".json", ".log", ".yml")
        and not p.relative_to(FIXTURES).parts[0].startswith(schemas)
    }
    assert present - read - graph_or_outputs == set()


def test_one_message_reads_the_same_in_every_envelope_and_peer() -> None:
    received: dict[str, set[str]] = defaultdict(set)
    for _, records in rws_inputs():
        for record in records:
            view = normalize(record)
            if view["MessageTraceId"] and view["Received"]:
                received[view["MessageTraceId"]].add(view["Received"])
    assert len(received["cf7a249a-5edd-4350-130a-08da8f69e0f6"]) == 1  # light, NDJSON, mock
    assert len(received["3b4fc661-180d-4c2f-60c9-08da6e38dd10"]) == 1  # verbose, Sekoia
    assert all(len(times) == 1 for times in received.values()), received


def _mock_rules(top: str) -> dict[str, bytes]:
    """Elastic's mock server rules for one ``$top``: ``$skiptoken`` -> body."""
    config = FIXTURES / "elastic-integrations/_dev/deploy/docker/files/config.yml"
    out = {}
    for rule in yaml.safe_load(config.read_text(encoding="utf-8"))["rules"]:
        params = rule.get("query_params", {})
        if rule["path"].endswith("/MessageTrace") and params.get("$top") == f"{{$top:{top}}}":
            skip = params["$skiptoken"].split(":")[1].rstrip("}")
            out[skip] = rule["responses"][0]["body"].encode()
    return out


@pytest.mark.parametrize(("top", "rows", "requests"), [("2", 3, 2), ("1", 1, 2)])
async def test_paging_through_elastics_mock_server(api_factory, top, rows, requests) -> None:
    """Elastic's mock answers by ``$top``/``$skiptoken`` with no next link: a full page asks
    for the next offset, a short or empty page ends the window."""
    bodies = _mock_rules(top)
    asked: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.host == "login.microsoftonline.com":
            return token_response()
        skip = request.url.params.get("$skiptoken", "0")
        asked.append(skip)
        return httpx.Response(200, content=bodies[skip])

    source = ReportSource(
        api_factory(handler), CATALOG["MessageTrace"], base=RWS, scope="s", page_size=int(top)
    )
    window = TimeWindow(_instant("2022-10-21T00:00:00Z"), _instant("2022-10-22T00:00:00Z"))
    pages = [page async for page in source.pages(window, None)]
    assert sum(len(p.records) for p in pages) == rows
    assert len(asked) == requests
    assert asked[0] == "0"
    assert pages[-1].next_link is None


def test_relative_next_links_resolve_on_the_service_host() -> None:
    msqa = orjson.loads((SAMPLES / "msqa_rws_nextlink_and_500.json").read_bytes())
    request = f"{RWS}/MessageTrace?$filter=x&$top=2000"
    link = resolve_link(
        request, msqa["page_response_fragment"]["odata.nextLink"], "https://reports.office365.com"
    )
    assert link.startswith(f"{RWS}/MessageTrace?$filter=StartDate%20eq%20DateTime'")
    assert skiptoken_of(link) == 999_999
    assert passes_ceiling(skiptoken_of(link), 2000)
    demisto = orjson.loads(
        (FIXTURES / "demisto-content/message_trace_response_with_nextlink.json").read_bytes()
    )
    other = resolve_link(request, demisto["odata.nextLink"], "https://reports.office365.com")
    assert other == "https://reports.office365.com/MessageTrace?$skiptoken=10"
    with pytest.raises(SourceError, match="another host"):
        resolve_link(
            request, "https://evil.example/ecp/x?$skiptoken=1", "https://reports.office365.com"
        )


def test_the_500_at_the_skiptoken_ceiling_is_retried_not_read_as_rows() -> None:
    msqa = orjson.loads((SAMPLES / "msqa_rws_nextlink_and_500.json").read_bytes())
    body = orjson.dumps(msqa["http_500_body_when_following_that_link"])
    verdict = classify_reporting(httpx.Response(500, content=body))
    assert verdict.action is Action.RETRY
    assert verdict.reason == "HTTP 500: UnknownError: An error has occurred on the server."


@pytest.mark.parametrize(
    ("name", "status", "action", "says"),
    [
        ("sekoia_rws_error_401.html", 401, Action.REFRESH_AUTH, "Access is denied"),
        ("sekoia_rws_error_403.json", 403, Action.FAIL_PERMISSION, "Global Reader or Security"),
        ("msdocs_rws_error_400_partial.json", 400, Action.FAIL_REQUEST, "named 'Organizations'"),
    ],
)
def test_error_samples_classify_with_the_fix(name, status, action, says) -> None:
    verdict = classify_reporting(httpx.Response(status, content=(SAMPLES / name).read_bytes()))
    assert verdict.action is action
    assert says in verdict.reason


def test_graph_service_principal_sample_is_a_setup_error() -> None:
    body = (SAMPLES / "msgraph_401_missing_service_principal_partial.json").read_bytes()
    verdict = classify_graph(httpx.Response(401, content=body))
    assert verdict.action is Action.FAIL_SETUP
    assert "New-MgServicePrincipal" in verdict.reason


def test_logzio_hybrid_fixture_is_read_but_its_opaque_skiptoken_is_refused() -> None:
    page = parse_envelope((SAMPLES / "logzio_rws_messagetrace_synthetic.json").read_bytes())
    assert len(page.records) == 1
    assert page.next_link is not None and page.next_link.endswith("$skiptoken=abc123")
    with pytest.raises(SourceError, match="non-numeric"):
        skiptoken_of(page.next_link)


def _graph_view(record: dict) -> tuple[tuple[str, str, str], str]:
    source = GraphMessageTraceSource(
        None, graph_base="https://g", scope="s", page_size=1, max_pages=1
    )  # type: ignore[arg-type]
    return source.key_of(record), parse_iso(record["receivedDateTime"]).isoformat()


def test_graph_samples_read_the_same_in_v1_and_beta() -> None:
    v1 = orjson.loads((SAMPLES / "msgraph_v1_messagetraces_list.json").read_bytes())["value"]
    beta = orjson.loads((SAMPLES / "msgraph_beta_messagetraces_list.json").read_bytes())["value"]
    assert [_graph_view(r) for r in v1] == [_graph_view(r) for r in beta]
    assert _graph_view(v1[0])[0][2] == "delivered"  # "delivered" and "Delivered" alike


def test_sekoia_graph_fixture_and_demisto_pages() -> None:
    case = orjson.loads(
        (
            FIXTURES / "sekoia-intake-formats/message-trace-graph-api/test_messagetrace_1.json"
        ).read_bytes()
    )
    key, received = _graph_view(orjson.loads(case["input"]["message"]))
    assert _instant(received) == _instant(case["expected"]["@timestamp"])
    assert key == ("11111111-1111-1111-1111-111111111111", "user2@example.com", "delivered")
    demisto = orjson.loads((SAMPLES / "demisto_graph_messagetrace_test_events.json").read_bytes())
    times = [r["receivedDateTime"] for p in ("page1", "page2") for r in demisto[p]["value"]]
    assert times == sorted(times, reverse=True)  # newest first across pages
    assert [_graph_view(r)[0][2] for r in demisto["sample_events"]] == ["delivered", "pending"]


def test_graph_detail_sample_steps_have_distinct_keys() -> None:
    steps = orjson.loads((SAMPLES / "msgraph_v1_getdetailsbyrecipient.json").read_bytes())["value"]
    keys = [detail_key({**s, "recipientAddress": "robert@contoso.com"}) for s in steps]
    trace, who = "7e3b2b2e-1b5e-4b17-80cc-2af6c1d9a3b1", "robert@contoso.com"
    assert keys == [
        (trace, who, "Receive@2025-06-13T10:30:05.000Z"),
        (trace, who, "Deliver@2025-06-13T10:30:10.000Z"),
    ]


async def test_token_sample_is_read(clock) -> None:
    body = (SAMPLES / "logzio_token_response.json").read_bytes()
    async with httpx.AsyncClient(
        transport=httpx.MockTransport(lambda _: httpx.Response(200, content=body))
    ) as http:
        tokens = TokenProvider(
            http,
            authority="https://login.microsoftonline.com",
            tenant_id="t",
            client_id="c",
            client_secret=SecretStr("s"),
            clock=clock,
        )
        token = await tokens.token("https://outlook.office365.com/.default")
    assert token == orjson.loads(body)["access_token"]
    assert token_response().status_code == 200
