"""Idempotent upserts on natural keys: the newest report's version of a row wins.

An older report loaded later (a backfill) never overwrites what a newer one said; loading the
same rows again replaces them with themselves. Superseded versions stay visible in `raw`.
"""

from __future__ import annotations

import pyarrow as pa

from qm_pipeline.lib.warehouse.engine import Tx, q, qualified

_EPOCH = "TIMESTAMP '1900-01-01 00:00:00'"


def upsert_newest(tx: Tx, schema: str, table: str, data: pa.Table,
                  key: str = "natural_key", version: str = "when_generated") -> int:
    """Write `data` (one row per key) over rows with the same key unless those are newer.

    Returns the rows written."""
    if data.num_rows == 0:
        return 0
    target = qualified(schema, table)
    names = ", ".join(q(n) for n in data.column_names)
    newer_or_same = f"COALESCE(t.{q(version)}, {_EPOCH}) <= COALESCE(s.{q(version)}, {_EPOCH})"
    missing = f"NOT EXISTS (SELECT 1 FROM {target} AS t WHERE t.{q(key)} = s.{q(key)})"
    with tx.readable(data) as source:
        tx.execute(f"DELETE FROM {target} AS t USING {source} AS s "
                   f"WHERE t.{q(key)} = s.{q(key)} AND {newer_or_same}")
        written = tx.scalar(f"SELECT count(*) FROM {source} AS s WHERE {missing}")
        tx.execute(f"INSERT INTO {target} ({names}) SELECT {names} FROM {source} AS s "
                   f"WHERE {missing}")
    return int(written)


def merge_attributes(tx: Tx, schema: str, table: str, data: pa.Table, key: str,
                     seen: tuple[str, str] = ("first_seen", "last_seen")) -> int:
    """Merge attribute rows: per column, the newer side's value unless it is empty."""
    if data.num_rows == 0:
        return 0
    target = qualified(schema, table)
    first, last = (q(n) for n in seen)
    newer = f"(o.{q(key)} IS NULL OR COALESCE(s.{last}, {_EPOCH}) >= COALESCE(o.{last}, {_EPOCH}))"
    picks = []
    for name in data.column_names:
        c = q(name)
        if name == key:
            picks.append(f"s.{c}")
        elif name == seen[0]:
            picks.append(f"LEAST(s.{first}, o.{first})")
        elif name == seen[1]:
            picks.append(f"GREATEST(s.{last}, o.{last})")
        else:
            picks.append(f"CASE WHEN {newer} THEN COALESCE(s.{c}, o.{c}) "
                         f"ELSE COALESCE(o.{c}, s.{c}) END")
    stage = tx.staged(data)
    aliased = ", ".join(f"{pick} AS {q(n)}" for pick, n in zip(picks, data.column_names,
                                                                strict=True))
    merged = tx.arrow(f"SELECT {aliased} FROM {stage} AS s "
                      f"LEFT JOIN {target} AS o ON o.{q(key)} = s.{q(key)}")
    tx.execute(f"DELETE FROM {target} AS t USING {stage} AS s WHERE t.{q(key)} = s.{q(key)}")
    merged = merged.cast(data.schema)
    tx.insert(schema, table, merged)
    return merged.num_rows
