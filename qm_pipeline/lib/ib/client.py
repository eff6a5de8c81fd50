"""The one import of the TWS API client: ib_async, or ib_insync where only that is installed.

Both expose the same `IB` API for what the pipeline uses (TWS_PROTOCOL.md §5); everything
else in the project imports the client from here, so the same code and tests run under
either library. Do not install both in one environment: they share the `eventkit` package.
"""

from __future__ import annotations

from importlib import metadata
from typing import Any

try:
    import ib_async as _lib
except ImportError:  # pragma: no cover - exercised in an ib_insync-only environment
    import ib_insync as _lib  # type: ignore[no-redef]

IB = _lib.IB
Contract = _lib.Contract
ExecutionFilter = _lib.ExecutionFilter
LimitOrder = _lib.LimitOrder
RequestError = _lib.RequestError
util = _lib.util

LIBRARY: str = _lib.__name__
"""`ib_async` or `ib_insync`: which client library is in use."""
LIBRARY_VERSION: str = metadata.version(LIBRARY)
MAX_SERVER_VERSION: int = _lib.client.Client.MaxClientVersion
"""The newest server version this client negotiates (ib_insync 176, ib_async 2.1 178)."""
LOGGER_NAMES: tuple[str, ...] = tuple(
    f"{LIBRARY}.{name}" for name in ("Decoder", "wrapper", "client")
)
"""Loggers where the library reports (and swallows) decoding and request errors."""


def connect_options() -> dict[str, Any]:
    """Extra `connectAsync` arguments this library understands.

    ib_async only logs a timed-out startup request unless `raiseSyncErrors` is set;
    ib_insync has no such switch (its startup sync raises only for executions).
    """
    return {"raiseSyncErrors": True} if LIBRARY == "ib_async" else {}
