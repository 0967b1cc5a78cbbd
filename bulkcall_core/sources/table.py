"""What reading a contact file returns: a `Table` of text, or a `Preview` of its first rows."""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import TypeVar

import numpy as np
import pandas as pd


@dataclass(frozen=True, eq=False)
class Table:
    """A contact file read as text.

    `data` has one column per name in `columns` (same order), each of pandas' Arrow-backed
    text dtype (`string[pyarrow]`): every cell is a `str`, or missing (`pd.NA`) when blank;
    never a number. `values(column)` gives a column as a list of `str | None`. Blank rows are
    dropped; `row_numbers[i]` (int64) is the spreadsheet row of data row i (header = row 1).
    """

    columns: tuple[str, ...]  # unique: blank header -> "Column 3", repeated -> "Phone (2)"
    data: pd.DataFrame
    row_numbers: np.ndarray
    sheet: str | None = None  # the sheet read (workbooks), None for CSV
    sheet_names: tuple[str, ...] = ()  # every sheet of a workbook, () for CSV
    encoding: str | None = None  # CSV: "utf-8", "utf-16", "cp1252", "latin-1"...
    delimiter: str | None = None  # CSV: ",", ";", "\t" or "|"; None for a one-column file
    notes: tuple[str, ...] = ()  # what the user should know, e.g. "read as CSV despite .xlsx"

    def __len__(self) -> int:
        return len(self.data)

    def values(self, column: str) -> list[str | None]:
        """The cells of `column` in row order, `None` for blanks (KeyError for an unknown name)."""
        return self.data[column].to_numpy(dtype=object, na_value=None).tolist()


@dataclass(frozen=True, eq=False)
class Preview(Table):
    """The first rows of a file, with every column name (same fields as `Table`)."""

    total_rows: int | None = None  # non-blank data rows, when known without reading it all
    truncated: bool = False  # the file has more data rows than `data` shows


_T = TypeVar("_T", bound=Table)


def preview_of(table: Table, max_rows: int, total: int | None) -> Preview:
    """The first `max_rows` rows of `table`; `total` is the file's row count when known."""
    shown = min(max_rows, len(table))
    return Preview(
        columns=table.columns,
        data=table.data.iloc[:shown].reset_index(drop=True),
        row_numbers=table.row_numbers[:shown].copy(),
        sheet=table.sheet,
        sheet_names=table.sheet_names,
        encoding=table.encoding,
        delimiter=table.delimiter,
        notes=table.notes,
        total_rows=total,
        truncated=len(table) > shown if total is None else total > shown,
    )


def with_notes(table: _T, notes: tuple[str, ...]) -> _T:
    """`table` with `notes` added."""
    return replace(table, notes=table.notes + notes) if notes else table
