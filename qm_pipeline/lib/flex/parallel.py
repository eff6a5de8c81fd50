"""A large report parsed on two cores, handed over exactly as a sequential parse hands it over.

Parsing is most of a load's work and expat holds the GIL, so a thread would not help. This
process parses the first statements while a worker process parses the others from a
`<FlexStatement` near the middle of the file. Rows are numbered per statement, so a part that
starts at a statement needs to know only how many statements, lines and bytes come before it
(`Shift`); the worker spills its chunks to Arrow IPC files (memory stays bounded), and once
this process is through its own part it hands them to the handler in order: the same chunks,
rows, lines, offsets and ordinals, in the same order, as `reader.stream_report`.

When the split could differ from a sequential parse, the split is not made, or this process
parses the rest itself: comments, CDATA or processing instructions in the file (a
`<FlexStatement` inside one is no statement), rows outside statements in the worker's part,
a boundary that is not between statements, a worker that fails for any reason but bad XML.
"""

from __future__ import annotations

import json
import logging
import mmap
import os
import pickle
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import astuple, dataclass, field
from pathlib import Path

import pyarrow as pa

from qm_pipeline.lib.flex import reader
from qm_pipeline.lib.flex.reader import (
    OFFSET_COLUMN,
    ChunkHandler,
    GroupKey,
    MalformedXML,
    ReportHeader,
    Shift,
    Statement,
)

PARALLEL_MIN_BYTES = 32 << 20  # below this, starting a worker costs more than it saves
_STATEMENT = b"<FlexStatement"
_KEY = b"qm_group_key"
_RESULT = "result.pickle"

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Split:
    """The worker parses the bytes before the first statement (where the root and
    FlexStatements open), then the file from `offset`, the `<` of statement `statements`."""

    prolog_end: int
    offset: int
    statements: int


def plan_split(path: Path, min_bytes: int | None = None) -> Split | None:
    """Where to split `path` in two, or None when one sequential parse should read it all."""
    if path.stat().st_size < (PARALLEL_MIN_BYTES if min_bytes is None else min_bytes):
        return None
    with path.open("rb") as stream, mmap.mmap(stream.fileno(), 0, access=mmap.ACCESS_READ) as data:
        if _has_markup_besides_elements(data):
            return None
        starts = list(_statement_starts(data))
        if len(starts) < 2:
            return None
        index = min(range(1, len(starts)), key=lambda i: abs(starts[i] - len(data) // 2))
        return Split(starts[0], starts[index], index)


def _has_markup_besides_elements(data: mmap.mmap) -> bool:
    """Comments, CDATA, a DOCTYPE or processing instructions other than the XML declaration:
    inside them a `<FlexStatement` is text, not an element. (Outside them every `<` is markup:
    XML forbids it unescaped in text and attribute values.)"""
    start = 3 if data[:3] == b"\xef\xbb\xbf" else 0
    if data[start:start + 5] == b"<?xml":
        start = data.find(b"?>", start) + 2
    # One-byte searches are memchr-fast; "<" alone is in every element.
    return any(_preceded_by_lt(data, mark, start) for mark in (b"!", b"?"))


def _preceded_by_lt(data: mmap.mmap, mark: bytes, start: int) -> bool:
    at = data.find(mark, start)
    while at >= 0:
        if data[at - 1] == ord("<"):
            return True
        at = data.find(mark, at + 1)
    return False


def _statement_starts(data: mmap.mmap) -> Iterator[int]:
    end = len(_STATEMENT)
    at = data.find(_STATEMENT)
    while at >= 0:
        if data[at + end:at + end + 1] in (b" ", b"\t", b"\r", b"\n", b">", b"/"):
            yield at  # (not <FlexStatements)
        at = data.find(_STATEMENT, at + end)


def _line_breaks(path: Path, start: int, end: int) -> int:
    """Line breaks as expat counts them (CR LF, LF or a lone CR) in bytes start to end."""
    count, previous = 0, b""
    with path.open("rb") as stream:
        stream.seek(start)
        while start < end and (block := stream.read(min(end - start, 16 << 20))):
            start += len(block)
            count += block.count(b"\n")
            if b"\r" in block:  # (rare: counting CR LF pairs is slow)
                count += block.count(b"\r") - block.count(b"\r\n")
            count -= previous.endswith(b"\r") and block.startswith(b"\n")
            previous = block
    return count


def stream_report(path: Path, on_chunk: ChunkHandler, *, header: ReportHeader | None = None,
                  progress: Callable[[int], None] | None = None,
                  min_bytes: int | None = None) -> ReportHeader:
    """`reader.stream_report` on two cores when the report is large and splits cleanly."""
    split = plan_split(path, min_bytes)
    if split is None:
        return reader.stream_report(path, on_chunk, header=header, progress=progress)
    header = header or ReportHeader()
    parser = reader.Parser(on_chunk, header)
    with _Worker(path, split) as worker, path.open("rb") as stream:
        parser.feed(stream, path, until=split.offset, progress=progress)
        part = worker.result() if parser.between_statements(split.statements) else None
        if part is None:
            parser.feed(stream, path, progress=progress)
            parser.close(path)
        else:
            header.statements += part.statements
            position = split.offset
            for key, table in worker.chunks(part.chunks):
                on_chunk(key, table)
                end = table.column(OFFSET_COLUMN)[-1].as_py()  # (a chunk is in file order)
                if progress and end > position:
                    progress(end - position)
                    position = end
            if part.error:
                raise part.error
            if progress:
                progress(path.stat().st_size - position)
    reader.check_root(path, header)
    return header


@dataclass
class _PartResult:
    """What the worker sends back besides its chunks."""

    statements: list[Statement] = field(default_factory=list)
    chunks: int = 0
    unsplittable: str | None = None  # why this process must parse the part itself
    error: MalformedXML | None = None  # raised after the chunks before it, as in order


class _Worker:
    """The worker process that parses the second part into a temporary folder."""

    def __init__(self, path: Path, split: Split) -> None:
        self.folder = Path(tempfile.mkdtemp(prefix="qm-flex-part-"))
        package_root = str(Path(__file__).resolve().parents[3])
        env = {**os.environ, "PYTHONPATH": os.pathsep.join(
            filter(None, [package_root, os.environ.get("PYTHONPATH")])),
            # glibc: blocks over 128 KB (a chunk's text) mapped, so freeing gives them back
            # (by default the threshold grows as large blocks are freed): 40 MB less peak
            "MALLOC_MMAP_THRESHOLD_": "131072"}
        # (the worker chunks rows as this process does, so the chunks are the same too)
        args = [reader.CHUNK_ROWS, str(path), *astuple(split)]
        with (self.folder / "stderr").open("wb") as stderr:
            self.process = subprocess.Popen(
                [sys.executable, "-m", __name__, str(self.folder), *map(str, args)],
                stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=stderr, env=env)

    def result(self) -> _PartResult | None:
        """Wait for the worker; None when this process must parse the part itself."""
        code = self.process.wait()
        result = self.folder / _RESULT
        if code != 0 or not result.exists():
            stderr = (self.folder / "stderr").read_text(errors="replace")[-2000:]
            log.warning("Flex parse worker failed (exit %s), parsing on one core: %s", code,
                        stderr)
            return None
        part: _PartResult = pickle.loads(result.read_bytes())
        if part.unsplittable:
            log.info("Flex report parsed on one core: %s", part.unsplittable)
            return None
        return part

    def chunks(self, count: int) -> Iterator[tuple[GroupKey, pa.Table]]:
        """The worker's chunks in the order it made them, each file removed once read."""
        for number in range(count):
            file = self.folder / f"{number:06d}.arrow"
            with pa.OSFile(str(file)) as source:
                table = pa.ipc.open_stream(source).read_all()
            file.unlink()
            key = GroupKey(*json.loads(table.schema.metadata[_KEY]))
            yield key, table.replace_schema_metadata(None)

    def __enter__(self) -> _Worker:
        return self

    def __exit__(self, *exc_info: object) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait()
        shutil.rmtree(self.folder, ignore_errors=True)


def parse_part(path: Path, split: Split, folder: Path) -> _PartResult:
    """The worker's job: the statements from `split.offset` on, chunks spilled to `folder`."""
    spill = _Spill(folder)
    shift = Shift(split.statements, _line_breaks(path, split.prolog_end, split.offset),
                  split.offset - split.prolog_end)
    parser = reader.Parser(spill.write, ReportHeader(), shift)
    result = _PartResult(parser.header.statements)
    try:
        with path.open("rb") as stream:
            parser.feed(stream, path, until=split.prolog_end)
            if parser.counters:
                return _PartResult(unsplittable="rows before the first statement")
            stream.seek(split.offset)
            parser.feed(stream, path)
        parser.close(path)
    except MalformedXML as exc:
        result.error = exc
    if any(key.statement is None for key in parser.counters):
        return _PartResult(unsplittable="rows outside statements")
    result.chunks = spill.count
    return result


class _Spill:
    """Chunks to numbered Arrow IPC files, each with its group key in the schema metadata."""

    def __init__(self, folder: Path) -> None:
        self.folder, self.count = folder, 0

    def write(self, key: GroupKey, table: pa.Table) -> None:
        table = table.replace_schema_metadata({_KEY: json.dumps(astuple(key))})
        with pa.OSFile(str(self.folder / f"{self.count:06d}.arrow"), "wb") as sink, \
                pa.ipc.new_stream(sink, table.schema) as stream:
            stream.write_table(table)
        self.count += 1


def _main(folder: str, chunk_rows: str, path: str, *split: str) -> None:
    pa.set_memory_pool(pa.system_memory_pool())  # (see ingest.py: lower peak memory)
    reader.CHUNK_ROWS = int(chunk_rows)
    result = parse_part(Path(path), Split(*map(int, split)), Path(folder))
    (Path(folder) / _RESULT).write_bytes(pickle.dumps(result))


if __name__ == "__main__":
    # Run with -m this file is `__main__`; the result must pickle under the module's own name.
    from qm_pipeline.lib.flex.parallel import _main as main

    main(*sys.argv[1:])
