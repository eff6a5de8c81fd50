"""Client for IB's Flex Web Service: request a Flex Query report and download its bytes.

The service is two calls (DOMAIN.md §2): `SendRequest` answers a reference code and a
`Url`, then `GetStatement` at that `Url` answers the report, or an error code while the
report is still being generated. This module owns the retry rules for those codes, the
365-day window limit, and keeping the token out of every log line, error and repr.
It returns the report bytes untouched: callers archive them before parsing.
"""

from __future__ import annotations

import io
import logging
import time
import xml.etree.ElementTree as ET
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import date, timedelta
from importlib.metadata import version

import httpx

DEFAULT_BASE_URL = "https://ndcdyn.interactivebrokers.com/AccountManagement/FlexWebService"
LOGGER_NAME = "qm_pipeline.flex.webservice"
API_VERSION = "3"
# DOMAIN.md §2: fd/td cover at most 365 days per request, so history comes in windows.
MAX_WINDOW_DAYS = 365
RATE_LIMIT_CODE = "1018"
USER_AGENT = f"qm-pipeline/{version('qm-pipeline')} python-httpx/{httpx.__version__}"

_REDACTED = "***"
_EXCERPT_CHARS = 200
_STATEMENT_RESPONSE = "FlexStatementResponse"
_REPORT = "FlexQueryResponse"


@dataclass(frozen=True)
class ErrorCode:
    """One documented Flex Web Service error: IB's text, whether to retry, what to tell the user."""

    message: str
    transient: bool
    hint: str


def _transient(
    message: str, hint: str = "IB is still preparing the data; retry later."
) -> ErrorCode:
    return ErrorCode(message, transient=True, hint=hint)


def _fatal(message: str, hint: str) -> ErrorCode:
    return ErrorCode(message, transient=False, hint=hint)


# Codes and texts are IB's Flex Web Service v3 list (as ibflex's client.py carries it; 1001's
# text is from IB's error-code page); which ones are transient is DOMAIN.md §2.
ERROR_CODES: dict[str, ErrorCode] = {
    "1001": _fatal(
        "Statement could not be generated at this time. Please try again shortly.",
        "IB cannot generate this statement: check the query's settings and period in "
        "Client Portal, then try again later.",
    ),
    "1003": _fatal(
        "Statement is not available.",
        "No statement exists for this period (yet, or before the account opened): "
        "check fd/td and the query's period.",
    ),
    "1004": _transient("Statement is incomplete at this time. Please try again shortly."),
    "1005": _transient("Settlement data is not ready at this time. Please try again shortly."),
    "1006": _transient("FIFO P/L data is not ready at this time. Please try again shortly."),
    "1007": _transient("MTM P/L data is not ready at this time. Please try again shortly."),
    "1008": _transient(
        "MTM and FIFO P/L data is not ready at this time. Please try again shortly."
    ),
    "1009": _transient(
        "The server is under heavy load. Statement could not be generated at this time. "
        "Please try again shortly.",
        "IB's servers are busy; retry later.",
    ),
    "1010": _fatal(
        "Legacy Flex Queries are no longer supported. Please convert over to Activity Flex.",
        "Recreate the query as an Activity Flex Query in Client Portal and use its id.",
    ),
    "1011": _fatal(
        "Service account is inactive.",
        "Activate the Flex Web Service in Client Portal (Flex Web Service Configuration).",
    ),
    "1012": _fatal(
        "Token has expired.",
        "Generate a new token in Client Portal (Flex Web Service Configuration) and "
        "update the configured secret.",
    ),
    "1013": _fatal(
        "IP restriction.",
        "The token is bound to another IP address: call from that address or generate a "
        "token without an IP restriction in Client Portal.",
    ),
    "1014": _fatal(
        "Query is invalid.",
        "Check the Flex Query id (Client Portal > Flex Queries) and that the query "
        "belongs to this token's account.",
    ),
    "1015": _fatal(
        "Token is invalid.",
        "Check the configured token: it must be the current one from Client Portal "
        "(generating a new token invalidates the old one).",
    ),
    "1016": _fatal(
        "Account in invalid.",
        "Check that the query's accounts are still open and visible to this token.",
    ),
    "1017": _fatal(
        "Reference code is invalid.",
        "The reference code expired or is unknown: run the whole fetch again.",
    ),
    "1018": _transient(
        "Too many requests have been made from this token. Please try again shortly.",
        "IB allows about 1 request a second and 10 a minute per token: space runs out "
        "and do not share the token between concurrent jobs.",
    ),
    "1019": _transient(
        "Statement generation in progress. Please try again shortly.",
        "Large statements can take minutes to generate: raise the retry deadline.",
    ),
    "1020": _fatal(
        "Invalid request or unable to validate request.",
        "Check the request: fd/td as yyyymmdd, fd <= td, at most 365 days apart.",
    ),
    "1021": _transient("Statement could not be retrieved at this time. Please try again shortly."),
}

_UNKNOWN_CODE_HINT = "This code is not in the documented list: read IB's message above."
_HTTP_HINT = "IB's web service is failing; check IB's system status and try again later."
_PAYLOAD_HINT = (
    "IB answered with something that is not a Flex XML report: check the base URL and that "
    "the query's format is XML, not CSV or text."
)


class FlexServiceError(Exception):
    """The Flex Web Service did not deliver a report.

    `code` is IB's numeric code as a string ("1019"), or `HTTP <status>`, the transport
    error's class name, or `invalid-payload` when IB's answer never carried one.
    `transient` says whether trying again later may succeed; `hint` says what to do.
    """

    def __init__(
        self,
        code: str,
        message: str,
        *,
        transient: bool,
        hint: str,
        step: str,
        attempts: int = 1,
    ) -> None:
        self.code = code
        self.message = message
        self.transient = transient
        self.hint = hint
        self.step = step
        self.attempts = attempts
        if transient:
            what = f"gave up after {attempts} attempts; last code {code}"
        else:
            what = f"failed with code {code}" + (f" on attempt {attempts}" if attempts > 1 else "")
        super().__init__(f"Flex Web Service {step} {what}: {message} Hint: {hint}")

    def __repr__(self) -> str:
        return (
            f"FlexServiceError(code={self.code!r}, step={self.step!r}, "
            f"transient={self.transient}, attempts={self.attempts})"
        )


@dataclass(frozen=True)
class RetryPolicy:
    """Bounded exponential back-off for transient codes, 5xx answers and transport errors.

    The n-th retry of a step waits `start * factor**(n-1)` seconds, capped at `max_delay`,
    where `start` is `rate_limit_delay` after a 1018 (IB's per-token limit needs a longer
    pause than a statement still generating) and `initial_delay` otherwise. A step stops
    after `max_attempts`; the whole fetch stops before a wait would pass `deadline` seconds.
    """

    initial_delay: float = 5.0
    rate_limit_delay: float = 10.0
    factor: float = 2.0
    max_delay: float = 60.0
    max_attempts: int = 8
    deadline: float | None = 600.0

    def __post_init__(self) -> None:
        if self.max_attempts < 1:
            raise ValueError("max_attempts must be at least 1")
        if self.factor < 1 or min(self.initial_delay, self.rate_limit_delay) < 0:
            raise ValueError("delays must be >= 0 and factor >= 1")

    def delay(self, retry: int, code: str) -> float:
        """Seconds to wait before retry number `retry` (1-based) after `code`."""
        start = self.rate_limit_delay if code == RATE_LIMIT_CODE else self.initial_delay
        return min(start * self.factor ** (retry - 1), self.max_delay)


def statement_windows(
    from_date: date, to_date: date, max_days: int = MAX_WINDOW_DAYS
) -> list[tuple[date, date]]:
    """Split the inclusive range into consecutive inclusive windows of at most `max_days` days.

    SendRequest takes at most 365 days per fd/td pair (DOMAIN.md §2), so a backfill
    requests one window after another.
    """
    if from_date > to_date:
        raise ValueError(f"from_date {from_date} is after to_date {to_date}")
    if max_days < 1:
        raise ValueError("max_days must be at least 1")
    windows = []
    start = from_date
    while start <= to_date:
        end = min(start + timedelta(days=max_days - 1), to_date)
        windows.append((start, end))
        start = end + timedelta(days=1)
    return windows


class _TokenTransport(httpx.BaseTransport):
    """Adds `t=<token>` to the request only on its way to the wire.

    httpx logs and reports the URL of the request it was given (`HTTP Request: GET ...`
    at INFO, `.request` on errors); signing a copy here keeps the token out of all of them.
    """

    def __init__(self, token: str, inner: httpx.BaseTransport) -> None:
        self._token = token
        self._inner = inner

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        signed = httpx.Request(
            request.method,
            request.url.copy_merge_params({"t": self._token}),
            headers=request.headers,
            stream=request.stream,
            extensions=request.extensions,
        )
        return self._inner.handle_request(signed)

    def close(self) -> None:
        self._inner.close()


@dataclass(frozen=True)
class _Retry:
    """A failed attempt worth repeating."""

    code: str
    message: str


class FlexWebServiceClient:
    """Fetches Flex Query reports with one token; use as a context manager or call `close()`."""

    def __init__(
        self,
        token: str,
        *,
        base_url: str = DEFAULT_BASE_URL,
        timeout: float = 60.0,
        retry: RetryPolicy | None = None,
        min_interval: float = 1.0,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.monotonic,
        logger: logging.Logger | None = None,
    ) -> None:
        """`min_interval` spaces consecutive requests (IB allows about one a second, DOMAIN.md
        §2); `sleep` and `clock` are injectable so tests need not wait."""
        if not token:
            raise ValueError("a Flex Web Service token is required")
        self._token = token
        self.base_url = base_url.rstrip("/")
        self.retry = retry or RetryPolicy()
        self.min_interval = min_interval
        self._sleep = sleep
        self._clock = clock
        self._log = logger or logging.getLogger(LOGGER_NAME)
        self._last_request_at: float | None = None
        self._http = httpx.Client(
            transport=_TokenTransport(token, httpx.HTTPTransport()),
            headers={"User-Agent": USER_AGENT},
            timeout=timeout,
        )

    def __repr__(self) -> str:
        return f"FlexWebServiceClient(base_url={self.base_url!r}, token={_REDACTED!r})"

    def __enter__(self) -> FlexWebServiceClient:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def close(self) -> None:
        self._http.close()

    def fetch(
        self, query_id: str, from_date: date | None = None, to_date: date | None = None
    ) -> bytes:
        """Run the query (over fd..td inclusive when given) and return the report bytes as sent."""
        params = {"q": query_id, "v": API_VERSION}
        if from_date is not None or to_date is not None:
            if from_date is None or to_date is None:
                raise ValueError("give both from_date and to_date, or neither")
            if len(statement_windows(from_date, to_date)) > 1:
                raise ValueError(
                    f"{from_date}..{to_date} spans more than {MAX_WINDOW_DAYS} days: "
                    "use fetch_windows"
                )
            params |= {"fd": f"{from_date:%Y%m%d}", "td": f"{to_date:%Y%m%d}"}
        started = self._clock()
        answer = self._call("SendRequest", f"{self.base_url}/SendRequest", params, started)
        reference_code, url = self._statement_access(answer)
        report = self._call("GetStatement", url, {"q": reference_code, "v": API_VERSION}, started)
        if _root_tag(report) != _REPORT:
            raise self._invalid_payload("GetStatement", report)
        return report

    def fetch_windows(
        self, query_id: str, from_date: date, to_date: date
    ) -> Iterator[tuple[date, date, bytes]]:
        """Fetch `from_date..to_date` as consecutive windows of at most 365 days, lazily."""
        windows = statement_windows(from_date, to_date)
        return ((fd, td, self.fetch(query_id, fd, td)) for fd, td in windows)

    def _call(self, step: str, url: str, params: dict[str, str], started: float) -> bytes:
        """GET until the answer is not a transient failure; return its body."""
        shown = _shown_url(httpx.URL(url, params=params))
        policy = self.retry
        attempt = 0
        while True:
            attempt += 1
            self._pace()
            self._log.info("%s attempt %d/%d: GET %s", step, attempt, policy.max_attempts, shown)
            outcome = self._attempt(step, url, params, attempt)
            if isinstance(outcome, bytes):
                return outcome
            delay = policy.delay(attempt, outcome.code)
            elapsed = self._clock() - started
            if attempt >= policy.max_attempts or (
                policy.deadline is not None and elapsed + delay > policy.deadline
            ):
                known = ERROR_CODES.get(outcome.code)
                raise FlexServiceError(
                    outcome.code,
                    outcome.message,
                    transient=True,
                    hint=known.hint if known else _HTTP_HINT,
                    step=step,
                    attempts=attempt,
                )
            self._log.info(
                "%s got code %s (%s); backing off %.2f s before attempt %d",
                step,
                outcome.code,
                outcome.message,
                delay,
                attempt + 1,
            )
            self._sleep(delay)

    def _attempt(self, step: str, url: str, params: dict[str, str], attempt: int) -> bytes | _Retry:
        """One GET: the body, a `_Retry`, or a raised fatal `FlexServiceError`."""
        try:
            response = self._http.get(url, params=params)
        except httpx.TransportError as exc:
            return _Retry(type(exc).__name__, self._redact(str(exc)) or "no answer")
        finally:
            self._last_request_at = self._clock()
        if response.status_code >= 500 or response.status_code == 429:
            return _Retry(f"HTTP {response.status_code}", response.reason_phrase)
        if response.status_code != 200:
            raise FlexServiceError(
                f"HTTP {response.status_code}",
                self._excerpt(response.content),
                transient=False,
                hint=_HTTP_HINT,
                step=step,
                attempts=attempt,
            )
        body = response.content
        if _root_tag(body) != _STATEMENT_RESPONSE:
            return body
        fields = self._statement_fields(step, body)
        code = fields.get("ErrorCode")
        if code is None:
            return body
        known = ERROR_CODES.get(code)
        message = fields.get("ErrorMessage") or (known.message if known else "no message")
        if known and known.transient:
            return _Retry(code, message)
        raise FlexServiceError(
            code,
            message,
            transient=False,
            hint=known.hint if known else _UNKNOWN_CODE_HINT,
            step=step,
            attempts=attempt,
        )

    def _statement_access(self, answer: bytes) -> tuple[str, str]:
        """ReferenceCode and Url from a successful SendRequest answer."""
        fields = (
            self._statement_fields("SendRequest", answer)
            if _root_tag(answer) == _STATEMENT_RESPONSE
            else {}
        )
        reference_code, url = fields.get("ReferenceCode"), fields.get("Url")
        if fields.get("Status") != "Success" or not reference_code or not url:
            raise self._invalid_payload("SendRequest", answer)
        return reference_code, url

    def _statement_fields(self, step: str, body: bytes) -> dict[str, str]:
        """Child texts of a FlexStatementResponse (Status, ErrorCode, ReferenceCode...)."""
        try:
            root = ET.fromstring(body)
        except ET.ParseError:
            raise self._invalid_payload(step, body) from None
        return {child.tag: (child.text or "").strip() for child in root}

    def _pace(self) -> None:
        if self._last_request_at is None:
            return
        wait = self.min_interval - (self._clock() - self._last_request_at)
        if wait > 0:
            self._log.debug("pacing: waiting %.2f s between requests", wait)
            self._sleep(wait)

    def _invalid_payload(self, step: str, body: bytes) -> FlexServiceError:
        expected = _REPORT if step == "GetStatement" else _STATEMENT_RESPONSE
        return FlexServiceError(
            "invalid-payload",
            f"expected a {expected}, got: {self._excerpt(body)!r}",
            transient=False,
            hint=_PAYLOAD_HINT,
            step=step,
        )

    def _excerpt(self, body: bytes) -> str:
        """The first characters of `body`, redacted before cutting so no token half survives."""
        head = body[: (_EXCERPT_CHARS + len(self._token)) * 4].decode("utf-8", "replace")
        return self._redact(head)[:_EXCERPT_CHARS]

    def _redact(self, text: str) -> str:
        return text.replace(self._token, _REDACTED)


def _root_tag(body: bytes) -> str | None:
    """Name of the document element, read without parsing the rest (reports can be large)."""
    try:
        _, element = next(ET.iterparse(io.BytesIO(body.lstrip()), events=("start",)))
    except (ET.ParseError, StopIteration):
        return None
    return element.tag


def _shown_url(url: httpx.URL) -> str:
    """The URL as sent, with the token shown as `t=***`."""
    return f"{url}{'&' if url.query else '?'}t={_REDACTED}"
