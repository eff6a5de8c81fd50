"""A simulated IB Gateway speaking the real TWS API socket protocol (server versions 157-178).

Real clients (ib_async, ib_insync) connect to it over TCP on 127.0.0.1; it answers from a
configurable `GatewayState`, records every request, and misbehaves on demand (`faults`).
Use `GatewayServer` from async code, `GatewayThread` from sync code, or run
`python -m qm_pipeline.lib.sim.gateway --port 4002` for a demo.
"""

from qm_pipeline.lib.sim.gateway.builders import default_state, make_state
from qm_pipeline.lib.sim.gateway.decode import Request
from qm_pipeline.lib.sim.gateway.faults import (
    Delay,
    DropConnection,
    DuplicateClientId,
    ErrorReply,
    Fault,
    FaultPlan,
    NeverEnd,
    RefuseConnection,
)
from qm_pipeline.lib.sim.gateway.messages import MAX_SERVER_VERSION, MIN_SERVER_VERSION
from qm_pipeline.lib.sim.gateway.server import GatewayServer
from qm_pipeline.lib.sim.gateway.state import (
    AccountState,
    AccountValue,
    CompletedOrder,
    Execution,
    GatewayState,
    Instrument,
    OpenOrder,
    Position,
)
from qm_pipeline.lib.sim.gateway.thread import GatewayThread

__all__ = [
    "MAX_SERVER_VERSION",
    "MIN_SERVER_VERSION",
    "AccountState",
    "AccountValue",
    "CompletedOrder",
    "Delay",
    "DropConnection",
    "DuplicateClientId",
    "ErrorReply",
    "Execution",
    "Fault",
    "FaultPlan",
    "GatewayServer",
    "GatewayState",
    "GatewayThread",
    "Instrument",
    "NeverEnd",
    "OpenOrder",
    "Position",
    "RefuseConnection",
    "Request",
    "default_state",
    "make_state",
]
