"""Live data from Interactive Brokers' TWS / IB Gateway through the TWS API client.

- `client`: the only import of the client library (ib_async, else ib_insync).
- `snapshot`: `take_snapshot(SnapshotSettings(...), known_conids=...) -> Snapshot`, all or
  nothing; `model` holds the settings, result and error types, `rows` the table columns
  and the float -> Decimal conversion, `collect` one attempt over one connection.
- `bench`: `bench_snapshot()` against the simulated gateway (`qm_pipeline.lib.sim.gateway`).
"""
