"""`python -m qm_pipeline.lib.sim.gateway --port 4002`: serve the demo state until Ctrl-C."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging

from qm_pipeline.lib.sim.gateway.builders import default_state, make_state
from qm_pipeline.lib.sim.gateway.messages import MAX_SERVER_VERSION
from qm_pipeline.lib.sim.gateway.server import GatewayServer


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=4002, help="IB Gateway paper port: 4002")
    parser.add_argument("--max-server-version", type=int, default=MAX_SERVER_VERSION)
    parser.add_argument(
        "--large",
        action="store_true",
        help="serve the benchmark state (5 accounts x 2,000 positions x 200 orders)",
    )
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    state = make_state(seed=args.seed) if args.large else default_state()
    server = GatewayServer(
        state, host=args.host, port=args.port, max_server_version=args.max_server_version
    )

    async def serve() -> None:
        async with server:
            print(
                f"simulated IB Gateway on {server.host}:{server.port}, "
                f"accounts {','.join(state.managed_accounts)} (Ctrl-C to stop)",
                flush=True,
            )
            await asyncio.Event().wait()

    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(serve())


if __name__ == "__main__":
    main()
