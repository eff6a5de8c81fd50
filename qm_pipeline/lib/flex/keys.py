"""Natural keys and newest-wins deduplication, vectorised over Arrow columns."""

from __future__ import annotations

import hashlib

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from qm_pipeline.lib.flex.core_tables import CoreTable
from qm_pipeline.lib.naming import snake_case


def _array(values: pa.ChunkedArray | pa.Array) -> pa.Array:
    return values.combine_chunks() if isinstance(values, pa.ChunkedArray) else values


def _text(column: pa.ChunkedArray | pa.Array) -> pa.Array:
    return _array(pc.fill_null(pc.cast(column, pa.string()), ""))


def natural_keys(typed: pa.Table, spec: CoreTable) -> pa.Array:
    """Key text per row: the table's key attributes (typed, so date formats do not matter),
    or, when one is missing, a digest of the whole row. Repeats of a key within a statement
    are numbered over the whole report (`number_repeats`)."""
    required = [typed.column(snake_case(a)) for a in spec.key]
    optional = [typed.column(snake_case(a)) for a in spec.optional_key]
    keys = _array(pc.binary_join_element_wise(*[_text(c) for c in required + optional], "|"))
    complete = _array(pc.is_valid(required[0]))
    for column in required[1:]:
        complete = pc.and_(complete, _array(pc.is_valid(column)))
    if not pc.all(complete).as_py():
        keys = _with_content_keys(typed, keys, complete)
    return keys


def _with_content_keys(typed: pa.Table, keys: pa.Array, complete: pa.Array) -> pa.Array:
    content = _array(pc.binary_join_element_wise(*[_text(c) for c in typed.columns], "\x1f"))
    texts = keys.to_pylist()
    for index in np.flatnonzero(~complete.to_numpy(zero_copy_only=False)):
        digest = hashlib.sha256(content[int(index)].as_py().encode()).hexdigest()[:32]
        texts[index] = f"content:{digest}"
    return pa.array(texts, pa.string())


def number_repeats(keys: pa.Array, statements: pa.Array, lines: pa.Array) -> pa.Array:
    """Suffix `#n` to the n-th repeat of a key within one statement, in file order (DOMAIN.md:
    closed lots add an ordinal; rows keyed by content repeat when IB lists them twice)."""
    codes = pc.dictionary_encode(keys).indices.to_numpy(zero_copy_only=False).astype(np.int64)
    group = statements.to_numpy(zero_copy_only=False).astype(np.int64) * (codes.max() + 1) + codes
    order = np.lexsort((lines.to_numpy(zero_copy_only=False), group))
    grouped = group[order]
    starts = np.r_[True, grouped[1:] != grouped[:-1]]
    run_start = np.maximum.accumulate(np.where(starts, np.arange(len(order)), 0))
    rank = np.empty(len(order), dtype=np.int64)
    rank[order] = np.arange(len(order)) - run_start
    if not rank.any():
        return keys
    suffix = pc.if_else(pa.array(rank > 0), pc.binary_join_element_wise(
        "#", pc.cast(pa.array(rank), pa.string()), ""), "")
    return _array(pc.binary_join_element_wise(keys, suffix, ""))


def newest_per_key(table: pa.Table, key: str, *order: str) -> pa.Table:
    """Keep, per key, the row that sorts last by `order` (newest report wins)."""
    if table.num_rows < 2:
        return table
    codes = pc.dictionary_encode(table.column(key)).combine_chunks().indices
    columns = [table.column(c).to_numpy(zero_copy_only=False) for c in reversed(order)]
    columns = [np.nan_to_num(c.astype("datetime64[s]").astype(np.int64)
                             if c.dtype.kind == "M" else c) for c in columns]
    codes_np = codes.to_numpy(zero_copy_only=False)
    sorted_rows = np.lexsort((*columns, codes_np))
    last = np.r_[codes_np[sorted_rows][1:] != codes_np[sorted_rows][:-1], True]
    keep = np.sort(sorted_rows[last])
    return table.take(pa.array(keep)) if len(keep) != table.num_rows else table
