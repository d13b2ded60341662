"""A 2xx body that is not the expected envelope is a typed, retried error, never an empty last page."""

from __future__ import annotations

import pickle

import pytest
import requests
import responses

from airflow_provider_credly.client import (
    CredlyClient,
    HttpClient,
    MalformedResponseError,
    RetryPolicy,
    ServerError,
    UnsafeUrlError,
)
from airflow_provider_credly.client.canvas import CanvasCredentialsClient
from airflow_provider_credly.client.canvas_envelope import canvas_error_details, canvas_one, canvas_page
from airflow_provider_credly.client.errors import UNKNOWN_OUTCOME_ERRORS
from airflow_provider_credly.client.http import ApiResponse, json_object
from airflow_provider_credly.client.pagination import credly_page, credly_resource, iter_pages
from tests.unit.client.conftest import BASE, TOKEN, FakeClock

ORG = "org-1"
HV = f"{BASE}/organizations/{ORG}/high_volume_issued_badge_search"
PAGE_1 = b'{"data": [{"id": "1"}, {"id": "2"}], "metadata": {"next_page_url": "' + HV.encode() + b'?c=2"}}'
PAGE_2 = b'{"data": [{"id": "3"}], "metadata": {"next_page_url": null}}'
HTML = b"<html><head><title>Maintenance</title></head><body><h1>Back soon</h1></body></html>"

MALFORMED = [
    pytest.param(PAGE_2[: len(PAGE_2) // 2], id="truncated"),
    pytest.param(b"{}", id="empty-object"),
    pytest.param(HTML, id="html"),
    pytest.param(b"", id="empty-body"),
    pytest.param(b'[{"id": "3"}]', id="array"),
    pytest.param(b'{"data": [{"id": "3"}]}', id="no-metadata"),
    pytest.param(b'{"data": [{"id": "3"}], "metadata": {}}', id="no-next-page-url"),
    pytest.param(b'{"data": null, "metadata": {"next_page_url": null}}', id="null-data"),
    pytest.param(b'{"data": {"id": "3"}, "metadata": {"next_page_url": null}}', id="object-data"),
    pytest.param(b'{"data": [], "metadata": {"next_page_url": 7}}', id="cursor-not-a-url"),
    pytest.param(b'{"data": [], "metadata": {"next_page_url": null}} trailing', id="trailing-text"),
]


def _resp(body: bytes, url: str = HV, content_type: str = "application/json") -> ApiResponse:
    return ApiResponse(200, url, {"Content-Type": content_type}, body)


# -------------------------------------------------------------------------------------- page parsers


@pytest.mark.parametrize("body", MALFORMED)
def test_credly_page_refuses_every_body_that_is_not_the_whole_envelope(body):
    with pytest.raises(MalformedResponseError) as info:
        credly_page(_resp(body))
    assert info.value.status == 200
    assert info.value.path == "/v1/organizations/org-1/high_volume_issued_badge_search"


def test_a_truncated_page_says_it_was_cut_short_and_an_html_page_says_it_is_not_json():
    with pytest.raises(MalformedResponseError, match="cut short"):
        credly_page(_resp(PAGE_1[:40]))
    with pytest.raises(MalformedResponseError, match=r"not a JSON document \(text/html, \d+ bytes\)"):
        credly_page(_resp(HTML, content_type="text/html"))


def test_credly_page_reads_values_msgspec_does_not_but_still_requires_the_envelope():
    page = credly_page(_resp(b'{"data": [{"id": "1", "x": NaN}], "metadata": {"next_page_url": null}}'))
    assert [item["id"] for item in page.items] == ["1"]
    assert page.next_url is None
    with pytest.raises(MalformedResponseError):
        credly_page(_resp(b'{"data": [{"id": "1", "x": NaN}]}'))


@pytest.mark.parametrize("body", [b"{}", b'{"data": [1]}', b'{"data": null}', HTML, b'{"data": {"id": "x"'])
def test_credly_resource_requires_a_data_object(body):
    with pytest.raises(MalformedResponseError):
        credly_resource(_resp(body, url=f"{BASE}/organizations/{ORG}"))
    assert credly_resource(_resp(b'{"data": {"id": "x"}, "metadata": {}}')) == {"id": "x"}


CANVAS = "https://api.badgr.test/v2/badgeclasses/B1/assertions"
CANVAS_OK = b'{"status": {"success": true, "description": "ok"}, "result": [{"entityId": "a1"}]}'


@pytest.mark.parametrize(
    "body",
    [
        pytest.param(CANVAS_OK[:-5], id="truncated"),
        pytest.param(b"{}", id="empty-object"),
        pytest.param(HTML, id="html"),
        pytest.param(b'{"result": [{"entityId": "a1"}]}', id="no-status"),
        pytest.param(b'{"status": {"success": true}}', id="no-result"),
        pytest.param(b'{"status": {"success": true}, "result": null}', id="null-result"),
        pytest.param(b'{"status": {"success": true}, "result": ["a1"]}', id="result-not-objects"),
        pytest.param(b'{"status": {"success": false, "description": "x"}, "result": []}', id="success-false"),
    ],
)
def test_canvas_page_refuses_every_body_that_is_not_the_whole_envelope(body):
    headers = {"Link": f'<{CANVAS}?after=x>; rel="next"'}
    with pytest.raises(MalformedResponseError):
        canvas_page(ApiResponse(200, CANVAS, headers, body))


def test_canvas_page_ends_only_without_a_next_link_and_canvas_one_needs_an_object():
    last = canvas_page(ApiResponse(200, CANVAS, {}, CANVAS_OK))
    assert [i["entityId"] for i in last.items] == ["a1"] and last.next_url is None
    more = canvas_page(ApiResponse(200, CANVAS, {"Link": f'<{CANVAS}?after=x>; rel="next"'}, CANVAS_OK))
    assert more.next_url == f"{CANVAS}?after=x"
    with pytest.raises(MalformedResponseError, match="got none"):
        canvas_one(ApiResponse(200, CANVAS, {}, b'{"status": {"success": true}, "result": []}'))


def test_json_object_names_what_the_body_is_without_quoting_it():
    with pytest.raises(MalformedResponseError) as info:
        json_object(_resp(b'{"token": "' + TOKEN.encode() + b'", "da'))
    assert TOKEN not in str(info.value)
    assert "cut short" in str(info.value)


# ---------------------------------------------------------------------- the retry loop of the HTTP core


@responses.activate
def test_a_malformed_page_is_retried_like_a_dropped_connection_then_read(http, clock):
    responses.get(HV, body=PAGE_1)
    responses.get(f"{HV}?c=2", body=PAGE_2[:20])  # truncated, Content-Length of what is sent
    responses.get(f"{HV}?c=2", body=b"{}")
    responses.get(f"{HV}?c=2", body=PAGE_2)
    pages = list(iter_pages(http, HV))
    assert [[i["id"] for i in p.items] for p in pages] == [["1", "2"], ["3"]]
    assert clock.sleeps == [1.0, 2.0]  # the dropped-connection backoff of this policy
    assert len(responses.calls) == 4


@responses.activate
def test_malformed_pages_and_dropped_connections_share_one_policy(http, clock):
    for _ in range(4):
        responses.get(f"{HV}?c=2", body=HTML, content_type="text/html")
    with pytest.raises(MalformedResponseError) as info:
        list(iter_pages(http, HV, start_url=f"{HV}?c=2"))
    dropped_clock = FakeClock()
    dropped = HttpClient(BASE, retry=http.retry, sleep=dropped_clock.sleep, clock=dropped_clock)
    responses.reset()
    for _ in range(4):
        responses.get(f"{HV}?c=2", body=requests.exceptions.ConnectionError("reset"))
    with pytest.raises(Exception, match="after 4 attempt"):
        dropped.request("GET", f"{HV}?c=2")
    assert clock.sleeps == dropped_clock.sleeps == [1.0, 2.0, 4.0]
    err = info.value
    assert (err.method, err.path, err.page, err.attempts) == (
        "GET",
        "/v1/organizations/org-1/high_volume_issued_badge_search",
        1,
        4,
    )
    assert "after 4 attempt(s)" in str(err) and "(page 1 of the walk)" in str(err)
    assert "c=2" not in str(err)  # the query (a cursor, maybe personal filters) stays out


@responses.activate
def test_the_error_names_the_page_of_the_walk_that_failed_and_pickles(http, clock):
    responses.get(HV, body=PAGE_1)
    for _ in range(4):
        responses.get(f"{HV}?c=2", body=b'{"data": []}')
    pages = iter_pages(http, HV)
    assert [i["id"] for i in next(pages).items] == ["1", "2"]
    with pytest.raises(MalformedResponseError) as info:
        next(pages)  # the walk does not end quietly after the first page
    assert info.value.page == 2
    copy = pickle.loads(pickle.dumps(info.value))
    assert (type(copy), copy.page, str(copy)) == (MalformedResponseError, 2, str(info.value))
    assert TOKEN not in str(info.value) and TOKEN not in repr(info.value)


@responses.activate
def test_a_malformed_answer_to_a_post_is_an_unknown_outcome_and_is_not_retried(http, clock):
    client = CredlyClient(http, ORG)
    responses.post(f"{BASE}/organizations/{ORG}/badges", body=b'{"data": {"id": "b1"', status=201)
    with pytest.raises(MalformedResponseError, match="not retried because the server may have acted") as info:
        client.issue_badge(
            badge_template_id="t1",
            recipient_email="a@example.com",
            issued_to_first_name="A",
            issued_to_last_name="B",
            issued_at="2026-01-01 10:00:00 +0000",
        )
    assert len(responses.calls) == 1 and clock.sleeps == []
    assert isinstance(info.value, UNKNOWN_OUTCOME_ERRORS)


@responses.activate
def test_an_idempotent_post_and_a_single_resource_get_are_retried(http, clock):
    client = CredlyClient(http, ORG)
    responses.get(f"{BASE}/organizations/{ORG}", body=HTML, content_type="text/html")
    responses.get(f"{BASE}/organizations/{ORG}", json={"data": {"id": ORG}, "metadata": {}})
    assert client.get_organization() == {"id": ORG}
    responses.post(f"{BASE}/organizations/{ORG}/employees", body=b"{}")
    responses.post(f"{BASE}/organizations/{ORG}/employees", json={"data": {"id": "e1"}, "metadata": {}})
    created = client.create_employee(email="e@example.com", first_name="E", last_name="F")
    assert created == {"id": "e1"}
    assert clock.sleeps == [1.0, 1.0]


@responses.activate
def test_canvas_client_retries_a_malformed_page_and_a_malformed_get(clock):
    http = HttpClient(
        "https://api.badgr.test",
        retry=RetryPolicy(max_attempts=3, backoff_base=1.0, jitter=0.0),
        sleep=clock.sleep,
        clock=clock,
        error_parser=canvas_error_details,
        validation_statuses=frozenset({400}),
    )
    client = CanvasCredentialsClient(http)
    responses.get(CANVAS, body=CANVAS_OK[:30])
    responses.get(CANVAS, body=CANVAS_OK)
    assert [a["entityId"] for a in client.iter_assertions("badgeclasses", "B1")] == ["a1"]
    for _ in range(3):
        responses.get("https://api.badgr.test/v2/assertions/a1", body=b"{}")
    with pytest.raises(MalformedResponseError, match="after 3 attempt"):
        client.get_assertion("a1")
    assert clock.sleeps == [1.0, 1.0, 2.0]


# ---------------------------------------------------------------------------- smaller things of issue 10


def test_a_foreign_next_page_url_error_names_host_and_port_of_both_sides(http):
    with pytest.raises(UnsafeUrlError) as info:
        http.url_for("https://api.credly.test:8443/v1/x")
    assert "https://api.credly.test:8443" in str(info.value)
    assert "https://api.credly.test:443" in str(info.value)
    with pytest.raises(
        UnsafeUrlError, match=r"http://evil\.example:80: the API is at https://api\.credly\.test:443"
    ):
        http.url_for("http://evil.example/v1/x")


@responses.activate
@pytest.mark.parametrize("status", [502, 503])
def test_a_proxy_error_page_becomes_a_short_reason(http, status):
    page = "<html><head><style>body {color: red}</style><title>Bad</title></head><body>" + (
        "<p>upstream connect error or disconnect/reset before headers</p>" * 50
    )
    for _ in range(4):
        responses.get(f"{BASE}/x", body=page + "</body></html>", status=status, content_type="text/html")
    with pytest.raises(ServerError) as info:
        http.request("GET", "x")
    message = info.value.message
    reason = {502: "Bad Gateway", 503: "Service Unavailable"}[status]
    assert message.startswith(f"HTTP {status} {reason}: Bad upstream connect error")
    assert "<" not in message and "color" not in message
    assert len(message) <= len(f"HTTP {status} {reason}: ") + 200 + len("...")
    assert info.value.body is None
