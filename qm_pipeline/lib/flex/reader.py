"""Streaming Flex XML reader: every row of every section, as text, in Arrow chunks.

Why not ibflex's parser: it builds the whole tree and types every attribute in Python, which is
slow on large reports and fails on anything it does not know (DOMAIN.md section 1). Here expat
streams the file; each row's attribute values are joined with a control character that XML 1.0
forbids in documents (so it cannot occur in a value), and pyarrow's C++ CSV reader turns those
lines into string columns. Chunks go to a callback as they fill, so memory stays bounded by the
chunk size, not the report size. Nothing is typed or dropped here: typing is `cast.py`'s job.
"""

from __future__ import annotations

import io
from array import array
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from pyexpat import ExpatError, ParserCreate
from typing import BinaryIO

import pyarrow as pa
import pyarrow.csv as pacsv

from qm_pipeline.lib.collector import cycle_collection_paused
from qm_pipeline.lib.flex.errors import FlexInputError

SEP = "\x1f"  # not allowed in XML 1.0 documents, even as a character reference
LINE_COLUMN = "__line"
OFFSET_COLUMN = "__offset"
ORDINAL_COLUMN = "__ordinal"
CHUNK_ROWS = 20_000
_READ_BYTES = 4 << 20


class MalformedXML(FlexInputError):
    """Not well-formed or truncated XML, at a line of the file."""

    def __init__(self, path: str, reason: str, line: int) -> None:
        super().__init__(path, f"malformed or truncated XML ({reason})", line=line)
        self.reason = reason

    def __reduce__(self) -> tuple:  # (the worker of parallel.py sends it back pickled)
        return MalformedXML, (self.path, self.reason, self.line)


@dataclass(frozen=True, order=True)
class GroupKey:
    """Where rows sit: statement (None for rows outside any statement), section, nesting, tag."""

    statement: int | None
    section: str
    parent: str
    tag: str


@dataclass
class Statement:
    index: int
    attrs: dict[str, str]
    sections: list[str] = field(default_factory=list)


@dataclass
class ReportHeader:
    root_tag: str = ""
    root: dict[str, str] = field(default_factory=dict)
    declared_statements: str | None = None
    statements: list[Statement] = field(default_factory=list)


# (where the rows sit, their text columns plus line, offset and ordinal-in-section)
ChunkHandler = Callable[[GroupKey, pa.Table], None]


@dataclass
class ParsedReport(ReportHeader):
    """A whole report in memory (tests, small files); ingestion streams instead."""

    tables: dict[GroupKey, pa.Table] = field(default_factory=dict)


class _Group:
    """Rows of one context and one attribute list, buffered as joined text lines."""

    __slots__ = ("counter", "handler", "inner", "key", "lines", "names", "numbers", "offsets",
                 "ordinals")

    def __init__(self, key: GroupKey, names: list[str], counter: list[int],
                 handler: ChunkHandler) -> None:
        self.key = key
        self.names = names
        self.counter = counter  # shared by every group of the same context: ordinals
        self.handler = handler
        # context of elements nested inside these rows (rare), built once per group
        self.inner = _Frame(GroupKey(key.statement, key.section, _join(key.parent, key.tag), ""))
        self.lines: list[str] = []
        self.numbers, self.offsets, self.ordinals = _int64s(), _int64s(), _int64s()

    def add(self, attrs: list[str], line: int, offset: int) -> None:
        self.lines.append(SEP.join(attrs[1::2]))
        self.numbers.append(line)
        self.offsets.append(offset)
        self.ordinals.append(self.counter[0])
        self.counter[0] += 1
        if len(self.lines) >= CHUNK_ROWS:
            self.flush()

    def flush(self) -> None:
        if not self.lines:
            return
        table = _lines_to_table(self.names, self.lines)
        for name, values in ((LINE_COLUMN, self.numbers), (OFFSET_COLUMN, self.offsets),
                             (ORDINAL_COLUMN, self.ordinals)):
            table = table.append_column(name, pa.Array.from_buffers(
                pa.int64(), len(values), [None, pa.py_buffer(values)]))
        self.lines = []
        self.numbers, self.offsets, self.ordinals = _int64s(), _int64s(), _int64s()
        self.handler(self.key, table)


def _int64s() -> array:
    """Packed int64s, for columns Arrow takes over without a copy. (Also, `pa.array` on a
    list imports pandas, 0.3 s and 30 MB, to ask whether the list is a pandas object: the
    worker of `parallel.py` never needs it.)"""
    return array("q")


def _lines_to_table(names: list[str], lines: list[str]) -> pa.Table:
    """Rows always have at least one attribute (that is what makes an element a row).

    Empties `lines`, and lets go of each form of the text as soon as the next exists: a chunk
    is tens of MB, and holding its lines, text and bytes at once showed in the peak memory."""
    rows = len(lines)
    lines.append("")  # a final newline: a last row of one empty value is still a row
    text = "\n".join(lines)
    lines.pop()
    if text.count("\n") != rows or "\r" in text:
        # A value holds a newline (only possible through a character reference): split exactly.
        columns = zip(*(line.split(SEP) for line in lines), strict=True)
        return pa.Table.from_arrays([pa.array(c, pa.string()) for c in columns], names=names)
    del lines[:]
    data = text.encode()
    del text
    return pacsv.read_csv(
        io.BytesIO(data),
        read_options=pacsv.ReadOptions(column_names=names, block_size=1 << 24),
        parse_options=pacsv.ParseOptions(
            delimiter=SEP, quote_char=False, escape_char=False, ignore_empty_lines=False
        ),
        convert_options=pacsv.ConvertOptions(
            column_types=dict.fromkeys(names, pa.string()),
            strings_can_be_null=False,
            quoted_strings_can_be_null=False,
        ),
    )


def _join(parent: str, name: str) -> str:
    return f"{parent}/{name}" if parent else name


def _pairs(attrs: list[str]) -> dict[str, str]:
    return dict(zip(attrs[0::2], attrs[1::2], strict=True))


class _Frame:
    """An open element. `context` says where rows directly inside it belong; `section == ""`
    means the statement (or document) level, where a row is its own section."""

    __slots__ = ("context", "groups")

    def __init__(self, context: GroupKey) -> None:
        self.context = context
        # per row tag, the attribute list and group its rows went to last (sections such as
        # Trades interleave tags: Trade, Lot, Lot, Trade...)
        self.groups: dict[str, tuple[list[str], _Group]] = {}


_DOCUMENT = GroupKey(None, "", "", "")


@dataclass(frozen=True)
class Shift:
    """Where a parse of part of a file starts in the real file: statements before it, and
    lines and bytes to add so that rows carry the file's own line numbers and offsets."""

    statements: int = 0
    lines: int = 0
    bytes: int = 0


class Parser:
    """One expat parse of a report, or of a part of one that starts at a statement (`shift`):
    rows go to `handler` in chunks, the header fills in as elements open."""

    def __init__(self, handler: ChunkHandler, header: ReportHeader,
                 shift: Shift = Shift()) -> None:
        self.parser = ParserCreate()
        self.parser.ordered_attributes = True
        self.parser.StartElementHandler = self.start
        self.parser.EndElementHandler = self.end
        self.handler = handler
        self.stack: list[_Frame] = []
        self.groups: dict[tuple[GroupKey, tuple[str, ...]], _Group] = {}
        self.counters: dict[GroupKey, list[int]] = {}
        self.header = header
        self.shift = shift

    def where(self) -> tuple[int, int]:
        """Line and byte offset of the element being started, in the real file."""
        return (self.parser.CurrentLineNumber + self.shift.lines,
                self.parser.CurrentByteIndex + self.shift.bytes)

    def start(self, name: str, attrs: list[str]) -> None:
        stack = self.stack
        last = stack[-1].groups.get(name) if stack else None
        if last is not None and attrs and last[0] == attrs[0::2]:
            # Hot path: one more row like an earlier one in the same container.
            group = last[1]
            group.add(attrs, *self.where())
            stack.append(group.inner)
            return
        if not stack:
            self.header.root_tag, self.header.root = name, _pairs(attrs)
            stack.append(_Frame(_DOCUMENT))
            return
        frame = stack[-1]
        context = frame.context
        statements = self.header.statements
        if len(stack) == 1 and name == "FlexStatements":
            self.header.declared_statements = _pairs(attrs).get("count")
            stack.append(_Frame(_DOCUMENT))
        elif len(stack) == 2 and name == "FlexStatement":
            index = self.shift.statements + len(statements)
            statements.append(Statement(index, _pairs(attrs)))
            stack.append(_Frame(GroupKey(index, "", "", "")))
        elif attrs:
            stack.append(self.row(frame, name, attrs))
        elif context.section:
            stack.append(_Frame(GroupKey(context.statement, context.section,
                                         _join(context.parent, name), "")))
        else:
            self.note_section(context, name)
            stack.append(_Frame(GroupKey(context.statement, name, "", "")))

    def note_section(self, context: GroupKey, name: str) -> None:
        if context.statement is not None:
            self.header.statements[context.statement - self.shift.statements].sections.append(
                name)

    def row(self, frame: _Frame, name: str, attrs: list[str]) -> _Frame:
        """Buffer one row; return the frame for elements nested inside it."""
        names = attrs[0::2]
        context = frame.context
        if context.section:
            key = GroupKey(context.statement, context.section, context.parent, name)
        else:
            self.note_section(context, name)
            key = GroupKey(context.statement, name, "", name)
        group = self.groups.get((key, tuple(names)))
        if group is None:
            counter = self.counters.setdefault(key, [0])
            group = self.groups[(key, tuple(names))] = _Group(key, names, counter, self.handler)
        frame.groups[name] = (names, group)
        group.add(attrs, *self.where())
        return group.inner

    def end(self, name: str) -> None:
        self.stack.pop()
        if len(self.stack) == 2:  # a statement closed: its rows are complete
            for group in self.groups.values():
                group.flush()

    def feed(self, stream: BinaryIO, path: Path, *, until: int | None = None,
             progress: Callable[[int], None] | None = None) -> None:
        """Parse `stream` from its position up to byte `until` (its end for None), without
        ending the document. Malformed XML raises FlexInputError naming the line and column
        in the real file."""
        try:
            with cycle_collection_paused():  # (rows are lists and tuples of strings)
                while True:
                    size = (_READ_BYTES if until is None
                            else min(_READ_BYTES, until - stream.tell()))
                    block = stream.read(size) if size > 0 else b""
                    if not block:
                        return
                    self.parser.Parse(block, False)
                    if progress:
                        progress(len(block))
        except ExpatError as exc:
            raise self.malformed(path, exc) from None

    def between_statements(self, count: int) -> bool:
        """Whether the parse stands after exactly `count` statements, between statements,
        with no row waiting in a buffer: then a parse from the next statement continues it
        exactly (`parallel.py`)."""
        return (len(self.stack) == 2 and len(self.header.statements) == count
                and not any(group.lines for group in self.groups.values()))

    def close(self, path: Path) -> None:
        """End the document (a truncated one fails here) and hand over the last rows."""
        try:
            self.parser.Parse(b"", True)
        except ExpatError as exc:
            raise self.malformed(path, exc) from None
        for group in self.groups.values():
            group.flush()

    def malformed(self, path: Path, exc: ExpatError) -> MalformedXML:
        return MalformedXML(str(path), _expat_reason(exc), exc.lineno + self.shift.lines)


def check_root(path: Path, header: ReportHeader) -> None:
    if header.root_tag != "FlexQueryResponse":
        raise FlexInputError(
            str(path),
            f"not a Flex report: the root element is <{header.root_tag}>, "
            "expected <FlexQueryResponse>",
        )


def stream_report(path: Path, on_chunk: ChunkHandler, *, header: ReportHeader | None = None,
                  progress: Callable[[int], None] | None = None) -> ReportHeader:
    """Stream `path`, handing row chunks to `on_chunk` as they fill; returns the header
    (filled in as the statements open, so `on_chunk` can read it).

    Malformed or truncated XML raises FlexInputError naming the line and column."""
    reader = Parser(on_chunk, header or ReportHeader())
    with path.open("rb") as stream:
        reader.feed(stream, path, progress=progress)
    reader.close(path)
    check_root(path, reader.header)
    return reader.header


def read_report(path: Path) -> ParsedReport:
    """The whole report in memory, one table per row context (for tests and small files)."""
    chunks: dict[GroupKey, list[pa.Table]] = {}
    header = stream_report(path, lambda key, table: chunks.setdefault(key, []).append(table))
    tables = {
        key: pa.concat_tables(parts, promote_options="default").sort_by(ORDINAL_COLUMN)
        for key, parts in sorted(chunks.items(), key=lambda item: _sort_key(item[0]))
    }
    return ParsedReport(header.root_tag, header.root, header.declared_statements,
                        header.statements, tables)


def _sort_key(key: GroupKey) -> tuple:
    return (-1 if key.statement is None else key.statement, key.section, key.parent, key.tag)


def _expat_reason(exc: ExpatError) -> str:
    return f"{str(exc).split(':')[0]}, column {exc.offset + 1}"
