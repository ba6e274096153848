"""The emulated Reporting Web Service: discovery, envelopes, errors, quota and ground truth."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections.abc import Iterator
from datetime import timedelta
from urllib.parse import urljoin

import httpx
import orjson
import pytest

from o365collector.sources.reporting.discovery import parse_service_document
from o365collector.sources.reporting.envelope import parse_envelope
from o365collector.sources.reporting.records import record_key, record_time
from o365collector.sources.reporting.source import ReportSource
from o365collector.streams.catalog import CATALOG, listed_reports
from o365collector.windows import TimeWindow
from o365emulator import Emulator
from o365emulator.settings import MESSAGE_TRACE_ROLE
from support.rws import ANCHOR, RWS_PATH, TENANT_ID, bearer
from support.shared import SAMPLES, shared_or_skip

DAY_FILTER = (
    "StartDate eq datetime'2026-01-19T00:00:00Z' and EndDate eq datetime'2026-01-20T00:00:00Z'"
)


@pytest.fixture
def client(emulator) -> Iterator[httpx.Client]:
    emu = emulator()
    with httpx.Client(base_url=emu.base_url, timeout=30) as http:
        yield http


def _get(client: httpx.Client, path: str, headers: dict[str, str] | None = None, **params):
    return client.get(
        RWS_PATH + path, params=params or None, headers={**bearer(client), **(headers or {})}
    )


def test_service_document_lists_every_report_in_any_letter_case(client) -> None:
    for path in ("/", "", "/"):
        response = client.get(
            "/ecp/ReportingWebService/Reporting.svc" + path, headers=bearer(client)
        )
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("application/xml")
    names = parse_service_document(response.content)
    assert names == {name.lower() for name in CATALOG}


def test_a_tenant_is_offered_only_its_reports(emulator) -> None:
    emu = emulator(tenant={"rws_reports": ["MessageTrace", "mailtraffic"]})
    with httpx.Client(base_url=emu.base_url) as http:
        doc = http.get(RWS_PATH, headers=bearer(http))
        assert parse_service_document(doc.content) == {"messagetrace", "mailtraffic"}
        missing = http.get(RWS_PATH + "/SpoofMailReport", headers=bearer(http))
        assert missing.status_code == 404
        assert b"Resource not found for the segment 'SpoofMailReport'" in missing.content


def test_verbose_json_with_format_json(client) -> None:
    response = _get(
        client, "/MessageTrace", **{"$filter": DAY_FILTER, "$top": "5", "$format": "json"}
    )
    assert response.status_code == 200
    assert b'"Received":"\\/Date(' in response.content  # WCF escapes the slashes
    body = orjson.loads(response.content)
    first = body["d"]["results"][0]
    assert first["__metadata"]["type"] == "TenantReporting.MessageTrace"
    assert first["Index"] == 0
    assert body["d"]["__next"].startswith(
        f"{client.base_url}/ecp/ReportingWebService/Reporting.svc/MessageTrace?"
    )
    assert "$format=json" in body["d"]["__next"]
    same = _get(
        client,
        "/MessageTrace",
        {"Accept": "application/json;odata=verbose"},
        **{"$filter": DAY_FILTER, "$top": "5"},
    )
    assert (
        orjson.loads(same.content)["d"]["results"][0]["MessageTraceId"] == first["MessageTraceId"]
    )


def test_json_light_with_relative_next_links_reads_the_whole_range(client) -> None:
    light = {"Accept": "application/json"}
    url = f"{RWS_PATH}/MessageTrace"
    params: dict[str, str] | None = {"$filter": DAY_FILTER, "$top": "100"}
    records = []
    while True:
        response = client.get(url, params=params, headers={**bearer(client), **light})
        body = orjson.loads(response.content)
        assert body["odata.metadata"].endswith("$metadata#MessageTrace")
        records += body["value"]
        link = body.get("odata.nextLink")
        if link is None:
            break
        assert link.startswith("../../reportingwebservice/reporting.svc/MessageTrace?")
        assert "DateTime'" in link  # the service's own spelling
        url, params = urljoin(str(response.url), link), None
    first = records[0]
    assert not first["Received"].endswith("Z") and len(first["Received"]) == 27
    assert first["StartDate"] == "2026-01-19T00:00:00.0000000Z"
    truth = [
        t for t in _truth(client, "MessageTrace")
        if "2026-01-19" <= t["record"]["Received"] <= "2026-01-20T00:00:00.0000000Z"
        and t["visible_at"] <= "2026-01-20T14:00:00"
    ]  # fmt: skip
    assert len(records) == len(truth) > 100
    assert len({(r["MessageTraceId"], r["RecipientAddress"]) for r in records}) == len(records)


def test_atom_when_json_is_not_asked(client) -> None:
    response = _get(client, "/MailTraffic", **{"$filter": DAY_FILTER})
    assert response.headers["content-type"].startswith("application/atom+xml")
    entries = ET.fromstring(response.content).findall("{http://www.w3.org/2005/Atom}entry")
    assert entries
    with pytest.raises(ValueError, match="not JSON"):
        parse_envelope(response.content)


def _sample(name: str) -> bytes:
    """A captured Microsoft answer from ../shared/reference/samples."""
    return shared_or_skip(SAMPLES / name).read_bytes()


def test_error_bodies_are_the_captured_ones(client) -> None:
    """The emulator's 401, 400 and ceiling 500 are the answers captured from the real service
    (byte for byte, JSON for JSON, or word for word for another report), not its own constants."""
    unauthorized = client.get(RWS_PATH + "/MessageTrace", headers={"Authorization": "Bearer junk"})
    assert unauthorized.status_code == 401
    assert unauthorized.headers["content-type"].startswith("text/html")
    assert unauthorized.content == _sample("sekoia_rws_error_401.html").strip()
    graph_token = client.get(
        RWS_PATH + "/MessageTrace", headers=bearer(client, "https://graph.microsoft.com/.default")
    )
    assert graph_token.status_code == 401  # a Graph token is not an Exchange token
    bad = _get(client, "/MessageTrace", **{"$filter": "Organizations eq 'x'", "$format": "json"})
    assert bad.status_code == 400
    # the capture is of another report, and cut short after "'TenantReporting.MailFilte"
    captured = orjson.loads(_sample("msdocs_rws_error_400_partial.json"))["error"]
    said = captured["message"]["value"].replace("MailFilterListReport", "MessageTrace")
    said = said[: said.rindex("'TenantReporting.") + len("'TenantReporting.")]
    error = orjson.loads(bad.content)["error"]
    assert (error["code"], error["message"]["lang"]) == ("", captured["message"]["lang"])
    assert error["message"]["value"] == f"{said}MessageTrace'."
    light = _get(
        client,
        "/MessageTrace",
        {"Accept": "application/json"},
        **{"$filter": "StartDate eq datetime'2026-01-19T00:00:00Z'"},
    )
    assert light.status_code == 400 and "odata.error" in orjson.loads(light.content)
    ceiling = _get(
        client, "/MessageTrace", {"Accept": "application/json"}, **{"$skiptoken": "999999"}
    )
    assert ceiling.status_code == 500
    sample = orjson.loads(_sample("msqa_rws_nextlink_and_500.json"))
    assert orjson.loads(ceiling.content) == sample["http_500_body_when_following_that_link"]


def test_roles_no_reader_role_is_403_and_no_permission_is_401(emulator) -> None:
    no_reader = emulator(tenant={"directory_roles": ["Reports Reader"]})
    with httpx.Client(base_url=no_reader.base_url) as http:
        response = http.get(RWS_PATH + "/MessageTrace", headers=bearer(http))
        assert response.status_code == 403
        assert orjson.loads(response.content) == orjson.loads(_sample("sekoia_rws_error_403.json"))
    no_permission = emulator(tenant={"roles": [MESSAGE_TRACE_ROLE]})
    with httpx.Client(base_url=no_permission.base_url) as http:
        assert http.get(RWS_PATH + "/", headers=bearer(http)).status_code == 401


def test_quota_is_shared_with_graph(emulator) -> None:
    emu = emulator(tenant={"quota_requests": 2})
    with httpx.Client(base_url=emu.base_url) as http:
        graph = bearer(http, "https://graph.microsoft.com/.default")
        assert (
            http.get("/v1.0/admin/exchange/tracing/messageTraces", headers=graph).status_code == 200
        )
        assert http.get(RWS_PATH + "/", headers=bearer(http)).status_code == 200
        throttled = http.get(RWS_PATH + "/", headers=bearer(http))
    assert throttled.status_code == 429
    assert int(throttled.headers["retry-after"]) >= 1
    assert emu.stats(TENANT_ID)["by_status"] == {"200": 2, "429": 1}


def test_detail_matches_graph_get_details_by_recipient(client) -> None:
    trace = _truth(client, "MessageTrace")[5]["record"]
    flt = (
        f"MessageTraceId eq guid'{trace['MessageTraceId']}' and RecipientAddress eq "
        f"'{trace['RecipientAddress']}' and {DAY_FILTER}"
    )
    rws = orjson.loads(
        _get(
            client, "/MessageTraceDetail", {"Accept": "application/json"}, **{"$filter": flt}
        ).content
    )["value"]
    graph = client.get(
        f"/v1.0/admin/exchange/tracing/messageTraces/{trace['MessageTraceId']}"
        f"/getDetailsByRecipient(recipientAddress='{trace['RecipientAddress']}')",
        headers=bearer(client, "https://graph.microsoft.com/.default"),
    ).json()["value"]
    assert [r["Event"] for r in rws] == [g["event"] for g in graph]
    assert {r["RecipientAddress"] for r in rws} == {trace["RecipientAddress"]}
    missing = _get(client, "/MessageTraceDetail", **{"$filter": DAY_FILTER})
    assert missing.status_code == 400


def _truth(client: httpx.Client, report: str) -> list[dict]:
    response = client.get("/_emulator/ground-truth", params={"tenant": TENANT_ID, "report": report})
    assert response.status_code == 200
    return [orjson.loads(line) for line in response.content.splitlines()]


def test_ground_truth_per_report(client) -> None:
    for spec in CATALOG.values():
        rows = _truth(client, spec.name)
        assert rows, spec.name
        assert all({"record", "visible_at"} <= set(r) for r in rows)
    assert len(_truth(client, "MessageTrace")) == 2000
    unknown = client.get("/_emulator/ground-truth", params={"tenant": TENANT_ID, "report": "Nope"})
    assert unknown.status_code == 404


@pytest.mark.parametrize("spec", listed_reports(), ids=lambda s: s.name)
async def test_the_source_reads_every_report_as_the_ground_truth_says(
    emulator, api_factory, clock, spec
) -> None:
    emu: Emulator = emulator()
    clock.t = 3 * 86400  # everything of the history has settled
    source = ReportSource(
        api_factory(authority=emu.base_url),
        spec,
        base=emu.base_url + RWS_PATH,
        scope="https://outlook.office365.com/.default",
        page_size=500,
    )
    window = TimeWindow(ANCHOR - timedelta(days=2), ANCHOR)
    pages = [page async for page in source.pages(window, None)]
    got = [record_key(spec, r) for page in pages for r in page.records]
    low, high = window.start, window.end
    if spec.bucket_secs:  # aggregates read whole buckets: [floor(start), floor(end))
        low, high = low.replace(hour=0), high.replace(hour=0)
        if spec.bucket_secs == 3600:
            low, high = window.start, window.end
    want = []
    with httpx.Client(base_url=emu.base_url) as http:
        for row in _truth(http, spec.name):
            moment = record_time(spec, row["record"])
            inside = low <= moment < high if spec.bucket_secs else low <= moment <= high
            if moment is not None and inside:
                want.append(record_key(spec, row["record"]))
    assert sorted(got) == sorted(want)
    assert want


async def test_a_window_past_the_ceiling_is_split_before_the_service_fails(
    emulator, api_factory, clock
) -> None:
    emu: Emulator = emulator(rws_skiptoken_ceiling=300)
    clock.t = 3 * 86400
    source = ReportSource(
        api_factory(authority=emu.base_url),
        CATALOG["MessageTrace"],
        base=emu.base_url + RWS_PATH,
        scope="https://outlook.office365.com/.default",
        page_size=100,
        skiptoken_ceiling=300,
    )
    window = TimeWindow(ANCHOR - timedelta(days=1), ANCHOR)
    pages = [page async for page in source.pages(window, None)]
    got = {record_key(CATALOG["MessageTrace"], r)[:2] for p in pages for r in p.records}
    with httpx.Client(base_url=emu.base_url) as http:
        truth = _truth(http, "MessageTrace")
    want = {
        record_key(CATALOG["MessageTrace"], t["record"])[:2]
        for t in truth
        if window.start <= record_time(CATALOG["MessageTrace"], t["record"]) <= window.end  # type: ignore[operator]
    }
    assert len(want) > 300  # more than one query may serve
    assert got == want
    assert "500" not in emu.stats(TENANT_ID)["by_status"]
