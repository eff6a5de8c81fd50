"""A local stand-in for IB's Flex Web Service, for tests and demos.

Plays both calls of DOMAIN.md §2 (`SendRequest`, then `GetStatement` at the `Url` it
answers) over real HTTP on 127.0.0.1, with IB's XML shapes and error codes, so the real
client runs unchanged against it. Failures are scripted per call; every request is
recorded (token redacted) so tests can assert what the client sent.
"""

from __future__ import annotations

import itertools
import logging
import threading
from collections import deque
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from functools import partial
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl, urlsplit
from xml.sax.saxutils import escape, quoteattr
from zoneinfo import ZoneInfo

from qm_pipeline.lib.flex.webservice import API_VERSION, ERROR_CODES, statement_windows

ReportProvider = bytes | Callable[[date | None, date | None], bytes]
"""A report's bytes, or a function of the requested (fd, td) window returning them."""

SERVICE_PATH = "/AccountManagement/FlexWebService"
_log = logging.getLogger("qm_pipeline.sim.flex_service")
_REDACTED = "***"
_XML = "text/xml;charset=utf-8"
_IB_ZONE = ZoneInfo("America/New_York")  # IB stamps responses in US Eastern time

# IB documents no code for an fd/td range over 365 days; we answer 1020 "Invalid request or
# unable to validate request", its generic invalid-request code. 1003 ("Statement is not
# available") would tell the user the data is missing, which it is not.
RANGE_ERROR_CODE = 1020


@dataclass(frozen=True)
class Reply:
    """A raw HTTP answer played instead of IB's logic: a 500, an HTML page, an unknown code."""

    status: int = 500
    body: bytes = b"Internal Server Error"
    content_type: str = "text/plain"


Step = int | Reply
"""A scripted answer: an IB error code (sent with IB's documented message) or a raw `Reply`."""


@dataclass(frozen=True)
class RecordedRequest:
    """One request as the fake received it, with the token shown as `***`."""

    method: str
    path: str
    params: dict[str, str]
    headers: dict[str, str]  # names lower-cased

    @property
    def endpoint(self) -> str:
        """`SendRequest` or `GetStatement` (the last path segment)."""
        return self.path.rsplit("/", 1)[-1]


def error_xml(code: int | str, message: str | None = None) -> bytes:
    """IB's error answer for `code`; `message` defaults to IB's documented text."""
    text = message if message is not None else ERROR_CODES[str(code)].message
    return _statement_response(
        f"<Status>Fail</Status><ErrorCode>{code}</ErrorCode>"
        f"<ErrorMessage>{escape(text)}</ErrorMessage>"
    )


def _statement_response(body: str) -> bytes:
    # IB's stamp reads "28 August, 2012 10:37 AM EDT".
    stamp = datetime.now(_IB_ZONE).strftime("%d %B, %Y %I:%M %p %Z")
    return (
        f"<FlexStatementResponse timestamp={quoteattr(stamp)}>\n{body}\n</FlexStatementResponse>\n"
    ).encode()


@dataclass(frozen=True)
class _Statement:
    """What a reference code stands for."""

    query_id: str
    from_date: date | None
    to_date: date | None
    script: deque[Step]


class FakeFlexService:
    """IB's Flex Web Service on an ephemeral 127.0.0.1 port; use as a context manager.

    A wrong token answers 1015 on either call. Past that check, `script_send` is played one
    step per SendRequest before the normal answers (unknown query 1014, bad or over-365-day
    fd/td 1020, else a reference code), and `script_get` is played afresh for every
    reference code issued, one step per GetStatement, before the report.
    """

    def __init__(
        self,
        reports: Mapping[str, ReportProvider],
        *,
        tokens: str | Iterable[str],
        script_send: Sequence[Step] = (),
        script_get: Sequence[Step] = (),
    ) -> None:
        self._reports = dict(reports)
        self._tokens = frozenset([tokens] if isinstance(tokens, str) else tokens)
        self._script_send: deque[Step] = deque(script_send)
        self._script_get = tuple(script_get)
        self._statements: dict[str, _Statement] = {}
        self._reference_codes = itertools.count(7_000_000_001)
        self._requests: list[RecordedRequest] = []
        self._lock = threading.Lock()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), partial(_Handler, service=self))
        self._thread: threading.Thread | None = None
        host, port = self._server.server_address[:2]
        self.base_url = f"http://{host}:{port}{SERVICE_PATH}"

    def __enter__(self) -> FakeFlexService:
        self.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def start(self) -> None:
        # A short poll interval keeps stop() fast; the default 0.5 s adds up over a test run.
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self._thread.start()

    def stop(self) -> None:
        if self._thread is not None:
            self._server.shutdown()
            self._thread.join()
            self._thread = None
        self._server.server_close()

    @property
    def requests(self) -> list[RecordedRequest]:
        """Every request received so far, oldest first."""
        with self._lock:
            return list(self._requests)

    def handle(self, method: str, target: str, headers: Mapping[str, str]) -> tuple[Reply, str]:
        """Record one request and answer it; returns the reply and a code for the log."""
        url = urlsplit(target)
        params = dict(parse_qsl(url.query, keep_blank_values=True))
        token_ok = params.get("t") in self._tokens
        if "t" in params:
            params["t"] = _REDACTED
        record = RecordedRequest(
            method, url.path, params, {k.lower(): v for k, v in headers.items()}
        )
        with self._lock:
            self._requests.append(record)
            if url.path == f"{SERVICE_PATH}/SendRequest":
                return self._send_request(params, token_ok)
            if url.path == f"{SERVICE_PATH}/GetStatement":
                return self._get_statement(params, token_ok)
        return Reply(404, b"Not Found"), "404"

    def _send_request(self, params: dict[str, str], token_ok: bool) -> tuple[Reply, str]:
        if not token_ok:
            return _error(1015)
        if self._script_send:
            return _play(self._script_send.popleft())
        query_id = params.get("q", "")
        if params.get("v") != API_VERSION:
            return _error(1020)  # v2 answers another shape; only v3 is played here
        if query_id not in self._reports:
            return _error(1014)
        window = _window(params.get("fd"), params.get("td"))
        if window is None:
            return _error(RANGE_ERROR_CODE)
        reference_code = str(next(self._reference_codes))
        self._statements[reference_code] = _Statement(query_id, *window, deque(self._script_get))
        return Reply(
            200,
            _statement_response(
                f"<Status>Success</Status><ReferenceCode>{reference_code}</ReferenceCode>"
                f"<Url>{escape(self.base_url)}/GetStatement</Url>"
            ),
            _XML,
        ), "Success"

    def _get_statement(self, params: dict[str, str], token_ok: bool) -> tuple[Reply, str]:
        if not token_ok:
            return _error(1015)
        statement = self._statements.get(params.get("q", ""))
        if statement is None:
            return _error(1017)
        if statement.script:
            return _play(statement.script.popleft())
        report = self._reports[statement.query_id]
        body = (
            report if isinstance(report, bytes) else report(statement.from_date, statement.to_date)
        )
        return Reply(200, body, _XML), "report"


def _window(fd: str | None, td: str | None) -> tuple[date | None, date | None] | None:
    """The (fd, td) pair requested, (None, None) when absent, None when IB would refuse it."""
    if fd is None and td is None:
        return None, None
    try:
        from_date = datetime.strptime(fd or "", "%Y%m%d").date()
        to_date = datetime.strptime(td or "", "%Y%m%d").date()
    except ValueError:
        return None
    # DOMAIN.md §2: at most 365 days per request; same rule as the client's windows.
    if from_date > to_date or len(statement_windows(from_date, to_date)) > 1:
        return None
    return from_date, to_date


def _error(code: int) -> tuple[Reply, str]:
    return Reply(200, error_xml(code), _XML), str(code)


def _play(step: Step) -> tuple[Reply, str]:
    return (step, f"scripted HTTP {step.status}") if isinstance(step, Reply) else _error(step)


class _Handler(BaseHTTPRequestHandler):
    """Hands each GET to the service; logs through `logging` with the token redacted."""

    def __init__(self, *args: Any, service: FakeFlexService, **kwargs: Any) -> None:
        self.service = service
        super().__init__(*args, **kwargs)

    def do_GET(self) -> None:
        reply, outcome = self.service.handle("GET", self.path, dict(self.headers.items()))
        _log.debug("%s -> %s", urlsplit(self.path).path, outcome)
        self.send_response(reply.status)
        self.send_header("Content-Type", reply.content_type)
        self.send_header("Content-Length", str(len(reply.body)))
        self.end_headers()
        self.wfile.write(reply.body)

    def log_message(self, format: str, *args: Any) -> None:
        """Silenced: the default writes the request line, token included, to stderr."""
