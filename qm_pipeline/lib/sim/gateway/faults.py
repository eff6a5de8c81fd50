"""Scripted misbehaviour of the simulated gateway, configured per server instance.

Each fault names the request it hits (by its `In` name, e.g. `"REQ_POSITIONS"`) and how many
times it fires (`times=None`: every time), counted across connections so "drop once, then
be healthy" is one rule. The server asks `FaultPlan.take()` at each decision point; the
plan remembers what fired so a test can assert the fault was really exercised.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import TypeVar


@dataclass(frozen=True, kw_only=True)
class Fault:
    times: int | None = None
    """How many times the fault fires; None means on every match."""

    def matches(self, request: str | None, client_id: int | None) -> bool:
        return True


@dataclass(frozen=True, kw_only=True)
class RefuseConnection(Fault):
    """Close the socket right after accepting it, before the handshake."""


@dataclass(frozen=True, kw_only=True)
class DuplicateClientId(Fault):
    """Answer START_API with error 326 and close, as TWS does for a client id in use."""

    client_id: int | None = None
    """Only this client id (None: any)."""

    def matches(self, request: str | None, client_id: int | None) -> bool:
        return self.client_id is None or self.client_id == client_id


@dataclass(frozen=True, kw_only=True)
class _RequestFault(Fault):
    request: str
    """Request name, as in `ids.In` (e.g. `REQ_EXECUTIONS`)."""

    def matches(self, request: str | None, client_id: int | None) -> bool:
        return request == self.request


@dataclass(frozen=True, kw_only=True)
class DropConnection(_RequestFault):
    """Send the first `after_messages` replies of the request, then close the socket."""

    after_messages: int = 0


@dataclass(frozen=True, kw_only=True)
class NeverEnd(_RequestFault):
    """Send the data of the request but never its `*_END` message."""


@dataclass(frozen=True, kw_only=True)
class ErrorReply(_RequestFault):
    """Answer the request with an ERROR instead of data (reqId -1 when it has none)."""

    code: int = 322
    message: str = "Error processing request."


@dataclass(frozen=True, kw_only=True)
class Delay(Fault):
    """Hold the replies to a request (or, with `request=None`, to every request)."""

    ms: int
    request: str | None = None

    def matches(self, request: str | None, client_id: int | None) -> bool:
        return self.request is None or request == self.request


F = TypeVar("F", bound=Fault)


class FaultPlan:
    """The faults of one server, with their remaining counts; safe to share across threads."""

    def __init__(self, *faults: Fault) -> None:
        self._faults = list(faults)
        self._remaining = [f.times for f in faults]
        self._lock = threading.Lock()
        self._fired: list[Fault] = []

    def take(
        self, kind: type[F], request: str | None = None, client_id: int | None = None
    ) -> F | None:
        """The first matching fault of this kind that still has a use left, consuming it."""
        with self._lock:
            for i, fault in enumerate(self._faults):
                if not isinstance(fault, kind) or self._remaining[i] == 0:
                    continue
                if not fault.matches(request, client_id):
                    continue
                if self._remaining[i] is not None:
                    self._remaining[i] -= 1
                self._fired.append(fault)
                return fault
        return None

    @property
    def fired(self) -> list[Fault]:
        """Faults in the order they fired (one entry per firing)."""
        with self._lock:
            return list(self._fired)
