"""A TWS API client written from the protocol notes, with no library: to see the bytes.

Tests use it to check what goes over the wire (field counts per server version, the
handshake) and to hold a client id open the way another application would.
"""

from __future__ import annotations

import socket
import struct
from types import TracebackType


class RawSession:
    """Handshake on construction (`versions` as a client announces them, e.g. `v157..176`)."""

    def __init__(self, port: int, versions: str = "v157..178", timeout: float = 5.0) -> None:
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=timeout)
        payload = versions.encode()
        self.sock.sendall(b"API\0" + struct.pack(">I", len(payload)) + payload)

    def __enter__(self) -> RawSession:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.sock.close()

    def send(self, *fields: object) -> None:
        payload = "".join(f"{f}\0" for f in fields).encode()
        self.sock.sendall(struct.pack(">I", len(payload)) + payload)

    def read(self) -> list[str]:
        """One message's fields; ConnectionError when the gateway closed the socket."""
        (length,) = struct.unpack(">I", self._recv_exactly(4))
        return self._recv_exactly(length).decode().split("\0")[:-1]

    def read_until(self, msg_id: int) -> list[list[str]]:
        """Messages up to and including the first with this id."""
        out = [self.read()]
        while out[-1][0] != str(msg_id):
            out.append(self.read())
        return out

    def start_api(self, client_id: int) -> list[list[str]]:
        """START_API, then everything up to NEXT_VALID_ID (after the 2-field hello)."""
        hello = self.read()
        assert len(hello) == 2, hello
        self.send(71, 2, client_id, "")
        return self.read_until(9)

    def _recv_exactly(self, n: int) -> bytes:
        data = b""
        while len(data) < n:
            chunk = self.sock.recv(n - len(data))
            if not chunk:
                raise ConnectionError("gateway closed the connection")
            data += chunk
        return data
