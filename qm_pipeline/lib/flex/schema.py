"""The Flex schema registry: which row tags, sections and attributes are known, and their types.

ibflex's dataclasses (`ibflex.Types`) are the one source of truth for Flex attribute names and
types; this module reads their annotations instead of retyping sixty column lists. Anything a
report carries that is not in that registry is still kept (as text, in `raw`) and reported as
schema drift.
"""

from __future__ import annotations

import dataclasses
import enum
import re
from dataclasses import dataclass
from functools import cache

from ibflex import Types, enums

from qm_pipeline.lib.naming import snake_case


class Kind(enum.StrEnum):
    """How a Flex attribute's text becomes a typed value."""

    TEXT = "text"
    DECIMAL = "decimal"
    DATE = "date"
    DATETIME = "datetime"
    TIME = "time"
    BOOL = "bool"
    ENUM = "enum"  # stored as text; values outside ibflex's enum are reported, not fatal
    CODES = "codes"  # `notes`: ';'-separated enums.Code values, stored as the original text
    LIST = "list"  # comma-separated text, stored as the original text


@dataclass(frozen=True)
class Field:
    attr: str
    column: str
    kind: Kind
    enum: type[enum.Enum] | None = None


@dataclass(frozen=True)
class RowSchema:
    tag: str
    fields: dict[str, Field]  # by Flex attribute name, in ibflex's declaration order


_TOP_LEVEL = {"FlexElement", "FlexQueryResponse", "FlexStatement"}
_ENUM_NAME = re.compile(r"enums\.(\w+)")


def _kind_of(annotation: str) -> tuple[Kind, type[enum.Enum] | None]:
    """Map an ibflex annotation string (the module uses postponed annotations) to a Kind."""
    head = annotation.split("|")[0].strip()
    if head.startswith("tuple["):
        return (Kind.CODES, enums.Code) if "enums.Code" in head else (Kind.LIST, None)
    found = _ENUM_NAME.search(head)
    if found:
        return Kind.ENUM, getattr(enums, found.group(1))
    simple = {
        "decimal.Decimal": Kind.DECIMAL,
        "datetime.date": Kind.DATE,
        "datetime.datetime": Kind.DATETIME,
        "datetime.time": Kind.TIME,
        "bool": Kind.BOOL,
    }
    return simple.get(head, Kind.TEXT), None


@cache
def row_schemas() -> dict[str, RowSchema]:
    """Every data-element class of ibflex, keyed by its XML tag (class name = tag)."""
    schemas: dict[str, RowSchema] = {}
    for name, cls in vars(Types).items():
        if not (isinstance(cls, type) and dataclasses.is_dataclass(cls)):
            continue
        if name != cls.__name__ or name in _TOP_LEVEL:
            continue  # skip the `_Alias = Class` duplicates and the containers
        fields = {}
        for attr, annotation in cls.__annotations__.items():
            kind, enum_type = _kind_of(str(annotation))
            fields[attr] = Field(attr, snake_case(attr), kind, enum_type)
        schemas[name] = RowSchema(name, fields)
    return schemas


def row_schema(tag: str) -> RowSchema | None:
    return row_schemas().get(tag)


@cache
def known_sections() -> frozenset[str]:
    """Section (container) names a FlexStatement may hold, per ibflex."""
    return frozenset(
        f for f in Types.FlexStatement.__annotations__ if f[:1].isupper()
    )


@cache
def enum_values(enum_type: type[enum.Enum]) -> frozenset[str]:
    return frozenset(str(member.value) for member in enum_type)
