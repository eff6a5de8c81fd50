"""Alerts for HALT_AND_ALERT: a person must hear that reconciliation stopped the pipeline.

`Notifier.alert` never raises for a failed delivery: the run is already failing for the
discrepancy, and an unreachable chat server must not replace that failure with its own.
It answers whether the alert got through instead. A webhook URL embeds its secret (Slack,
Mattermost), so nothing here logs it, or lets httpx log it (see `_post`).
"""

from __future__ import annotations

import json
import logging
import os
import time
from collections.abc import Mapping
from typing import Any, Protocol

import httpx

log = logging.getLogger("qm_pipeline.recon")

WEBHOOK_URL_VARIABLE = "QM_RECON_WEBHOOK_URL"


class Notifier(Protocol):
    def alert(self, title: str, text: str, payload: dict[str, Any]) -> bool:
        """Send one alert; True when it was delivered."""
        ...


def _json(value: Any) -> str:
    """Payloads carry Decimals and datetimes: spell them as text rather than fail the alert."""
    return json.dumps(value, default=str, sort_keys=True)


class LogNotifier:
    """The alert as an ERROR record: always available, and what the run's logs show."""

    def alert(self, title: str, text: str, payload: dict[str, Any]) -> bool:
        log.error("%s: %s %s", title, text, _json(payload))
        return True


class WebhookNotifier:
    """POSTs `{"title", "text", "payload"}` as JSON; `text` is what Slack/Mattermost-style
    incoming webhooks display.

    A connection error or a 5xx is retried `retries` times after `backoff` seconds
    (doubling); a 4xx is not, since the same request would be refused again.
    """

    def __init__(
        self, url: str, timeout: float = 10, retries: int = 2, *, backoff: float = 0.5
    ) -> None:
        if retries < 0 or backoff < 0:
            raise ValueError("retries and backoff must be >= 0")
        self._url = url
        self.timeout = timeout
        self.retries = retries
        self.backoff = backoff

    def __repr__(self) -> str:
        return f"WebhookNotifier(timeout={self.timeout}, retries={self.retries})"

    def alert(self, title: str, text: str, payload: dict[str, Any]) -> bool:
        body = _json({"title": title, "text": text, "payload": payload}).encode()
        attempts = self.retries + 1
        for attempt in range(1, attempts + 1):
            problem, retryable = self._attempt(body)
            if problem is None:
                return True
            if not retryable or attempt == attempts:
                break
            time.sleep(self.backoff * 2 ** (attempt - 1))
        log.warning("webhook alert failed: %s (attempt %d of %d)", problem, attempt, attempts)
        return False

    def _attempt(self, body: bytes) -> tuple[str | None, bool]:
        """(None, _) when delivered, else (what went wrong, whether a retry may help).

        Only the exception's class is reported: some httpx messages quote the URL.
        """
        try:
            status = _post(self._url, body, self.timeout)
        except httpx.TransportError as exc:
            return type(exc).__name__, True
        except httpx.HTTPError as exc:  # e.g. a malformed URL: retrying cannot help
            return type(exc).__name__, False
        if 200 <= status < 300:
            return None, False
        return f"HTTP {status}", status >= 500


def _post(url: str, body: bytes, timeout: float) -> int:
    """POST through httpx's transport rather than `httpx.Client`, which logs every request
    with its full URL at INFO; returns the status code."""
    request = httpx.Request(
        "POST",
        url,
        content=body,
        headers={"Content-Type": "application/json"},
        extensions={"timeout": httpx.Timeout(timeout).as_dict()},
    )
    with httpx.HTTPTransport() as transport:
        response = transport.handle_request(request)
        response.close()
        return response.status_code


class Notifiers:
    """Fan-out: every notifier is tried, even after one failed."""

    def __init__(self, *notifiers: Notifier) -> None:
        self.notifiers = notifiers

    def alert(self, title: str, text: str, payload: dict[str, Any]) -> bool:
        delivered = [n.alert(title, text, payload) for n in self.notifiers]
        return all(delivered)


def notifier_from_env(environ: Mapping[str, str] = os.environ) -> Notifier:
    """The log notifier, plus a webhook when `QM_RECON_WEBHOOK_URL` is set (and not empty)."""
    url = environ.get(WEBHOOK_URL_VARIABLE, "").strip()
    if not url:
        return LogNotifier()
    return Notifiers(LogNotifier(), WebhookNotifier(url))
