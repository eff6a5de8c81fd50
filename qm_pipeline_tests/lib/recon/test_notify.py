"""The alert notifiers against a real HTTP server on 127.0.0.1: what arrives, what is
retried, and that the webhook's secret URL never reaches the logs."""

from __future__ import annotations

import json
import logging
import socket
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from decimal import Decimal
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from qm_pipeline.lib.recon.notify import (
    LogNotifier,
    Notifiers,
    WebhookNotifier,
    notifier_from_env,
)

SECRET = "T000/B000/XXXXsecretXXXX"


@dataclass
class Received:
    path: str
    content_type: str
    body: dict[str, Any]


@dataclass
class Webhook:
    """A recording webhook: answers with `statuses` in turn, then 200."""

    port: int
    statuses: list[int] = field(default_factory=list)
    received: list[Received] = field(default_factory=list)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hooks/{SECRET}"


@pytest.fixture
def webhook() -> Iterator[Webhook]:
    hook = Webhook(port=0)

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            length = int(self.headers["Content-Length"])
            body = json.loads(self.rfile.read(length))
            hook.received.append(Received(self.path, self.headers["Content-Type"], body))
            self.send_response(hook.statuses.pop(0) if hook.statuses else 200)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, format: str, *args: Any) -> None:
            """Quiet: the server's own access log is not what the tests inspect."""

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    hook.port = server.server_address[1]
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    yield hook
    server.shutdown()
    server.server_close()
    thread.join(5)


@pytest.fixture(autouse=True)
def all_logs(caplog: pytest.LogCaptureFixture) -> Iterator[pytest.LogCaptureFixture]:
    """Every record at every level (httpx logs request URLs at INFO, httpcore at DEBUG)
    must be free of the webhook's secret."""
    caplog.set_level(logging.DEBUG)
    yield caplog
    assert SECRET not in caplog.text
    assert all(SECRET not in str(r.args) for r in caplog.records)


def _notifier(url: str, retries: int = 2) -> WebhookNotifier:
    return WebhookNotifier(url, timeout=2, retries=retries, backoff=0.01)


def _free_port() -> int:
    """A port nothing listens on: bound, then released."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_webhook_delivers_title_text_and_payload(webhook: Webhook) -> None:
    payload = {"run_id": "r1", "breaks": 2, "quantity": Decimal("2.5")}

    assert _notifier(webhook.url).alert("Reconciliation halted", "2 CRITICAL breaks", payload)

    assert webhook.received == [
        Received(
            path=f"/hooks/{SECRET}",
            content_type="application/json",
            body={
                "title": "Reconciliation halted",
                "text": "2 CRITICAL breaks",
                "payload": {"run_id": "r1", "breaks": 2, "quantity": "2.5"},
            },
        )
    ]


def test_a_server_error_is_retried(webhook: Webhook) -> None:
    webhook.statuses = [500]

    assert _notifier(webhook.url).alert("t", "x", {})

    assert len(webhook.received) == 2


def test_a_client_error_is_not_retried(
    webhook: Webhook, all_logs: pytest.LogCaptureFixture
) -> None:
    webhook.statuses = [404]

    assert not _notifier(webhook.url).alert("t", "x", {})

    assert len(webhook.received) == 1
    assert "webhook alert failed: HTTP 404 (attempt 1 of 3)" in all_logs.messages


def test_server_errors_give_up_after_the_retries(
    webhook: Webhook, all_logs: pytest.LogCaptureFixture
) -> None:
    webhook.statuses = [500, 502, 503]

    assert not _notifier(webhook.url).alert("t", "x", {})

    assert len(webhook.received) == 3
    assert "webhook alert failed: HTTP 503 (attempt 3 of 3)" in all_logs.messages


def test_an_unreachable_server_returns_false(all_logs: pytest.LogCaptureFixture) -> None:
    url = f"http://127.0.0.1:{_free_port()}/hooks/{SECRET}"

    assert not _notifier(url, retries=1).alert("t", "x", {})

    assert "webhook alert failed: ConnectError (attempt 2 of 2)" in all_logs.messages


def test_the_url_stays_out_of_the_notifier_repr() -> None:
    assert SECRET not in repr(_notifier(f"https://hooks.example.com/{SECRET}"))


def test_log_notifier_logs_an_error(all_logs: pytest.LogCaptureFixture) -> None:
    assert LogNotifier().alert("Halted", "1 break", {"account": "U1"})

    (record,) = all_logs.records
    assert (record.name, record.levelno) == ("qm_pipeline.recon", logging.ERROR)
    assert record.getMessage() == 'Halted: 1 break {"account": "U1"}'


class _Refusing:
    def __init__(self) -> None:
        self.calls = 0

    def alert(self, title: str, text: str, payload: dict[str, Any]) -> bool:
        self.calls += 1
        return False


def test_fan_out_tries_every_notifier_and_reports_all_delivered() -> None:
    first, last = _Refusing(), _Refusing()

    assert not Notifiers(first, LogNotifier(), last).alert("t", "x", {})
    assert (first.calls, last.calls) == (1, 1)
    assert Notifiers(LogNotifier(), LogNotifier()).alert("t", "x", {})


def test_from_env_logs_always_and_posts_when_configured(webhook: Webhook) -> None:
    assert isinstance(notifier_from_env({}), LogNotifier)
    assert isinstance(notifier_from_env({"QM_RECON_WEBHOOK_URL": " "}), LogNotifier)

    both = notifier_from_env({"QM_RECON_WEBHOOK_URL": webhook.url})

    assert both.alert("Halted", "1 break", {})
    assert [r.body["title"] for r in webhook.received] == ["Halted"]
