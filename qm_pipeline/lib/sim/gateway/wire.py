"""Framing and field encoding of the TWS API socket protocol (TWS_PROTOCOL.md §1.1-1.2).

Every message after the `API\\0` magic is `uint32 big-endian length + payload`, the payload
being NUL-terminated text fields. Server -> client numbers are plain decimal strings; the
client's decoder applies `int()`/`float()` or falls back to its default on `''`.
"""

from __future__ import annotations

import asyncio
import struct
from collections.abc import Iterable
from decimal import Decimal

MAGIC = b"API\0"
UNSET_DOUBLE = "1.7976931348623157E308"
"""How TWS spells an unset double on the wire; the clients map it to 'no value'."""

MAX_FRAME = 16 * 1024 * 1024
"""Refuse absurd frames instead of allocating them: a garbage length is a protocol error."""

_LENGTH = struct.Struct(">I")

Field = str | int | float | Decimal | bool | None


class ProtocolError(Exception):
    """The peer sent something that is not the TWS API protocol."""


def encode_field(value: Field) -> str:
    """One field as the gateway writes it: no exponents, bools as 1/0, None as empty."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "1" if value else "0"
    if isinstance(value, Decimal):
        return format(value, "f")
    if isinstance(value, float):
        return repr(value)
    return str(value)


def frame(fields: Iterable[Field]) -> bytes:
    """A complete length-prefixed message, every field NUL-terminated (the last one too)."""
    payload = "".join(encode_field(f) + "\0" for f in fields).encode()
    return _LENGTH.pack(len(payload)) + payload


def split_payload(payload: bytes) -> list[str]:
    """Fields of one payload, dropping the empty string after the final NUL as the client does."""
    fields = payload.decode(errors="backslashreplace").split("\0")
    if fields and fields[-1] == "":
        fields.pop()
    return fields


async def read_payload(reader: asyncio.StreamReader) -> bytes:
    """Read one length-prefixed payload; raises `asyncio.IncompleteReadError` at EOF."""
    (length,) = _LENGTH.unpack(await reader.readexactly(_LENGTH.size))
    if length > MAX_FRAME:
        raise ProtocolError(f"frame of {length} bytes exceeds {MAX_FRAME}")
    return await reader.readexactly(length)


async def read_fields(reader: asyncio.StreamReader) -> list[str]:
    """Read one message and split it into its text fields."""
    return split_payload(await read_payload(reader))


async def read_handshake(reader: asyncio.StreamReader) -> tuple[int, int, str]:
    """Read `API\\0` + `v<min>..<max>[ <connectOptions>]`; return (min, max, options)."""
    magic = await reader.readexactly(len(MAGIC))
    if magic != MAGIC:
        raise ProtocolError(f"expected {MAGIC!r}, got {magic!r}")
    text = (await read_payload(reader)).decode(errors="replace")
    versions, _, options = text.partition(" ")
    if not versions.startswith("v"):
        raise ProtocolError(f"bad version range {text!r}")
    low, _, high = versions[1:].partition("..")
    try:
        return int(low), int(high or low), options
    except ValueError as exc:
        raise ProtocolError(f"bad version range {text!r}") from exc
