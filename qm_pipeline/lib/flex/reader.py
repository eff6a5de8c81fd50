"""Streaming Flex XML reader: every row of every section, as text, in Arrow tables.

Why not ibflex's parser: it builds the whole tree and types every attribute in Python, which is
slow on large reports and fails on anything it does not know (DOMAIN.md section 1). Here expat
streams the file; each row's attribute values are joined with a control character that XML 1.0
forbids in documents (so it cannot occur in a value), and pyarrow's C++ CSV reader turns those
lines into string columns. Nothing is typed or dropped at this stage: typing is `cast.py`'s job.
"""

from __future__ import annotations

import io
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from pyexpat import ExpatError, ParserCreate

import pyarrow as pa
import pyarrow.csv as pacsv

from qm_pipeline.lib.flex.errors import FlexInputError

SEP = "\x1f"  # not allowed in XML 1.0 documents, even as a character reference
LINE_COLUMN = "__line"
OFFSET_COLUMN = "__offset"
_CHUNK_ROWS = 50_000
_READ_BYTES = 4 << 20


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
class ParsedReport:
    root_tag: str
    root: dict[str, str]
    declared_statements: str | None
    statements: list[Statement]
    tables: dict[GroupKey, pa.Table]  # string columns named as in the XML, plus line and offset


class _Group:
    """Rows of one context and one attribute list, buffered as joined text lines."""

    __slots__ = ("chunks", "inner", "key", "lines", "names", "numbers", "offsets")

    def __init__(self, key: GroupKey, names: list[str]) -> None:
        self.key = key
        self.names = names
        # context of elements nested inside these rows (rare), built once per group
        self.inner = _Frame(GroupKey(key.statement, key.section, _join(key.parent, key.tag), ""))
        self.lines: list[str] = []
        self.numbers: list[int] = []
        self.offsets: list[int] = []
        self.chunks: list[pa.Table] = []

    def flush(self) -> None:
        if not self.lines:
            return
        table = _lines_to_table(self.names, self.lines)
        table = table.append_column(LINE_COLUMN, pa.array(self.numbers, pa.int64()))
        self.chunks.append(table.append_column(OFFSET_COLUMN, pa.array(self.offsets, pa.int64())))
        self.lines, self.numbers, self.offsets = [], [], []


def _lines_to_table(names: list[str], lines: list[str]) -> pa.Table:
    """Rows always have at least one attribute (that is what makes an element a row)."""
    text = "\n".join(lines)
    if text.count("\n") != len(lines) - 1 or "\r" in text:
        # A value holds a newline (only possible through a character reference): split exactly.
        columns = zip(*(line.split(SEP) for line in lines), strict=True)
        return pa.table([pa.array(c, pa.string()) for c in columns], names=names)
    return pacsv.read_csv(
        io.BytesIO(text.encode() + b"\n"),
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

    __slots__ = ("context", "last")

    def __init__(self, context: GroupKey) -> None:
        self.context = context
        self.last: tuple[str, list[str], _Group] | None = None


_DOCUMENT = GroupKey(None, "", "", "")


class _Reader:
    def __init__(self, path: Path) -> None:
        self.parser = ParserCreate()
        self.parser.ordered_attributes = True
        self.parser.StartElementHandler = self.start
        self.parser.EndElementHandler = self.end
        self.stack: list[_Frame] = []
        self.groups: dict[tuple[GroupKey, tuple[str, ...]], _Group] = {}
        self.statements: list[Statement] = []
        self.root_tag = ""
        self.root: dict[str, str] = {}
        self.declared: str | None = None

    def start(self, name: str, attrs: list[str]) -> None:
        stack = self.stack
        last = stack[-1].last if stack else None
        if last is not None and last[0] == name and attrs and last[1] == attrs[0::2]:
            # Hot path: one more row like the previous one in the same container.
            group = last[2]
            group.lines.append(SEP.join(attrs[1::2]))
            group.numbers.append(self.parser.CurrentLineNumber)
            group.offsets.append(self.parser.CurrentByteIndex)
            if len(group.lines) >= _CHUNK_ROWS:
                group.flush()
            stack.append(group.inner)
            return
        if not stack:
            self.root_tag, self.root = name, _pairs(attrs)
            stack.append(_Frame(_DOCUMENT))
            return
        frame = stack[-1]
        context = frame.context
        if len(stack) == 1 and name == "FlexStatements":
            self.declared = _pairs(attrs).get("count")
            stack.append(_Frame(_DOCUMENT))
        elif len(stack) == 2 and name == "FlexStatement":
            self.statements.append(Statement(len(self.statements), _pairs(attrs)))
            stack.append(_Frame(GroupKey(len(self.statements) - 1, "", "", "")))
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
            self.statements[context.statement].sections.append(name)

    def row(self, frame: _Frame, name: str, attrs: list[str]) -> _Frame:
        """Buffer one row; return the frame for elements nested inside it."""
        names = attrs[0::2]
        last = frame.last
        if last is None or last[0] != name or last[1] != names:
            context = frame.context
            if context.section:
                key = GroupKey(context.statement, context.section, context.parent, name)
            else:
                self.note_section(context, name)
                key = GroupKey(context.statement, name, "", name)
            group = self.groups.get((key, tuple(names)))
            if group is None:
                group = self.groups[(key, tuple(names))] = _Group(key, names)
            last = frame.last = (name, names, group)
        group = last[2]
        group.lines.append(SEP.join(attrs[1::2]))
        group.numbers.append(self.parser.CurrentLineNumber)
        group.offsets.append(self.parser.CurrentByteIndex)
        if len(group.lines) >= _CHUNK_ROWS:
            group.flush()
        return group.inner

    def end(self, name: str) -> None:
        self.stack.pop()

    def tables(self) -> dict[GroupKey, pa.Table]:
        chunks: dict[GroupKey, list[pa.Table]] = {}
        for group in self.groups.values():
            group.flush()
            chunks.setdefault(group.key, []).extend(group.chunks)
        return {
            key: pa.concat_tables(parts, promote_options="default")
            for key, parts in sorted(chunks.items(), key=lambda item: _sort_key(item[0]))
        }


def _sort_key(key: GroupKey) -> tuple:
    return (-1 if key.statement is None else key.statement, key.section, key.parent, key.tag)


def read_report(
    path: Path, *, progress: Callable[[int], None] | None = None
) -> ParsedReport:
    """Stream `path` into a ParsedReport; malformed or truncated XML raises FlexInputError."""
    reader = _Reader(path)
    with path.open("rb") as stream:
        try:
            while block := stream.read(_READ_BYTES):
                reader.parser.Parse(block, False)
                if progress:
                    progress(len(block))
            reader.parser.Parse(b"", True)
        except ExpatError as exc:
            raise FlexInputError(
                str(path), f"malformed or truncated XML ({_expat_reason(exc)})",
                line=exc.lineno,
            ) from None
    if reader.root_tag != "FlexQueryResponse":
        raise FlexInputError(
            str(path),
            f"not a Flex report: the root element is <{reader.root_tag}>, "
            "expected <FlexQueryResponse>",
        )
    return ParsedReport(
        reader.root_tag, reader.root, reader.declared, reader.statements, reader.tables()
    )


def _expat_reason(exc: ExpatError) -> str:
    return f"{str(exc).split(':')[0]}, column {exc.offset + 1}"
