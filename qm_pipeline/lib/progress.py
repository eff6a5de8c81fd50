"""Progress of long work, reported to whoever is watching: a terminal bar when the CLI runs the
assets in-process, nothing extra inside a Dagster run (its logs say what happened)."""

from __future__ import annotations

from collections.abc import Callable
from contextvars import ContextVar

Reporter = Callable[[str, int, int], None]  # (item, done, total)

_current: ContextVar[Reporter | None] = ContextVar("qm_progress", default=None)


def current() -> Reporter | None:
    return _current.get()


def use(reporter: Reporter | None):
    """Set the reporter for this context; returns a token for `reset`."""
    return _current.set(reporter)


def reset(token) -> None:
    _current.reset(token)
