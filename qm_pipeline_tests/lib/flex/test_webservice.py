"""The Flex Web Service client against the fake service, over real sockets on 127.0.0.1.

Back-off never really waits: the client gets a clock that only moves when it sleeps,
so the delays it chose are asserted exactly.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from datetime import date, timedelta
from itertools import pairwise
from typing import Any

import httpx
import pytest

from qm_pipeline.lib.flex.webservice import (
    ERROR_CODES,
    USER_AGENT,
    FlexServiceError,
    FlexWebServiceClient,
    RetryPolicy,
    statement_windows,
)
from qm_pipeline.lib.sim.flex_service import FakeFlexService, RecordedRequest, Reply, error_xml

TOKEN = "tok-5e3f9a1c7b2d4e60a8f1"
QUERY = "987654"
# BOM, declaration, CRLF and non-ASCII: the client must hand these bytes back untouched.
REPORT = (
    b'\xef\xbb\xbf<?xml version="1.0" encoding="UTF-8"?>\r\n'
    b'<FlexQueryResponse queryName="Daily" type="AF">\r\n<FlexStatements count="1">\r\n'
    b'<FlexStatement accountId="U1234567" fromDate="20240102" toDate="20240102">'
    b'<Trades><Trade symbol="GLE" description="Soci\xc3\xa9t\xc3\xa9 G\xc3\xa9n\xc3\xa9rale"/>'
    b"</Trades></FlexStatement>\r\n</FlexStatements>\r\n</FlexQueryResponse>\r\n"
)
POLICY = RetryPolicy(
    initial_delay=2.0,
    rate_limit_delay=10.0,
    factor=2.0,
    max_delay=30.0,
    max_attempts=4,
    deadline=None,
)
TRANSIENT = sorted(code for code, info in ERROR_CODES.items() if info.transient)


class FakeClock:
    """Monotonic time that moves only when the client sleeps; records every sleep."""

    def __init__(self) -> None:
        self.now = 0.0
        self.sleeps: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


Start = Callable[..., tuple[FakeFlexService, FlexWebServiceClient]]


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def start(clock: FakeClock) -> Iterator[Start]:
    """Start a fake service (reports default to {QUERY: REPORT}) and a client pointed at it."""
    with ExitStack() as stack:

        def _start(
            reports: dict[str, Any] | None = None,
            *,
            token: str = TOKEN,
            retry: RetryPolicy = POLICY,
            **service_kwargs: Any,
        ) -> tuple[FakeFlexService, FlexWebServiceClient]:
            service = stack.enter_context(
                FakeFlexService(reports or {QUERY: REPORT}, tokens=TOKEN, **service_kwargs)
            )
            client = stack.enter_context(
                FlexWebServiceClient(
                    token, base_url=service.base_url, retry=retry, sleep=clock.sleep, clock=clock
                )
            )
            return service, client

        yield _start


def endpoints(service: FakeFlexService) -> list[str]:
    return [r.endpoint for r in service.requests]


def flex_report(fd: date | None, td: date | None) -> bytes:
    """A minimal report stamped with the window it was asked for."""
    assert fd is not None and td is not None
    return (
        f'<FlexQueryResponse queryName="Backfill"><FlexStatements count="1">'
        f'<FlexStatement fromDate="{fd:%Y%m%d}" toDate="{td:%Y%m%d}"/>'
        f"</FlexStatements></FlexQueryResponse>"
    ).encode()


def test_fetch_returns_the_report_bytes_exactly(start: Start, clock: FakeClock) -> None:
    service, client = start()

    assert client.fetch(QUERY) == REPORT

    send, get = service.requests
    assert (send.endpoint, get.endpoint) == ("SendRequest", "GetStatement")
    assert send.params == {"q": QUERY, "v": "3", "t": "***"}
    assert get.params["v"] == "3" and get.params["t"] == "***"
    assert get.params["q"].isdigit()  # the reference code SendRequest answered
    assert send.headers["user-agent"] == get.headers["user-agent"] == USER_AGENT
    assert USER_AGENT.startswith("qm-pipeline/0.1.0 python-httpx/")
    assert clock.sleeps == [1.0]  # requests spaced by min_interval (about 1/s allowed)


def test_generation_in_progress_retries_get_statement(start: Start, clock: FakeClock) -> None:
    service, client = start(script_get=[1019, 1019])

    assert client.fetch(QUERY) == REPORT

    assert endpoints(service) == ["SendRequest", "GetStatement", "GetStatement", "GetStatement"]
    assert len({r.params["q"] for r in service.requests[1:]}) == 1  # same reference code
    assert clock.sleeps == [1.0, 2.0, 4.0]  # pacing, then back-off 2 s, 4 s


def test_rate_limit_on_send_request_backs_off_longer(start: Start, clock: FakeClock) -> None:
    service, client = start(script_send=[1018, 1018])

    assert client.fetch(QUERY) == REPORT

    assert endpoints(service) == ["SendRequest"] * 3 + ["GetStatement"]
    # 1018 starts at rate_limit_delay (10 s) where other codes start at 2 s; then pacing.
    assert clock.sleeps == [10.0, 20.0, 1.0]


@pytest.mark.parametrize("code", TRANSIENT)
def test_every_transient_code_is_retried(start: Start, clock: FakeClock, code: str) -> None:
    service, client = start(script_send=[int(code)])

    assert client.fetch(QUERY) == REPORT

    assert endpoints(service) == ["SendRequest", "SendRequest", "GetStatement"]
    assert clock.sleeps[0] == (10.0 if code == "1018" else 2.0)


def test_transient_codes_are_the_documented_ones() -> None:
    # DOMAIN.md §2: 1019, 1018, 1009, 1004-1008, 1021 retry; everything else is fatal.
    assert TRANSIENT == ["1004", "1005", "1006", "1007", "1008", "1009", "1018", "1019", "1021"]


@pytest.mark.parametrize(
    ("code", "hint"),
    [
        (1012, "Generate a new token in Client Portal"),
        (1015, "Check the configured token"),
        (1014, "Check the Flex Query id"),
        (1003, "No statement exists for this period"),
        (1001, "IB cannot generate this statement"),
    ],
)
def test_fatal_code_fails_at_once_with_a_hint(
    start: Start, clock: FakeClock, code: int, hint: str
) -> None:
    service, client = start(script_send=[code])

    with pytest.raises(FlexServiceError) as caught:
        client.fetch(QUERY)

    error = caught.value
    assert (error.code, error.transient, error.step, error.attempts) == (
        str(code),
        False,
        "SendRequest",
        1,
    )
    assert error.message == ERROR_CODES[str(code)].message
    assert error.hint.startswith(hint)
    assert f"failed with code {code}" in str(error) and hint in str(error)
    assert endpoints(service) == ["SendRequest"]
    assert clock.sleeps == []


def test_fatal_code_on_get_statement_fails_at_once(start: Start) -> None:
    service, client = start(script_get=[1003])

    with pytest.raises(FlexServiceError) as caught:
        client.fetch(QUERY)

    assert (caught.value.code, caught.value.step) == ("1003", "GetStatement")
    assert endpoints(service) == ["SendRequest", "GetStatement"]


def test_wrong_token_is_refused_by_the_service(start: Start) -> None:
    service, client = start(token="tok-expired-0000000000")

    with pytest.raises(FlexServiceError) as caught:
        client.fetch(QUERY)

    assert (caught.value.code, caught.value.message) == ("1015", "Token is invalid.")
    assert len(service.requests) == 1


def test_unknown_query_is_refused_by_the_service(start: Start) -> None:
    service, client = start()

    with pytest.raises(FlexServiceError) as caught:
        client.fetch("111111")

    assert caught.value.code == "1014" and "Flex Query id" in caught.value.hint
    assert len(service.requests) == 1


def test_unknown_code_is_fatal_and_quotes_ib(start: Start) -> None:
    unknown = Reply(200, error_xml(1099, "Something new went wrong."), "text/xml")
    service, client = start(script_send=[unknown])

    with pytest.raises(FlexServiceError) as caught:
        client.fetch(QUERY)

    assert (caught.value.code, caught.value.transient) == ("1099", False)
    assert "Something new went wrong." in str(caught.value)
    assert len(service.requests) == 1


def test_exhausted_retries_name_attempts_and_last_code(start: Start, clock: FakeClock) -> None:
    service, client = start(script_get=[1019] * 10)

    with pytest.raises(FlexServiceError) as caught:
        client.fetch(QUERY)

    error = caught.value
    assert (error.code, error.transient, error.attempts) == ("1019", True, 4)
    assert "GetStatement gave up after 4 attempts; last code 1019" in str(error)
    assert endpoints(service) == ["SendRequest"] + ["GetStatement"] * 4
    assert clock.sleeps == [1.0, 2.0, 4.0, 8.0]


def test_deadline_stops_retrying_before_a_wait_would_pass_it(
    start: Start, clock: FakeClock
) -> None:
    policy = RetryPolicy(initial_delay=2.0, factor=2.0, max_attempts=100, deadline=20.0)
    service, client = start(script_get=[1019] * 100, retry=policy)

    with pytest.raises(FlexServiceError) as caught:
        client.fetch(QUERY)

    # Attempts at t=1, 3, 7, 15; the next wait (16 s) would end at 31 s > 20 s.
    assert caught.value.attempts == 4
    assert clock.sleeps == [1.0, 2.0, 4.0, 8.0]
    assert endpoints(service).count("GetStatement") == 4


def test_rate_limit_back_off_is_capped(start: Start, clock: FakeClock) -> None:
    policy = RetryPolicy(rate_limit_delay=10.0, factor=2.0, max_delay=30.0, max_attempts=5)
    _, client = start(script_send=[1018] * 4, retry=policy)

    assert client.fetch(QUERY) == REPORT
    assert clock.sleeps == [10.0, 20.0, 30.0, 30.0, 1.0]


@pytest.mark.parametrize(
    ("payload", "shown"),
    [
        (b"<html><body>Down for maintenance</body></html>", "Down for maintenance"),
        (b"ClientAccountID,TradeDate\nU1234567,20240102\n", "ClientAccountID,TradeDate"),
        (b"", "''"),
    ],
)
def test_non_flex_payload_is_a_clear_error(start: Start, payload: bytes, shown: str) -> None:
    _, client = start({QUERY: payload})

    with pytest.raises(FlexServiceError) as caught:
        client.fetch(QUERY)

    assert (caught.value.code, caught.value.step) == ("invalid-payload", "GetStatement")
    assert "expected a FlexQueryResponse" in str(caught.value)
    assert shown in str(caught.value)


def test_payload_excerpt_is_short_and_redacted(start: Start) -> None:
    echo = b"<html>" + b"x" * 150 + b" you asked for t=" + TOKEN.encode() + b"z" * 500 + b"</html>"
    _, client = start({QUERY: echo})

    with pytest.raises(FlexServiceError) as caught:
        client.fetch(QUERY)

    excerpt = caught.value.message.split("got: ", 1)[1]
    assert len(excerpt) <= 200 + 2  # repr quotes
    assert "t=***" in excerpt and TOKEN not in str(caught.value)


def test_send_request_answer_without_reference_code_is_a_clear_error(start: Start) -> None:
    _, client = start(script_send=[Reply(200, b"<html>sign in</html>", "text/html")])

    with pytest.raises(FlexServiceError) as caught:
        client.fetch(QUERY)

    assert (caught.value.code, caught.value.step) == ("invalid-payload", "SendRequest")
    assert "expected a FlexStatementResponse" in str(caught.value)


def test_http_5xx_is_retried(start: Start, clock: FakeClock) -> None:
    service, client = start(script_send=[Reply(500)], script_get=[Reply(503, b"busy")])

    assert client.fetch(QUERY) == REPORT

    assert endpoints(service) == ["SendRequest", "SendRequest", "GetStatement", "GetStatement"]
    assert clock.sleeps == [2.0, 1.0, 2.0]


def test_http_4xx_fails_at_once(start: Start) -> None:
    service, client = start(script_send=[Reply(403, b"Forbidden")])

    with pytest.raises(FlexServiceError) as caught:
        client.fetch(QUERY)

    assert (caught.value.code, caught.value.transient) == ("HTTP 403", False)
    assert len(service.requests) == 1


def test_connection_refused_is_retried_then_reported(clock: FakeClock) -> None:
    closed = FakeFlexService({}, tokens=TOKEN)
    closed.stop()  # never served: the port is now closed
    policy = RetryPolicy(initial_delay=2.0, factor=2.0, max_attempts=3)

    with (
        FlexWebServiceClient(
            TOKEN, base_url=closed.base_url, retry=policy, sleep=clock.sleep, clock=clock
        ) as client,
        pytest.raises(FlexServiceError) as caught,
    ):
        client.fetch(QUERY)

    assert (caught.value.code, caught.value.attempts) == ("ConnectError", 3)
    assert clock.sleeps == [2.0, 4.0]


def test_token_never_leaks(
    start: Start, caplog: pytest.LogCaptureFixture, capsys: pytest.CaptureFixture[str]
) -> None:
    caplog.set_level(logging.DEBUG)
    echo = b"<html>t=" + TOKEN.encode() + b"</html>"
    service, client = start(
        {QUERY: REPORT, "222": echo}, script_send=[1018], script_get=[1019, Reply(500)]
    )

    assert client.fetch(QUERY) == REPORT
    errors = []
    for query in ("111111", "222"):
        with pytest.raises(FlexServiceError) as caught:
            client.fetch(query)
        errors.append(caught.value)

    messages = [record.getMessage() for record in caplog.records]
    assert any("code 1018" in m and "backing off 10.00 s" in m for m in messages)
    assert any("code 1019" in m and "backing off 2.00 s" in m for m in messages)
    assert any("SendRequest attempt 1/4: GET" in m and "t=***" in m for m in messages)
    assert {"httpx", "httpcore.http11"} <= {record.name for record in caplog.records}
    shown = [
        *messages,
        *(str(record.args) for record in caplog.records),
        *(str(e) for e in errors),
        *(repr(e) for e in errors),
        repr(client),
        str(client),
        *(repr(r) for r in service.requests),
        capsys.readouterr().err,
    ]
    assert not [text for text in shown if TOKEN in text]


def test_fetch_refuses_a_range_over_365_days_without_calling(start: Start) -> None:
    service, client = start()

    with pytest.raises(ValueError, match="fetch_windows"):
        client.fetch(QUERY, date(2020, 1, 1), date(2020, 12, 31))  # 366 days: leap year
    with pytest.raises(ValueError, match="both"):
        client.fetch(QUERY, from_date=date(2020, 1, 1))

    assert service.requests == []


def test_fake_service_refuses_a_range_over_365_days() -> None:
    with FakeFlexService({QUERY: REPORT}, tokens=TOKEN) as service:

        def send(fd: str, td: str) -> str:
            params = {"t": TOKEN, "q": QUERY, "v": "3", "fd": fd, "td": td}
            response = httpx.get(f"{service.base_url}/SendRequest", params=params)
            return response.text

        assert "<Status>Success</Status>" in send("20190101", "20191231")  # 365 days
        refused = send("20190101", "20200101")  # 366 days
        assert "<Status>Fail</Status><ErrorCode>1020</ErrorCode>" in refused
        assert "<ErrorCode>1020</ErrorCode>" in send("20190102", "20190101")  # fd after td
        assert service.requests[0].params["t"] == "***"


def test_statement_windows_split_a_backfill() -> None:
    windows = statement_windows(date(2019, 1, 1), date(2021, 6, 30))

    assert windows == [
        (date(2019, 1, 1), date(2019, 12, 31)),
        (date(2020, 1, 1), date(2020, 12, 30)),  # 2020 is a leap year: 365 days end on 30 Dec
        (date(2020, 12, 31), date(2021, 6, 30)),
    ]
    for (_, end), (next_start, _) in pairwise(windows):
        assert next_start == end + timedelta(days=1)  # no gap, no overlap
    assert all((end - start).days + 1 <= 365 for start, end in windows)


@pytest.mark.parametrize(
    ("from_date", "to_date", "count"),
    [
        (date(2021, 1, 1), date(2021, 12, 31), 1),  # exactly 365 days
        (date(2021, 3, 5), date(2021, 3, 5), 1),  # one day
        (date(2020, 1, 1), date(2020, 12, 31), 2),  # 366 days
    ],
)
def test_statement_windows_edges(from_date: date, to_date: date, count: int) -> None:
    windows = statement_windows(from_date, to_date)
    assert len(windows) == count
    assert (windows[0][0], windows[-1][1]) == (from_date, to_date)


def test_statement_windows_reject_a_reversed_range() -> None:
    with pytest.raises(ValueError, match="after"):
        statement_windows(date(2021, 1, 2), date(2021, 1, 1))


def test_fetch_windows_pulls_each_window(start: Start) -> None:
    service, client = start({QUERY: flex_report}, script_get=[1019])

    pulled = list(client.fetch_windows(QUERY, date(2019, 1, 1), date(2021, 6, 30)))

    windows = statement_windows(date(2019, 1, 1), date(2021, 6, 30))
    assert [(fd, td) for fd, td, _ in pulled] == windows
    assert [body for _, _, body in pulled] == [flex_report(fd, td) for fd, td in windows]
    sends: list[RecordedRequest] = [r for r in service.requests if r.endpoint == "SendRequest"]
    assert [(r.params["fd"], r.params["td"]) for r in sends] == [
        ("20190101", "20191231"),
        ("20200101", "20201230"),
        ("20201231", "20210630"),
    ]
