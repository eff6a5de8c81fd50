"""Errors that name the file, the row and the field, so a bad report can be found and fixed."""

from __future__ import annotations


class FlexInputError(Exception):
    """A report that cannot be loaded as it is. Nothing of it reaches the warehouse."""

    def __init__(
        self,
        path: str,
        message: str,
        *,
        line: int | None = None,
        row_tag: str | None = None,
        field: str | None = None,
        value: str | None = None,
    ) -> None:
        self.path, self.line, self.row_tag = path, line, row_tag
        self.field, self.value = field, value
        where = [path]
        if line is not None:
            where.append(f"line {line}")
        if row_tag:
            where.append(f"<{row_tag}>")
        if field:
            where.append(f"field {field!r}")
        if value is not None:
            where.append(f"value {value!r}")
        super().__init__(f"{', '.join(where)}: {message}")
