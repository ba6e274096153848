"""Golden tests: every reference sample and peer fixture read into the same records.

Inputs live in ../shared (not shipped with the repository); each test skips with the reason
when they are absent. Expected values come from the peers' own expected outputs (Sekoia
intake-format tests, Elastic pipeline tests) and from golden/rws_message_trace.json.
"""

from __future__ import annotations

import json
from collections import defaultdict
from datetime import datetime
from pathlib import Path

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
from support.rws import FIXTURES, SAMPLES, shared_or_skip, token_response

GOLDEN = Path(__file__).parent / "golden" / "rws_message_trace.json"
RWS = "https://reports.office365.com/ecp/reportingwebservice/reporting.svc"


@pytest.fixture(autouse=True)
def _shared() -> None:
    shared_or_skip(SAMPLES)
    shared_or_skip(FIXTURES)


def _instant(text: str) -> datetime:
    return parse_iso(text)


def _ms(text: str) -> str:
    """An instant truncated to milliseconds (Elastic's @timestamp precision)."""
    return _instant(text).isoformat(timespec="milliseconds")


def test_every_rws_input_reads_into_the_golden_records() -> None:
    got = {name: [normalize(r) for r in records] for name, records in rws_inputs()}
    assert got == json.loads(GOLDEN.read_text(encoding="utf-8"))


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


@pytest.mark.parametrize("name", ["messagetrace.json", "messagetrace2.json"])
def test_sekoia_expected_timestamp_and_trace_id(name: str) -> None:
    case = orjson.loads((FIXTURES / "sekoia-intake-formats" / "message-trace" / name).read_bytes())
    view = normalize(orjson.loads(case["input"]["message"]))
    expected = case["expected"]
    assert _instant(view["Received"]) == _instant(expected["@timestamp"])
    assert view["MessageTraceId"] == expected["office365"]["message_trace"]["MessageTraceId"]
    assert view["Status"] == expected["event"]["action"]


def test_elastic_pipeline_expected_times_and_ids() -> None:
    folder = FIXTURES / "elastic-integrations/data_stream/log/_dev/test/pipeline"
    lines = [orjson.loads(x) for x in (folder / "test-log.log").read_text().splitlines() if x]
    expected = orjson.loads((folder / "test-log.log-expected.json").read_bytes())["expected"]
    assert len(lines) == len(expected)
    for line, want in zip(lines, expected, strict=True):
        if want is None:  # the pipeline drops an empty page; we read it as no rows
            assert parse_envelope(orjson.dumps(line)).records == []
            continue
        view = normalize(line)
        assert _ms(view["Received"]) == _ms(want["@timestamp"])
        assert _ms(view["StartDate"]) == _ms(want["event"]["start"])
        assert _ms(view["EndDate"]) == _ms(want["event"]["end"])
        assert view["MessageTraceId"] == want["email"]["local_id"]
        assert want["email"]["to"]["address"] == [view["RecipientAddress"]]


def test_elastic_sample_event_timestamp() -> None:
    event = orjson.loads(
        (FIXTURES / "elastic-integrations/data_stream/log/sample_event.json").read_bytes()
    )
    view = normalize(orjson.loads(event["event"]["original"]))
    assert _ms(view["Received"]) == _ms(event["@timestamp"])


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
